#!/usr/bin/env bash
# make demo, first half: the demo world around the MX (scripts/demo-world.yml): the podman
# network mailward-demo, the containers mailward-demo-ns (BIND 9), mailward-demo-mx and
# mailward-demo-sender, the TSIG secret and partner.example's records. make demo then converges
# the MX with site.yml, which publishes example.test into the name server.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same environment as make's, when run by hand.
export PATH="$PWD/.venv/bin:$PATH"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$PWD/ansible.cfg}
exec ansible-playbook -i inventory/demo scripts/demo-world.yml
