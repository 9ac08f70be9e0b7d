#!/usr/bin/env bash
# Everything mailward needs on a fresh Debian 12 machine (run as root). Idempotent and quick
# when nothing is missing. Ends with a smoke test of podman: a network, a container on it, a
# name resolved over it; a failure names the missing piece.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}

# Containers (podman with runc; netavark needs iptables for every network, aardvark-dns answers
# names on it), the image builder, Python's venv, and the real Postfix/OpenDKIM/OpenDMARC
# checkers that the RedHat-family render test feeds its configs to; iproute2 for the policyd-spf
# test's name server in a network namespace of its own (`ip link set lo up`).
packages=(podman runc conmon netavark aardvark-dns iptables slirp4netns uidmap fuse-overlayfs debootstrap
          python3 python3-venv make git dnsutils openssl iproute2
          postfix opendkim opendkim-tools opendmarc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # Postfix on this machine is only a checker: no mail system configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Pinned Python tools: the controller's runtime (requirements.txt: ansible-core, dnspython,
# cryptography, passlib) and the development tools (requirements-dev.txt: ansible with its bundled
# collections, molecule, linters, pytest, ansible-builder), both installed exactly as
# requirements.lock pins them.
if [[ ! -x .venv/bin/ansible-playbook ]] || ! cmp -s requirements.lock .venv/.requirements.lock; then
  echo "setup: creating .venv from requirements.lock"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  cp requirements.lock .venv/.requirements.lock
fi

# The smoke test (scripts/podman-smoke.sh): a network, a container on it, a name resolved over
# it. Tried again whenever one of its pieces or containers/containers.conf changes (the stamp
# records their versions), or with SMOKE=1.
stamp=.venv/.setup-smoke-ok
state=$( { dpkg-query -W -f='${Package} ${Version} ${Status}\n' podman runc conmon netavark aardvark-dns iptables 2>&1 || true
           cat "$CONTAINERS_CONF"; uname -r; } | sha256sum)
if [[ "${SMOKE:-0}" == 1 || ! -f $stamp || "$(cat "$stamp")" != "$state" ]]; then
  scripts/podman-smoke.sh
  echo "$state" >"$stamp"
fi
echo "setup: ok"
