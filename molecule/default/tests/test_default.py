"""State checks of one converged MX (molecule default scenario).

Runs through testinfra's podman backend (much faster than its ansible backend).
Every assertion message shows what was seen, so a red run explains itself.
"""

import hashlib
import json
import os
import re
import textwrap

import pytest

testinfra_hosts = ["podman://mailward-molecule-mx"]

HOSTNAME = "mx.example.test"


def postconf(host, name):
    """The effective value of one main.cf parameter, as Postfix reads it."""
    out = host.check_output("postconf -h %s", name)
    return [item.strip() for item in out.replace("\n", " ").split(",") if item.strip()]


def smtp_dialogue(host, script):
    """Run a Python SMTP client inside the container; return its printed transcript."""
    code = textwrap.dedent(script)
    cmd = host.run("python3 -c %s", code)
    assert cmd.rc == 0, "SMTP client failed:\nstdout:\n%s\nstderr:\n%s" % (cmd.stdout, cmd.stderr)
    return cmd.stdout


@pytest.mark.parametrize("service", ["postfix", "opendkim", "opendmarc", "mailward-fromcheck"])
def test_service_enabled_and_running(host, service):
    svc = host.service(service)
    assert svc.is_running, host.run("systemctl status %s --no-pager", service).stdout
    assert svc.is_enabled


MILTER_SOCKETS = {"opendkim": "/var/spool/postfix/opendkim/opendkim.sock",
                  "opendmarc": "/var/spool/postfix/opendmarc/opendmarc.sock",
                  "mailward-fromcheck": "/var/spool/postfix/mailward-fromcheck/fromcheck.sock"}


def test_listening(host):
    assert host.socket("tcp://0.0.0.0:25").is_listening, host.run("ss -ltnp").stdout


@pytest.mark.parametrize("milter", sorted(MILTER_SOCKETS))
def test_milters_listen_on_unix_sockets_postfix_can_use(host, milter):
    """Debian default: a unix socket inside the Postfix chroot, reachable by postfix only."""
    path = MILTER_SOCKETS[milter]
    sock = host.file(path)
    assert sock.is_socket, host.run("ls -la %s", path.rsplit("/", 1)[0]).stdout
    assert sock.user == milter and sock.mode & 0o007 == 0, (sock.user, oct(sock.mode))
    probe = host.run("runuser -u postfix -- python3 -c %s",
                     "import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r); print('ok')" % path)
    assert probe.stdout.strip() == "ok", probe.stderr
    nobody = host.run("runuser -u nobody -- python3 -c %s",
                      "import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r)" % path)
    assert nobody.rc != 0, "a stranger could connect to %s" % path


def test_no_milter_tcp_port_is_open(host):
    listening = host.run("ss -ltnH").stdout
    assert not [line for line in listening.splitlines() if re.search(r":(8891|8893)\s", line)], listening


def test_policyd_spf_user(host):
    user = host.user("policyd-spf")
    assert user.exists
    assert user.shell == "/bin/false", user.shell
    assert user.group == "policyd-spf", user.group
    assert not host.file(user.home).exists, "home %s exists" % user.home


def test_relay_control_before_policy_check(host):
    relay = postconf(host, "smtpd_relay_restrictions")
    assert relay == ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"], relay
    recipient = postconf(host, "smtpd_recipient_restrictions")
    policy = "check_policy_service unix:private/policyd-spf"
    assert policy in recipient, recipient
    assert recipient.index("reject_unauth_destination") < recipient.index(policy), recipient
    # The default: mynetworks clients are permitted before the check (documented choice).
    assert recipient.index("permit_mynetworks") < recipient.index(policy), recipient


def test_policy_service_in_master_cf(host):
    master = host.check_output("postconf -M policyd-spf/unix")
    fields = master.split()
    assert fields[:7] == ["policyd-spf", "unix", "-", "n", "n", "-", "0"], master
    # The launcher: dnspython's cache on, then the package's own entry point (/usr/bin/policyd-spf's).
    assert "spawn user=policyd-spf argv=/usr/libexec/mailward/policyd-spf " in master, master
    assert postconf(host, "policyd-spf_time_limit") == ["3600"]
    launcher = host.file("/usr/libexec/mailward/policyd-spf")
    assert (launcher.user, launcher.group, launcher.mode) == ("root", "root", 0o755)
    assert launcher.content_string.startswith("#!/usr/bin/python3\n"), launcher.content_string
    assert "from spf_engine.policyd_spf import main" in host.file("/usr/bin/policyd-spf").content_string


def test_milters_in_order(host):
    assert postconf(host, "smtpd_milters") == ["unix:/opendkim/opendkim.sock", "unix:/opendmarc/opendmarc.sock"]
    assert postconf(host, "non_smtpd_milters") == ["unix:/opendkim/opendkim.sock"]
    assert postconf(host, "milter_default_action") == ["tempfail"]
    assert postconf(host, "milter_protocol") == ["6"]


def test_spf_policy_enforces(host):
    conf = host.file("/etc/postfix-policyd-spf-python/policyd-spf.conf").content_string
    assert re.search(r"^TestOnly = 1$", conf, re.M), conf
    assert re.search(r"^Mail_From_reject = Fail$", conf, re.M), conf
    assert re.search(r"^TempError_Defer = True$", conf, re.M), conf


def test_opendmarc_settings(host):
    conf = host.file("/etc/opendmarc.conf").content_string
    for line in (
        r"AuthservID\s+%s" % HOSTNAME,
        r"TrustedAuthservIDs\s+%s" % HOSTNAME,
        r"RejectFailures\s+true",
        r"RequiredHeaders\s+true",
        r"IgnoreAuthenticatedClients\s+true",
        r"SPFIgnoreResults\s+false",
        r"SPFSelfValidate\s+true",
        r"Socket\s+local:/var/spool/postfix/opendmarc/opendmarc.sock",
    ):
        assert re.search(r"^" + line + r"$", conf, re.M), "%s missing in:\n%s" % (line, conf)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/dkimkeys/example.test/mw2026r.private",
        "/etc/dkimkeys/example.test/mw2026e.private",
        "/etc/dkimkeys/example.org/mailward.private",
    ],
)
def test_dkim_key_private(host, path):
    """Keys opendkim:opendkim 0600 in root:opendkim 0750 directories: the opendkim user reads its
    keys but cannot add, rename or replace anything root later touches (dkim_keys module)."""
    key = host.file(path)
    assert key.exists and not key.is_symlink, path
    assert (key.user, key.group, oct(key.mode)) == ("opendkim", "opendkim", "0o600"), (key.user, key.group, oct(key.mode))
    for directory in ("/etc/dkimkeys", path.rsplit("/", 1)[0]):
        d = host.file(directory)
        assert d.is_directory and not d.is_symlink, directory
        assert (d.user, d.group, oct(d.mode)) == ("root", "opendkim", "0o750"), (directory, d.user, d.group, oct(d.mode))


def test_dkim_key_directory_survives_package_upgrades(host):
    """Debian's postinst resets /etc/dkimkeys to opendkim 0700 unless dpkg has a stat override."""
    out = host.check_output("dpkg-statoverride --list /etc/dkimkeys")
    assert out.strip() == "root opendkim 750 /etc/dkimkeys", out


def test_dkim_rsa_keys_are_2048_bits(host):
    out = host.check_output("openssl pkey -in /etc/dkimkeys/example.test/mw2026r.private -noout -text")
    assert "2048 bit" in out.splitlines()[0], out.splitlines()[0]


def test_signing_table_has_one_line_per_domain(host):
    table = host.file("/etc/opendkim/SigningTable").content_string
    lines = sorted(line for line in table.splitlines() if line and not line.startswith("#"))
    assert lines == [
        "*@example.org mailward._domainkey.example.org",
        "*@example.test mw2026r._domainkey.example.test",
    ], lines
    assert "*@* " not in table and "\n* " not in table


def test_banner_has_no_version(host):
    out = smtp_dialogue(host, """
        import socket
        s = socket.create_connection(("127.0.0.1", 25), 10)
        print(s.recv(512).decode().strip())
        s.sendall(b"QUIT\\r\\n")
    """)
    assert out.strip() == "220 %s ESMTP" % HOSTNAME, out
    assert not re.search(r"\d+\.\d+", out), out
    assert "Postfix" not in out and "Debian" not in out, out


def test_smtp_session_signs_and_delivers(host):
    host.run("rm -f /var/mail/root")
    out = smtp_dialogue(host, """
        import smtplib
        s = smtplib.SMTP("127.0.0.1", 25, local_hostname="client.example.test")
        print("EHLO", s.ehlo()[0])
        print("STARTTLS offered", s.has_extn("starttls"))
        print("VRFY", s.verify("root")[0])
        msg = ("From: alice@example.test\\r\\nTo: root@example.test\\r\\nSubject: molecule\\r\\n"
               "Message-ID: <molecule-1@example.test>\\r\\nDate: Mon, 23 Nov 2026 09:00:00 +0000\\r\\n\\r\\nhello\\r\\n")
        print("REFUSED", s.sendmail("alice@example.test", ["root@example.test"], msg))
        s.quit()
    """)
    assert "EHLO 250" in out, out
    assert "STARTTLS offered True" in out, out
    assert "VRFY 502" in out, out
    assert "REFUSED {}" in out, out
    mailbox = host.run(
        "for i in $(seq 1 20); do grep -q molecule-1 /var/mail/root 2>/dev/null && break; sleep 0.5; done;"
        " cat /var/mail/root"
    ).stdout
    assert "Message-ID: <molecule-1@example.test>" in mailbox, mailbox or host.run("journalctl -n 40 --no-pager").stdout
    assert re.search(r"DKIM-Signature: v=1; a=rsa-sha256;.*d=example\.test;\s+s=mw2026r;", mailbox, re.S), mailbox


SUBMISSION_CLIENT = """
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def tls():
    s = smtplib.SMTP("127.0.0.1", 587, local_hostname="client.example.test")
    s.starttls(context=ctx); s.ehlo(); return s
"""


def test_submission_offers_auth_only_after_tls(host):
    out = smtp_dialogue(host, SUBMISSION_CLIENT + """
s = smtplib.SMTP("127.0.0.1", 587, local_hostname="client.example.test"); s.ehlo()
print("AUTH-BEFORE-TLS", s.has_extn("auth"))
print("MAIL-BEFORE-TLS", s.docmd("MAIL FROM:<alice@example.test>")[0])
s = tls()
print("AUTH-AFTER-TLS", s.esmtp_features.get("auth", "").split())
print("TLS", s.sock.version())
""")
    assert "AUTH-BEFORE-TLS False" in out, out
    assert "MAIL-BEFORE-TLS 530" in out, out
    assert "AUTH-AFTER-TLS ['PLAIN', 'LOGIN']" in out, out
    assert "TLS TLSv1.3" in out or "TLS TLSv1.2" in out, out


def test_submission_login_and_sender_ownership(host):
    host.run("rm -f /var/mail/root")
    out = smtp_dialogue(host, SUBMISSION_CLIENT + """
s = tls()
try:
    s.login("alice@example.test", "wrong-password"); print("WRONG accepted")
except smtplib.SMTPAuthenticationError as e:
    print("WRONG", e.smtp_code)
s = tls(); print("LOGIN", s.login("alice@example.test", "molecule-alice-pw")[0])
print("OTHER-SENDER", s.docmd("MAIL FROM:<bob@example.org>")[0], s.docmd("RCPT TO:<root@example.test>")[0])
s.rset()
print("EXTRA-SENDER", s.docmd("MAIL FROM:<sales@example.test>")[0], s.docmd("RCPT TO:<root@example.test>")[0])
s.rset()
msg = ("From: alice@example.test\\r\\nTo: root@example.test\\r\\nSubject: submitted\\r\\n"
       "Message-ID: <submission-1@example.test>\\r\\nDate: Mon, 23 Nov 2026 09:00:00 +0000\\r\\n\\r\\nhi\\r\\n")
print("SENT", s.sendmail("alice@example.test", ["root@example.test"], msg))
""")
    assert "WRONG 535" in out, out
    assert "LOGIN 235" in out, out
    # Submission refuses a sender at MAIL FROM (smtpd_delay_reject=no there); RCPT then needs MAIL.
    assert "OTHER-SENDER 553 503" in out, out
    assert "EXTRA-SENDER 250 250" in out, out
    assert "SENT {}" in out, out
    mailbox = host.run(
        "for i in $(seq 1 20); do grep -q submission-1 /var/mail/root 2>/dev/null && break; sleep 0.5; done;"
        " cat /var/mail/root"
    ).stdout
    assert "<submission-1@example.test>" in mailbox, mailbox
    assert re.search(r"DKIM-Signature: v=1; a=rsa-sha256;.*d=example\.test;", mailbox, re.S), mailbox


def test_no_auth_on_port_25(host):
    out = smtp_dialogue(host, SUBMISSION_CLIENT + """
s = smtplib.SMTP("127.0.0.1", 25, local_hostname="client.example.test"); s.starttls(context=ctx); s.ehlo()
print("AUTH-ON-25", s.has_extn("auth"))
""")
    assert "AUTH-ON-25 False" in out, out


# ------------------------------------------------------------------------------------------
# submission: the header From and the envelope sender belong to the login; AUTH rate limit
# ------------------------------------------------------------------------------------------

ALICE = ("alice@example.test", "molecule-alice-pw")
FROMCHECK_SOCKET = MILTER_SOCKETS["mailward-fromcheck"]


def submit(host, login, cases):
    """Log in on 587 and try each (envelope sender, From lines, Message-ID) in one session.

    Returns one dict per case with the replies seen: mail, then rcpt and data if reached.
    """
    out = smtp_dialogue(host, SUBMISSION_CLIENT + """
import json
s = tls(); s.login(%r, %r)
results = []
for sender, from_lines, mid in %r:
    r = {"mail": s.docmd("MAIL FROM:<%%s>" %% sender)}
    if r["mail"][0] == 250:
        r["rcpt"] = s.docmd("RCPT TO:<root@example.test>")
        if r["rcpt"][0] == 250:
            r["data"] = s.data(from_lines + "To: root@example.test\\r\\nSubject: from check\\r\\n"
                               "Message-ID: <%%s>\\r\\nDate: Mon, 23 Nov 2026 09:00:00 +0000\\r\\n\\r\\nhi\\r\\n" %% mid)
    s.rset()
    results.append({k: [v[0], v[1].decode()] for k, v in r.items()})
print(json.dumps(results))
""" % (login[0], login[1], cases))
    return json.loads(out.strip().splitlines()[-1])


def delivered(host, marker):
    """Whether a message whose Message-ID holds ``marker`` reached root's mailbox."""
    return host.run("grep -q %s /var/mail/root", marker).rc == 0


def test_submission_refuses_the_null_sender(host):
    """MAIL FROM:<> skips reject_sender_login_mismatch; an access map refuses it at MAIL FROM."""
    results = submit(host, ALICE, [("", 'From: "Alice" <alice@example.test>\r\n', "fc-null@example.test")])
    assert results[0]["mail"] == [550, "5.7.1 <>: Sender address rejected: null sender not accepted on submission"], results


def test_submission_header_from_belongs_to_the_login(host):
    host.run("rm -f /var/mail/root")
    cases = [
        ("alice@example.test", "From: ceo@example.org\r\n", "fc-ceo-org@example.test"),
        ("alice@example.test", "From: CEO <ceo@example.test>\r\n", "fc-ceo-test@example.test"),
        ("alice@example.test", "From: alice@example.test, ceo@example.org\r\n", "fc-two@example.test"),
        ("alice@example.test", "From: alice@example.test\r\nFrom: ceo@example.org\r\n", "fc-twice@example.test"),
        ("alice@example.test", 'From: "Alice" <alice@example.test>\r\n', "fc-alice@example.test"),
        ("alice@example.test", "From: sales@example.test\r\n", "fc-sales@example.test"),
    ]
    ceo_org, ceo_test, two, twice, own, sales = submit(host, ALICE, cases)
    assert ceo_org["data"] == [550, "5.7.1 header From <ceo@example.org> not owned by login alice@example.test"], ceo_org
    assert ceo_test["data"] == [550, "5.7.1 header From <ceo@example.test> not owned by login alice@example.test"], ceo_test
    # Refused by the milter, or before it by the postfix role's header_checks when those are in.
    assert two["data"] in (
        [550, "5.7.1 header From not accepted (more than one address): use one address, user@domain or Name <user@domain>"],
        [550, "5.7.1 From: must hold exactly one plain author address (RFC 5322 3.6.2, DMARC RFC 7489 6.6.1)"],
    ), two
    assert twice["data"] == [550, "5.7.1 message with 2 From headers: exactly one is allowed"], twice
    for result in (own, sales):
        assert result["data"][0] == 250 and result["data"][1].startswith("2.0.0 Ok: queued as "), result
    host.run("for i in $(seq 1 20); do grep -q fc-sales /var/mail/root 2>/dev/null && break; sleep 0.5; done")
    assert delivered(host, "fc-alice") and delivered(host, "fc-sales"), host.run("cat /var/mail/root").stdout
    for marker in ("fc-ceo-org", "fc-ceo-test", "fc-two", "fc-twice"):
        assert not delivered(host, marker), marker
    log = host.run("journalctl -u mailward-fromcheck --no-pager -q -n 20").stdout
    assert "reject: login=alice@example.test: 550 5.7.1 header From <ceo@example.org> not owned" in log, log


def test_submission_from_check_fails_closed(host):
    """The milter down: submission is refused with a 4xx (milter_default_action = tempfail)."""
    stop = host.run("systemctl stop mailward-fromcheck")
    try:
        # Postfix connects to the session's milters at CONNECT; without them STARTTLS is refused,
        # and without TLS there is no AUTH and no MAIL.
        out = smtp_dialogue(host, SUBMISSION_CLIENT + """
s = smtplib.SMTP("127.0.0.1", 587, local_hostname="client.example.test")
for command in ("EHLO client.example.test", "STARTTLS", "MAIL FROM:<alice@example.test>"):
    code, text = s.docmd(command)
    print(command.split()[0], code, text.decode().splitlines()[-1])
""")
    finally:
        host.run("systemctl start mailward-fromcheck; for i in $(seq 1 20); do test -S %s && break; sleep 0.5; done",
                 FROMCHECK_SOCKET)
    assert stop.rc == 0, stop.stderr
    assert out.splitlines()[1:] == ["STARTTLS 454 4.3.0 Try again later",
                                    "MAIL 530 5.7.0 Must issue a STARTTLS command first"], out
    log = host.run("journalctl --no-pager -q -n 30 -t postfix/submission/smtpd").stdout
    assert "warning: connect to Milter service unix:/mailward-fromcheck/fromcheck.sock" in log, log
    # Port 25 does not run the check: it still answers.
    assert postconf(host, "smtpd_milters") == ["unix:/opendkim/opendkim.sock", "unix:/opendmarc/opendmarc.sock"]


def test_submission_from_check_runs_on_submission_only(host):
    """Hand-off: the postfix role keeps submission-only milters out of smtpd_milters."""
    assert postconf(host, "mailward_submission_milters") == [
        "unix:/mailward-fromcheck/fromcheck.sock", "unix:/opendkim/opendkim.sock", "unix:/opendmarc/opendmarc.sock"]
    assert "unix:/mailward-fromcheck/fromcheck.sock" not in postconf(host, "smtpd_milters")
    master = host.check_output("postconf -M submission/inet")
    for option in ("smtpd_milters=$mailward_submission_milters", "smtpd_delay_reject=no",
                   "smtpd_sender_restrictions=reject_sender_login_mismatch,reject_non_fqdn_sender,"
                   "check_sender_access,texthash:/etc/postfix/mailward-submission-sender-access"):
        assert "-o " + option in master, (option, master)
    warnings = host.run("postconf -n 2>&1 >/dev/null").stdout
    assert warnings == "", warnings


def test_from_check_runs_unprivileged(host):
    pid = host.check_output("systemctl show -P MainPID mailward-fromcheck")
    user = host.check_output("ps -o user= -p %s", pid).strip()
    assert user == "mailward-fromcheck", user
    account = host.user("mailward-fromcheck")
    assert account.shell in ("/usr/sbin/nologin", "/sbin/nologin"), account.shell
    assert "mailward-fromcheck" in host.user("postfix").groups, host.user("postfix").groups


def test_submission_auth_rate_limit(host):
    """From an address outside mynetworks (those are exempt): the AUTH past the limit is a 4xx.

    The scenario sets submission_auth_rate_limit to 3 (the role's default is 30 a minute).
    """
    ip = host.check_output("ip -4 -o addr show scope global").split()[3].split("/")[0]
    out = smtp_dialogue(host, SUBMISSION_CLIENT + """
import base64
token = base64.b64encode(b"\\0alice@example.test\\0molecule-alice-pw").decode()
for attempt in range(4):
    s = smtplib.SMTP(%r, 587, local_hostname="client.example.test", source_address=(%r, 0))
    s.starttls(context=ctx); s.ehlo()
    code, text = s.docmd("AUTH PLAIN " + token)
    print("AUTH", code, text.decode())
    s.close()
""" % (ip, ip))
    replies = [line.split(" ", 2)[1:] for line in out.splitlines() if line.startswith("AUTH ")]
    assert replies[:3] == [["235", "2.7.0 Authentication successful"]] * 3, out
    assert replies[3] == ["450", "4.7.1 Error: too many AUTH commands from %s" % ip], out
    master = host.check_output("postconf -M submission/inet")
    assert "-o smtpd_client_auth_rate_limit=3" in master, master


def test_sasl_users_file_holds_only_hashes(host):
    users = host.file("/etc/dovecot/mailward-users")
    assert users.mode == 0o640 and users.user == "root" and users.group == "dovecot", (oct(users.mode), users.user)
    content = host.check_output("cat /etc/dovecot/mailward-users")
    assert "molecule-alice-pw" not in content and "molecule-bob-pw" not in content
    assert re.search(r"^alice@example\.test:\{SHA512-CRYPT\}\$6\$", content, re.M), content
    # Random salts (earlier versions used sha256(login)[:16]: one login and password, one hash on
    # every install). That re-runs keep them is molecule's idempotence step.
    for login in ("alice@example.test", "bob@example.org"):
        found = re.search(r"^%s:\{SHA512-CRYPT\}(\$6\$\S+?)::::::$" % re.escape(login), content, re.M)
        assert found, content
        salt = found.group(1).split("$")[-2]
        assert len(salt) == 16 and salt != hashlib.sha256(login.encode()).hexdigest()[:16], found.group(0)


def test_restart_drains_instead_of_killing(host):
    """systemctl restart postfix runs mailward's graceful stop; idle, it is quick and complete."""
    unit = "postfix@-.service"
    exec_stop = host.check_output("systemctl show %s -P ExecStop", unit)
    assert "/usr/local/sbin/mailward-postfix-drain 10" in exec_stop, exec_stop
    since = int(host.check_output("date +%s")) - 1
    restart = host.run("systemctl restart postfix")
    log = host.run("journalctl --no-pager -q -t postfix/mailward-drain --since @%s", str(since)).stdout
    assert restart.rc == 0, restart.stderr + log
    assert re.search(r"stopping master \d+", log) and "the Postfix mail system is stopped" in log, log
    assert "still busy" not in log, log
    out = smtp_dialogue(host, """
        import smtplib
        print(smtplib.SMTP("127.0.0.1", 25, local_hostname="client.example.test", timeout=20).noop()[0])
    """)
    assert out.strip() == "250", out


# ------------------------------------------------------------------------------------------
# resolver role: a local Unbound, and the host resolves through it
# ------------------------------------------------------------------------------------------


def test_unbound_listens_on_loopback_only(host):
    assert host.service("unbound").is_running and host.service("unbound").is_enabled
    # Every socket on port 53, UDP and TCP (ss shows no process names in the container).
    listening = host.check_output("ss -lntuH 'sport = :53'")
    sockets = [line.split()[4] for line in listening.splitlines()]
    assert len(sockets) >= 2 and all(s == "127.0.0.1:53" for s in sockets), listening


def test_host_and_postfix_chroot_resolve_through_unbound(host):
    for path in ("/etc/resolv.conf", "/var/spool/postfix/etc/resolv.conf"):
        servers = [line.split()[1] for line in host.file(path).content_string.splitlines()
                   if line.startswith("nameserver")]
        assert servers == ["127.0.0.1"], (path, servers)
    # The forwarder of this scenario (podman's resolver on the network's gateway) is configured
    # and answers through Unbound: the packages installed after the resolver role came that way.
    forwards = host.check_output("unbound-control list_forwards")
    assert re.search(r"^\. IN forward \d+\.\d+\.\d+\.1$", forwards, re.M), forwards
    requests = host.check_output("unbound-control stats_noreset")
    queries = int(re.search(r"^total\.num\.queries=(\d+)$", requests, re.M).group(1))
    assert queries > 0, requests


RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.mark.parametrize("step,changes", [("new-host", None), ("converged", 0)])
def test_check_diff_ran(step, changes):
    """The side_effect steps (check-new-host.yml, check-converged.yml) ran in this scenario run and
    their ansible-playbook site.yml --check --diff completed (and, converged, changed nothing).
    prepare.yml removes the logs first, so a step molecule skipped leaves none."""
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "check-diff-%s.log" % step)
    assert os.path.exists(path), "%s: no log, the %s check step did not run" % (path, step)
    with open(path, encoding="utf-8") as handle:
        recap = RECAP.findall(handle.read())
    assert recap, "%s: no play recap" % path
    assert all(int(unreachable) == 0 and int(failed) == 0 for _, _, unreachable, failed in recap), recap
    if changes is not None:
        assert all(int(changed) == changes for _, changed, _, _ in recap), recap
