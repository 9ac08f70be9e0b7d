"""Check 3x: the attacker's table. A sender that controls its own domain, its own DNS and every
byte of the message tries to get a forgery of partner-strict.example (p=reject) past mx.

Three families, each case with the exact reply asserted:
- injected Authentication-Results: the sender writes mx's own verdict into the message;
- author ambiguity ("Composition Kills", USENIX Security 2020): a From field that a mail client
  and the DMARC check read as two different authors;
- envelope and DKIM tag tricks: quotes, NUL, routes.

The attacker is sender-bad (10.89.200.32): in no SPF record of partner-strict.example. Its
envelope domain for the injection cases is mail.partner-strict.example, which has an A record
and no SPF record: SPF None, and relaxed alignment with partner-strict.example, so a believed
"spf=pass smtp.mailfrom=mail.partner-strict.example" would make DMARC pass.
"""

import re
import time

import pytest

from conftest import (HELO, MX_NAME, by_message_id, explain, header_values, mx_log, queued_with,
                      read_mailbox, show_message, smtp, send_steps, wait_delivered)

VICTIM = "partner-strict.example"           # p=reject, SPF: only sender-ok
ALIGNED_NO_SPF = "mail.partner-strict.example"  # A record, no SPF record
ATTACKER = "partner-nospf.example"          # sender-bad's own domain: no SPF record, p=none
RCPT = "alice@example.test"

DMARC_REJECT = (550, "5.7.1 rejected by DMARC policy for %s" % VICTIM)
FROM_REJECT = (550, "5.7.1 From: must hold exactly one plain author address (RFC 5322 3.6.2, DMARC RFC 7489 6.6.1)")
FROM_ENCODED = (550, "5.7.1 From: an encoded-word inside the address (RFC 2047 5)")
DKIM_TAG_REJECT = (550, "5.7.1 DKIM-Signature: d= or s= is not a plain domain name (RFC 6376 3.5)")
NUL_REJECT = (550, "5.7.1 disallowed character")  # cleanup: message_reject_characters


def raw_message(mid, headers, body="forgery attempt\r\n"):
    """A message from header lines given as they go on the wire (folding kept)."""
    lines = list(headers) + [
        "To: %s" % RCPT,
        "Subject: %s" % mid,
        "Date: Wed, 02 Dec 2026 09:00:00 +0000",
        "Message-ID: <%s>" % mid,
    ]
    return "".join(line + "\r\n" for line in lines) + "\r\n" + body


def send(hosts, who, mail_from, headers, mid):
    """One SMTP transaction from sender ``who``; returns the dialogue."""
    data = raw_message(mid, headers)
    return smtp(who, hosts, send_steps(HELO[who], mail_from, [RCPT], data))


def assert_refused(hosts, dialogue, mid, expected, since, step="DATA"):
    """``step`` got exactly ``expected`` (code, text) and nothing was queued or delivered."""
    code, text = dialogue.reply(step)
    log = mx_log(hosts, since)
    assert (code, text) == expected, explain("%s: got %s %s, want %s %s" % ((step, code, text) + expected),
                                             dialogue, ("mx log", log))
    assert not queued_with(hosts.mx, mid), explain("queued on mx", ("mx log", log))
    assert not by_message_id(read_mailbox(hosts.mx, "alice"), mid), explain("delivered", ("mx log", log))


# ------------------------------------------------------------------------------------------
# 3a: injected Authentication-Results (RFC 8601 5: a border MTA removes what claims to be its own)
# ------------------------------------------------------------------------------------------

SPF_PASS = "spf=pass smtp.mailfrom=%s" % ALIGNED_NO_SPF
INJECTED_AR = [
    # OpenDMARC trusts an A-R whose authserv-id is mx's (TrustedAuthservIDs). Its parser
    # (opendmarc-ar.c, ares_tokenize) compares case-insensitively, skips comments, removes
    # quotes and backslashes and joins "mx . example . test": every spelling below reads as
    # mx.example.test, which is why mx drops every A-R on arrival instead of matching its name.
    ("plain", ["Authentication-Results: %s; %s" % (MX_NAME, SPF_PASS)]),
    ("upper case id", ["Authentication-Results: %s; %s" % (MX_NAME.upper(), SPF_PASS)]),
    ("lower case field name", ["authentication-results: %s; %s" % (MX_NAME, SPF_PASS)]),
    ("comment before the id", ["Authentication-Results: (checked) %s; %s" % (MX_NAME, SPF_PASS)]),
    ("quoted id", ['Authentication-Results: "%s"; %s' % (MX_NAME, SPF_PASS)]),
    ("backslash in the id", ["Authentication-Results: mx\\.example.test; %s" % SPF_PASS]),
    ("id split by spaces", ["Authentication-Results: mx . example . test; %s" % SPF_PASS]),
    ("version after the id", ["Authentication-Results: %s 1; %s" % (MX_NAME, SPF_PASS)]),
    ("folded", ["Authentication-Results:", "\t%s;" % MX_NAME, "\t%s" % SPF_PASS]),
    ("also as ARC-Authentication-Results", ["ARC-Authentication-Results: i=1; %s; %s" % (MX_NAME, SPF_PASS),
                                            "Authentication-Results: %s; %s" % (MX_NAME, SPF_PASS)]),
    # Received-SPF is not dropped (policyd-spf's own is one): OpenDMARC reads only the first,
    # which is always the one policyd-spf prepends above the message's own header.
    ("forged Received-SPF", ["Received-SPF: Pass (mailfrom) identity=mailfrom; client-ip=10.89.200.31; "
                             "helo=%s; envelope-from=bob@%s; receiver=%s;" % (HELO["ok"], ALIGNED_NO_SPF, MX_NAME)]),
]


@pytest.mark.parametrize("case,injected", INJECTED_AR, ids=[c[0] for c in INJECTED_AR])
def test_3a_injected_authentication_results_do_not_pass_dmarc(hosts, run_id, case, injected):
    """A forgery of p=reject partner-strict.example with mx's own verdict written in: 550 5.7.1."""
    since = time.time()
    mid = "c3a-%s-%s@%s" % (re.sub(r"\W+", "-", case), run_id, VICTIM)
    dialogue = send(hosts, "bad", "bob@" + ALIGNED_NO_SPF, ["From: ceo@%s" % VICTIM] + injected, mid)
    assert dialogue.reply("RCPT")[0] == 250, explain("SPF None must not reject at RCPT", dialogue)
    assert_refused(hosts, dialogue, mid, DMARC_REJECT, since)


def test_3a_control_without_injection_is_refused_too(hosts, run_id):
    """The same forgery without any injected field: the 550 the injection tried to avoid."""
    since = time.time()
    mid = "c3a-control-%s@%s" % (run_id, VICTIM)
    dialogue = send(hosts, "bad", "bob@" + ALIGNED_NO_SPF, ["From: ceo@%s" % VICTIM], mid)
    assert_refused(hosts, dialogue, mid, DMARC_REJECT, since)


def test_3a_injected_fields_are_gone_from_delivered_mail(hosts, run_id):
    """Legitimate mail from sender-ok carrying forged verdicts: delivered, and the only
    Authentication-Results in it are the ones mx's milters wrote (no ARC-Authentication-Results)."""
    since = time.time()
    mid = "c3a-strip-%s@%s" % (run_id, VICTIM)
    forged = ["Authentication-Results: %s; dkim=pass header.d=forged-dkim.example" % MX_NAME,
              "Authentication-Results: (x) MX.Example.Test; dmarc=pass header.from=forged-dmarc.example",
              "ARC-Authentication-Results: i=1; %s; spf=pass smtp.mailfrom=forged-arc.example" % MX_NAME,
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=forged-other.example"]
    dialogue = send(hosts, "ok", "bob@" + VICTIM, ["From: bob@%s" % VICTIM] + forged, mid)
    assert dialogue.reply("DATA")[0] == 250, explain(dialogue, ("mx log", mx_log(hosts, since)))
    found = wait_delivered(hosts.mx, "alice", mid)
    assert len(found) == 1, explain(dialogue, ("mx log", mx_log(hosts, since)))
    msg = found[0]
    results = header_values(msg, "Authentication-Results")
    assert "forged" not in show_message(msg), show_message(msg)
    assert not header_values(msg, "ARC-Authentication-Results"), show_message(msg)
    assert results and all(r.startswith(MX_NAME + ";") for r in results), show_message(msg)
    assert any("dmarc=pass" in r and "header.from=%s" % VICTIM in r for r in results), show_message(msg)


# ------------------------------------------------------------------------------------------
# 3b: author ambiguity
# ------------------------------------------------------------------------------------------

AMBIGUOUS_FROM = [
    # (case, From field lines, expected reply). The envelope is sender-bad's own domain
    # (SPF None, p=none): whatever the DMARC check reads as the author decides the outcome.
    ("two authors, two domains", ["From: bob@%s, ceo@%s" % (ATTACKER, VICTIM)], FROM_REJECT),
    ("two mailboxes with names", ['From: "Bob" <bob@%s>, "CEO" <ceo@%s>' % (ATTACKER, VICTIM)], FROM_REJECT),
    ("two authors, one domain", ["From: a@%s, b@%s" % (ATTACKER, ATTACKER)], FROM_REJECT),
    ("group syntax", ["From: Board: ceo@%s;" % VICTIM], FROM_REJECT),
    ("empty group", ["From: undisclosed-recipients:;"], FROM_REJECT),
    ("route portion", ["From: <@%s,@relay.example:ceo@%s>" % (ATTACKER, VICTIM)], FROM_REJECT),
    ("address then address", ["From: <bob@%s>ceo@%s" % (ATTACKER, VICTIM)], FROM_REJECT),
    ("address as unquoted name", ["From: ceo@%s <bob@%s>" % (VICTIM, ATTACKER)], FROM_REJECT),
    ("text after the address", ['From: "Bob" <bob@%s> ceo@%s' % (ATTACKER, VICTIM)], FROM_REJECT),
    ("quoted local part holding @", ['From: "ceo@%s"@%s' % (VICTIM, ATTACKER)], FROM_REJECT),
    ("address in a comment", ["From: bob@%s (ceo@%s)" % (ATTACKER, VICTIM)], FROM_REJECT),
    ("two @", ["From: ceo@%s@%s" % (VICTIM, ATTACKER)], FROM_REJECT),
    ("obsolete spaces around @ and dots", ["From: ceo @ partner-strict . example"], FROM_REJECT),
    ("address folded inside <>", ["From: <ceo@%s" % VICTIM, " .%s>" % ATTACKER], FROM_REJECT),
    ("address literal", ["From: bob@[10.89.200.32]"], FROM_REJECT),
    ("empty", ["From:"], FROM_REJECT),
    ("null address", ["From: <>"], FROM_REJECT),
    ("unbalanced quote", ['From: "Bob <ceo@%s>' % VICTIM], FROM_REJECT),
    ("encoded-word as the whole address",
     ["From: =?utf-8?b?Y2VvQHBhcnRuZXItc3RyaWN0LmV4YW1wbGU=?="], FROM_ENCODED),
    ("encoded-word inside <>", ["From: CEO <=?utf-8?q?ceo=40partner-strict.example?=@%s>" % ATTACKER], FROM_ENCODED),
    ("NUL in the address", ["From: ceo@%s\x00@%s" % (VICTIM, ATTACKER)], NUL_REJECT),
    ("a second From field", ["From: bob@%s" % ATTACKER, "From: ceo@%s" % VICTIM],
     (550, "5.7.1 Command rejected")),
]


@pytest.mark.parametrize("case,lines,expected", AMBIGUOUS_FROM, ids=[c[0] for c in AMBIGUOUS_FROM])
def test_3b_ambiguous_author_is_refused(hosts, run_id, case, lines, expected):
    since = time.time()
    mid = "c3b-%s-%s@%s" % (re.sub(r"\W+", "-", case), run_id, ATTACKER)
    dialogue = send(hosts, "bad", "bob@" + ATTACKER, lines, mid)
    assert dialogue.reply("RCPT")[0] == 250, explain(dialogue)
    assert_refused(hosts, dialogue, mid, expected, since)


PLAIN_FROM = [
    ("bare address", ["From: bob@%s" % ATTACKER]),
    ("name and address", ["From: Bob Example <bob@%s>" % ATTACKER]),
    ("quoted name with a comma", ['From: "Example, Bob" <bob@%s>' % ATTACKER]),
    ("name with a period", ["From: Bob Q. Example <bob@%s>" % ATTACKER]),
    ("non-ASCII name, base64 encoded-word", ["From: =?UTF-8?B?w4lsb8Ovc2UgTcO8bGxlcg==?= <bob@%s>" % ATTACKER]),
    ("non-ASCII name, Q encoded-word", ["From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <bob@%s>" % ATTACKER]),
    ("address with a trailing comment", ["From: bob@%s (Bob Example)" % ATTACKER]),
    ("folded before the address", ["From: Bob Example", " <bob@%s>" % ATTACKER]),
    ("mailing-list style Sender", ['From: "Bob via Staff" <staff@%s>' % ATTACKER, "Sender: staff-bounces@%s" % ATTACKER,
                                   "Reply-To: bob@%s" % ATTACKER, "List-Id: <staff.%s>" % ATTACKER]),
]


@pytest.mark.parametrize("case,lines", PLAIN_FROM, ids=[c[0] for c in PLAIN_FROM])
def test_3b_plain_author_is_accepted(hosts, run_id, case, lines):
    since = time.time()
    mid = "c3b-ok-%s-%s@%s" % (re.sub(r"\W+", "-", case), run_id, ATTACKER)
    dialogue = send(hosts, "bad", "bob@" + ATTACKER, lines, mid)
    code, text = dialogue.reply("DATA")
    assert code == 250 and text.startswith("2.0.0 Ok: queued"), explain(dialogue, ("mx log", mx_log(hosts, since)))
    assert len(wait_delivered(hosts.mx, "alice", mid)) == 1, explain(dialogue, ("mx log", mx_log(hosts, since)))


# ------------------------------------------------------------------------------------------
# 3c: envelope and DKIM tag tricks
# ------------------------------------------------------------------------------------------

ENVELOPE_TRICKS = [
    # (case, MAIL FROM argument, step where the refusal comes, expected reply)
    ("quoted local part holding @", '<"ceo@%s"@%s>' % (VICTIM, ATTACKER), "RCPT",
     # The reply shows the address as Postfix reads it (internal form, unquoted).
     (554, "5.1.7 <ceo@%s@%s>: Sender address rejected: more than one @ or a quote in the envelope sender"
      % (VICTIM, ATTACKER))),
    ("NUL in the address", "<ceo@%s\x00@%s>" % (VICTIM, ATTACKER), "MAIL",
     (501, "5.1.7 Bad sender address syntax")),
    ("source route to the victim", "<@%s:ceo@%s>" % (ATTACKER, VICTIM), "RCPT",
     (550, "5.7.23 <alice@example.test>: Recipient address rejected: Message rejected due to: SPF fail - not authorized.")),
]


@pytest.mark.parametrize("case,mail_from,step,expected", ENVELOPE_TRICKS, ids=[c[0] for c in ENVELOPE_TRICKS])
def test_3c_envelope_tricks_are_refused(hosts, run_id, case, mail_from, step, expected):
    since = time.time()
    mid = "c3c-%s-%s@%s" % (re.sub(r"\W+", "-", case), run_id, ATTACKER)
    data = raw_message(mid, ["From: ceo@%s" % VICTIM])
    steps = [["EHLO", HELO["bad"]], ["MAIL", mail_from], ["RCPT", "<%s>" % RCPT], ["DATA", data], ["QUIT"]]
    dialogue = smtp("bad", hosts, steps)
    code, text = dialogue.reply(step)
    assert (code, text[:len(expected[1])]) == expected, explain(
        "%s: got %s %s, want %s %s" % ((step, code, text) + expected), dialogue, ("mx log", mx_log(hosts, since)))
    assert dialogue.reply("DATA")[0] != 250, explain(dialogue)
    assert not by_message_id(read_mailbox(hosts.mx, "alice"), mid)


DKIM_TAGS = [
    ("quote in d=", 'd=%s".%s; s=e2e2026' % (VICTIM, ATTACKER)),
    ("backslash in d=", "d=partner-strict\\.example; s=e2e2026"),
    ("parenthesis in s=", "d=%s; s=e2e2026(x)" % VICTIM),
    ("NUL in d=", "d=%s\x00.%s; s=e2e2026" % (VICTIM, ATTACKER)),
]


@pytest.mark.parametrize("case,tags", DKIM_TAGS, ids=[c[0] for c in DKIM_TAGS])
def test_3c_dkim_signature_with_unplain_d_or_s_is_refused(hosts, run_id, case, tags):
    since = time.time()
    mid = "c3c-dkim-%s-%s@%s" % (re.sub(r"\W+", "-", case), run_id, ATTACKER)
    signature = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; %s; h=from:to:subject; bh=AAAA; b=AAAA" % tags
    dialogue = send(hosts, "bad", "bob@" + ATTACKER, [signature, "From: bob@%s" % ATTACKER], mid)
    expected = NUL_REJECT if "\x00" in tags else DKIM_TAG_REJECT
    assert_refused(hosts, dialogue, mid, expected, since)
