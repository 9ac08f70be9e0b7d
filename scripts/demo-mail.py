#!/usr/bin/env python3
"""make demo-mail: the tour of mailward in a minute, on the demo world that make demo started.

From mailward-demo-sender (mail.partner.example, a stranger on the demo network):
  1. find example.test's MX through the demo name server, as any sender would;
  2. send a real message, DKIM-signed by partner.example, through the demo MX, and show the
     delivered copy's Received-SPF and Authentication-Results (spf, dkim and dmarc pass);
  3. have the MX send a message to postmaster@partner.example and verify its DKIM signature
     on the sender with dkimpy, against the record the dns role published;
  4. forge SPF (MAIL FROM example.test from an address its SPF does not list): refused;
  5. forge DMARC (an aligned-looking From: example.test, unsigned, envelope at partner.example):
     refused.
Every step checks what it shows; the exit status is 0 only when all five went as described.
The SMTP client is the end-to-end scenario's (molecule/e2e/tests/smtp_client.py), copied into
the sender; everything else runs with podman exec and the Python of each container.
"""

import email
import email.policy
import email.utils
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MX, NS, SENDER = "mailward-demo-mx", "mailward-demo-ns", "mailward-demo-sender"
DOMAIN, MX_NAME = "example.test", "mx.example.test"
PARTNER, PARTNER_HOST, PARTNER_SELECTOR = "partner.example", "mail.partner.example", "demo2026"
PARTNER_KEY = "/root/%s.%s.key" % (PARTNER, PARTNER_SELECTOR)
CLIENT_SRC = os.path.join(ROOT, "molecule", "e2e", "tests", "smtp_client.py")
CLIENT = "/usr/local/bin/mailward-smtp"

# Run inside the sender: the MX of a domain and its address, asked of the resolver in
# /etc/resolv.conf (the demo name server).
LOOKUP_MX = r"""
import json, sys
import dns.resolver
res = dns.resolver.Resolver()
best = sorted(res.resolve(sys.argv[1], "MX"), key=lambda r: r.preference)[0]
host = str(best.exchange).rstrip(".")
print(json.dumps({"server": res.nameservers[0], "preference": best.preference, "host": host,
                  "addresses": [a.address for a in res.resolve(host, "A")]}))
"""

# Run inside a container: the raw bytes of the message with this Message-ID in /var/mail/root.
READ_MBOX = r"""
import base64, json, mailbox, os, sys
path = "/var/mail/root"
box = mailbox.mbox(path, create=False) if os.path.exists(path) else {}
for key in list(box.keys()):
    if box[key].get("Message-ID", "").strip() == "<%s>" % sys.argv[1]:
        print(json.dumps({"raw": base64.b64encode(box.get_bytes(key)).decode()}))
        break
else:
    print("{}")
"""

# Run inside the sender: dkimpy verifies the delivered bytes, fetching the key record through
# the demo name server; the record itself is returned too.
VERIFY_DKIM = r"""
import base64, json, sys
import dkim, dns.resolver
raw = base64.b64decode(sys.stdin.read())
d = dkim.DKIM(raw)
ok = bool(d.verify())
name = "%s._domainkey.%s" % ((d.selector or b"").decode(), (d.domain or b"").decode())
txt = ["".join(s.decode() for s in r.strings) for r in dns.resolver.resolve(name, "TXT")] if d.domain else []
print(json.dumps({"verified": ok, "domain": (d.domain or b"").decode(), "selector": (d.selector or b"").decode(),
                  "record_name": name, "record": txt}))
"""


class TourFailure(Exception):
    """A step did not go as the tour says it should."""


def podman(*args, stdin=None, check=True):
    run = subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, check=False)
    if check and run.returncode != 0:
        raise TourFailure("podman %s failed (%d): %s" % (" ".join(args[:3]), run.returncode, run.stderr.strip()))
    return run


def in_container(name, script, *args, stdin=None):
    return json.loads(podman("exec", "-i", name, "python3", "-c", script, *args, stdin=stdin).stdout or "{}")


def smtp(spec):
    """A scripted SMTP session from the sender (smtp_client.py); returns {step: (code, text)}."""
    out = json.loads(podman("exec", SENDER, "python3", CLIENT, json.dumps(spec)).stdout)
    replies = {}
    for op, _arg, code, text in out["steps"]:
        replies.setdefault(op, (code, text))
    return replies, out["transcript"]


def message(mid, sender, rcpt, subject, body):
    headers = [("From", sender), ("To", rcpt), ("Subject", subject),
               ("Date", email.utils.formatdate(localtime=False)), ("Message-ID", "<%s>" % mid)]
    return "".join("%s: %s\r\n" % item for item in headers) + "\r\n" + body


def wait_for_message(container, mid, timeout=60):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = in_container(container, READ_MBOX, mid)
        if found.get("raw"):
            return found["raw"], time.monotonic() - start
        time.sleep(0.5)
    return None, time.monotonic() - start


def parse(raw_b64):
    import base64  # pylint: disable=import-outside-toplevel
    return email.message_from_bytes(base64.b64decode(raw_b64), policy=email.policy.compat32)


def unfold(value):
    return re.sub(r"\s+", " ", str(value)).strip()


def mx_log(since):
    return podman("exec", MX, "journalctl", "--no-pager", "-o", "short-iso", "--since", "@%d" % (int(since) - 1),
                  "-t", "postfix/smtpd", "-t", "postfix/cleanup", "-t", "postfix/smtp", "-t", "postfix/local",
                  "-t", "policyd-spf", "-t", "opendkim", "-t", "opendmarc", check=False).stdout


def check(condition, what, *details):
    if not condition:
        raise TourFailure("\n".join([what] + [str(d) for d in details if d]))


def show(label, value, width=100):
    value = unfold(value)
    print("     %s %s" % (label, value if len(value) <= width else value[:width - 3] + "..."))


def step_dns():
    print("1. Where does mail for %s go? (asked from %s, through the demo name server)" % (DOMAIN, PARTNER_HOST))
    found = in_container(SENDER, LOOKUP_MX, DOMAIN)
    print("     %s MX %d %s -> A %s   (resolver %s)" % (DOMAIN, found["preference"], found["host"],
                                                        ", ".join(found["addresses"]), found["server"]))
    check(found["host"] == MX_NAME and found["addresses"], "the MX of %s is not %s" % (DOMAIN, MX_NAME), found)
    return found["addresses"][0]


def step_inbound(mx_ip, run):
    print("\n2. A real message: bob@%s -> postmaster@%s, DKIM-signed by %s (selector %s)"
          % (PARTNER, DOMAIN, PARTNER, PARTNER_SELECTOR))
    since, mid = time.time(), "tour-in-%s@%s" % (run, PARTNER)
    data = message(mid, "Bob <bob@%s>" % PARTNER, "postmaster@%s" % DOMAIN, "mailward tour: hello",
                   "A message from a stranger, checked by SPF, DKIM and DMARC on the way in.\r\n")
    replies, transcript = smtp({"host": mx_ip, "port": 25, "timeout": 60,
                                "dkim": {"key": PARTNER_KEY, "domain": PARTNER, "selector": PARTNER_SELECTOR},
                                "steps": [["EHLO", PARTNER_HOST], ["MAIL", "<bob@%s>" % PARTNER],
                                          ["RCPT", "<postmaster@%s>" % DOMAIN], ["DATA", data], ["QUIT"]]})
    code, text = replies.get("DATA", (None, "not reached"))
    print("     SMTP: DATA -> %s %s" % (code, text))
    check(code == 250, "the MX did not accept the message", transcript, mx_log(since))
    raw, waited = wait_for_message(MX, mid)
    check(raw, "not delivered to root's mailbox on %s within 60 s" % MX_NAME, mx_log(since))
    msg = parse(raw)
    print("     delivered to postmaster (root's mailbox on %s) after %.1f s; what the MX wrote on it:" % (MX_NAME, waited))
    spf = [unfold(v) for v in msg.get_all("Received-SPF") or []]
    results = [unfold(v) for v in msg.get_all("Authentication-Results") or []]
    for value in spf:
        show("Received-SPF:", value, width=400)
    for value in results:
        show("Authentication-Results:", value, width=400)
    joined = " | ".join(results)
    verdict = {
        "spf": bool(re.search(r"\bspf=pass\b", joined)) or any(v.startswith("Pass ") for v in spf),
        "dkim": bool(re.search(r"\bdkim=pass\b[^|]*header\.d=%s" % re.escape(PARTNER), joined)),
        "dmarc": bool(re.search(r"\bdmarc=pass\b[^|]*header\.from=%s" % re.escape(PARTNER), joined)),
    }
    # policyd-spf reports SPF in Received-SPF; OpenDKIM and OpenDMARC in Authentication-Results.
    print("     => " + "  ".join("%s=%s" % (k, "pass" if v else "NOT pass") for k, v in verdict.items())
          + "   (spf: Received-SPF by policyd-spf; dkim, dmarc: Authentication-Results by OpenDKIM, OpenDMARC)")
    check(all(verdict.values()), "not every check passed", msg.as_string()[:3000])


def step_outbound(run):
    print("\n3. The MX's own mail: demo@%s -> postmaster@%s, signed by OpenDKIM on the way out" % (DOMAIN, PARTNER))
    since, mid = time.time(), "tour-out-%s@%s" % (run, DOMAIN)
    data = message(mid, "Demo <demo@%s>" % DOMAIN, "postmaster@%s" % PARTNER, "mailward tour: signed",
                   "Signed by mx.example.test; the key is in DNS.\n")
    podman("exec", "-i", MX, "/usr/sbin/sendmail", "-i", "-f", "demo@%s" % DOMAIN, "postmaster@%s" % PARTNER,
           stdin=data.replace("\r\n", "\n"))
    raw, waited = wait_for_message(SENDER, mid)
    check(raw, "not delivered to %s within 60 s" % PARTNER_HOST, mx_log(since),
          podman("exec", MX, "mailq", check=False).stdout)
    signature = unfold(parse(raw).get("DKIM-Signature", ""))
    print("     delivered to %s after %.1f s" % (PARTNER_HOST, waited))
    show("DKIM-Signature:", re.sub(r"\b(b|bh)=[^;]+", r"\1=...", signature), width=140)
    result = in_container(SENDER, VERIFY_DKIM, stdin=raw)
    record = " ".join(result.get("record") or [])
    show("%s TXT" % result.get("record_name"), record, width=90)
    print("     dkimpy on %s, with that record from the demo name server: %s"
          % (PARTNER_HOST, "signature verified" if result.get("verified") else "NOT verified"))
    check(result.get("verified") and result.get("domain") == DOMAIN, "the MX's signature did not verify", result)
    # The published key is the public half of the private key on the MX (the selector it signed with).
    key_path = "/etc/dkimkeys/%s/%s.private" % (DOMAIN, result["selector"])
    public = podman("exec", MX, "sh", "-c", "openssl pkey -in %s -pubout -outform DER | base64 -w0" % key_path).stdout
    same = record.replace(" ", "").endswith("p=" + public.strip())
    print("     the published p= is the public half of %s on the MX: %s" % (key_path, "yes" if same else "NO"))
    check(same, "the published key is not the MX's", record, public)


def step_forgery(mx_ip, run, title, mail_from, header_from, step, expect):
    print("\n%s" % title)
    data = message("tour-forged-%s-%s@%s" % (step.lower(), run, DOMAIN), header_from, "postmaster@%s" % DOMAIN,
                   "mailward tour: forged", "This should never arrive.\r\n")
    since = time.time()
    replies, transcript = smtp({"host": mx_ip, "port": 25, "timeout": 60,
                                "steps": [["EHLO", PARTNER_HOST], ["MAIL", "<%s>" % mail_from],
                                          ["RCPT", "<postmaster@%s>" % DOMAIN], ["DATA", data], ["QUIT"]]})
    code, text = replies.get(step, (None, "not reached"))
    print("     %s -> %s %s" % ("RCPT TO:<postmaster@%s>" % DOMAIN if step == "RCPT" else "end of DATA", code, text))
    check(code == 550 and text.startswith(expect), "expected %s 550 %s" % (step, expect), transcript, mx_log(since))
    print("     => refused")


def main():
    start = time.time()
    missing = [name for name in (MX, NS, SENDER)
               if podman("container", "inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip() != "true"]
    if missing:
        print("demo-mail: %s not running: run make demo first" % ", ".join(missing), file=sys.stderr)
        return 2
    if not os.path.exists(CLIENT_SRC):
        print("demo-mail: the SMTP client %s is missing" % CLIENT_SRC, file=sys.stderr)
        return 2
    podman("cp", CLIENT_SRC, "%s:%s" % (SENDER, CLIENT))
    run = "%d" % start
    print("mailward tour: %s (%s) seen from %s, a stranger on the demo network\n" % (MX_NAME, MX, PARTNER_HOST))
    try:
        mx_ip = step_dns()
    except TourFailure as error:
        print("   FAILED: %s" % error)
        return 1
    steps = {
        2: lambda: step_inbound(mx_ip, run),
        3: lambda: step_outbound(run),
        4: lambda: step_forgery(mx_ip, run, "4. SPF forgery: %s claims MAIL FROM:<ceo@%s> (SPF of %s: -all for anyone else)"
                                % (PARTNER_HOST, DOMAIN, DOMAIN), "ceo@%s" % DOMAIN, "ceo@%s" % DOMAIN, "RCPT", "5.7.23"),
        5: lambda: step_forgery(mx_ip, run, "5. DMARC forgery: envelope bob@%s (SPF pass), From: ceo@%s, unsigned "
                                "(DMARC of %s: p=reject)" % (PARTNER, DOMAIN, DOMAIN),
                                "bob@%s" % PARTNER, "CEO <ceo@%s>" % DOMAIN, "DATA", "5.7.1"),
    }
    failed = []
    for number, step in steps.items():
        try:
            step()
        except TourFailure as error:
            failed.append(number)
            print("   FAILED: %s" % error)
    verdict = ("every step as described" if not failed
               else "steps %s did NOT go as described" % ", ".join(map(str, failed)))
    print("\nmailward tour: %s (%.0f s)" % (verdict, time.time() - start))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
