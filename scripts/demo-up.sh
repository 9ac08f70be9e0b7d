#!/usr/bin/env bash
# Start the demo MX container (systemd as PID 1) on its own podman network.
set -euo pipefail
IMAGE=${MAILWARD_IMAGE:-localhost/mailward-debian12:latest}
podman network exists mailward-demo || podman network create mailward-demo >/dev/null
if ! podman container exists mailward-demo-mx; then
  podman run -d --name mailward-demo-mx --hostname mx.example.test \
    --network mailward-demo --network-alias mx.example.test "$IMAGE" >/dev/null
fi
podman start mailward-demo-mx >/dev/null
# Wait for systemd to finish booting before Ansible talks to the container.
for _ in $(seq 1 30); do
  state=$(podman exec mailward-demo-mx systemctl is-system-running 2>/dev/null || true)
  [[ "$state" == running || "$state" == degraded ]] && exit 0
  sleep 1
done
echo "demo-up: systemd did not come up in mailward-demo-mx" >&2
exit 1
