#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: read DMARC aggregate and SMTP TLS reports with parsedmarc and summarise them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dmarc_reports
short_description: Read DMARC aggregate and SMTP TLS reports and judge whether a domain is ready for p=quarantine/reject
description:
  - Reads the reports that arrive at a domain's C(rua) addresses (DMARC aggregate reports, RFC 9990
    and the older RFC 7489 XML; SMTP TLS reports, RFC 8460 JSON) from report files (C(.xml),
    C(.xml.gz), C(.zip), C(.json), C(.json.gz)), e-mail messages carrying them (C(.eml) files), a
    Maildir or an mbox file, and parses them with L(parsedmarc,https://domainaware.github.io/parsedmarc/).
  - Each aggregate report counts once per reporting organisation and report id (a report delivered
    twice, or to two addresses, is not counted twice); SMTP TLS reports likewise.
  - Per DMARC policy domain it returns the sending sources (IP, reverse name, volume), the
    SPF-aligned, DKIM-aligned and DMARC-pass shares, what p=quarantine and p=reject would have done
    (every message that failed DMARC), the volume and aligned share per day, and a readiness
    verdict over the last O(window_days) days; per receiving domain the TLS sessions that
    succeeded and failed. The logic is C(plugins/module_utils/dmarc_reports.py).
  - An RFC 9990 report whose elements carry a namespace prefix (valid under its schema, refused
    by parsedmarc 11.1) is read after rewriting it with the default namespace.
  - Read-only. Runs where parsedmarc is installed, usually the controller (the audit role fetches a
    remote mailbox's messages to the controller first).
options:
  paths:
    description:
      - Where the reports are. Each item is a Maildir (a directory with C(cur) and C(new)), an
        mbox file (a file starting with C(From )), another directory (every file below it, each a
        report file or one e-mail message) or one report file or message.
    type: list
    elements: path
    required: true
  domains:
    description:
      - The domains to summarise. Each one gets a summary (with no messages when no report covers
        it); reports about other domains are left out. Empty for every domain the reports name.
    type: list
    elements: str
    default: []
  window_days:
    description: Days (ending with O(today)) whose messages count for the summaries and the verdict.
    type: int
    default: 14
  threshold:
    description:
      - The share of the window's messages that must pass DMARC (SPF- or DKIM-aligned) for the
        readiness check to pass; below it the check warns and names the failing sources.
    type: float
    default: 0.98
  today:
    description: The last day of the window (YYYY-MM-DD, UTC); empty for today.
    type: str
    default: ""
  reverse_dns:
    description:
      - Look up the reverse name of every source address (parsedmarc's PTR query). Off, the
        sources are named by address only and nothing is asked on the network.
    type: bool
    default: true
  nameservers:
    description: Resolvers for the reverse lookups (addresses); empty for the host's own (resolv.conf).
    type: list
    elements: str
    default: []
  dns_timeout:
    description: Seconds per reverse lookup.
    type: float
    default: 2.0
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
  - parsedmarc (requirements-dmarc.txt; on the host the module runs on, usually the controller)
notes:
  - parsedmarc is an optional dependency of the collection (it pulls in some twenty packages,
    lxml and maxminddb among them). Install it with C(pip install -r requirements-dmarc.txt)
    where this module runs.
  - Reverse names come from the source addresses' PTR records. No IP database or reverse-name
    map is downloaded (parsedmarc's bundled copies are used).
seealso:
  - module: mailward.mail.audit_dns
author: mailward
"""

EXAMPLES = r"""
- name: Judge a domain's rollout from the reports saved in a directory
  mailward.mail.dmarc_reports:
    paths: [/srv/dmarc-reports]
    domains: [example.test]
    window_days: 14
    threshold: 0.98
  delegate_to: localhost
  register: dmarc

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ dmarc.domains['example.test'].verdict }}"
"""

RETURN = r"""
parsed:
  description: How many reports of each kind were read, and how many copies were dropped as duplicates.
  returned: always
  type: dict
  sample: {aggregate_reports: 12, smtp_tls_reports: 2, failure_reports: 0, duplicates: 1}
skipped:
  description: Files or messages that are not reports (path and parsedmarc's reason).
  returned: always
  type: list
  elements: dict
domains:
  description:
    - Per DMARC policy domain, the window's summary. Keys include C(messages), C(spf_aligned),
      C(dkim_aligned), C(aligned), C(failing) (counts), C(spf_aligned_rate), C(dkim_aligned_rate),
      C(aligned_rate) (shares, 0..1, null without messages), C(would_quarantine) and
      C(would_reject) (messages that failed DMARC), C(failing_overridden) (of those, the ones a
      receiver let through for a local policy reason such as forwarding), C(applied) (what the
      receivers did, by disposition), C(policy) (the published policy of the newest report),
      C(sources) (per IP, by volume), C(days) (every day of the window), C(failing_sources),
      C(status) (pass or warn) and C(verdict).
  returned: always
  type: dict
tlsrpt:
  description:
    - Per receiving (policy) domain of the SMTP TLS reports in the window, C(sessions),
      C(successful), C(failed), C(failure_rate), C(failures) (by result type, receiving MX and
      IP), C(reporters), C(status) and C(verdict).
  returned: always
  type: dict
checks:
  description: The audit's checks, C(dmarc.readiness.<domain>) and C(tlsrpt.<domain>) (id, status, category, target, summary, details).
  returned: always
  type: list
  elements: dict
"""

import datetime
import email
import logging
import mailbox
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mailward.mail.plugins.module_utils import dmarc_reports as logic

PARSEDMARC_IMPORT_ERROR = None
try:
    import parsedmarc
    from parsedmarc.config import ParserConfig
except ImportError:
    PARSEDMARC_IMPORT_ERROR = traceback.format_exc()


def parser_config(reverse_dns=True, nameservers=None, dns_timeout=2.0):
    """parsedmarc's options: never download anything; reverse lookups only when asked, through
    the given resolvers or the host's own (parsedmarc's default would be Cloudflare's)."""
    if reverse_dns and not nameservers:
        import dns.resolver  # parsedmarc's own dependency
        nameservers = list(dns.resolver.Resolver().nameservers)
    return ParserConfig(offline=not reverse_dns, always_use_local_files=True, nameservers=nameservers or None,
                        dns_timeout=float(dns_timeout), dns_retries=0)


def _prefixed_fallback(data, config):
    """parsedmarc refused ``data``: read it again when it is (or carries) an aggregate report
    with prefixed element names; None when it is not that."""
    candidates = [data]
    if not data.lstrip()[:1] == b"<" and not data.startswith((b"PK", b"\x1f\x8b")):
        message = email.message_from_bytes(data)
        candidates = [part.get_payload(decode=True) for part in message.walk() if not part.is_multipart()]
    for payload in candidates:
        if not payload:
            continue
        try:
            text = parsedmarc.extract_report(payload)
        except parsedmarc.ParserError:
            continue
        fixed = logic.unprefix_xml(text)
        if fixed:
            return {"report_type": "aggregate", "report": parsedmarc.parse_aggregate_report_xml(fixed, config=config)}
    return None


def parse_one(data, config):
    """One report file or message: parsedmarc's {report_type, report}."""
    try:
        return parsedmarc.parse_report_file(data, config=config)
    except parsedmarc.ParserError:
        fallback = _prefixed_fallback(data, config)
        if fallback is None:
            raise
        return fallback


def _items(path):
    """(label, bytes) of every report file or message under ``path``."""
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "cur")) and os.path.isdir(os.path.join(path, "new")):
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                yield "%s:%s" % (path, key), box.get_bytes(key)
            return
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                for item in _file_items(os.path.join(root, name)):
                    yield item
        return
    if not os.path.exists(path):
        raise IOError("%s does not exist" % path)
    for item in _file_items(path):
        yield item


def _file_items(path):
    """(label, bytes) of one file: each message of an mbox, else the file itself."""
    with open(path, "rb") as handle:
        head = handle.read(5)
    if head == b"From ":
        box = mailbox.mbox(path, create=False)
        for key in box.keys():
            yield "%s:%s" % (path, key), box.get_bytes(key)
        return
    with open(path, "rb") as handle:
        yield path, handle.read()


def collect(paths, config):
    """Every report under ``paths``: (aggregate reports, TLS reports, failure report count, skipped)."""
    aggregate, tls, failures, skipped = [], [], 0, []
    for path in paths:
        for label, data in _items(path):
            try:
                parsed = parse_one(data, config)
            except Exception as error:  # parsedmarc's ParserError, or what it lets through
                skipped.append({"path": label, "error": str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__})
                continue
            if parsed["report_type"] == "aggregate":
                aggregate.append(parsed["report"])
            elif parsed["report_type"] == "smtp_tls":
                tls.append(parsed["report"])
            else:
                failures += 1
    return aggregate, tls, failures, skipped


def run(paths, domains=None, window_days=logic.DEFAULT_WINDOW_DAYS, threshold=logic.DEFAULT_THRESHOLD, today=None,
        config=None):
    """The module's result for these paths (no AnsibleModule needed: the unit tests call it)."""
    aggregate, tls, failures, skipped = collect(paths, config)
    aggregate, dup_aggregate = logic.dedupe(aggregate, logic.aggregate_key)
    tls, dup_tls = logic.dedupe(tls, logic.tls_key)
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    domains = domains or None
    summaries = logic.summarize_aggregate(aggregate, today, window_days, threshold, domains)
    tls_summaries = logic.summarize_tls(tls, today, window_days, domains)
    return {"parsed": {"aggregate_reports": len(aggregate), "smtp_tls_reports": len(tls), "failure_reports": failures,
                       "duplicates": dup_aggregate + dup_tls},
            "skipped": skipped, "domains": summaries, "tlsrpt": tls_summaries,
            "checks": logic.checks(summaries, tls_summaries)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            domains=dict(type="list", elements="str", default=[]),
            window_days=dict(type="int", default=logic.DEFAULT_WINDOW_DAYS),
            threshold=dict(type="float", default=logic.DEFAULT_THRESHOLD),
            today=dict(type="str", default=""),
            reverse_dns=dict(type="bool", default=True),
            nameservers=dict(type="list", elements="str", default=[]),
            dns_timeout=dict(type="float", default=2.0),
        ),
        supports_check_mode=True,
    )
    if PARSEDMARC_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("parsedmarc", reason="to read DMARC and TLS reports")
                         + " (pip install -r requirements-dmarc.txt)", exception=PARSEDMARC_IMPORT_ERROR)
    params = module.params
    if params["window_days"] < 1:
        module.fail_json(msg="window_days must be 1 or more, not %d" % params["window_days"])
    if not 0 < params["threshold"] <= 1:
        module.fail_json(msg="threshold is a share of the messages, above 0 and at most 1, not %s" % params["threshold"])
    today = None
    if params["today"]:
        try:
            today = logic.parse_day(params["today"])
        except ValueError:
            module.fail_json(msg="today must be YYYY-MM-DD, not %r" % params["today"])
    missing = [p for p in params["paths"] if not os.path.exists(p)]
    if missing:
        module.fail_json(msg="report paths not found: %s" % ", ".join(missing))
    logging.getLogger("parsedmarc").setLevel(logging.ERROR)
    config = parser_config(params["reverse_dns"], params["nameservers"], params["dns_timeout"])
    result = run(params["paths"], params["domains"], params["window_days"], params["threshold"], today, config)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
