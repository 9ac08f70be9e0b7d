"""DMARC rollout evidence on the real MX (issue 17, items 3 and 4).

The aggregate reports of tests/unit/fixtures/dmarc/reports (RFC 9990 and RFC 7489 XML, gzip,
zip, messages carrying them, a duplicate, a report outside the window) and its two RFC 8460 TLS
reports are delivered by Postfix on mx to the rua address dmarc-reports@partner.test (local(8):
the mbox /var/mail/dmarc-reports), each report file attached to a message as a reporter sends it.
The audit reads that mailbox (audit_dmarc_reports_mailbox: fetched to the controller, parsed
there with parsedmarc) and gives the readiness table and verdicts the unit tests give for the
same reports: example.test not ready (97.2 %, 203.0.113.9 named), partner.test ready at exactly
98 %, a TLS failure for example.test. Warnings only: the audit still passes (exit 0).
"""

import os
import subprocess
import time
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from test_audit import MX, REPORTS, audit, podman

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
FIXTURES = os.path.join(PROJECT, "tests", "unit", "fixtures", "dmarc", "reports")
MBOX = "/var/mail/dmarc-reports"
RUA = "dmarc-reports@partner.test"


def as_message(name, data):
    """A report file as a reporter mails it (an .eml fixture is a message already)."""
    if name.endswith(".eml"):
        return data
    msg = MIMEMultipart()
    msg["From"] = "reports@reporter.example"
    msg["To"] = RUA
    msg["Subject"] = "Report: %s" % name
    msg["Message-ID"] = "<%s@reporter.example>" % name.replace("!", ".")
    msg.attach(MIMEText("A report.\n"))
    subtype = "gzip" if name.endswith(".gz") else "zip" if name.endswith(".zip") else "octet-stream"
    part = MIMEApplication(data, _subtype=subtype)
    part.add_header("Content-Disposition", "attachment", filename=name)
    msg.attach(part)
    return msg.as_bytes()


def count_messages():
    out = podman(MX, "sh", "-c", "grep -c '^From ' %s 2>/dev/null || true" % MBOX)
    return int(out.strip() or 0)


def test_reports_in_the_rua_mailbox_give_the_readiness_verdicts():
    names = sorted(os.listdir(FIXTURES))
    before = count_messages()
    for name in names:
        with open(os.path.join(FIXTURES, name), "rb") as handle:
            message = as_message(name, handle.read())
        run = subprocess.run(["podman", "exec", "-i", MX, "/usr/sbin/sendmail", "-f", "reports@reporter.example", RUA],
                             input=message, capture_output=True, check=False)
        assert run.returncode == 0, run.stderr
    deadline = time.time() + 120
    while count_messages() < before + len(names) and time.time() < deadline:
        time.sleep(2)
    assert count_messages() == before + len(names), podman(MX, "postqueue", "-p")

    code, output, report = audit("-e", "audit_dmarc_reports_mailbox=%s" % MBOX, "-e", "audit_dmarc_today=2026-01-14",
                                 "-e", "audit_dmarc_reverse_dns=false")
    assert code == 0, output[-3000:]
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["dmarc.readiness.example.test"]["status"] == "warn"
    assert checks["dmarc.readiness.example.test"]["summary"] == (
        "not ready: 97.2% of 1070 messages DMARC-aligned in 2026-01-01..2026-01-14 (SPF 64.5%, DKIM 97.2%; "
        "threshold 98.0%); p=quarantine/reject would have hit 30; failing sources: 203.0.113.9: 30 of 30 failing")
    assert checks["dmarc.readiness.partner.test"]["status"] == "pass"
    assert checks["tlsrpt.example.test"]["status"] == "warn"
    assert checks["tlsrpt.partner.test"]["status"] == "pass"
    dmarc = report["dmarc"]
    assert dmarc["parsed"] == {"aggregate_reports": 7, "smtp_tls_reports": 2, "failure_reports": 0, "duplicates": 1}
    assert [os.path.basename(s["path"]) for s in dmarc["skipped"]] != [] and len(dmarc["skipped"]) == 1  # README.txt
    table = {d: (s["messages"], s["aligned"], s["failing"], s["aligned_rate"]) for d, s in dmarc["domains"].items()}
    assert table == {"example.test": (1070, 1040, 30, 0.972), "partner.test": (100, 98, 2, 0.98)}
    with open(os.path.join(REPORTS, "latest.md"), encoding="utf-8") as handle:
        page = handle.read()
    assert "| example.test | none | 1070 | 64.5% | 97.2% | 97.2% | 30 | warn |" in page
    for domain in ("example.test", "partner.test"):
        picture = dmarc["pictures"][domain]
        assert os.path.exists(os.path.join(REPORTS, picture)) and "](%s)" % picture in page
    # read-only on the host: the mailbox is as it was
    assert count_messages() == before + len(names)
