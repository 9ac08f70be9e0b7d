#!/usr/bin/env bash
# make rehearse: the README's commands, as a new user types them, on a brand-new Debian 12
# machine: a debootstrapped bookworm (the default variant: every "required" and "important"
# package, what a minimal installation holds, plus the installer's apt sources), started as a
# privileged podman container with systemd as PID 1 and its own, empty container storage.
# Inside, as root, only what a new user types:
#     apt-get update && apt-get install -y git make      (README: "a fresh machine has neither")
#     git clone <this repository> mailward && cd mailward
#     make demo && make audit && make demo-mail && make test
# REHEARSE_STEPS chooses the make targets: default "demo audit demo-mail test" (the two README
# commands, and the demo's audit and tour; about 32 minutes here), "demo audit demo-mail" is the
# quick one (about 8). Podman, runc, iptables, debootstrap, the virtualenv, the base image and
# the demo all come from the project's own scripts. Nothing else is added by hand, except the
# site's TLS trust when this machine's network needs one (site_trust below).
# The clone is of this repository's HEAD (committed work only). Output: build/rehearsal/
# (rehearse-<time>.log and last-result.txt). KEEP=1 keeps the machine for a look
# (podman exec -it mailward-rehearsal bash); make rehearse removes it first anyway.
#
# Nested podman on a cgroup v1 (hybrid) host needs: --privileged (mounts, netfilter, devices),
# --cgroupns=private (the inner runc must see its cgroup paths from the root of each hierarchy)
# and --systemd=false (podman's systemd mode would mount the host's name=systemd hierarchy,
# whose root the inner runc cannot resolve; systemd as PID 1 mounts what it needs itself).
# The inner storage is a directory of this machine (overlay cannot have its upper directory on
# the container's own overlay root).
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}

work=${MAILWARD_REHEARSAL_DIR:-/var/tmp/mailward-rehearsal}
image=localhost/mailward-rehearsal-fresh:bookworm
name=mailward-rehearsal
network=mailward-rehearsal
mirror=${MAILWARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${MAILWARD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
steps=${REHEARSE_STEPS:-demo audit demo-mail test}
out=build/rehearsal
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
log=$out/rehearse-$stamp.log
commit=$(git rev-parse --short HEAD)

say() { echo "rehearse: $*" | tee -a "$log"; }

remove_machine() {
  podman rm -f -t 10 --ignore "$name" >/dev/null 2>&1 || true
  podman network rm "$network" >/dev/null 2>&1 || true
  # The inner containers' mounts can outlive the machine's removal by a moment.
  for _ in 1 2 3 4 5; do
    rm -rf "$work/storage" 2>/dev/null && break
    sleep 2
  done
  if [[ -e "$work/storage" ]]; then echo "rehearse: could not remove $work/storage" >&2; fi
}
remove_machine
if [[ "${KEEP:-0}" != 1 ]]; then
  trap remove_machine EXIT
fi

# The fresh machine's disk: built once (FORCE=1 builds it again), never changed afterwards;
# every rehearsal starts a new container from it.
if [[ "${FORCE:-0}" == 1 ]] || ! podman image exists "$image"; then
  say "debootstrap bookworm (default variant: required + important) into $work/rootfs"
  rm -rf "$work/rootfs"
  mkdir -p "$work"
  debootstrap bookworm "$work/rootfs" "$mirror" >>"$log" 2>&1
  # What the Debian installer writes; debootstrap leaves only the release itself.
  cat >"$work/rootfs/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
SRC
  echo rehearsal >"$work/rootfs/etc/hostname"
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
  tar -C "$work/rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
  rm -rf "$work/rootfs"
fi

say "commit $commit; steps: set-up, $steps; log $log"
podman network create "$network" >/dev/null
mkdir -p "$work/storage"
podman run -d --name "$name" --hostname rehearsal --network "$network" \
  --privileged --cgroupns=private --systemd=false \
  -v "$work/storage:/var/lib/containers" \
  -v "$PWD/.git:/srv/mailward.git:ro" \
  "$image" /sbin/init >/dev/null
for _ in $(seq 1 60); do
  state=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
  [[ "$state" == running || "$state" == degraded ]] && break
  sleep 1
done
say "machine up (systemd: $state)"

# One step inside the machine, as root in a login shell, timed; its output goes to the log.
results=()
failed=0
run_step() {
  local label=$1 command=$2 began ended rc
  began=$(date +%s)
  say "step $label: $command"
  set +e
  podman exec "$name" bash -lc "$command" >>"$log" 2>&1
  rc=$?
  set -e
  ended=$(date +%s)
  results+=("$(printf '%-10s %s  %dm%02ds' "$label" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")" \
               $(((ended - began) / 60)) $(((ended - began) % 60)))")
  say "${results[-1]}"
  [[ $rc == 0 ]] || failed=1
  return "$rc"
}

# This machine's network may intercept TLS (a proxy with its own CA, as here): a machine on the
# same network needs that CA too, whatever it runs. That is the site's, not mailward's, so it is
# the one thing copied in, and only when this machine has local CAs: the certificates under
# /usr/local/share/ca-certificates, and pip told to use the system's store (the pip that
# python3 -m venv brings and upgrades ships its own).
site_trust() {
  local cas=(/usr/local/share/ca-certificates/*.crt)
  [[ -e "${cas[0]}" ]] || return 0
  say "site network: this machine trusts local CAs (${cas[*]##*/}): copied into the rehearsal machine"
  for ca in "${cas[@]}"; do
    podman cp "$ca" "$name:/usr/local/share/ca-certificates/" >>"$log" 2>&1
  done
  run_step site "update-ca-certificates >/dev/null && printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' >/etc/pip.conf"
}

began=$(date +%s)
# The README's steps on a fresh machine: git and make first (a fresh Debian 12 has neither).
if run_step tools "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq git make >/dev/null" \
   && site_trust \
   && run_step clone "git clone -q /srv/mailward.git /root/mailward && git -C /root/mailward log --oneline -1"; then
  for step in $steps; do
    run_step "$step" "cd /root/mailward && make $step" || break
  done
fi
ended=$(date +%s)

{
  echo "make rehearse, started $started, commit $commit, $(nproc) cores"
  printf '  %s\n' "${results[@]}"
  printf '  total      %s  %dm%02ds\n' "$([[ $failed == 0 ]] && echo ok || echo FAILED)" \
    $(((ended - began) / 60)) $(((ended - began) % 60))
} >"$out/last-result.txt"
cat "$out/last-result.txt" | tee -a "$log"
if [[ $failed != 0 ]]; then
  echo "rehearse: FAILED; the end of $log:" >&2
  tail -40 "$log" >&2
  exit 1
fi
