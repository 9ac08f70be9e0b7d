"""Checks 6-8: relay control (with the classic tricks), protocol hygiene, TLS versions."""

import re
import time

import pytest

from conftest import HELO, MX_NAME, explain, mx_log, queue, smtp

RELAY_TRICKS = [
    "user@other.test",                    # plain third-party relay
    "user%other.test@example.test",       # percent hack
    "other.test!user@example.test",       # bang path (UUCP)
    '"user@other.test"@example.test',     # quoted local part containing @
    "@mx.example.test:user@other.test",   # source route
    "user@other.test@example.test",       # unquoted double @
]


def test_6_relay_denied_from_outside(hosts):
    """From sender-bad every relay attempt is 554 5.7.1 Relay access denied, nothing queued;
    a local recipient in the same session is still accepted (the session itself is fine)."""
    since = time.time()
    steps = [["EHLO", HELO["bad"]], ["MAIL", "<bob@partner-nospf.example>"]]
    steps += [["RCPT", "<%s>" % rcpt] for rcpt in RELAY_TRICKS]
    steps += [["RCPT", "<alice@example.test>"], ["RSET"], ["QUIT"]]
    dialogue = smtp("bad", hosts, steps)
    log = mx_log(hosts, since)
    for rcpt in RELAY_TRICKS:
        code, text = dialogue.reply("RCPT", "<%s>" % rcpt)
        assert code == 554 and re.match(r"5\.7\.1 <[^>]*>: Relay access denied$", text), \
            explain("RCPT <%s>: %s %s" % (rcpt, code, text), dialogue, ("mx log", log))
    assert dialogue.reply("RCPT", "<alice@example.test>")[0] == 250, explain(dialogue, ("mx log", log))
    assert len(re.findall(r"NOQUEUE: reject: RCPT .*554 5\.7\.1 .*Relay access denied", log)) == len(RELAY_TRICKS), \
        explain(("mx log", log))
    relayed = [e for e in queue(hosts.mx) if any("other.test" in r["address"] for r in e.get("recipients", []))]
    assert not relayed, explain("relay recipients queued on mx", ("mailq", hosts.mx.run("mailq").stdout))


def test_6_relay_denied_to_an_spf_authorised_stranger(hosts):
    """sender-ok passes SPF for partner-strict.example but is not in mynetworks: still no relay."""
    steps = [["EHLO", HELO["ok"]], ["MAIL", "<bob@partner-strict.example>"], ["RCPT", "<user@other.test>"], ["QUIT"]]
    dialogue = smtp("ok", hosts, steps)
    code, text = dialogue.reply("RCPT")
    assert code == 554 and "Relay access denied" in text, explain(dialogue)


def test_6_relay_allowed_from_mynetworks_only(hosts):
    """mail_mynetworks is loopback only: on mx itself the same recipients are accepted at RCPT
    (the session is reset before DATA, so nothing is sent anywhere)."""
    steps = [["EHLO", MX_NAME], ["MAIL", "<root@example.test>"]]
    steps += [["RCPT", "<%s>" % rcpt] for rcpt in RELAY_TRICKS[:1]] + [["RSET"], ["QUIT"]]
    dialogue = smtp("mx", hosts, steps, target="127.0.0.1")
    assert dialogue.reply("RCPT")[0] == 250, explain(dialogue)
    mynetworks = hosts.mx.check_output("postconf -h mynetworks")
    assert mynetworks.replace(" ", "") == "127.0.0.0/8,[::1]/128", mynetworks


def test_7_banner_vrfy_expn_helo(hosts):
    """Banner without version; VRFY and EXPN refused; MAIL before HELO/EHLO refused."""
    dialogue = smtp("bad", hosts, [["MAIL", "<bob@partner-nospf.example>"], ["HELO", HELO["bad"]],
                                   ["CMD", "VRFY root"], ["CMD", "VRFY root@example.test"], ["CMD", "EXPN root"],
                                   ["QUIT"]])
    code, banner = dialogue.banner
    assert code == 220 and banner == "%s ESMTP" % MX_NAME, explain(dialogue)
    assert not re.search(r"\d+\.\d+|postfix|debian", banner, re.I), explain(dialogue)
    code, text = dialogue.reply("MAIL")
    assert code == 503 and text.startswith("5.5.1") and "HELO" in text, explain(dialogue)
    assert dialogue.reply("HELO")[0] == 250, explain(dialogue)
    for code, text in dialogue.replies("CMD"):
        assert 500 <= code <= 502 and text.startswith("5.5."), explain(dialogue)
    assert dialogue.replies("CMD")[0] == (502, "5.5.1 VRFY command is disabled"), explain(dialogue)


@pytest.mark.parametrize("version,ok", [("TLSv1", False), ("TLSv1_1", False), ("TLSv1_2", True), ("TLSv1_3", True)])
def test_8_starttls_versions(hosts, version, ok):
    """STARTTLS is offered on 25; TLS 1.0/1.1 are refused BY THE SERVER (the client allows them at
    SECLEVEL=0 and receives the server's protocol_version alert); TLS 1.2/1.3 succeed."""
    since = time.time()
    dialogue = smtp("bad", hosts, [["EHLO", HELO["bad"]],
                                   ["STARTTLS", {"min": version, "max": version}],
                                   ["EHLO", HELO["bad"]], ["QUIT"]])
    ehlo = dialogue.reply("EHLO")
    assert ehlo[0] == 250 and "STARTTLS" in ehlo[1].split("\n"), explain(dialogue)
    code, text = dialogue.reply("STARTTLS")
    log = mx_log(hosts, since, grep=r"TLS|SSL|connect from")
    if ok:
        expected = {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version]
        assert code == 220 and text.startswith("TLS established: %s " % expected), explain(dialogue, ("mx log", log))
        assert dialogue.replies("EHLO")[1][0] == 250, explain(dialogue)
        assert re.search(r"TLS connection established from .*%s with cipher" % re.escape(expected), log), \
            explain(("mx log", log))
    else:
        assert code is None and "TLSV1_ALERT_PROTOCOL_VERSION" in text, explain(
            "expected the server's protocol_version alert", dialogue, ("mx log", log))
        assert "unsupported protocol" in log, explain("mx did not log its refusal", ("mx log", log))
