#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: ask DNS what is published and judge it against the generated records."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: audit_dns
short_description: Compare published DNS records with what mailward generates, and check their validity
description:
  - Runs on the controller (dnspython). The expected records come from the mail_domains_records
    filter (the same function the dns role publishes with); this module only asks the resolver
    and hands the answers to the pure checks of module_utils/audit.py.
  - Read-only; every answer is cached for the run, so a name asked twice costs one query.
options:
  records: {description: mail_domains_records output (name, type, value, kind, domain)., type: list, elements: dict, required: true}
  domains: {description: The normalized mail domains (for selectors without a key)., type: list, elements: dict, default: []}
  host_keys: {description: "{host: opendkim_public_keys} as read on each mail host.", type: dict, default: {}}
  kinds: {description: Record kinds to check (mail_domains_records kinds); empty for all., type: list, elements: str, default: []}
  server: {description: Resolver to ask (address or name); empty for the system resolver., type: str, default: ""}
  port: {description: Its port., type: int, default: 53}
  timeout: {description: Seconds per query., type: float, default: 5}
  spf_deadline:
    description:
      - Seconds one SPF evaluation (the walk through include/redirect of one domain) may take. When
        it has passed, no further question is asked and the domain's dns.spf_limits check fails as
        cut short. The walk also stops, as receivers do, at the 11th DNS-querying term, the 3rd
        void lookup and an mx term with more than 10 hosts (RFC 7208 section 4.6.4), so it asks at
        most 211 questions. A question already asked may still take up to C(timeout).
    type: float
    default: 20
author: mailward
"""

RETURN = r"""
checks:
  description: One dict per check (id, status, category, target, summary, details).
  type: list
  returned: always
queries:
  description: Number of distinct DNS questions asked.
  type: int
  returned: always
"""

import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.mailward.mail.plugins.module_utils.audit import SPF_DEADLINE, dns_checks

try:
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover
    HAS_DNSPYTHON = False


def _format(rdata):
    kind = rdata.rdtype
    if kind == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if kind == dns.rdatatype.MX:
        return "%d %s" % (rdata.preference, rdata.exchange.to_text())
    if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return rdata.address
    return rdata.to_text()


def make_resolver(server, port, timeout):
    """A cached resolver callable (see module_utils/audit.py) and its cache."""
    resolver = dns.resolver.Resolver(configure=not server)
    if server:
        try:
            address = socket.getaddrinfo(server, None)[0][4][0]
        except socket.gaierror as error:
            raise ValueError("audit DNS server %s: %s" % (server, error))
        resolver.nameservers = [address]
        resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    cache = {}

    def resolve(name, rtype):
        key = (name.lower().rstrip("."), rtype.upper())
        if key in cache:
            return cache[key]
        qname = key[0] + "."
        try:
            answer = resolver.resolve(qname, key[1], raise_on_no_answer=False, search=False)
            rrset = answer.rrset
            result = {"rcode": "NOERROR", "answers": [_format(r) for r in rrset] if rrset is not None else []}
        except dns.resolver.NXDOMAIN:
            result = {"rcode": "NXDOMAIN", "answers": []}
        except dns.resolver.NoNameservers as error:
            text = str(error)
            rcode = "REFUSED" if "REFUSED" in text else "SERVFAIL"
            result = {"rcode": rcode, "answers": [], "error": text[:300]}
        except dns.exception.Timeout as error:
            result = {"rcode": "TIMEOUT", "answers": [], "error": str(error)[:300]}
        except dns.exception.DNSException as error:
            result = {"rcode": "ERROR", "answers": [], "error": "%s: %s" % (type(error).__name__, error)}
        cache[key] = result
        return result

    return resolve, cache


def main():
    module = AnsibleModule(
        argument_spec=dict(
            records=dict(type="list", elements="dict", required=True),
            domains=dict(type="list", elements="dict", default=[]),
            host_keys=dict(type="dict", default={}),
            kinds=dict(type="list", elements="str", default=[]),
            server=dict(type="str", default=""),
            port=dict(type="int", default=53),
            timeout=dict(type="float", default=5),
            spf_deadline=dict(type="float", default=SPF_DEADLINE),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"))
    started = time.monotonic()
    try:
        resolve, cache = make_resolver(module.params["server"], module.params["port"], module.params["timeout"])
    except ValueError as error:
        module.fail_json(msg=str(error))
    checks = dns_checks(module.params["records"], module.params["domains"], module.params["host_keys"],
                        resolve, kinds=module.params["kinds"] or None, spf_deadline=module.params["spf_deadline"])
    module.exit_json(changed=False, checks=checks, queries=len(cache),
                     seconds=round(time.monotonic() - started, 2),
                     answers={"%s %s" % key: value for key, value in sorted(cache.items())})


if __name__ == "__main__":
    main()
