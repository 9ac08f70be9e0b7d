"""Issue 17 item 3: DMARC rollout with evidence, from aggregate reports in the real schemas.

The fixtures (tests/unit/fixtures/dmarc/reports, written by make_fixtures.py there) are RFC 9990
reports (default namespace, and one with prefixed element names), RFC 7489 reports, as plain
XML, gzip, zip and e-mail messages carrying gzip/zip attachments, a duplicate delivery, a report
outside the window, two RFC 8460 TLS reports and a file that is no report. They are read by
parsedmarc through the dmarc_reports module's own functions, and the summaries, the readiness
verdicts and the report's table and picture are asserted exactly.
"""
import copy
import mailbox
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

parsedmarc = pytest.importorskip("parsedmarc")  # requirements-dmarc.txt (in requirements-dev.txt)

from ansible_collections.mailward.mail.plugins.module_utils import audit  # noqa: E402
from ansible_collections.mailward.mail.plugins.module_utils import dmarc_reports as logic  # noqa: E402
from ansible_collections.mailward.mail.plugins.modules import dmarc_reports as module  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTS = os.path.join(HERE, "fixtures", "dmarc", "reports")
TODAY = "2026-01-14"
PREFIXED = os.path.join(REPORTS, "prefixed.example!example.test!1767830400!1767916799.xml")


@pytest.fixture(scope="module")
def config():
    return module.parser_config(reverse_dns=False)


@pytest.fixture(scope="module")
def result(config):
    return module.run([REPORTS], today=TODAY, config=config)


def table(summary):
    return {k: summary[k] for k in ("messages", "spf_aligned", "dkim_aligned", "aligned", "failing", "spf_aligned_rate",
                                    "dkim_aligned_rate", "aligned_rate", "would_quarantine", "would_reject", "reports",
                                    "status", "failing_sources")}


def test_every_format_is_read_and_a_duplicate_counts_once(result):
    # 8 aggregate reports in 7 files + 1 message (the 6th report arrives twice), 2 TLS reports
    assert result["parsed"] == {"aggregate_reports": 7, "smtp_tls_reports": 2, "failure_reports": 0, "duplicates": 1}
    assert [(os.path.basename(s["path"]), s["error"].split(" (")[0]) for s in result["skipped"]] == [
        ("README.txt", "Not a recognized report format")]


@pytest.mark.parametrize("name, kind, namespace", [
    ("receiver.example!example.test!1767571200!1767657599.xml", "aggregate", logic.RFC9990_NAMESPACE),
    ("bigmail.example!example.test!1767657600!1767743999.xml.gz", "aggregate", None),
    ("other.example!example.test!1767744000!1767830399.zip", "aggregate", None),
    ("report-rx-20260109.eml", "aggregate", logic.RFC9990_NAMESPACE),
    ("report-bm-5551212-again.eml", "aggregate", None),
    ("tlsrpt-bigmail.example-2026-01-11.json.gz", "smtp_tls", None),
    ("tlsrpt-other.example-2026-01-12.json", "smtp_tls", None),
])
def test_each_fixture_in_its_schema(config, name, kind, namespace):
    with open(os.path.join(REPORTS, name), "rb") as handle:
        parsed = module.parse_one(handle.read(), config)
    assert parsed["report_type"] == kind
    if kind == "aggregate":
        assert parsed["report"]["xml_namespace"] == namespace
        if namespace:  # RFC 9990's own elements came through
            assert parsed["report"]["report_metadata"]["generator"] == "mailward fixtures 1.0"
            assert parsed["report"]["policy_published"]["np"] == "reject"


def test_parsedmarc_refuses_prefixed_rfc9990_elements_and_the_module_reads_them(config):
    """RFC 9990's schema qualifies its elements (elementFormDefault), so <d:feedback xmlns:d=...>
    is a valid report; parsedmarc 11.1 looks for a 'feedback' key and refuses it. When this test
    fails at the first assertion, parsedmarc reads it now and the fallback can go."""
    with open(PREFIXED, "rb") as handle:
        data = handle.read()
    with pytest.raises(parsedmarc.ParserError, match="Missing field: 'feedback'"):
        parsedmarc.parse_report_file(data, config=config)
    parsed = module.parse_one(data, config)
    assert parsed["report"]["xml_namespace"] == logic.RFC9990_NAMESPACE
    assert parsed["report"]["report_metadata"]["report_id"] == "px-1"
    assert [(r["source"]["ip_address"], r["count"]) for r in parsed["report"]["records"]] == [("192.0.2.25", 100)]


def test_unprefix_xml():
    text = '<?xml version="1.0"?>\n<d:feedback xmlns:d="urn:x"><d:a>1</d:a></d:feedback>'
    assert logic.unprefix_xml(text) == '<?xml version="1.0"?>\n<feedback xmlns="urn:x"><a>1</a></feedback>'
    assert logic.unprefix_xml('<feedback xmlns="urn:x"/>') is None
    assert logic.unprefix_xml('<!DOCTYPE x [<!ENTITY a "b">]><d:feedback xmlns:d="urn:x"/>') is None


def test_example_test_is_not_ready_and_the_warning_names_the_crm(result):
    s = result["domains"]["example.test"]
    assert table(s) == {
        "messages": 1070, "spf_aligned": 690, "dkim_aligned": 1040, "aligned": 1040, "failing": 30,
        "spf_aligned_rate": 0.6449, "dkim_aligned_rate": 0.972, "aligned_rate": 0.972,
        "would_quarantine": 30, "would_reject": 30, "reports": 5, "status": "warn", "failing_sources": ["203.0.113.9"]}
    assert [(x["ip"], x["messages"], x["spf_aligned"], x["dkim_aligned"], x["failing"]) for x in s["sources"]] == [
        ("192.0.2.25", 690, 690, 690, 0), ("198.51.100.7", 300, 0, 300, 0), ("192.0.2.99", 50, 0, 50, 0),
        ("203.0.113.9", 30, 0, 0, 30)]
    assert s["verdict"] == (
        "not ready: 97.2% of 1070 messages DMARC-aligned in 2026-01-01..2026-01-14 (SPF 64.5%, DKIM 97.2%; "
        "threshold 98.0%); p=quarantine/reject would have hit 30; failing sources: 203.0.113.9: 30 of 30 failing")
    assert s["reporters"] == ["bigmail.example", "other.example", "prefixed.example", "receiver.example"]
    assert s["policy"]["p"] == "none"
    # RFC 9990 receivers say 'pass', RFC 7489 ones 'none' for what they delivered
    assert s["applied"] == {"none": 380, "pass": 690}
    assert [(d["date"], d["messages"], d["aligned"]) for d in s["days"] if d["messages"]] == [
        ("2026-01-05", 516, 500), ("2026-01-06", 164, 150), ("2026-01-07", 200, 200), ("2026-01-08", 100, 100),
        ("2026-01-09", 90, 90)]
    assert len(s["days"]) == 14 and s["days"][0]["date"] == "2026-01-01" and s["days"][0]["aligned_rate"] is None


def test_partner_test_passes_at_exactly_the_threshold(result):
    s = result["domains"]["partner.test"]
    assert table(s) == {
        "messages": 100, "spf_aligned": 98, "dkim_aligned": 98, "aligned": 98, "failing": 2,
        "spf_aligned_rate": 0.98, "dkim_aligned_rate": 0.98, "aligned_rate": 0.98,
        "would_quarantine": 2, "would_reject": 2, "reports": 1, "status": "pass", "failing_sources": ["203.0.113.50"]}
    assert s["verdict"].startswith("ready: 98.0% of 100 messages DMARC-aligned")


@pytest.mark.parametrize("threshold, example, partner", [
    (0.97, "pass", "pass"),
    (0.972, "warn", "pass"),  # 1040/1070 = 0.97196...
    (0.98, "warn", "pass"),
    (0.9801, "warn", "warn"),
    (1.0, "warn", "warn"),
])
def test_threshold(config, threshold, example, partner):
    got = module.run([REPORTS], today=TODAY, threshold=threshold, config=config)
    assert (got["domains"]["example.test"]["status"], got["domains"]["partner.test"]["status"]) == (example, partner)
    if partner == "warn":
        assert got["domains"]["partner.test"]["verdict"].endswith("failing sources: 203.0.113.50: 2 of 2 failing")


def test_the_window(config):
    # A window reaching back to 2025-12-01 takes in the old report (1000 failing messages).
    wide = module.run([REPORTS], today=TODAY, window_days=45, config=config)["domains"]["example.test"]
    assert (wide["messages"], wide["failing"], wide["reports"]) == (2070, 1030, 6)
    # Only days with nothing: a warning, not a pass.
    empty = module.run([REPORTS], today="2026-03-01", config=config)
    assert empty["parsed"]["aggregate_reports"] == 7
    assert {d: s["status"] for d, s in empty["domains"].items()} == {"example.test": "warn", "partner.test": "warn"}
    assert empty["domains"]["example.test"]["verdict"] == (
        "no aggregate report covers example.test in 2026-02-16..2026-03-01 (14 days): nothing says p=quarantine/reject is safe")
    assert empty["tlsrpt"] == {}


def test_domains_wanted_get_a_verdict_and_others_are_left_out(config):
    got = module.run([REPORTS], domains=["example.test", "quiet.test"], today=TODAY, config=config)
    assert sorted(got["domains"]) == ["example.test", "quiet.test"]
    assert got["domains"]["quiet.test"]["status"] == "warn" and got["domains"]["quiet.test"]["messages"] == 0
    assert sorted(got["tlsrpt"]) == ["example.test"]


def test_tls_reports(result):
    tls = result["tlsrpt"]
    assert {d: (s["sessions"], s["successful"], s["failed"], s["status"]) for d, s in tls.items()} == {
        "example.test": (503, 500, 3, "warn"), "partner.test": (40, 40, 0, "pass")}
    assert tls["example.test"]["failures"] == [{"result_type": "certificate-expired", "receiving_mx_hostname": "mx.example.test",
                                                "receiving_ip": "192.0.2.25", "sessions": 3}]
    assert tls["example.test"]["verdict"] == (
        "3 of 503 TLS sessions to example.test failed in 2026-01-01..2026-01-14 (1 reports from bigmail.example): "
        "certificate-expired at mx.example.test: 3")


def test_checks(result):
    checks = {c["id"]: (c["status"], c["category"]) for c in result["checks"]}
    assert checks == {"dmarc.readiness.example.test": ("warn", "dmarc"), "dmarc.readiness.partner.test": ("pass", "dmarc"),
                      "tlsrpt.example.test": ("warn", "tlsrpt"), "tlsrpt.partner.test": ("pass", "tlsrpt")}
    warn = [c for c in result["checks"] if c["id"] == "dmarc.readiness.example.test"][0]
    assert warn["details"]["failing"] == [{"ip": "203.0.113.9", "reverse_dns": None, "failing": 30, "messages": 30}]
    report = audit.aggregate(result["checks"])  # the audit's report takes them as they are
    assert report["status"] == "warn" and report["counts"]["warn"] == 2


def test_maildir_and_mbox_read_the_same_messages(tmp_path, config):
    messages = sorted(n for n in os.listdir(REPORTS) if n.endswith(".eml"))
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    mbox = mailbox.mbox(str(tmp_path / "reports.mbox"), create=True)
    for name in messages:
        with open(os.path.join(REPORTS, name), "rb") as handle:
            data = handle.read()
        maildir.add(data)
        mbox.add(data)
    mbox.flush()
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in messages:
        shutil.copy(os.path.join(REPORTS, name), str(loose / name))
    want = module.run([str(loose)], today=TODAY, config=config)
    assert want["parsed"]["aggregate_reports"] == 2
    for path in (tmp_path / "Maildir", tmp_path / "reports.mbox"):
        got = module.run([str(path)], today=TODAY, config=config)
        assert got["parsed"] == want["parsed"] and got["skipped"] == []
        assert got["domains"] == want["domains"]


def _report(org, rid, day, domain, records):
    return {"report_metadata": {"org_name": org, "report_id": rid, "begin_date": day + " 00:00:00"},
            "policy_published": {"domain": domain, "p": "none"},
            "records": [{"source": {"ip_address": ip, "reverse_dns": rdns}, "count": n,
                         "alignment": {"spf": spf, "dkim": dkim, "dmarc": spf or dkim},
                         "policy_evaluated": {"disposition": "none", "policy_override_reasons": reasons},
                         "identifiers": {"header_from": domain}, "interval_begin": day + " 00:00:00"}
                        for ip, rdns, n, spf, dkim, reasons in records]}


def test_reverse_names_and_local_overrides_are_reported():
    reports = [_report("r.example", "1", "2026-01-10", "example.test", [
        ("192.0.2.25", "mx.example.test", 90, True, True, []),
        ("203.0.113.9", "crm.vendor.example", 8, False, False, []),
        ("198.51.100.1", None, 2, False, False, [{"type": "mailing_list", "comment": None}])])]
    s = logic.summarize_aggregate(reports, TODAY)["example.test"]
    assert s["failing_overridden"] == 2
    assert [(x["ip"], x["reverse_dns"]) for x in s["sources"]] == [
        ("192.0.2.25", "mx.example.test"), ("203.0.113.9", "crm.vendor.example"), ("198.51.100.1", None)]
    assert s["verdict"].endswith("failing sources: 203.0.113.9 (crm.vendor.example): 8 of 8 failing, 198.51.100.1: 2 of 2 failing")


def test_dedupe_keeps_the_first_copy():
    a = _report("R.example", "1", "2026-01-10", "example.test", [("192.0.2.1", None, 1, True, True, [])])
    b = copy.deepcopy(a)
    b["report_metadata"]["org_name"] = "r.example"
    unique, dropped = logic.dedupe([a, b], logic.aggregate_key)
    assert unique == [a] and dropped == 1


def test_picture_and_markdown(result):
    s = result["domains"]["example.test"]
    svg = logic.daily_svg(s)
    root = ET.fromstring(svg)  # well-formed
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(ns + "rect")][1:]
    assert len(bars) == 14
    assert [b.find(ns + "title").text for b in bars][4] == "2026-01-05: 516 messages, 500 aligned"
    assert len(root.find(ns + "polyline").get("points").split()) == 5  # days with messages
    # the share axis runs from 90 % (no day was lower) to 100 %: 97 % and 100 % look different
    assert [t.text for t in root.iter(ns + "text") if t.text.endswith("%") and t.get("fill") == "#c60"] == ["90%", "95%", "100%"]
    section = {"domains": result["domains"], "tlsrpt": result["tlsrpt"], "parsed": result["parsed"],
               "skipped": result["skipped"], "pictures": {"example.test": "dmarc-example.test-X.svg"}}
    report = dict(audit.aggregate(result["checks"]), dmarc=section)
    text = audit.render_markdown(report)
    assert "| example.test | none | 1070 | 64.5% | 97.2% | 97.2% | 30 | warn |" in text
    assert "| partner.test | quarantine | 100 | 98.0% | 98.0% | 98.0% | 2 | pass |" in text
    assert "![example.test: messages and DMARC-aligned share per day](dmarc-example.test-X.svg)" in text
    assert "| 203.0.113.9 | - | 30 | 0.0% | 0.0% | 0.0% | 30 |" in text
    assert "| example.test | 503 | 3 | certificate-expired at mx.example.test: 3 | warn |" in text
    assert "## DMARC rollout" not in audit.render_markdown(audit.aggregate(result["checks"]))
