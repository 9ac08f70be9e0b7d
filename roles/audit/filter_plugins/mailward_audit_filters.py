# -*- coding: utf-8 -*-
"""audit role filters: thin Jinja2 wrappers around roles/audit/module_utils/mailward_audit.py.

The pure logic lives in module_utils (so the audit_dns module and these filters share it); this
file loads it by path (Ansible does not put a role's module_utils on sys.path for filters). The
hosts' data are merged with the dns role's own ``dns_merge_hosts`` (roles/dns/filter_plugins), so
the audit checks exactly the domains, keys and MX hosts the dns role publishes.
"""

import importlib.util
import os

from ansible.errors import AnsibleFilterError
from jinja2 import pass_environment

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, *parts):
    path = os.path.normpath(os.path.join(_HERE, *parts))
    if not os.path.isfile(path):
        raise AnsibleFilterError("audit role: %s not found (the audit role needs its module_utils and "
                                 "the dns role beside it)" % path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_audit = _load("_mailward_audit_logic", "..", "module_utils", "mailward_audit.py")
_dns = None


def _dns_module():
    global _dns  # pylint: disable=global-statement
    if _dns is None:
        _dns = _load("_mailward_dns_for_audit", "..", "..", "dns", "filter_plugins", "mailward_dns.py")
    return _dns


@pass_environment
def audit_merge_hosts(environment, hosts, hostvars):
    """dns_merge_hosts of the dns role; a conflict comes back as ``{error: text}`` instead of raising.

    Like the dns role's filter it takes each host's DKIM keys only for the selectors that host
    holds (``dkim_key_list``, found by name in the template environment).
    """
    try:
        return _dns_module().dns_merge_hosts_filter(environment, hosts, hostvars)
    except AnsibleFilterError as error:
        return {"domains": [], "public_keys": [], "mx_hosts": [], "notes": [], "error": str(error)}


def audit_kinds(manage_types):
    """dns_manage_types names (MX, SPF, DKIM, ...) -> mail_domains_records kinds."""
    kinds = []
    for name in manage_types or []:
        if name not in _audit.TYPE_KINDS:
            raise AnsibleFilterError("audit_dns_types: unknown %r (allowed: %s)" % (name, ", ".join(_audit.TYPE_KINDS)))
        kinds.extend(_audit.TYPE_KINDS[name])
    return kinds


def audit_relay_probes(domains, mx_name, foreign="other.test", local="user"):
    """The relay probes for one host: the foreign RCPT once, the routing tricks once per domain."""
    probes, seen = [], set()
    for domain in domains or []:
        name = domain["name"] if isinstance(domain, dict) else domain
        for probe, rcpt in _audit.relay_recipients(name, mx_name, foreign, local).items():
            if rcpt in seen:
                continue
            seen.add(rcpt)
            probes.append({"name": probe, "domain": name, "rcpt": rcpt})
    return probes


def audit_smtp_checks(probe, host, mx_name, require_trusted_cert=False, cert_min_days=21, tlsa=None,
                      mynetworks=None):
    """smtp_checks of one smtp_probe result."""
    return _audit.smtp_checks(probe, host, mx_name, require_trusted_cert=bool(require_trusted_cert),
                              cert_min_days=int(cert_min_days), tlsa=tlsa, mynetworks=mynetworks)


def audit_drift_checks(host, live_main, candidate_main, live_master=None, candidate_master=None, warnings=None):
    """drift_checks of the postconf outputs."""
    return _audit.drift_checks(host, live_main, candidate_main, live_master, candidate_master, warnings)


def audit_drift_from_output(host, stdout):
    """drift_checks from the drift task's output: sections ``@@@<name>`` (live-n, candidate-n,
    live-M, candidate-M, candidate-warnings)."""
    sections = {}
    for chunk in str(stdout).split("@@@")[1:]:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body
    missing = [k for k in ("live-n", "candidate-n", "live-M", "candidate-M") if k not in sections]
    if missing:
        raise AnsibleFilterError("audit_drift_from_output: sections missing: %s" % ", ".join(missing))
    warnings = [line for line in sections.get("candidate-warnings", "").splitlines() if line.strip()]
    return _audit.drift_checks(host, sections["live-n"], sections["candidate-n"], sections["live-M"],
                               sections["candidate-M"], warnings)


def audit_check(check_id, status, summary, details=None):
    """One check made in the playbook (an unreachable host, a failed task...)."""
    return _audit.check(check_id, status, summary, details=details)


def audit_report(checks, meta=None):
    """The aggregated report."""
    try:
        return _audit.aggregate(list(checks), meta)
    except ValueError as error:
        raise AnsibleFilterError("audit_report: %s" % error)


def audit_markdown(report):
    """The Markdown page of a report."""
    return _audit.render_markdown(report)


class FilterModule:
    """audit role filters."""

    def filters(self):
        return {
            "audit_merge_hosts": audit_merge_hosts,
            "audit_kinds": audit_kinds,
            "audit_relay_probes": audit_relay_probes,
            "audit_smtp_checks": audit_smtp_checks,
            "audit_drift_checks": audit_drift_checks,
            "audit_drift_from_output": audit_drift_from_output,
            "audit_check": audit_check,
            "audit_report": audit_report,
            "audit_markdown": audit_markdown,
        }
