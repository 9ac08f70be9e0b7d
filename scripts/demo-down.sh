#!/usr/bin/env bash
set -euo pipefail
podman rm -f mailward-demo-mx >/dev/null 2>&1 || true
podman network rm mailward-demo >/dev/null 2>&1 || true
echo "demo removed"
