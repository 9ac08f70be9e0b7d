#!/usr/bin/env bash
# make demo-down: remove everything make demo started: the demo containers (by name, and any
# other container labelled mailward=demo), the network mailward-demo, and build/demo (the TSIG
# secret, partner.example's DKIM key, the submission password, the nsupdate cache: they belong
# to the name server and MX that are removed here). make demo afterwards starts from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
network=mailward-demo

names=(mailward-demo-mx mailward-demo-ns mailward-demo-sender)
mapfile -t labelled < <(podman ps -a --filter label=mailward=demo --format '{{.Names}}')
mapfile -t names < <(printf '%s\n' "${names[@]}" "${labelled[@]}" | sort -u)
# -t 0: systemd in the containers would otherwise get 10 s to stop each; nothing in them is kept.
podman rm -f -t 0 --ignore "${names[@]}" >/dev/null
if podman network exists "$network"; then
  podman network rm "$network" >/dev/null
fi
# build/demo-submission-password: where an older make demo kept the password.
rm -rf build/demo build/demo-submission-password

left=()
for name in "${names[@]}"; do
  if podman container exists "$name"; then left+=("container $name"); fi
done
if podman network exists "$network"; then left+=("network $network"); fi
if [[ -e build/demo ]]; then left+=("build/demo"); fi
if ((${#left[@]})); then
  echo "demo-down: could not remove ${left[*]}" >&2
  exit 1
fi
echo "demo removed: containers ${names[*]}, network $network, build/demo (TSIG secret, keys, password)"
