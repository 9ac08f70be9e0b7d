"""Issue 5 inside the end-to-end world: playbooks/audit.yml run against this scenario's mx.

The audit asks ns (the name server the dns role published into), probes mx over SMTP from the
controller (outside mx's mynetworks) and compares mx's Postfix configuration with what the roles
render. It must pass on the converged mx, and fail naming dns.spf.example.test - and only that -
once the SPF record is changed in ns behind mailward's back. Runs before the fault drills (test_90).
"""

import json
import os
import re
import subprocess

import pytest

from conftest import IP, NAMES, explain

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", "")
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
REPORTS = os.path.join(EPHEMERAL, "audit")
SPF_ID = "dns.spf.example.test"


def audit():
    """Run the audit as a user would; return (exit code, output tail, report)."""
    if not EPHEMERAL or not os.environ.get("MOLECULE_INVENTORY_FILE"):
        pytest.fail("MOLECULE_EPHEMERAL_DIRECTORY is not set: run through `molecule verify -s e2e`")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(PROJECT, "roles"),
               ANSIBLE_FILTER_PLUGINS=os.path.join(PROJECT, "filter_plugins"),
               ANSIBLE_CONFIG=os.path.join(EPHEMERAL, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    run = subprocess.run(["ansible-playbook", "--inventory", os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
                          os.path.join(PROJECT, "playbooks", "audit.yml"),
                          "-e", "audit_dns_server=%s" % IP["ns"], "-e", "audit_report_dir=%s" % REPORTS],
                         capture_output=True, text=True, env=env, check=False)
    output = (run.stdout + run.stderr)[-4000:]
    path = os.path.join(REPORTS, "latest.json")
    assert os.path.exists(path), explain("the audit wrote no report", output)
    with open(path, encoding="utf-8") as handle:
        return run.returncode, output, json.load(handle)


def nsupdate(commands):
    """One dynamic update of example.test in ns, signed with the scenario's TSIG key."""
    with open(os.path.join(EPHEMERAL, "tsig.secret"), encoding="utf-8") as handle:
        secret = handle.read().strip()
    script = "server 127.0.0.1\nzone example.test\n%s\nsend\n" % "\n".join(commands)
    run = subprocess.run(["podman", "exec", "-i", NAMES["ns"], "nsupdate", "-y", "hmac-sha256:mailward-e2e:" + secret],
                         input=script, capture_output=True, text=True, check=False)
    assert run.returncode == 0, explain("nsupdate failed", script, run.stderr)


def failing(report):
    return [(c["id"], c.get("summary")) for c in report["checks"] if c["status"] == "fail"]


@pytest.fixture(scope="module")
def clean_audit():
    return audit()


def test_audit_passes_on_the_converged_mx(clean_audit):
    code, output, report = clean_audit
    assert code == 0 and report["failed"] == [], explain("the audit failed on a fresh mx", failing(report), output)
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    for check_id in (SPF_ID, "dns.dmarc.example.test", "dns.dkim.mw2026r.example.test",
                     "dns.dkim_key.mw2026r.example.test", "dns.mx.example.test", "dns.spf_limits.example.test",
                     "smtp.relay.foreign.mx.example.test", "smtp.relay.percent_hack.mx.example.test",
                     "smtp.relay.bang_path.mx.example.test", "smtp.relay.quoted_local.mx.example.test",
                     "smtp.relay.source_route.mx.example.test", "smtp.vrfy.mx.example.test",
                     "smtp.expn.mx.example.test", "smtp.starttls.25.mx.example.test",
                     "smtp.tls_legacy.TLSv1_1.mx.example.test", "smtp.auth_before_tls.25.mx.example.test",
                     "smtp.probe_position.mx.example.test", "drift.main_cf.mx.example.test"):
        assert statuses.get(check_id) == "pass", explain("%s is %s" % (check_id, statuses.get(check_id)),
                                                         [c for c in report["checks"] if c["id"] == check_id])


def test_audit_names_the_spf_record_tampered_in_ns(clean_audit):
    expected = next(c for c in clean_audit[2]["checks"] if c["id"] == SPF_ID)["details"]["expected"][0]
    forged = "v=spf1 ip4:192.0.2.66 -all"
    nsupdate(['update delete example.test. TXT "%s"' % expected, 'update add example.test. 60 TXT "%s"' % forged])
    try:
        code, output, report = audit()
    finally:
        nsupdate(['update delete example.test. TXT "%s"' % forged,
                  'update add example.test. 60 TXT "%s"' % expected])
    assert code != 0, explain("the audit passed with a forged SPF record", output)
    assert report["failed"] == [SPF_ID], explain("expected exactly %s to fail" % SPF_ID, failing(report))
    assert re.search(r"audit failed checks: .*%s" % re.escape(SPF_ID), output), output
    check = next(c for c in report["checks"] if c["id"] == SPF_ID)
    assert check["details"]["published"] == [forged], check


def test_audit_passes_again_once_the_record_is_restored():
    code, output, report = audit()
    assert code == 0 and report["failed"] == [], explain("the restored record still fails", failing(report), output)
