# -*- coding: utf-8 -*-
"""audit role filters: thin Jinja2 wrappers around module_utils/audit.py.

The pure logic lives in module_utils (so the audit_dns module and these filters share it). The
hosts' data are merged with the dns role's own ``dns_merge_hosts`` (module_utils/dns_plan.py), so
the audit checks exactly the domains, keys and MX hosts the dns role publishes.
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mailward.mail.plugins.module_utils import audit as _audit
from ansible_collections.mailward.mail.plugins.module_utils.dns_plan import dns_merge_hosts
from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError
from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list


def audit_merge_hosts(hosts, hostvars):
    """dns_merge_hosts, as the dns role merges; a conflict comes back as ``{error: text}`` instead of raising.

    Like the dns role it takes each host's DKIM keys only for the selectors that host holds
    (``dkim_key_list``).
    """
    try:
        return dns_merge_hosts(hosts, hostvars, dkim_key_list)
    except MailwardError as error:
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


def audit_dkim_lifecycle_checks(host_keys, now, max_age_days=_audit.DKIM_MAX_KEY_AGE_DAYS, ttl=3600):
    """dkim_lifecycle_checks (key age, early activation) of the hosts' opendkim_public_keys."""
    return _audit.dkim_lifecycle_checks(host_keys, float(now), int(max_age_days), float(ttl))


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
            "audit_dkim_lifecycle_checks": audit_dkim_lifecycle_checks,
            "audit_check": audit_check,
            "audit_report": audit_report,
            "audit_markdown": audit_markdown,
        }
