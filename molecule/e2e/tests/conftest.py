"""Shared helpers of the e2e checks: hosts, SMTP dialogues, mailboxes, queues, logs, polling.

Everything talks to the containers through testinfra's podman backend (podman exec). SMTP
dialogues run INSIDE the client containers (smtp_client.py is copied there), so the MX sees the
real client addresses. Every helper that waits polls; nothing sleeps a fixed time.
"""

import base64
import email
import email.policy
import email.utils
import json
import os
import re
import shlex
import subprocess
import tempfile
import time
import mailbox as mboxlib

import pytest
import testinfra

NAMES = {
    "ns": "mailward-e2e-ns",
    "mx": "mailward-e2e-mx",
    "ok": "mailward-e2e-sender-ok",
    "bad": "mailward-e2e-sender-bad",
}
IP = {"ns": "10.89.200.53", "mx": "10.89.200.25", "ok": "10.89.200.31", "bad": "10.89.200.32"}
MX_NAME = "mx.example.test"
HELO = {"ok": "mail.partner-strict.example", "bad": "mail.partner-nospf.example", "mx": MX_NAME}
CLIENT = "/usr/local/bin/e2e-smtp"
HERE = os.path.dirname(os.path.abspath(__file__))
# Identifiers of the mail services in mx's journal (journalctl -t).
MX_LOG_IDS = ("postfix/smtpd", "postfix/cleanup", "postfix/qmgr", "postfix/local", "postfix/smtp",
              "postfix/postfix-script", "postfix/master", "postfix/mailward-drain", "policyd-spf", "opendkim", "opendmarc")


def wait_for(probe, timeout=60.0, interval=0.5, what="condition"):
    """Call probe() until it returns something truthy; return (value, seconds). Never raises."""
    start = time.monotonic()
    value = probe()
    while not value and time.monotonic() - start < timeout:
        time.sleep(interval)
        value = probe()
    return value, time.monotonic() - start


class Hosts:
    """testinfra hosts by short name: hosts.mx, hosts.ok, hosts.bad, hosts.ns."""

    def __init__(self):
        for short, name in NAMES.items():
            setattr(self, short, testinfra.get_host("podman://" + name))


@pytest.fixture(scope="session")
def hosts():
    """The four containers; the SMTP client script is copied into the three mail hosts."""
    found = Hosts()
    for short in ("mx", "ok", "bad"):
        subprocess.run(["podman", "cp", os.path.join(HERE, "smtp_client.py"),
                        "%s:%s" % (NAMES[short], CLIENT)], check=True)
    return found


@pytest.fixture(scope="session")
def run_id():
    """A tag unique to this verify run: Message-IDs never collide with an earlier run's."""
    return "r%d" % int(time.time())


# ------------------------------------------------------------------------------------------
# SMTP dialogues
# ------------------------------------------------------------------------------------------


class Dialogue:
    """The result of smtp_client.py: banner, steps [op, arg, code, text] and a transcript."""

    def __init__(self, data, client):
        self.data = data
        self.client = client
        self.banner = data.get("banner")
        self.steps = data.get("steps", [])
        self.transcript = data.get("transcript", "")

    def replies(self, op, arg=None):
        """Every (code, text) for steps ``op`` (and ``arg`` when given), in order."""
        return [(s[2], s[3]) for s in self.steps if s[0] == op and (arg is None or s[1] == arg)]

    def reply(self, op, arg=None):
        """The (code, text) of the first step ``op`` (``arg``); (None, 'step not reached')."""
        found = self.replies(op, arg)
        return found[0] if found else (None, "step %s %s not reached" % (op, arg or ""))

    def __str__(self):
        return "SMTP dialogue from %s:\n%s" % (self.client, self.transcript)


def smtp(host_short, hosts, steps, target=None, port=25, dkim=None, timeout=30):
    """Run a scripted SMTP session from container ``host_short`` to ``target`` (mx by default)."""
    spec = {"host": target or IP["mx"], "port": port, "steps": steps, "timeout": timeout}
    if dkim:
        spec["dkim"] = dkim
    host = getattr(hosts, host_short)
    cmd = host.run("python3 %s %s", CLIENT, json.dumps(spec))
    assert cmd.rc == 0, "SMTP client failed on %s:\n%s\n%s" % (host_short, cmd.stdout, cmd.stderr)
    return Dialogue(json.loads(cmd.stdout), NAMES[host_short])


def message(mid, sender, rcpt, subject=None, body="e2e test message\r\n", extra_headers=()):
    """An RFC 5322 message with CRLF line ends and the given Message-ID (<mid>)."""
    headers = [
        ("From", sender),
        ("To", rcpt),
        ("Subject", subject or mid),
        ("Date", email.utils.formatdate(localtime=False)),
        ("Message-ID", "<%s>" % mid),
    ] + list(extra_headers)
    return "".join("%s: %s\r\n" % item for item in headers) + "\r\n" + body


def send_steps(helo, mail_from, rcpts, data):
    """EHLO, MAIL, RCPT..., DATA, QUIT."""
    steps = [["EHLO", helo], ["MAIL", "<%s>" % mail_from]]
    steps += [["RCPT", "<%s>" % r] for r in rcpts]
    steps += [["DATA", data], ["QUIT"]]
    return steps


# ------------------------------------------------------------------------------------------
# Logs, mailboxes, queues
# ------------------------------------------------------------------------------------------


def journal(host, since, ids=MX_LOG_IDS, grep=None, unit=None):
    """Journal lines since ``since`` (epoch seconds) for the given identifiers (or unit)."""
    selector = "-u %s" % shlex.quote(unit) if unit else " ".join("-t %s" % shlex.quote(i) for i in ids)
    cmd = "journalctl --no-pager -o short-iso %s %s" % ("--since @%d" % (int(since) - 1) if since else "", selector)
    if grep:
        cmd += " | grep -E %s" % shlex.quote(grep)
    return host.run(cmd).stdout


def mx_log(hosts, since, grep=None):
    """mx's mail log since ``since`` (policyd-spf, Postfix, OpenDKIM, OpenDMARC)."""
    return journal(hosts.mx, since, grep=grep)


def explain(*parts):
    """A failure message: each part (dialogue, log text, value) under a heading."""
    out = []
    for part in parts:
        if isinstance(part, tuple):
            title, text = part
            out.append("--- %s ---\n%s" % (title, text if str(text).strip() else "(empty)"))
        else:
            out.append(str(part))
    return "\n".join(out)


READ_MAILDIR = r"""
import base64, json, os, sys
out = []
base = os.path.expanduser("~%s/Maildir" % sys.argv[1])
for sub in ("new", "cur"):
    folder = os.path.join(base, sub)
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        with open(os.path.join(folder, name), "rb") as handle:
            out.append(base64.b64encode(handle.read()).decode())
print(json.dumps(out))
"""


def read_mailbox(host, user):
    """The messages delivered to <user> on mx (~user/Maildir/{new,cur}), parsed."""
    out = host.run("python3 -c %s %s", READ_MAILDIR, user)
    assert out.rc == 0, out.stderr
    return [email.message_from_bytes(base64.b64decode(raw), policy=email.policy.compat32)
            for raw in json.loads(out.stdout)]


def read_mbox(host, user):
    """The messages of the mbox /var/mail/<user> on ``host`` (sender-ok: a plain Postfix), parsed."""
    text = host.run("cat /var/mail/%s 2>/dev/null", user).stdout
    if not text.strip():
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".mbox", delete=False) as handle:
        handle.write(text)
        path = handle.name
    try:
        box = mboxlib.mbox(path, create=False)
        return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.compat32)
                for key in box.keys()]
    finally:
        os.unlink(path)


def by_message_id(messages, mid):
    """The messages whose Message-ID is <mid>."""
    return [m for m in messages if (m.get("Message-ID") or "").strip() == "<%s>" % mid]


def wait_delivered(host, user, mid, timeout=60):
    """Poll mx's mailbox of <user> until Message-ID <mid> is there; return the matching messages."""
    found, _ = wait_for(lambda: by_message_id(read_mailbox(host, user), mid), timeout=timeout,
                        what="delivery of %s" % mid)
    return found or []


def message_ids(host, user, needle=""):
    """Message-IDs (without <>) of <user>'s delivered mail on mx that contain ``needle`` (cheap)."""
    out = host.run("cat ~%s/Maildir/new/* ~%s/Maildir/cur/* 2>/dev/null | grep -i '^Message-ID:' || true",
                   user, user).stdout
    ids = [line.split(":", 1)[1].strip().strip("<>") for line in out.splitlines()]
    return [i for i in ids if needle in i]


def queue(host):
    """postqueue -j of ``host``: a list of dicts (queue_name, queue_id, sender, recipients...)."""
    out = host.run("postqueue -j").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def queued_with(host, needle):
    """Queue entries of ``host`` whose message contains ``needle`` (by its queue file)."""
    found = []
    for entry in queue(host):
        body = host.run("postcat -hq %s 2>/dev/null", entry["queue_id"]).stdout
        if needle in body:
            found.append(entry)
    return found


def sendmail(host, mail_from, rcpt, data):
    """Submit a message through the host's own Postfix (its real queue)."""
    cmd = host.run("printf %%s %s | /usr/sbin/sendmail -i -f %s %s", data, mail_from, rcpt)
    assert cmd.rc == 0, "sendmail failed: %s %s" % (cmd.stdout, cmd.stderr)


def header_values(msg, name):
    """Every value of header ``name`` of a parsed message, unfolded."""
    return [re.sub(r"\s+", " ", str(v)).strip() for v in msg.get_all(name) or []]


def show_message(msg):
    """The headers of a parsed message, for failure messages."""
    return "".join("%s: %s\n" % (k, re.sub(r"\s+", " ", str(v))) for k, v in msg.items())
