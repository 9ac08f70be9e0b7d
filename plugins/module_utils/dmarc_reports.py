# -*- coding: utf-8 -*-
"""DMARC rollout with evidence: pure logic over parsed aggregate and SMTP TLS reports.

The reports themselves are read and parsed by parsedmarc (the ``dmarc_reports`` module does that,
on the controller); everything here takes parsedmarc's output dicts and returns data:

* ``dedupe(reports, key)``: one copy per (reporting organisation, report id), as RFC 9990 §2.1
  makes that pair unique (a report delivered twice, or to two rua addresses, counts once);
* ``summarize_aggregate(reports, today, window_days, threshold, domains)``: per DMARC policy domain
  the sending sources (IP, reverse name, volume), SPF-aligned / DKIM-aligned / DMARC-pass shares,
  what p=quarantine and p=reject would have done (every message that failed DMARC), the volume and
  aligned share per day, and the readiness verdict;
* ``summarize_tls(reports, today, window_days, domains)``: RFC 8460 reports per policy domain
  (the receiving domain: ours), successful and failed sessions, failures by result type and MX;
* ``checks(...)``: the audit's ``dmarc.readiness.<domain>`` and ``tlsrpt.<domain>`` checks;
* ``daily_svg(summary)``: the picture of volume and aligned share per day (plain SVG, no
  plotting library); ``markdown(section)``: the report's DMARC part;
* ``unprefix_xml(text)``: an RFC 9990 report whose elements carry a namespace prefix
  (``<d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">``, valid under RFC 9990's schema,
  elementFormDefault qualified) rewritten with the default namespace, which parsedmarc 11.1
  reads; it refuses the prefixed form ("Missing field: 'feedback'").

Why the defaults: 14 days (two weekly cycles: weekly newsletters, Monday-only jobs and a
holiday all show up; receivers send one aggregate report per day) and 0.98 (what is left at
that level is, in practice, forwarding and mailing lists that break both SPF and DKIM:
p=reject hits them whatever the domain does, RFC 7960; a legitimate source that does not sign
or is not in SPF is far above 2 % of a domain's volume, or is named in the warning anyway).
"""

from __future__ import absolute_import, division, print_function

import datetime
import re
from fractions import Fraction
from xml.sax.saxutils import escape

from ansible_collections.mailward.mail.plugins.module_utils.audit import check

__metaclass__ = type

DEFAULT_WINDOW_DAYS = 14
DEFAULT_THRESHOLD = 0.98
RFC9990_NAMESPACE = "urn:ietf:params:xml:ns:dmarc-2.0"
# How many failing sources a check's summary names (all of them are in its details).
NAMED_SOURCES = 5


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


def aggregate_key(report):
    """(reporting organisation, report id) of a parsedmarc aggregate report."""
    meta = report["report_metadata"]
    return (str(meta.get("org_name") or "").lower(), str(meta.get("report_id") or ""))


def tls_key(report):
    """(organization-name, report-id) of a parsedmarc SMTP TLS report."""
    return (str(report.get("organization_name") or "").lower(), str(report.get("report_id") or ""))


def dedupe(reports, key):
    """The reports with each key once (first seen wins) and how many copies were dropped."""
    seen, unique = set(), []
    for report in reports:
        k = key(report)
        if k in seen:
            continue
        seen.add(k)
        unique.append(report)
    return unique, len(reports) - len(unique)


_PREFIXED_ROOT = re.compile(r"<([A-Za-z_][\w.-]*):feedback[\s>]")


def unprefix_xml(text):
    """An aggregate report whose elements carry a namespace prefix, with the prefix removed and its
    namespace made the default one; None when the text is not such a report (no prefixed
    <feedback> root) or carries a DOCTYPE (never expanded here)."""
    match = _PREFIXED_ROOT.search(text)
    if not match or "<!DOCTYPE" in text.upper():
        return None
    prefix = re.escape(match.group(1))
    text = re.sub(r"<(/?)%s:" % prefix, r"<\1", text)
    return re.sub(r"\sxmlns:%s=" % prefix, " xmlns=", text, count=1)


# --------------------------------------------------------------------------------------------
# Windows and shares
# --------------------------------------------------------------------------------------------


def parse_day(value):
    """A date from 'YYYY-MM-DD...' (parsedmarc's '2026-01-01 00:00:00', RFC 8460's
    '2026-01-01T00:00:00Z') or a date."""
    if isinstance(value, datetime.date):
        return value
    return datetime.datetime.strptime(str(value)[:10], "%Y-%m-%d").date()


def window(today, days):
    """(first day, last day) of the window of ``days`` days ending with ``today``."""
    end = parse_day(today)
    if int(days) < 1:
        raise ValueError("the window must be at least one day, not %r" % days)
    return end - datetime.timedelta(days=int(days) - 1), end


def share(part, whole):
    """part / whole rounded to 4 places; None for an empty whole."""
    return round(part / whole, 4) if whole else None


def meets(part, whole, threshold):
    """part / whole >= threshold, exactly (98 of 100 meets 0.98)."""
    return bool(whole) and Fraction(part, whole) >= Fraction(str(threshold))


def percent(value):
    return "n/a" if value is None else ("%.1f%%" % (100 * value))


def _source_label(source):
    name = source.get("reverse_dns")
    return "%s (%s)" % (source["ip"], name) if name else source["ip"]


# --------------------------------------------------------------------------------------------
# Aggregate reports (RFC 9990, RFC 7489)
# --------------------------------------------------------------------------------------------


def _empty_counts():
    return {"messages": 0, "spf_aligned": 0, "dkim_aligned": 0, "aligned": 0, "failing": 0}


def _add(counts, count, alignment):
    counts["messages"] += count
    counts["spf_aligned"] += count if alignment.get("spf") else 0
    counts["dkim_aligned"] += count if alignment.get("dkim") else 0
    counts["aligned"] += count if alignment.get("dmarc") else 0
    counts["failing"] += 0 if alignment.get("dmarc") else count


def _rates(counts):
    whole = counts["messages"]
    return {"spf_aligned_rate": share(counts["spf_aligned"], whole),
            "dkim_aligned_rate": share(counts["dkim_aligned"], whole),
            "aligned_rate": share(counts["aligned"], whole)}


def summarize_aggregate(reports, today, window_days=DEFAULT_WINDOW_DAYS, threshold=DEFAULT_THRESHOLD, domains=None):
    """Per DMARC policy domain (``policy_published.domain``), the rollout evidence of the window.

    ``reports`` are parsedmarc aggregate reports (deduplicated already); a record counts on the
    day its interval begins (parsedmarc splits reports longer than a day into days). ``domains``:
    the domains to summarise (each one appears, with no messages when no report covers it);
    None: every domain the reports name. Returns ``{domain: summary}``.
    """
    first, last = window(today, window_days)
    wanted = None if domains is None else [str(d).lower().rstrip(".") for d in domains]
    acc = {}
    for name in wanted or []:
        acc[name] = None
    for report in reports:
        policy = report.get("policy_published") or {}
        domain = str(policy.get("domain") or "").lower().rstrip(".")
        if wanted is not None and domain not in wanted:
            continue
        acc.setdefault(domain, None)  # a domain whose reports are all older still gets its verdict
        in_window = False
        for record in report.get("records") or []:
            day = parse_day(record.get("interval_begin") or report["report_metadata"]["begin_date"])
            if not first <= day <= last:
                continue
            in_window = True
            item = acc.get(domain) or {"reports": set(), "reporters": set(), "policy": None, "policy_day": None,
                                       "counts": _empty_counts(), "sources": {}, "days": {},
                                       "applied": {}, "overridden": 0}
            acc[domain] = item
            count = int(record.get("count") or 0)
            alignment = record.get("alignment") or {}
            _add(item["counts"], count, alignment)
            _add(item["days"].setdefault(day, _empty_counts()), count, alignment)
            source = record.get("source") or {}
            ip = source.get("ip_address") or "unknown"
            entry = item["sources"].setdefault(ip, {"ip": ip, "reverse_dns": source.get("reverse_dns"),
                                                    "header_from": set(), "counts": _empty_counts()})
            entry["reverse_dns"] = entry["reverse_dns"] or source.get("reverse_dns")
            header_from = (record.get("identifiers") or {}).get("header_from")
            if header_from:
                entry["header_from"].add(header_from)
            _add(entry["counts"], count, alignment)
            evaluated = record.get("policy_evaluated") or {}
            disposition = str(evaluated.get("disposition") or "none")
            item["applied"][disposition] = item["applied"].get(disposition, 0) + count
            if not alignment.get("dmarc") and evaluated.get("policy_override_reasons"):
                item["overridden"] += count
        if in_window:
            item = acc[domain]
            item["reports"].add(aggregate_key(report))
            item["reporters"].add(report["report_metadata"].get("org_name") or "unknown")
            begin = parse_day(report["report_metadata"]["begin_date"])
            if item["policy_day"] is None or begin >= item["policy_day"]:
                item["policy_day"] = begin
                item["policy"] = {k: policy.get(k) for k in ("p", "sp", "np", "pct", "adkim", "aspf", "testing")}
    return {domain: _domain_summary(domain, acc[domain], first, last, window_days, threshold) for domain in sorted(acc)}


def _domain_summary(domain, item, first, last, window_days, threshold):
    item = item or {"reports": set(), "reporters": set(), "policy": None, "counts": _empty_counts(),
                    "sources": {}, "days": {}, "applied": {}, "overridden": 0}
    counts = item["counts"]
    sources = []
    for entry in item["sources"].values():
        row = {"ip": entry["ip"], "reverse_dns": entry["reverse_dns"], "header_from": sorted(entry["header_from"])}
        row.update(entry["counts"])
        row.update(_rates(entry["counts"]))
        sources.append(row)
    sources.sort(key=lambda s: (-s["messages"], s["ip"]))
    days = []
    day = first
    while day <= last:
        c = item["days"].get(day, _empty_counts())
        days.append({"date": day.isoformat(), "messages": c["messages"], "aligned": c["aligned"],
                     "aligned_rate": share(c["aligned"], c["messages"])})
        day += datetime.timedelta(days=1)
    summary = {"domain": domain, "window": {"days": int(window_days), "start": first.isoformat(), "end": last.isoformat()},
               "threshold": float(threshold), "reports": len(item["reports"]), "reporters": sorted(item["reporters"]),
               "policy": item["policy"],
               "would_quarantine": counts["failing"], "would_reject": counts["failing"],
               "failing_overridden": item["overridden"], "applied": dict(sorted(item["applied"].items())),
               "sources": sources, "days": days}
    summary.update(counts)
    summary.update(_rates(counts))
    failing = [s for s in sources if s["failing"]]
    failing.sort(key=lambda s: (-s["failing"], s["ip"]))
    summary["failing_sources"] = [s["ip"] for s in failing]
    summary["status"], summary["verdict"] = _verdict(summary, failing, threshold)
    return summary


def _verdict(summary, failing, threshold):
    span = "%s..%s" % (summary["window"]["start"], summary["window"]["end"])
    if not summary["messages"]:
        return "warn", ("no aggregate report covers %s in %s (%d days): nothing says p=quarantine/reject is safe"
                        % (summary["domain"], span, summary["window"]["days"]))
    head = "%s of %d messages DMARC-aligned in %s (SPF %s, DKIM %s; threshold %s)" % (
        percent(summary["aligned_rate"]), summary["messages"], span, percent(summary["spf_aligned_rate"]),
        percent(summary["dkim_aligned_rate"]), percent(float(threshold)))
    hit = "p=quarantine/reject would have hit %d" % summary["failing"]
    if meets(summary["aligned"], summary["messages"], threshold):
        return "pass", "ready: %s; %s" % (head, hit)
    named = ", ".join("%s: %d of %d failing" % (_source_label(s), s["failing"], s["messages"]) for s in failing[:NAMED_SOURCES])
    more = " and %d more" % (len(failing) - NAMED_SOURCES) if len(failing) > NAMED_SOURCES else ""
    return "warn", "not ready: %s; %s; failing sources: %s%s" % (head, hit, named, more)


# --------------------------------------------------------------------------------------------
# SMTP TLS reports (RFC 8460)
# --------------------------------------------------------------------------------------------


def summarize_tls(reports, today, window_days=DEFAULT_WINDOW_DAYS, domains=None):
    """Per policy domain (the receiving domain the sending MTAs tried to reach): sessions that
    succeeded and failed in the window, the failures by result type, receiving MX and IP, the
    reporters. ``domains`` as for summarize_aggregate, except that a domain without reports is
    left out (TLS-RPT is sent only by senders that support it). Returns ``{domain: summary}``."""
    first, last = window(today, window_days)
    wanted = None if domains is None else [str(d).lower().rstrip(".") for d in domains]
    acc = {}
    for report in reports:
        try:
            day = parse_day(report.get("begin_date"))
        except ValueError:
            continue
        if not first <= day <= last:
            continue
        for policy in report.get("policies") or []:
            domain = str(policy.get("policy_domain") or "").lower().rstrip(".")
            if wanted is not None and domain not in wanted:
                continue
            item = acc.setdefault(domain, {"reports": set(), "reporters": set(), "successful": 0, "failed": 0,
                                           "types": {}, "failures": {}})
            item["reports"].add(tls_key(report))
            item["reporters"].add(report.get("organization_name") or "unknown")
            ok, bad = int(policy.get("successful_session_count") or 0), int(policy.get("failed_session_count") or 0)
            item["successful"] += ok
            item["failed"] += bad
            kind = item["types"].setdefault(policy.get("policy_type") or "unknown", {"successful": 0, "failed": 0})
            kind["successful"] += ok
            kind["failed"] += bad
            for detail in policy.get("failure_details") or []:
                key = (detail.get("result_type") or "unknown", detail.get("receiving_mx_hostname") or "",
                       detail.get("receiving_ip") or "")
                item["failures"][key] = item["failures"].get(key, 0) + int(detail.get("failed_session_count") or 0)
    out = {}
    for domain in sorted(acc):
        item = acc[domain]
        failures = [{"result_type": k[0], "receiving_mx_hostname": k[1] or None, "receiving_ip": k[2] or None, "sessions": n}
                    for k, n in item["failures"].items()]
        failures.sort(key=lambda f: (-f["sessions"], f["result_type"], f["receiving_mx_hostname"] or ""))
        sessions = item["successful"] + item["failed"]
        summary = {"domain": domain, "window": {"days": int(window_days), "start": first.isoformat(), "end": last.isoformat()},
                   "reports": len(item["reports"]), "reporters": sorted(item["reporters"]), "sessions": sessions,
                   "successful": item["successful"], "failed": item["failed"], "failure_rate": share(item["failed"], sessions),
                   "policy_types": dict(sorted(item["types"].items())), "failures": failures}
        span = "%s..%s" % (first.isoformat(), last.isoformat())
        if item["failed"]:
            named = ", ".join("%s%s: %d" % (f["result_type"], " at " + f["receiving_mx_hostname"] if f["receiving_mx_hostname"] else "",
                                           f["sessions"]) for f in failures[:NAMED_SOURCES])
            summary["status"] = "warn"
            summary["verdict"] = "%d of %d TLS sessions to %s failed in %s (%d reports from %s): %s" % (
                item["failed"], sessions, domain, span, summary["reports"], ", ".join(summary["reporters"]),
                named or "no failure details")
        else:
            summary["status"] = "pass"
            summary["verdict"] = "all %d TLS sessions to %s succeeded in %s (%d reports from %s)" % (
                sessions, domain, span, summary["reports"], ", ".join(summary["reporters"]))
        out[domain] = summary
    return out


# --------------------------------------------------------------------------------------------
# Checks, picture, Markdown
# --------------------------------------------------------------------------------------------


def checks(dmarc, tls):
    """``dmarc.readiness.<domain>`` for every aggregate summary, ``tlsrpt.<domain>`` for every TLS one."""
    out = []
    for domain, summary in sorted(dmarc.items()):
        details = {k: summary[k] for k in ("window", "threshold", "messages", "aligned", "failing", "aligned_rate",
                                           "spf_aligned_rate", "dkim_aligned_rate", "failing_sources", "reports", "reporters")}
        details["failing"] = [{"ip": s["ip"], "reverse_dns": s["reverse_dns"], "failing": s["failing"], "messages": s["messages"]}
                              for s in summary["sources"] if s["failing"]]
        out.append(check("dmarc.readiness." + domain, summary["status"], summary["verdict"], category="dmarc",
                         target=domain, details=details))
    for domain, summary in sorted(tls.items()):
        details = {k: summary[k] for k in ("window", "sessions", "successful", "failed", "failure_rate", "failures", "reporters")}
        out.append(check("tlsrpt." + domain, summary["status"], summary["verdict"], category="tlsrpt",
                         target=domain, details=details))
    return out


def daily_svg(summary, width=720, height=260):
    """Bars: messages per day; line: DMARC-aligned share per day; dashed: the threshold."""
    days = summary["days"]
    left, right, top, bottom = 56, 56, 30, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([d["messages"] for d in days] + [1])
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.7, 1.0)
    # The share axis starts at 90 % (lower only when a day was lower, by tenths): the difference
    # between 97 % and 99 % is what matters, and on a 0..100 % axis it would not show.
    rates = [d["aligned_rate"] for d in days if d["aligned_rate"] is not None]
    low = min([0.9] + [int(r * 10) / 10.0 for r in rates])

    def rate_y(rate):
        return top + plot_h - plot_h * (min(max(rate, low), 1.0) - low) / (1.0 - low)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="11">' % (width, height, width, height),
           '<title>%s</title>' % escape("DMARC %s: messages and aligned share per day, %s..%s"
                                        % (summary["domain"], summary["window"]["start"], summary["window"]["end"])),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="13">%s</text>' % (left, escape(
               "%s: %s of %d messages aligned (threshold %s) - %s" % (
                   summary["domain"], percent(summary["aligned_rate"]), summary["messages"],
                   percent(summary["threshold"]), summary["status"]))),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>' % (left, top + plot_h, left + plot_w, top + plot_h)]
    for frac in (0, 0.5, 1):
        y = top + plot_h - frac * plot_h
        out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#36c">%d</text>' % (left - 6, y + 4, round(peak * frac)))
        out.append('<text x="%d" y="%.1f" fill="#c60">%d%%</text>' % (left + plot_w + 6, y + 4, round(100 * (low + frac * (1 - low)))))
    points = []
    for i, d in enumerate(days):
        x = left + i * step + (step - bar) / 2
        h = plot_h * d["messages"] / peak
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#9bd"><title>%s: %d messages, %d aligned</title></rect>'
                   % (x, top + plot_h - h, bar, h, d["date"], d["messages"], d["aligned"]))
        if i % max(1, len(days) // 7) == 0 or i == len(days) - 1:
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x + bar / 2, top + plot_h + 16, d["date"][5:]))
        if d["aligned_rate"] is not None:
            points.append("%.1f,%.1f" % (x + bar / 2, rate_y(d["aligned_rate"])))
    threshold_y = rate_y(float(summary["threshold"]))
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c60" stroke-dasharray="4 3"/>'
               % (left, threshold_y, left + plot_w, threshold_y))
    if points:
        out.append('<polyline fill="none" stroke="#c60" stroke-width="2" points="%s"/>' % " ".join(points))
        out.extend('<circle cx="%s" cy="%s" r="2.5" fill="#c60"/>' % tuple(p.split(",")) for p in points)
    out.append('<text x="%d" y="%d" fill="#36c">bars: messages per day</text>' % (left, height - 8))
    out.append('<text x="%d" y="%d" fill="#c60">line: DMARC-aligned share (dashed: threshold)</text>' % (left + 170, height - 8))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(section):
    """The report's DMARC part: ``section`` is ``{domains: {domain: summary}, tlsrpt: {...},
    pictures: {domain: file name}, sources: [...], parsed: {...}, skipped: [...]}``."""
    domains = section.get("domains") or {}
    tls = section.get("tlsrpt") or {}
    pictures = section.get("pictures") or {}
    lines = ["## DMARC rollout (aggregate reports)", ""]
    parsed = section.get("parsed") or {}
    if parsed:
        lines.append("- read: %s" % ", ".join("%s %s" % (v, k.replace("_", " ")) for k, v in sorted(parsed.items())))
    for item in section.get("skipped") or []:
        lines.append("- not a report: `%s` (%s)" % (_cell(item.get("path")), _cell(item.get("error"))))
    if section.get("error"):
        lines.append("- error: %s" % _cell(section["error"]))
    lines.append("")
    if domains:
        lines.append("| domain | p now | messages | SPF aligned | DKIM aligned | DMARC pass | p=quarantine/reject would hit | readiness |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for domain, s in sorted(domains.items()):
            lines.append("| %s | %s | %d | %s | %s | %s | %d | %s |" % (
                domain, (s.get("policy") or {}).get("p") or "?", s["messages"], percent(s["spf_aligned_rate"]),
                percent(s["dkim_aligned_rate"]), percent(s["aligned_rate"]), s["failing"], s["status"]))
        lines.append("")
    for domain, s in sorted(domains.items()):
        lines.append("### %s" % domain)
        lines.append("")
        lines.append("%s." % _cell(s["verdict"]))
        lines.append("")
        if domain in pictures:
            lines.append("![%s: messages and DMARC-aligned share per day](%s)" % (domain, pictures[domain]))
            lines.append("")
        if s["sources"]:
            lines.append("| source | reverse name | messages | SPF aligned | DKIM aligned | DMARC pass | failing |")
            lines.append("|---|---|---|---|---|---|---|")
            for src in s["sources"]:
                lines.append("| %s | %s | %d | %s | %s | %s | %d |" % (
                    src["ip"], _cell(src["reverse_dns"] or "-"), src["messages"], percent(src["spf_aligned_rate"]),
                    percent(src["dkim_aligned_rate"]), percent(src["aligned_rate"]), src["failing"]))
            lines.append("")
    if tls:
        lines.append("## SMTP TLS reports (RFC 8460)")
        lines.append("")
        lines.append("| receiving domain | sessions | failed | failures (result type at MX: sessions) | status |")
        lines.append("|---|---|---|---|---|")
        for domain, s in sorted(tls.items()):
            failures = ", ".join("%s%s: %d" % (f["result_type"], " at " + f["receiving_mx_hostname"] if f["receiving_mx_hostname"] else "",
                                               f["sessions"]) for f in s["failures"]) or "-"
            lines.append("| %s | %d | %d | %s | %s |" % (domain, s["sessions"], s["failed"], _cell(failures), s["status"]))
        lines.append("")
    return lines
