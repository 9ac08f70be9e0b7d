"""Check 10: a DKIM key rotation as docs/dkim-rotation.md describes it, on the converged mx, with
site.yml as the only tool (issue 17, items 1 and 4).

  a  mw2027r added as standby: published at ns, not in the SigningTable; mail still signed by mw2026r
  b  after the record has been visible for its TTL (dns_ttl: 60): switch (mw2027r active,
     mw2026r standby). A message signed by mw2026r before the switch and one signed by mw2027r
     after it both verify at the receiver (dkimpy on sender-ok, keys from ns)
  c  mw2026r retired (opendkim_retired_key_days: 0, so this run also removes its private key): ns
     publishes "v=DKIM1; p=", the old message no longer verifies (revoked), the new one does
  d  the scenario's own inventory again (mw2026r active with a new key, mw2027r no longer in the
     inventory): mw2027r's record is pruned from ns, mail verifies with mw2026r - the state the
     other checks expect when verify is run again.

Runs last: it changes mx's keys. Each step is one ansible-playbook run of site.yml with the
molecule inventory plus mail_domains for mx in host_vars.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
import yaml

from conftest import NAMES, by_message_id, explain, message, mx_log, read_mbox, wait_for
from test_10_dns import answer

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KEYS = "/etc/dkimkeys/example.test"
OLD, NEW = "mw2026r", "mw2027r"
TTL = 60  # dns_ttl of the scenario (molecule.yml)

# dkimpy on the receiver (sender-ok, the partner's MX), against ns: the verdict and the selector
# of each DKIM-Signature of one delivered message.
VERIFY = r'''
import json, mailbox, sys
import dkim
mid = sys.argv[1]
box = mailbox.mbox("/var/mail/root", create=False)
for key in box.keys():
    if box[key].get("Message-ID", "").strip() == "<%s>" % mid:
        raw = box.get_bytes(key)
        n = len(box[key].get_all("DKIM-Signature") or [])
        out = []
        for i in range(n):
            d = dkim.DKIM(raw)
            try:
                ok = bool(d.verify(idx=i))
            except Exception as error:  # dkimpy may raise on a revoked or unusable key
                out.append({"verified": False, "selector": (d.selector or b"").decode(), "error": str(error)})
                continue
            out.append({"verified": ok, "selector": (d.selector or b"").decode()})
        print(json.dumps({"found": True, "signatures": out}))
        break
else:
    print(json.dumps({"found": False}))
'''


def dkim(selector, state):
    return {"selector": selector, "type": "rsa", "bits": 2048, "state": state}


@pytest.fixture(scope="module")
def converge(tmp_path_factory):
    """converge(dkim_list or None, **extra host vars): one site.yml run; fails the test if it fails."""
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not ephemeral or not os.path.isdir(os.path.join(ephemeral, "inventory")):
        pytest.fail("MOLECULE_EPHEMERAL_DIRECTORY is not set: run through `molecule verify -s e2e`")
    with open(os.path.join(ephemeral, "inventory", "group_vars", "mail")) as handle:
        domains = yaml.safe_load(handle)["mail_domains"]

    def run(selectors, **extra):
        inventory = str(tmp_path_factory.mktemp("inventory") / "inventory")
        shutil.copytree(os.path.join(ephemeral, "inventory"), inventory, symlinks=True)
        host_vars = dict(extra)
        if selectors is not None:
            host_vars["mail_domains"] = [dict(d, dkim=selectors) if d["name"] == "example.test" else d
                                         for d in domains]
        os.makedirs(os.path.join(inventory, "host_vars"), exist_ok=True)
        with open(os.path.join(inventory, "host_vars", NAMES["mx"]), "w") as handle:
            yaml.safe_dump(host_vars, handle)
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
        proc = subprocess.run(["ansible-playbook", "-i", inventory, os.path.join(PROJECT, "site.yml")],
                              cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, explain("site.yml failed", (proc.stdout + proc.stderr)[-6000:])
        return proc
    return run


def send(hosts, mid):
    """Mail from mx (example.test, signed by OpenDKIM) to root@partner-strict.example (sender-ok)."""
    since = time.time()
    data = message(mid, "alice@example.test", "root@partner-strict.example")
    cmd = hosts.mx.run("printf %%s %s | /usr/sbin/sendmail -i -f alice@example.test root@partner-strict.example", data)
    assert cmd.rc == 0, cmd.stderr
    delivered, _ = wait_for(lambda: by_message_id(read_mbox(hosts.ok, "root"), mid), timeout=60)
    assert delivered, explain("not delivered to sender-ok", ("mx log", mx_log(hosts, since)))
    return delivered[0]


def verify(hosts, mid):
    """{selector: verified} of the message's signatures, as dkimpy on sender-ok judges them now."""
    out = hosts.ok.run("python3 -c %s %s", VERIFY, mid)
    result = json.loads(out.stdout or "{}")
    assert result.get("found"), (out.stdout, out.stderr)
    return {s["selector"]: s["verified"] for s in result["signatures"]}


def signing_table(hosts):
    return [line for line in hosts.mx.file("/etc/opendkim/SigningTable").content_string.splitlines()
            if line and not line.startswith("#")]


def key_record(selector):
    return answer("%s._domainkey.example.test" % selector, "TXT")


def public_der(hosts, selector):
    return hosts.mx.check_output(
        "openssl pkey -in %s/%s.private -pubout -outform DER | base64 -w0" % (KEYS, selector))


@pytest.fixture(scope="module")
def state():
    return {}


def test_10a_new_selector_published_as_standby(hosts, run_id, converge, state):
    converge([dkim(OLD, "active"), dkim(NEW, "standby")])
    published, _ = wait_for(lambda: key_record(NEW), timeout=30)
    state["new_visible"] = time.time()
    assert published == ["v=DKIM1; k=rsa; p=" + public_der(hosts, NEW)], published
    assert signing_table(hosts) == ["*@example.test %s._domainkey.example.test" % OLD]
    msg = send(hosts, "c10a-%s@example.test" % run_id)
    assert verify(hosts, "c10a-%s@example.test" % run_id) == {OLD: True}, msg.as_string()[:3000]
    state["old_mid"] = "c10a-%s@example.test" % run_id


def test_10b_switch_after_a_ttl_both_selectors_verify(hosts, run_id, converge, state):
    if "old_mid" not in state:
        pytest.skip("10a failed")
    # docs/dkim-rotation.md: switch only after the record has been visible for its TTL.
    wait_for(lambda: time.time() - state["new_visible"] >= TTL + 1, timeout=TTL + 5)
    converge([dkim(OLD, "standby"), dkim(NEW, "active")])
    assert signing_table(hosts) == ["*@example.test %s._domainkey.example.test" % NEW]
    mid = "c10b-%s@example.test" % run_id
    send(hosts, mid)
    assert verify(hosts, mid) == {NEW: True}
    # The mail signed before the switch still verifies: mw2026r is still published (standby).
    assert verify(hosts, state["old_mid"]) == {OLD: True}
    assert key_record(OLD) == ["v=DKIM1; k=rsa; p=" + public_der(hosts, OLD)]
    lifecycle = json.loads(hosts.mx.check_output("cat /etc/dkimkeys/.selectors.json"))["selectors"]
    new = lifecycle["example.test/%s" % NEW]
    assert new["active_since"] - new["published_since"] >= TTL, new
    state["new_mid"] = mid


def test_10c_retire_publishes_the_revocation(hosts, converge, state):
    if "new_mid" not in state:
        pytest.skip("10b failed")
    converge([dkim(OLD, "retired"), dkim(NEW, "active")], opendkim_retired_key_days=0)
    revoked, _ = wait_for(lambda: key_record(OLD) == ["v=DKIM1; p="], timeout=30)
    assert revoked, key_record(OLD)
    assert not hosts.mx.file("%s/%s.private" % (KEYS, OLD)).exists  # retired_key_days 0: removed now
    assert hosts.mx.file("%s/%s.private" % (KEYS, NEW)).exists
    assert signing_table(hosts) == ["*@example.test %s._domainkey.example.test" % NEW]
    # Revoked: the old signature fails at the receiver, the new one still passes.
    assert verify(hosts, state["old_mid"]) == {OLD: False}
    assert verify(hosts, state["new_mid"]) == {NEW: True}


def test_10d_back_to_the_scenario_inventory_prunes_the_removed_selector(hosts, run_id, converge, state):
    converge(None)  # the scenario's inventory: mw2026r active only
    gone, _ = wait_for(lambda: not key_record(NEW), timeout=30)
    assert gone, key_record(NEW)
    assert key_record(OLD) == ["v=DKIM1; k=rsa; p=" + public_der(hosts, OLD)]
    assert signing_table(hosts) == ["*@example.test %s._domainkey.example.test" % OLD]
    mid = "c10d-%s@example.test" % run_id
    send(hosts, mid)
    assert verify(hosts, mid) == {OLD: True}
