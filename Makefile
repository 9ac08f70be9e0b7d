# mailward: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := $(CURDIR)/.venv/bin
export PATH := $(VENV):$(PATH)
export CONTAINERS_CONF := $(CURDIR)/containers/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

# Opt-in, never required: `make mitogen` once, then MITOGEN=1 on any target that runs Ansible.
ifeq ($(MITOGEN),1)
export ANSIBLE_STRATEGY := mitogen_linear
export ANSIBLE_STRATEGY_PLUGINS := $(shell $(VENV)/python -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")' 2>/dev/null || echo "mitogen-not-installed:run-make-mitogen")
endif

.PHONY: minimal-env setup mitogen image demo demo-down audit demo-mail rehearse checker-images el-checkers test lint pytest molecule molecule-dns molecule-e2e molecule-audit bench bench-quick

setup:            ## Debian packages + pinned Python tools in .venv
	scripts/setup.sh

mitogen: setup    ## Opt-in: Mitogen in .venv (faster runs with MITOGEN=1; never required)
	pip install -q -r requirements-mitogen.txt
	@echo "mitogen installed: use MITOGEN=1 make demo, or see README.md (Faster runs)"

image: setup      ## The Debian 12 systemd base image (built locally, once)
	scripts/build-image.sh

demo: image       ## The demo world: name server, MX converged by site.yml (records published by nsupdate), a sender
	scripts/demo-up.sh
	ansible-playbook -i inventory/demo site.yml

demo-down:        ## Remove everything make demo started: containers, network, build/demo (TSIG secret, keys)
	scripts/demo-down.sh

audit: setup      ## playbooks/audit.yml against the demo: DNS asked at its name server, SMTP probed from here
	ansible-playbook -i inventory/demo playbooks/audit.yml

demo-mail: setup  ## The tour: a real message in (spf/dkim/dmarc pass), a signed one out, two forgeries refused
	python scripts/demo-mail.py

rehearse: setup   ## The README's commands on a brand-new Debian 12 (debootstrap) in a privileged container
	scripts/rehearse.sh

test: image checker-images lint pytest minimal-env molecule molecule-dns molecule-e2e molecule-audit  ## Every test
	@echo "make test: all stages passed"

checker-images: setup  ## Debian 11/12 roots with the daemon versions EL 9/10 ship, for the EL checkers (built once)
	scripts/build-checker-images.sh

el-checkers: checker-images  ## The EL-rendered configs through those versions' own checkers (part of make pytest)
	pytest -q tests/redhat

lint: setup
	yamllint --strict .
	ansible-lint --profile production

pytest: setup     ## Filter unit tests, inventory-check playbook tests, RedHat-family render check
	pytest -q tests

minimal-env: setup  ## The declared dependencies alone (ansible-core, requirements.txt, collections/requirements.yml, the built collection) run --syntax-check and the RedHat render
	scripts/minimal-env.sh

molecule: image
	molecule test -s default

molecule-dns: image
	molecule test -s dns

molecule-e2e: image  ## ns + mx + two sending MTAs: real mail accepted, signed, rejected; audit; fault drills
	molecule test -s e2e

molecule-audit: image  ## playbooks/audit.yml against ns + mx: passes, then fails naming each tampering
	molecule test -s audit

bench: image      ## Figures, not pass/fail: records, convergence, mail throughput (build/bench/*.json, *.png; ratios in build/bench/summary.json)
	python bench/records.py
	python bench/converge.py
	python bench/throughput/run.py --experiments --ablation
	python bench/throughput/run.py --tls --configs plain,tutorial,mailward,rspamd --out build/bench/tls
	python bench/throughput/run.py --signed --configs plain,dkim,tutorial,mailward,rspamd --out build/bench/signed

bench-quick: image  ## The same, shorter (fewer domains/hosts, one repetition, 4 s runs)
	python bench/records.py
	python bench/converge.py --quick
	python bench/throughput/run.py --quick --experiments --ablation
	python bench/throughput/run.py --quick --tls --configs plain,tutorial,mailward,rspamd --out build/bench/tls
	python bench/throughput/run.py --quick --signed --configs plain,dkim,tutorial,mailward,rspamd --out build/bench/signed
