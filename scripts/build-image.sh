#!/usr/bin/env bash
# Build the Debian 12 base image used by the demo, molecule and the benchmarks.
# No registry is needed: debootstrap (minbase) + systemd + python3, then `podman import`.
# The image is rebuilt only when it is missing (or with FORCE=1).
set -euo pipefail

IMAGE=${MAILWARD_IMAGE:-localhost/mailward-debian12:latest}
MIRROR=${MAILWARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${MAILWARD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if [[ "${FORCE:-0}" != 1 ]] && podman image exists "$IMAGE"; then
  echo "image $IMAGE already present"
  exit 0
fi

rootfs=$(mktemp -d /var/tmp/mailward-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap bookworm into $rootfs (a few minutes)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,netbase,sudo \
  bookworm "$rootfs" "$MIRROR" >/dev/null

cat >"$rootfs/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SRC
# Keep the image small and quiet: no docs, no recommends, no units that make no sense in a container.
cat >"$rootfs/etc/apt/apt.conf.d/90mailward" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT
for unit in systemd-logind.service getty.target console-getty.service systemd-timesyncd.service \
            apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo "mailward-base" >"$rootfs/etc/hostname"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# An empty list directory with a fresh mtime would look like a valid cache to apt-based tools.
touch -d @0 "$rootfs/var/lib/apt/lists"

tar -C "$rootfs" --numeric-owner -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$IMAGE" >/dev/null
echo "built $IMAGE"
