#!/usr/bin/env bash
# The version-matched checker images (tests/redhat/test_el_checkers.py): Debian releases whose
# Postfix, OpenDKIM, OpenDMARC, Dovecot and Unbound are the upstream versions an EL major ships,
# or the closest older ones (docs/el.md has the table and the sources), so the EL-rendered files
# are read by the daemons' own checkers of those versions. No registry: debootstrap (minbase)
# with the daemons, then `podman import`.
#   bullseye (Debian 11): Postfix 3.5.25, OpenDKIM 2.11.0~beta2, OpenDMARC 1.4.0~beta1,
#                         Dovecot 2.3.13, Unbound 1.13.1        -> EL 9 (OpenDMARC: bookworm)
#   bookworm (Debian 12): Postfix 3.7.11, OpenDMARC 1.4.2, Dovecot 2.3.19, Unbound 1.17.1
#                                                               -> EL 10, and EL 9's OpenDMARC 1.4.2
# Each image is built only when it is missing (or with FORCE=1): about 70 s (bullseye) and 100 s
# (bookworm) here from a cold cache. Nothing in them runs as a service: the tests start one
# short-lived container per image (mailward-checker-<suite>-<pid>, no network).
# Usage: scripts/build-checker-images.sh [suite ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}

MIRROR=${MAILWARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suites=("$@")
((${#suites[@]})) || suites=(bullseye bookworm)

# postfix-lmdb: EL 10's Postfix has lmdb: tables only. `script` (bsdutils, always there) gives
# postfix check a terminal, where it prints its reason.
packages=postfix,postfix-lmdb,opendkim,opendmarc,dovecot-core,unbound

for suite in "${suites[@]}"; do
  image=localhost/mailward-checker-$suite:latest
  if [[ "${FORCE:-0}" != 1 ]] && podman image exists "$image"; then
    echo "image $image already present"
    continue
  fi
  start=$(date +%s)
  rootfs=$(mktemp -d /var/tmp/mailward-checker-rootfs.XXXXXX)
  # shellcheck disable=SC2064  # the path is fixed now, on purpose
  trap "rm -rf '$rootfs'" EXIT
  echo "debootstrap $suite into $rootfs (a few minutes)"
  # Postfix is only a checker here: no mail system configuration is asked for or made.
  mkdir -p "$rootfs/var/cache/debconf"
  DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --include="$packages" \
    "$suite" "$rootfs" "$MIRROR" >/dev/null
  # What the tests assert: the versions this image checks with.
  chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n' postfix opendkim opendmarc dovecot-core unbound \
    >"$rootfs/etc/mailward-checker-versions"
  cat "$rootfs/etc/mailward-checker-versions"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
         "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
  tar -C "$rootfs" --numeric-owner -c . | podman import --change 'CMD ["/bin/sh"]' - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "built $image in $(( $(date +%s) - start )) s"
done
