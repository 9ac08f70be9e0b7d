#!/usr/bin/env python3
"""Benchmark: does a re-run of playbooks/dns.yml cost the same for 1 and for 1,000 domains?

Needs the molecule dns scenario's name server running (`molecule converge -s dns`). For each
size N it adds N zones to that BIND (dNNNNN.bench.test, one zone per domain, same TSIG key),
writes an inventory with one mail host (local connection, never contacted) holding N domains
(two DKIM selectors each, rsa + ed25519, one key of each type reused), runs dns.yml once to
publish, then times re-runs (nothing to change) with the nsupdate and the zonefile backends.

Usage: .venv/bin/python molecule/dns/bench.py [--sizes 1,1000] [--runs 3]
Prints wall times; the target is 1000-domain re-run <= 1.5 x the 1-domain re-run.
A script, not a test: nothing is asserted.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NS = "mailward-dns-ns"
NETWORK = "mailward-molecule-dns"
KEY_NAME = "mailward-test"


def sh(*argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs).stdout


def keys():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def pem(private):
        return private.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), pem(ed25519.Ed25519PrivateKey.generate())


def domain(number):
    name = "d%05d.bench.test" % number
    item = {"name": name, "mx": [{"host": "mx1.bench.test", "priority": 10}, {"host": "mx2.bench.test", "priority": 20}],
            "spf": {"mx": True, "ip4": ["192.0.2.%d" % (number % 250 + 1)], "include": ["_spf.bench.test"], "all": "fail"},
            "dkim": [{"selector": "r2026", "type": "rsa", "bits": 2048}, {"selector": "e2026", "type": "ed25519"}],
            "dmarc": {"p": "reject", "rua": ["mailto:dmarc@reports.bench.test"]}}
    if number % 2 == 0:
        item["mta_sts"] = {"mode": "enforce", "max_age": 604800}
        item["tlsrpt"] = {"rua": ["mailto:tls@reports.bench.test"]}
    return item


def setup_zones(count, secret):
    """Add zones d00000..d<count-1>.bench.test to the ns container (idempotent)."""
    script = r"""
set -e
mkdir -p /var/lib/bind/bench
: > /etc/bind/named.conf.bench.new
i=0
while [ $i -lt %(count)d ]; do
  z=$(printf 'd%%05d.bench.test' $i)
  [ -f /var/lib/bind/bench/$z.zone ] || printf '$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n@ IN NS ns.example.test.\n' > /var/lib/bind/bench/$z.zone
  printf 'zone "%%s" { type primary; file "/var/lib/bind/bench/%%s.zone"; allow-update { key "%(key)s"; }; allow-transfer { key "%(key)s"; }; };\n' $z $z >> /etc/bind/named.conf.bench.new
  i=$((i+1))
done
chown -R bind:bind /var/lib/bind/bench
mv /etc/bind/named.conf.bench.new /etc/bind/named.conf.bench
grep -q named.conf.bench /etc/bind/named.conf || echo 'include "/etc/bind/named.conf.bench";' >> /etc/bind/named.conf
rndc reconfig
""" % {"count": count, "key": KEY_NAME}
    sh("podman", "exec", "-i", NS, "sh", "-c", script)
    time.sleep(2)


def inventory(directory, count, server, secret, rsa_pem, ed_pem, backend):
    """Write <directory>/inventory; outputs go to <directory>/out (never inside the inventory)."""
    out = os.path.join(directory, "out")
    directory = os.path.join(directory, "inventory")
    os.makedirs(os.path.join(directory, "group_vars"), exist_ok=True)
    domains = [domain(n) for n in range(count)]
    pubkeys = []
    for item in domains:
        pubkeys.append({"domain": item["name"], "selector": "r2026", "type": "rsa", "public_key": rsa_pem})
        pubkeys.append({"domain": item["name"], "selector": "e2026", "type": "ed25519", "public_key": ed_pem})
    hosts = {"all": {"children": {"mail": {"hosts": {"mx1.bench.test": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}
    group = {"mail_hostname": "mx1.bench.test", "mail_domains": domains, "opendkim_public_keys": pubkeys,
             "dns_backend": backend, "dns_nsupdate_server": server, "dns_tsig_key_name": KEY_NAME,
             "dns_tsig_secret": secret, "dns_zonefile_dir": os.path.join(out, "zones"),
             "dns_mta_sts_policy_dir": os.path.join(out, "policies"),
             "dns_nsupdate_cache": os.path.join(out, "nsupdate-cache.json")}
    with open(os.path.join(directory, "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(hosts, handle)
    # JSON group_vars: Ansible parses JSON much faster than YAML (1,000 domains + 2,000 PEM keys).
    stale = os.path.join(directory, "group_vars", "mail.yml")
    if os.path.exists(stale):
        os.unlink(stale)
    with open(os.path.join(directory, "group_vars", "mail.json"), "w", encoding="utf-8") as handle:
        json.dump(group, handle)


def run(directory):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_CALLBACKS_ENABLED="")
    start = time.monotonic()
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                          os.path.join(directory, "inventory"),
                          os.path.join(ROOT, "playbooks", "dns.yml")], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=False)
    elapsed = time.monotonic() - start
    if out.returncode != 0:
        sys.exit("dns.yml failed for %s:\n%s\n%s" % (directory, out.stdout[-3000:], out.stderr[-2000:]))
    changed = int(re.search(r"changed=(\d+)", out.stdout.split("PLAY RECAP")[-1]).group(1))
    return elapsed, changed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    server = json.loads(sh("podman", "container", "inspect", NS))[0]["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    ephemeral = glob.glob(os.path.expanduser("~/.ansible/tmp/molecule.*.dns"))[0]
    with open(os.path.join(ephemeral, "tsig.secret"), encoding="utf-8") as handle:
        secret = handle.read().strip()
    setup_zones(max(sizes), secret)
    rsa_pem, ed_pem = keys()
    results = {}
    for backend in ("nsupdate", "zonefile"):
        for size in sizes:
            directory = os.path.join(ROOT, "build", "bench", "dns-%s-%d" % (backend, size))
            inventory(directory, size, server, secret, rsa_pem, ed_pem, backend)
            first, changed_first = run(directory)
            reruns = []
            for _ in range(args.runs):
                elapsed, changed = run(directory)
                if changed:
                    sys.exit("%s %d: re-run changed=%d (not idempotent)" % (backend, size, changed))
                reruns.append(elapsed)
            results[(backend, size)] = min(reruns)
            print("%-8s %5d domains: first run %6.2f s (changed=%d), re-run best of %d %6.2f s (all: %s)"
                  % (backend, size, first, changed_first, args.runs, min(reruns),
                     ", ".join("%.2f" % r for r in reruns)), flush=True)
    for backend in ("nsupdate", "zonefile"):
        if (backend, sizes[0]) in results and (backend, sizes[-1]) in results:
            print("%s: %d-domain re-run / %d-domain re-run = %.2f" % (
                backend, sizes[-1], sizes[0], results[(backend, sizes[-1])] / results[(backend, sizes[0])]))


if __name__ == "__main__":
    main()
