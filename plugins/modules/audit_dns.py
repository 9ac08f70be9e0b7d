#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: ask DNS what is published and judge it against the generated records."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: audit_dns
short_description: Compare published DNS records with what mailward generates, and check their validity
description:
  - Runs on the controller (dnspython). The expected records come from the
    P(mailward.mail.mail_domains_records#filter) filter (the same function the dns role publishes
    with); this module only asks the resolver and hands the answers to the pure checks of
    C(plugins/module_utils/audit.py).
  - Read-only; every answer is cached for the run, so a name asked twice costs one query.
options:
  records:
    description: The output of P(mailward.mail.mail_domains_records#filter) (name, type, value, kind, domain).
    type: list
    elements: dict
    required: true
  domains:
    description: The normalized mail domains (mail_domains_normalized), for selectors without a key.
    type: list
    elements: dict
    default: []
  host_keys:
    description: Mapping of host name to that host's C(opendkim_public_keys), as read on each mail host.
    type: dict
    default: {}
  kinds:
    description: Record kinds to check (the kinds of P(mailward.mail.mail_domains_records#filter)); empty for all.
    type: list
    elements: str
    default: []
  server:
    description: Resolver to ask (address or name); empty for the system resolver.
    type: str
    default: ""
  port:
    description: Port of O(server).
    type: int
    default: 53
  timeout:
    description: Seconds per query.
    type: float
    default: 5
  spf_deadline:
    description:
      - Seconds one SPF evaluation (the walk through include/redirect of one domain) may take. When
        it has passed, no further question is asked and the domain's dns.spf_limits check fails as
        cut short. The walk also stops, as receivers do, at the 11th DNS-querying term, the 3rd
        void lookup and an mx term with more than 10 hosts (RFC 7208 section 4.6.4), so it asks at
        most 211 questions. A question already asked may still take up to O(timeout).
    type: float
    default: 20
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - dnspython (on the host the module runs on, usually the controller)
  - cryptography (DKIM key size and match checks)
seealso:
  - plugin: mailward.mail.mail_domains_records
    plugin_type: filter
  - module: mailward.mail.smtp_probe
author: mailward
"""

EXAMPLES = r"""
- name: Ask DNS and judge the answers (as the audit role does)
  mailward.mail.audit_dns:
    records: "{{ mail_domains_normalized | mailward.mail.mail_domains_records(opendkim_public_keys) }}"
    domains: "{{ mail_domains_normalized }}"
    host_keys: "{{ {inventory_hostname: opendkim_public_keys} }}"
    kinds: [mx, spf, dkim, dmarc]
    server: 192.0.2.53
  delegate_to: localhost
  register: audit_dns_result

- name: Show the failed checks
  ansible.builtin.debug:
    msg: "{{ audit_dns_result.checks | selectattr('status', 'equalto', 'fail') | list }}"
"""

RETURN = r"""
checks:
  description: One dict per check.
  type: list
  elements: dict
  returned: always
  contains:
    id:
      description: Check identifier, C(dns.<kind>.<domain>) (C(dns.dkim.<selector>.<domain>) for DKIM).
      type: str
    status:
      description: C(pass), C(warn) or C(fail).
      type: str
    category:
      description: Check family (C(dns)).
      type: str
    target:
      description: The domain or name checked.
      type: str
    summary:
      description: One line for the report.
      type: str
    details:
      description: What was expected and what was found.
      type: raw
  sample:
    - id: dns.mx.example.test
      status: pass
      category: dns
      target: example.test
      summary: MX published as generated
      details: {}
queries:
  description: Number of distinct DNS questions asked.
  type: int
  returned: always
  sample: 42
seconds:
  description: Wall-clock time of the run.
  type: float
  returned: always
  sample: 0.53
answers:
  description: Every answer of the run, keyed by C(<name> <type>) (name lower case, no trailing dot), with rcode, answers and, on errors, error.
  type: dict
  returned: always
  sample: {"example.test MX": {"rcode": "NOERROR", "answers": ["10 mx.example.test."]}}
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
