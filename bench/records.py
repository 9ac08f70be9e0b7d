#!/usr/bin/env python3
"""Benchmark: mail_domains_normalize + mail_domains_records over synthetic domains.

Builds N synthetic mail domains (default 10,000; two DKIM selectors each, rsa and ed25519,
with one pre-generated key of each type reused), then times on the controller:
  normalize  mail_domains_normalize (validation, every record generated once as proof)
  records    mail_domains_records   (the list the dns role publishes and the audit checks)
  chunks     txt_chunks of every TXT value (what the dns role does before nsupdate)
Prints wall time in total and per 1,000 domains and writes build/bench/records.json.

Usage: .venv/bin/python bench/records.py [--domains N] [--output PATH]
This is a script, not a test: nothing is asserted.
"""

import argparse
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))  # the collection mailward.mail, by package name

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records  # noqa: E402
from ansible_collections.mailward.mail.plugins.module_utils.records import txt_chunks  # noqa: E402


def make_keys():
    """One RSA-2048 and one Ed25519 public key (PEM), generated once and reused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def pem(private):
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    return {"rsa": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ed25519": pem(ed25519.Ed25519PrivateKey.generate())}


def make_domain(number):
    """A synthetic mail_domains item; the optional parts vary with ``number``."""
    name = "d%05d.bench%02d.test" % (number, number % 100)
    item = {
        "name": name,
        "mx": [{"host": "mx1.bench.test", "priority": 10},
               {"host": "mx2.bench.test", "priority": 20}],
        "spf": {"mx": True, "ip4": ["192.0.2.%d" % (number % 250 + 1), "198.51.100.0/24"],
                "ip6": ["2001:db8:%x::/48" % (number % 65536)],
                "include": ["_spf.provider%d.example" % (number % 7)], "all": "fail"},
        "dkim": [{"selector": "mw2026r", "type": "rsa", "bits": 2048},
                 {"selector": "mw2026e", "type": "ed25519"}],
        "dmarc": {"p": "reject", "adkim": "s", "aspf": "s",
                  "rua": ["mailto:dmarc@%s" % name] + (["mailto:agg@reports.example"]
                                                       if number % 3 == 0 else [])},
    }
    if number % 2 == 0:
        item["mta_sts"] = {"mode": "enforce", "max_age": 604800}
        item["tlsrpt"] = {"rua": ["mailto:tlsrpt@%s" % name]}
    if number % 5 == 0:
        item["tlsa"] = True
    return item


def public_keys_for(domains, keys):
    """opendkim_public_keys as the opendkim role would export it."""
    return [{"domain": item["name"], "selector": sel["selector"], "type": sel["type"],
             "public_key": keys[sel["type"]]} for item in domains for sel in item["dkim"]]


def timed(function, *args, **kwargs):
    """(result, seconds of wall time)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main():
    """Run the benchmark once and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=10000)
    parser.add_argument("--output", default=os.path.join(ROOT, "build", "bench", "records.json"))
    args = parser.parse_args()

    keys = make_keys()
    domains = [make_domain(number) for number in range(args.domains)]
    public_keys = public_keys_for(domains, keys)

    normalized, t_normalize = timed(mail_domains_normalize, domains, "bench-host", "mx1.bench.test")
    records, t_records = timed(mail_domains_records, normalized, public_keys=public_keys)
    txt = [record["value"] for record in records if record["type"] == "TXT"]
    chunks, t_chunks = timed(lambda values: [txt_chunks(value) for value in values], txt)

    total = t_normalize + t_records + t_chunks
    per_k = 1000.0 / args.domains
    result = {
        "domains": args.domains,
        "records": len(records),
        "txt_records": len(txt),
        "txt_strings": sum(len(c) for c in chunks),
        "seconds": {"normalize": round(t_normalize, 4), "records": round(t_records, 4),
                    "txt_chunks": round(t_chunks, 4), "total": round(total, 4)},
        "seconds_per_1000_domains": {"normalize": round(t_normalize * per_k, 4),
                                     "records": round(t_records * per_k, 4),
                                     "txt_chunks": round(t_chunks * per_k, 4),
                                     "total": round(total * per_k, 4)},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")

    print("%d domains -> %d records (%d TXT, %d strings)"
          % (args.domains, len(records), len(txt), result["txt_strings"]))
    for phase in ("normalize", "records", "txt_chunks", "total"):
        print("  %-10s %8.3f s total  %7.3f s per 1,000 domains"
              % (phase, result["seconds"][phase], result["seconds_per_1000_domains"][phase]))
    print("written: %s" % os.path.relpath(args.output, os.getcwd()))


if __name__ == "__main__":
    main()
