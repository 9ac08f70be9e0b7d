#!/usr/bin/env bash
# What make demo and make test need from podman, tried once: create a network, start a
# container on it, resolve names over it (another container's, through aardvark-dns, and the
# Debian mirror's, through aardvark-dns to this machine's resolver: apt in the containers needs
# it). A failure says what failed, podman's own message, and which pieces are missing.
# It needs no image (no registry is assumed): the containers run this machine's root file
# system read-only under an overlay (--rootfs /:O). scripts/setup.sh runs it; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}

name=mailward-demo-smoke-$$
log=$(mktemp)
cleanup() {
  podman rm -f -t 0 --ignore "$name-a" >/dev/null 2>&1 || true
  podman network rm "$name" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

# The pieces podman calls, checked on the machine when a step failed.
missing() {
  local found=()
  command -v podman >/dev/null || found+=("podman (apt-get install podman)")
  command -v runc >/dev/null || found+=("runc (apt-get install runc; containers/containers.conf selects it)")
  command -v conmon >/dev/null || found+=("conmon (apt-get install conmon)")
  [[ -x /usr/lib/podman/netavark ]] || found+=("netavark (apt-get install netavark)")
  [[ -x /usr/lib/podman/aardvark-dns ]] || found+=("aardvark-dns (apt-get install aardvark-dns)")
  PATH="/usr/sbin:/sbin:$PATH" command -v iptables >/dev/null \
    || found+=("iptables (apt-get install iptables): netavark runs it for every network; without it a container start fails with 'netavark: No such file or directory (os error 2)'")
  if ((${#found[@]})); then
    printf '  missing: %s\n' "${found[@]}"
  else
    echo "  every piece is installed (podman runc conmon netavark aardvark-dns iptables): see podman's message above"
  fi
}

fail() {
  echo "podman smoke test FAILED: $1" >&2
  sed 's/^/  | /' "$log" >&2
  missing >&2
  echo "  step: $2" >&2
  exit 1
}

mirror=${MAILWARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}  # scripts/build-image.sh's default
mirror_host=${mirror#*://}
mirror_host=${mirror_host%%/*}
mirror_host=${mirror_host%%:*}

podman info >"$log" 2>&1 \
  || fail "podman does not work on this machine" "podman info"
podman network create "$name" >"$log" 2>&1 \
  || fail "podman cannot create a network" "podman network create $name"
podman run -d --name "$name-a" --network "$name" --rootfs /:O sleep 300 >"$log" 2>&1 \
  || fail "a container cannot start on a podman network" "podman run --network $name"
podman run --rm --network "$name" --rootfs /:O getent hosts "$name-a" >"$log" 2>&1 \
  || fail "a container cannot resolve another container's name on its network (aardvark-dns)" \
          "getent hosts $name-a, in a container on $name"
podman run --rm --network "$name" --rootfs /:O getent hosts "$mirror_host" >"$log" 2>&1 \
  || fail "a container cannot resolve $mirror_host (aardvark-dns forwards to this machine's resolvers, /etc/resolv.conf)" \
          "getent hosts $mirror_host, in a container on $name"
echo "podman smoke test: ok (network, container, names resolved over the network)"
