"""playbooks/audit.yml against the converged MX and the name server of this scenario.

The audit passes on the fresh host (warnings allowed: the certificate is self-signed), changes
nothing on the host, and fails naming the check after each tampering:
  (a) a record changed by hand in the name server,
  (b) main.cf edited by hand (drift),
  (c) smtpd_relay_restrictions set to permit (drift; relay still refused thanks to
      smtpd_recipient_restrictions); both lists set to permit (Postfix's smtpd then refuses to
      run: no SMTP service); relay restrictions permit with mynetworks 0.0.0.0/0 (an open relay:
      every relay probe fails).
Each tampering is undone in the test's ``finally``; the last test passes again.
The tests run in file order (pytest's default); each one leaves the world as it found it.
"""

import hashlib
import json
import os
import re
import subprocess

import pytest

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
REPORTS = os.path.join(EPHEMERAL, "audit")
NS = "mailward-audit-ns"
MX = "mailward-audit-mx"
HOST = "mx.example.test"


def audit(*extra):
    """Run the audit as a user would; return (exit code, output, latest.json)."""
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(PROJECT, "roles"),
               ANSIBLE_FILTER_PLUGINS=os.path.join(PROJECT, "filter_plugins"),
               ANSIBLE_CONFIG=os.path.join(EPHEMERAL, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    run = subprocess.run(["ansible-playbook", "--inventory", inventory,
                          os.path.join(PROJECT, "playbooks", "audit.yml"), *extra],
                         capture_output=True, text=True, env=env, check=False)
    with open(os.path.join(REPORTS, "latest.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    return run.returncode, run.stdout + run.stderr, report


def status(report):
    return {c["id"]: c["status"] for c in report["checks"]}


def podman(container, *argv, stdin=None):
    run = subprocess.run(["podman", "exec", "-i", container, *argv], input=stdin, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def nsupdate(zone, commands):
    with open(os.path.join(EPHEMERAL, "tsig.secret"), encoding="utf-8") as handle:
        secret = handle.read().strip()
    script = "server 127.0.0.1\nzone %s\n%s\nsend\n" % (zone, "\n".join(commands))
    podman(NS, "nsupdate", "-y", "hmac-sha256:mailward-audit:" + secret, stdin=script)


def assert_fails_naming(code, output, report, check_id):
    assert code != 0, output[-3000:]
    assert check_id in report["failed"], report["failed"]
    assert re.search(r"audit failed checks: .*%s" % re.escape(check_id), output), output[-3000:]


def host_state():
    """What must not change: Postfix, OpenDKIM and key files, and no audit leftovers in /tmp."""
    listing = podman(MX, "sh", "-c", "find /etc/postfix /etc/dkimkeys /etc/opendkim* -type f -exec sha256sum {} + "
                                     "| sort; ls -d /tmp/*mailward-audit* 2>/dev/null || true")
    return hashlib.sha256(listing.encode()).hexdigest(), listing


@pytest.fixture(scope="module")
def fresh():
    before = host_state()
    result = audit()
    return result, before, host_state()


def test_fresh_host_passes(fresh):
    (code, output, report), _, _ = fresh
    assert code == 0, output[-3000:]
    assert report["status"] in ("pass", "warn") and report["failed"] == []
    checks = status(report)
    # every family is there and passes
    for check_id in ("dns.spf.example.test", "dns.spf_limits.example.test", "dns.dkim.mw2026r.example.test",
                     "dns.dkim_key.mw2026e.example.test", "dns.dmarc_syntax.example.test",
                     "dns.dmarc_report_auth.example.test", "dns.mta_sts.example.test", "dns.tlsrpt.example.test",
                     "dns.tlsa.%s" % HOST, "dns.mx.partner.test", "smtp.relay.percent_hack.%s" % HOST,
                     "smtp.relay.quoted_local.%s" % HOST, "smtp.relay.source_route.%s" % HOST,
                     "smtp.relay.bang_path.%s" % HOST, "smtp.relay.foreign.%s" % HOST, "smtp.vrfy.%s" % HOST,
                     "smtp.expn.%s" % HOST, "smtp.starttls.25.%s" % HOST, "smtp.tls_legacy.TLSv1.%s" % HOST,
                     "smtp.tls_legacy.TLSv1_1.%s" % HOST, "smtp.cert_name.%s" % HOST, "smtp.tlsa_match.%s" % HOST,
                     "smtp.auth_before_tls.25.%s" % HOST, "smtp.auth_before_tls.587.%s" % HOST,
                     "smtp.probe_position.%s" % HOST, "drift.main_cf.%s" % HOST, "drift.master_cf.%s" % HOST):
        assert checks.get(check_id) == "pass", (check_id, checks.get(check_id))
    # the self-signed certificate is a warning, not a failure (audit_require_trusted_cert: false)
    assert checks["smtp.cert_trust.%s" % HOST] == "warn"


def test_reports_are_written(fresh):
    names = os.listdir(REPORTS)
    assert {"latest.json", "latest.md"} <= set(names)
    assert any(re.match(r"audit-\d{8}T\d{6}Z\.json\Z", n) for n in names)
    assert any(re.match(r"audit-\d{8}T\d{6}Z\.md\Z", n) for n in names)
    with open(os.path.join(REPORTS, "latest.md"), encoding="utf-8") as handle:
        page = handle.read()
    assert page.startswith("# mailward audit: ")
    assert "| `smtp.relay.percent_hack.%s` | pass |" % HOST in page


def test_audit_changes_nothing_on_the_host(fresh):
    _, before, after = fresh
    assert before[0] == after[0], "host state changed:\n%s\n---\n%s" % (before[1], after[1])
    assert "mailward-audit" not in after[1]


def test_a_record_tampered_in_the_name_server_fails_naming_it():
    spf = next(c for c in audit()[2]["checks"] if c["id"] == "dns.spf.example.test")["details"]["expected"][0]
    nsupdate("example.test", ['update delete example.test. TXT "%s"' % spf,
                              'update add example.test. 60 TXT "v=spf1 +a -all"'])
    try:
        code, output, report = audit()
        assert_fails_naming(code, output, report, "dns.spf.example.test")
        assert report["failed"] == ["dns.spf.example.test"]
        check = next(c for c in report["checks"] if c["id"] == "dns.spf.example.test")
        assert check["details"]["published"] == ["v=spf1 +a -all"]
    finally:
        nsupdate("example.test", ['update delete example.test. TXT "v=spf1 +a -all"',
                                  'update add example.test. 3600 TXT "%s"' % spf])


def test_main_cf_edited_by_hand_is_drift():
    podman(MX, "cp", "-p", "/etc/postfix/main.cf", "/root/main.cf.audit-test")
    podman(MX, "postconf", "-e", "message_size_limit = 1048576")
    try:
        code, output, report = audit()
        assert_fails_naming(code, output, report, "drift.main_cf.%s" % HOST)
        assert report["failed"] == ["drift.main_cf.%s" % HOST]
        check = next(c for c in report["checks"] if c["id"] == "drift.main_cf.%s" % HOST)
        assert [d["name"] for d in check["details"]["differences"]] == ["message_size_limit"]
        assert "message_size_limit" in check["summary"]
    finally:
        podman(MX, "cp", "-p", "/root/main.cf.audit-test", "/etc/postfix/main.cf")


def test_relay_restrictions_permit_then_open_relay():
    podman(MX, "cp", "-p", "/etc/postfix/main.cf", "/root/main.cf.audit-test")
    try:
        podman(MX, "postconf", "-e", "smtpd_relay_restrictions = permit")
        podman(MX, "postfix", "reload")
        code, output, report = audit()
        assert_fails_naming(code, output, report, "drift.main_cf.%s" % HOST)
        check = next(c for c in report["checks"] if c["id"] == "drift.main_cf.%s" % HOST)
        assert [d["name"] for d in check["details"]["differences"]] == ["smtpd_relay_restrictions"]
        # Defence in depth: smtpd_recipient_restrictions still has reject_unauth_destination, so
        # relaying is still refused and the relay probes pass.
        assert all(s == "pass" for i, s in status(report).items() if i.startswith("smtp.relay.")), status(report)

        # A real open relay: relay restrictions permit and mynetworks the whole Internet.
        podman(MX, "postconf", "-e", "smtpd_relay_restrictions = permit", "mynetworks = 0.0.0.0/0 [::]/0")
        podman(MX, "postfix", "reload")
        code, output, report = audit()
        checks = status(report)
        for probe in ("foreign", "percent_hack", "bang_path", "quoted_local", "source_route"):
            assert checks["smtp.relay.%s.%s" % (probe, HOST)] == "fail", (probe, checks)
        assert_fails_naming(code, output, report, "smtp.relay.foreign.%s" % HOST)
        relay = next(c for c in report["checks"] if c["id"] == "smtp.relay.foreign.%s" % HOST)
        assert relay["details"]["attempts"][0]["rcpt"][0] == 250
        assert relay["details"]["attempts"][0]["rset"][0] == 250
        drift = next(c for c in report["checks"] if c["id"] == "drift.main_cf.%s" % HOST)
        assert [d["name"] for d in drift["details"]["differences"]] == ["mynetworks", "smtpd_relay_restrictions"]

        # Both lists set to permit: Postfix's own safety net stops smtpd ("specify at least one
        # working instance of reject_unauth_destination..."): the audit sees no SMTP service.
        podman(MX, "cp", "-p", "/root/main.cf.audit-test", "/etc/postfix/main.cf")
        podman(MX, "postconf", "-e", "smtpd_relay_restrictions = permit", "smtpd_recipient_restrictions = permit")
        podman(MX, "postfix", "reload")
        code, output, report = audit()
        assert_fails_naming(code, output, report, "smtp.connect.25.%s" % HOST)
    finally:
        podman(MX, "cp", "-p", "/root/main.cf.audit-test", "/etc/postfix/main.cf")
        # master throttles a service whose processes died: a restart, then wait for the greeting
        podman(MX, "systemctl", "restart", "postfix")
        podman(MX, "python3", "-c", "import smtplib, time\n"
                                    "for _ in range(30):\n"
                                    "    try:\n"
                                    "        smtplib.SMTP('127.0.0.1', 25, timeout=3).quit()\n"
                                    "        break\n"
                                    "    except OSError:\n"
                                    "        time.sleep(1)\n"
                                    "else:\n"
                                    "    raise SystemExit('no SMTP greeting')")


def test_everything_undone_passes_again():
    code, output, report = audit()
    assert code == 0, output[-3000:]
    assert report["failed"] == []
