"""Checks 1-5: SPF, DKIM and DMARC on real SMTP sessions, real DNS (ns), real mailboxes (mx)."""

import json
import re
import time

from conftest import (HELO, IP, MX_NAME, by_message_id, explain, header_values, message, mx_log,
                      queued_with, read_mailbox, read_mbox, show_message, smtp, send_steps, wait_delivered, wait_for)

PARTNER_KEY = "/root/partner-strict.e2e2026.key"


def test_1_spf_pass_dmarc_pass_delivered(hosts, run_id):
    """sender-ok, envelope and From at partner-strict.example -> 250, delivered, SPF Pass, dmarc=pass."""
    since = time.time()
    mid = "c1-%s@partner-strict.example" % run_id
    data = message(mid, "bob@partner-strict.example", "alice@example.test")
    dialogue = smtp("ok", hosts, send_steps(HELO["ok"], "bob@partner-strict.example", ["alice@example.test"], data))
    code, text = dialogue.reply("DATA")
    assert code == 250 and text.startswith("2.0.0"), explain(dialogue, ("mx log", mx_log(hosts, since)))
    found = wait_delivered(hosts.mx, "alice", mid)
    assert len(found) == 1, explain(dialogue, ("mx log", mx_log(hosts, since)), "copies delivered: %d" % len(found))
    msg = found[0]
    spf = header_values(msg, "Received-SPF")
    results = header_values(msg, "Authentication-Results")
    assert len(spf) == 1 and spf[0].startswith("Pass (mailfrom) identity=mailfrom; client-ip=%s;" % IP["ok"]), show_message(msg)
    assert any(r.startswith(MX_NAME + ";") and "dmarc=pass" in r and "header.from=partner-strict.example" in r
               for r in results), show_message(msg)


def test_2_spf_fail_rejected_at_rcpt(hosts, run_id):
    """sender-bad with the same envelope sender -> 550 5.7.23 at RCPT, never queued."""
    since = time.time()
    mid = "c2-%s@partner-strict.example" % run_id
    data = message(mid, "bob@partner-strict.example", "alice@example.test")
    dialogue = smtp("bad", hosts, send_steps(HELO["bad"], "bob@partner-strict.example", ["alice@example.test"], data))
    code, text = dialogue.reply("RCPT")
    log = mx_log(hosts, since)
    assert code == 550 and text.startswith("5.7.23 "), explain(dialogue, ("mx log", log))
    assert "SPF fail" in text, explain(dialogue, ("mx log", log))
    assert dialogue.reply("DATA")[0] == 554, explain(dialogue)  # no valid recipients: no queue file
    assert re.search(r"NOQUEUE: reject: RCPT from unknown\[%s\]: 550 5\.7\.23 " % re.escape(IP["bad"]), log), \
        explain("no NOQUEUE reject logged", ("mx log", log))
    assert not queued_with(hosts.mx, mid) and not by_message_id(read_mailbox(hosts.mx, "alice"), mid)


def test_3_dmarc_reject_without_signature(hosts, run_id):
    """sender-bad, envelope at partner-nospf.example (no SPF), From at partner-strict.example (p=reject),
    unsigned -> 550 5.7.1 from OpenDMARC at end of DATA, never delivered."""
    since = time.time()
    mid = "c3-%s@partner-strict.example" % run_id
    data = message(mid, "bob@partner-strict.example", "alice@example.test")
    dialogue = smtp("bad", hosts, send_steps(HELO["bad"], "bob@partner-nospf.example", ["alice@example.test"], data))
    log = mx_log(hosts, since)
    assert dialogue.reply("RCPT")[0] == 250, explain("SPF none must not reject at RCPT", dialogue, ("mx log", log))
    code, text = dialogue.reply("DATA")
    assert code == 550 and text.startswith("5.7.1 ") and "DMARC" in text, explain(dialogue, ("mx log", log))
    assert re.search(r"milter-reject: END-OF-MESSAGE from unknown\[%s\]: 5\.7\.1 rejected by DMARC policy"
                     % re.escape(IP["bad"]), log), explain("no OpenDMARC milter-reject logged", ("mx log", log))
    assert "Received-SPF: None" in log or "None (mailfrom)" in log, explain(("mx log", log))
    assert not queued_with(hosts.mx, mid) and not by_message_id(read_mailbox(hosts.mx, "alice"), mid)


def test_4_aligned_dkim_passes_dmarc(hosts, run_id):
    """The same mail as 3, DKIM-signed by dkimpy on sender-bad with partner-strict's published key
    -> 250, delivered with dkim=pass and dmarc=pass although SPF is none."""
    since = time.time()
    mid = "c4-%s@partner-strict.example" % run_id
    data = message(mid, "bob@partner-strict.example", "alice@example.test")
    dialogue = smtp("bad", hosts, send_steps(HELO["bad"], "bob@partner-nospf.example", ["alice@example.test"], data),
                    dkim={"key": PARTNER_KEY, "domain": "partner-strict.example", "selector": "e2e2026"})
    code, text = dialogue.reply("DATA")
    assert code == 250 and text.startswith("2.0.0"), explain(dialogue, ("mx log", mx_log(hosts, since)))
    found = wait_delivered(hosts.mx, "alice", mid)
    assert len(found) == 1, explain(dialogue, ("mx log", mx_log(hosts, since)))
    msg = found[0]
    results = " | ".join(header_values(msg, "Authentication-Results"))
    assert re.search(r"dkim=pass .*header\.d=partner-strict\.example", results), show_message(msg)
    assert "dmarc=pass" in results and "header.from=partner-strict.example" in results, show_message(msg)
    assert header_values(msg, "Received-SPF")[0].startswith("None (mailfrom)"), show_message(msg)


def test_4b_softfail_is_accepted_and_marked(hosts, run_id):
    """Extra: partner-soft.example (~all, p=none) from sender-bad -> accepted, Received-SPF: Softfail."""
    since = time.time()
    mid = "c4b-%s@partner-soft.example" % run_id
    data = message(mid, "carol@partner-soft.example", "alice@example.test")
    dialogue = smtp("bad", hosts, send_steps(HELO["bad"], "carol@partner-soft.example", ["alice@example.test"], data))
    assert dialogue.reply("DATA")[0] == 250, explain(dialogue, ("mx log", mx_log(hosts, since)))
    found = wait_delivered(hosts.mx, "alice", mid)
    assert len(found) == 1, explain(dialogue, ("mx log", mx_log(hosts, since)))
    assert header_values(found[0], "Received-SPF")[0].startswith("Softfail (mailfrom)"), show_message(found[0])


VERIFY = r'''
import json, mailbox, sys
import dkim
mid = sys.argv[1]
box = mailbox.mbox("/var/mail/root", create=False)
for key in box.keys():
    if box[key].get("Message-ID", "").strip() == "<%s>" % mid:
        raw = box.get_bytes(key)  # the bytes as delivered, not re-serialized
        d = dkim.DKIM(raw)
        verified = d.verify()  # fetches <s>._domainkey.<d> TXT through /etc/resolv.conf: ns
        print(json.dumps({"found": True, "verified": bool(verified),
                          "domain": (d.domain or b"").decode(), "selector": (d.selector or b"").decode()}))
        break
else:
    print(json.dumps({"found": False}))
'''


def test_5_outbound_dkim_verifies_against_published_key(hosts, run_id):
    """Mail from mx (example.test) to a partner domain is signed by OpenDKIM; dkimpy on sender-ok
    (the partner's MX) verifies it with the key it fetches from ns, i.e. what the dns role published."""
    since = time.time()
    mid = "c5-%s@example.test" % run_id
    data = message(mid, "alice@example.test", "root@partner-strict.example")
    cmd = hosts.mx.run("printf %%s %s | /usr/sbin/sendmail -i -f alice@example.test root@partner-strict.example", data)
    assert cmd.rc == 0, cmd.stderr
    delivered, _ = wait_for(lambda: by_message_id(read_mbox(hosts.ok, "root"), mid), timeout=60)
    assert delivered, explain("not delivered to sender-ok (MX of partner-strict.example)", ("mx log", mx_log(hosts, since)),
                              ("mx queue", hosts.mx.run("mailq").stdout))
    out = hosts.ok.run("python3 -c %s %s", VERIFY, mid)
    result = json.loads(out.stdout or "{}")
    assert result.get("found") and result.get("verified"), explain(
        "dkimpy on sender-ok: %s %s" % (out.stdout, out.stderr), show_message(delivered[0]), ("mx log", mx_log(hosts, since)))
    assert result["domain"] == "example.test" and result["selector"] == "mw2026r", result
    # The key dkimpy fetched is the one on mx: the published p= is mx's private key's public half.
    public_der = hosts.mx.check_output(
        "openssl pkey -in /etc/dkimkeys/example.test/mw2026r.private -pubout -outform DER | base64 -w0")
    from test_10_dns import answer  # noqa: E402  (same resolver: ns)
    published = answer("mw2026r._domainkey.example.test", "TXT")
    assert published and published[0].endswith("p=" + public_der), (published, public_der)
