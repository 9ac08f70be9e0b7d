"""Issue 17 item 3 through Ansible itself: ansible-playbook runs the mailward.mail.dmarc_reports
module on the fixtures directory, and the audit role's own dmarc.yml and report.yml (include_role
tasks_from) on that directory and on a Maildir of the local host (the fetch path), writing the
report with its checks, readiness table and pictures.
"""
import glob
import json
import mailbox
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
from mw_testlib import COLLECTIONS

pytest.importorskip("parsedmarc")

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTS = os.path.join(HERE, "fixtures", "dmarc", "reports")

MODULE_PLAY = textwrap.dedent("""\
    - name: Read the reports
      hosts: localhost
      gather_facts: false
      tasks:
        - name: Run the module
          mailward.mail.dmarc_reports:
            paths: ["{{ reports }}"]
            today: "2026-01-14"
            reverse_dns: false
          register: got
          check_mode: "{{ in_check | default(false) | bool }}"
        - name: Save it
          ansible.builtin.copy:
            content: "{{ got | to_json }}"
            dest: "{{ out }}/module.json"
            mode: "0644"
          check_mode: false
    """)

AUDIT_PLAY = textwrap.dedent("""\
    - name: The audit's DMARC part and its report
      hosts: mail
      gather_facts: false
      tasks:
        - name: What the earlier phases leave
          ansible.builtin.set_fact:
            audit_host_checks: []
            audit_dns_checks: []
            audit_started: "{{ now(utc=true).timestamp() }}"
            audit_merged: {domains: [{name: example.test}, {name: partner.test}]}
        - name: DMARC
          ansible.builtin.include_role:
            name: mailward.mail.audit
            tasks_from: dmarc
        - name: Report
          ansible.builtin.include_role:
            name: mailward.mail.audit
            tasks_from: report
    """)


def _play(tmp_path, playbook, extra):
    (tmp_path / "play.yml").write_text(playbook)
    inventory = {"all": {"children": {"mail": {"hosts": {"mx1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING="false",
               TMPDIR=str(tmp_path / "systmp"))  # where ansible.builtin.tempfile makes its directory
    (tmp_path / "systmp").mkdir(exist_ok=True)
    env.pop("ANSIBLE_CONFIG", None)
    (tmp_path / "extra.json").write_text(json.dumps(dict(extra, out=str(tmp_path), ansible_python_interpreter=sys.executable)))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "inventory.json",
            "-e", "@extra.json", "play.yml"]
    proc = subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc


@pytest.mark.parametrize("in_check", [False, True])
def test_module_through_ansible(tmp_path, in_check):
    _play(tmp_path, MODULE_PLAY, {"reports": REPORTS, "in_check": in_check})
    got = json.loads((tmp_path / "module.json").read_text())
    assert got["changed"] is False
    assert got["parsed"] == {"aggregate_reports": 7, "smtp_tls_reports": 2, "failure_reports": 0, "duplicates": 1}
    assert {d: (s["messages"], s["aligned"], s["status"]) for d, s in got["domains"].items()} == {
        "example.test": (1070, 1040, "warn"), "partner.test": (100, 98, "pass")}
    assert [c["id"] for c in got["checks"]] == ["dmarc.readiness.example.test", "dmarc.readiness.partner.test",
                                                "tlsrpt.example.test", "tlsrpt.partner.test"]


def _report(tmp_path):
    report = json.loads((tmp_path / "audit" / "latest.json").read_text())
    markdown = (tmp_path / "audit" / "latest.md").read_text()
    return report, markdown


def test_audit_role_on_a_directory(tmp_path):
    _play(tmp_path, AUDIT_PLAY, {"audit_dmarc_reports_dir": REPORTS, "audit_dmarc_today": "2026-01-14",
                                 "audit_dmarc_reverse_dns": False, "audit_report_dir": str(tmp_path / "audit"),
                                 "audit_fail_on_fail": True, "audit_become": False})
    report, markdown = _report(tmp_path)
    assert {c["id"]: c["status"] for c in report["checks"]} == {
        "dmarc.readiness.example.test": "warn", "dmarc.readiness.partner.test": "pass",
        "tlsrpt.example.test": "warn", "tlsrpt.partner.test": "pass"}
    assert report["status"] == "warn"
    assert "failing sources: 203.0.113.9: 30 of 30 failing" in [
        c for c in report["checks"] if c["id"] == "dmarc.readiness.example.test"][0]["summary"]
    assert "| example.test | none | 1070 | 64.5% | 97.2% | 97.2% | 30 | warn |" in markdown
    pictures = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "audit" / "*.svg")))
    assert [p.rsplit("-", 1)[0] for p in pictures] == ["dmarc-example.test", "dmarc-partner.test"]
    for name in pictures:
        assert "](%s)" % name in markdown
        ET.parse(str(tmp_path / "audit" / name))  # well-formed SVG


@pytest.mark.parametrize("kind", ["Maildir", "mbox"])
def test_audit_role_on_the_mailbox_of_the_rua_host(tmp_path, kind):
    # An mbox is fetched whole into the controller's temporary directory: a file there that
    # starts with "From " must be read as a mailbox, not as one message (seen red in molecule).
    box = mailbox.Maildir(str(tmp_path / kind), create=True) if kind == "Maildir" else mailbox.mbox(str(tmp_path / kind))
    for name in sorted(os.listdir(REPORTS)):
        if name.endswith(".eml"):
            with open(os.path.join(REPORTS, name), "rb") as handle:
                box.add(handle.read())
    box.flush()
    _play(tmp_path, AUDIT_PLAY, {"audit_dmarc_reports_mailbox": str(tmp_path / kind), "audit_dmarc_reports_host": "mx1",
                                 "audit_dmarc_today": "2026-01-14", "audit_dmarc_reverse_dns": False,
                                 "audit_report_dir": str(tmp_path / "audit"), "audit_become": False})
    report, markdown = _report(tmp_path)
    # The two messages: rx-20260109 (192.0.2.99 50 and 192.0.2.25 40) and bm-5551212 (150 + 14 failing)
    summary = report["dmarc"]["domains"]["example.test"]
    assert (summary["messages"], summary["aligned"], summary["failing"], summary["status"]) == (254, 240, 14, "warn")
    assert report["dmarc"]["domains"]["partner.test"]["status"] == "warn"  # no report about it in the mailbox
    assert report["dmarc"]["parsed"]["aggregate_reports"] == 2
    # the copied messages are gone from the controller's temporary directory
    assert not glob.glob(str(tmp_path / "systmp" / "*.mailward-dmarc"))
    assert "no aggregate report covers partner.test" in markdown


def test_audit_role_says_why_when_the_mailbox_is_missing(tmp_path):
    proc = _play(tmp_path, AUDIT_PLAY, {"audit_dmarc_reports_mailbox": str(tmp_path / "nowhere"),
                                        "audit_report_dir": str(tmp_path / "audit"), "audit_become": False,
                                        "audit_fail_on_fail": False})
    report, _ = _report(tmp_path)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["id"] for c in failed] == ["dmarc.reports"]
    assert failed[0]["summary"] == ("the DMARC/TLS reports could not be read: audit_dmarc_reports_mailbox: %s does not exist on mx1"
                                    % (tmp_path / "nowhere"))
    assert "audit FAIL" in proc.stdout
