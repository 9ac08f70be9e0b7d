# -*- coding: utf-8 -*-
"""DMARC rollout filters: thin Jinja2 wrappers around module_utils/dmarc_reports.py (the audit
role's report uses them; the reports are read by the dmarc_reports module)."""

from ansible.errors import AnsibleFilterError

from ansible_collections.mailward.mail.plugins.module_utils import dmarc_reports as _dmarc


def dmarc_report_section(result, stamp):
    """The audit report's ``dmarc`` part from a dmarc_reports module result: the summaries, what
    was read and skipped, and the file name of each domain's picture (``dmarc-<domain>-<stamp>.svg``,
    next to the report)."""
    try:
        domains = dict(result["domains"])
        return {"domains": domains, "tlsrpt": dict(result.get("tlsrpt") or {}), "parsed": dict(result.get("parsed") or {}),
                "skipped": list(result.get("skipped") or []),
                "pictures": {domain: "dmarc-%s-%s.svg" % (domain, stamp) for domain in sorted(domains)}}
    except (KeyError, TypeError) as error:
        raise AnsibleFilterError("dmarc_report_section: not a dmarc_reports result (%s)" % error)


def dmarc_daily_svg(summary):
    """The picture of one domain's summary: messages (bars) and DMARC-aligned share (line) per day."""
    try:
        return _dmarc.daily_svg(summary)
    except (KeyError, TypeError) as error:
        raise AnsibleFilterError("dmarc_daily_svg: not a domain summary of dmarc_reports (%s)" % error)


class FilterModule:
    """DMARC rollout filters."""

    def filters(self):
        return {
            "dmarc_report_section": dmarc_report_section,
            "dmarc_daily_svg": dmarc_daily_svg,
        }
