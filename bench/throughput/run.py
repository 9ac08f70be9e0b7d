#!/usr/bin/env python3
"""Mail throughput benchmark (issue 6, part 2): figures, never pass/fail.

One run builds, on the podman network mailward-tput-net (fixed addresses):
  ns        BIND 9, authoritative for src.example (the sender's domain: SPF, DMARC, MX, A),
            bench.example (the MX hosts' domain) and the reverse zone; resolver of every other
            container (other names are forwarded to podman's resolver so apt keeps working)
  sender    Debian's postfix package, for /usr/sbin/smtp-source (the load generator)
  mx-*      one MX container per configuration, all from the same image, all resolving
            through ns directly:
              plain     (a) apt install postfix, local delivery to ~bench/Maildir: the ceiling
              spf       plain + policyd-spf spawned from master.cf (package README wiring)
              dkim      plain + OpenDKIM (package defaults) as milter on inet 8891
              dmarc     plain + OpenDMARC (package defaults) as milter on inet 8893
              tutorial  (b) plain + all three, package defaults, the usual how-to wiring
              mailward  (c) converged with mailward's site.yml (temporary inventory under --out)
            and, with --experiments, one more mailward MX (mwtuned) on which single changes
            are tried by hand-style shell edits and measured side by side with mailward.

It measures messages/second with smtp-source (-s sessions in parallel, -d: every session sends
its messages over one connection, -l bytes per message), repeated --reps times per
configuration in rotating order (median reported), and checks sent = delivered (Maildir
count, queue empty). Then an accounting pass per configuration: DNS queries seen by ns (BIND
query log, per MX address) and CPU time per process name on the MX and ns (/proc sampling, with
the processes that exited counted through their parent's reaped-children time).
--signed sends a DKIM-signed message instead of smtp-source's own (-F), so OpenDKIM verifies a
signature and DMARC passes through DKIM as well as SPF.

Results: a table on stdout, <out>/throughput.json, <out>/throughput.png (matplotlib).
Containers and network are removed at the end, also on error or Ctrl-C; the image
localhost/mailward-tput-img is kept for the next run (--rebuild-image to rebuild it).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections"))  # the collection mailward.mail, by package name
# The zone-file form of a TXT value (quoted strings of at most 255 bytes), as the dns role writes it.
from ansible_collections.mailward.mail.plugins.module_utils.records import txt_strings  # noqa: E402
PREFIX = "mailward-tput"
NET = f"{PREFIX}-net"
IMAGE = "localhost/mailward-tput-img:latest"
BASE_IMAGE = os.environ.get("MAILWARD_IMAGE", "localhost/mailward-debian12:latest")
SUBNET = "10.89.231.0/24"
NET3 = "10.89.231"
NS_IP = f"{NET3}.53"
SENDER_IP = f"{NET3}.31"
SENDER_HOST = "sender.src.example"
SENDER_DOMAIN = "src.example"
MX_DOMAIN = "bench.example"
RCPT = f"bench@{MX_DOMAIN}"
MAIL_FROM = f"bench@{SENDER_DOMAIN}"
# --signed: the sender's pre-formatted, DKIM-signed message (smtp-source -F) and its selector.
SIGNED_SELECTOR = "tput"
SIGNED_PATH = "/root/tput-signed.eml"
MESSAGE_FILE: str | None = None  # set by main() with --signed
# --tls: smtp-source hands the mail to the sender's own Postfix, which relays it to the MX under
# test with STARTTLS required and TLS connections reused (tlsproxy), as a real MTA does.
TLS = False
SENDER_TLS_MAIN = {
    "inet_protocols": "ipv4",
    "mydestination": "localhost",
    "myhostname": SENDER_HOST,
    "smtp_helo_name": SENDER_HOST,
    "smtp_tls_security_level": "encrypt",
    "smtp_tls_connection_reuse": "yes",
    "smtp_tls_loglevel": "1",
    # 10 parallel deliveries, like smtp-source -s 10 in the cleartext runs (set from --sessions)
    "smtp_destination_concurrency_limit": "10",
    "default_destination_concurrency_limit": "10",
}
_relay_of_sender: str | None = None
PACKAGES = ["postfix", "postfix-policyd-spf-python", "opendkim", "opendkim-tools", "opendmarc",
            "bind9", "bind9-dnsutils", "unbound", "rspamd"]

# name -> (label, last octet, kind)
CONFIGS = {
    "plain": ("(a) plain Postfix", 11),
    "spf": ("plain + policyd-spf", 12),
    "dkim": ("plain + OpenDKIM", 13),
    "dmarc": ("plain + OpenDMARC", 14),
    "tutorial": ("(b) tutorial (SPF+DKIM+DMARC, package defaults)", 15),
    "mailward": ("(c) mailward site.yml", 16),
    "rspamd": ("(d) rspamd milter: SPF+DKIM+DMARC only", 18),
}
TUNED = ("mwtuned", "(c) mailward + experiment", 17)

# Experiments applied one after another (cumulatively) on the mwtuned MX; each is measured
# side by side with the untouched mailward MX. Shell run inside the container.
UNBOUND_CONF = f"""server:
  interface: 127.0.0.1
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  do-not-query-localhost: no
  module-config: "iterator"
  num-threads: 1
  msg-cache-size: 16m
  rrset-cache-size: 32m
  prefetch: yes
  logfile: ""
  use-syslog: no
  verbosity: 0
  pidfile: /run/unbound-tput.pid
  chroot: ""
forward-zone:
  name: "."
  forward-addr: {NS_IP}
"""
UNIX_MILTERS = r"""set -e
root=/var/spool/postfix
# smtpd sees the socket relative to its chroot (Debian: chroot y)
if [ "$(postconf -Fh smtp/inet/chroot)" = n ]; then pre=$root; else pre=""; fi
mkdir -p $root/opendkim $root/opendmarc
chown opendkim:opendkim $root/opendkim; chown opendmarc:opendmarc $root/opendmarc
chmod 750 $root/opendkim $root/opendmarc
usermod -aG opendkim,opendmarc postfix
sed -i "s|^Socket .*|Socket                  local:$root/opendkim/opendkim.sock|" /etc/opendkim.conf
sed -i "s|^Socket .*|Socket                      local:$root/opendmarc/opendmarc.sock|" /etc/opendmarc.conf
systemctl restart opendkim opendmarc; sleep 1
for p in smtpd_milters non_smtpd_milters; do
  v=$(postconf -h $p | sed -e "s|inet:localhost:8891|unix:$pre/opendkim/opendkim.sock|" -e "s|inet:localhost:8893|unix:$pre/opendmarc/opendmarc.sock|")
  postconf -e "$p=$v"
done
postfix check; postfix reload >/dev/null 2>&1; postconf smtpd_milters non_smtpd_milters
"""
# Cumulative changes tried on mwtuned. Unix milter sockets were the first one (x1.62); they are
# mailward's Debian default since, so the list starts after them (UNIX_MILTERS is kept for (b)-style
# experiments by hand).
# policyd-spf's DNS cache (issue 18, item 4) is mailward's default since: the policyd_spf role runs
# policyd-spf through a launcher that turns dnspython's LRU cache on and calls the program's entry
# point (policyd_spf_dns_cache_size, roles/policyd_spf/templates/policyd-spf-launcher.j2). Profiled
# before it, three quarters of policyd-spf's CPU per request was dnspython building, sending and
# parsing the same two TXT queries (HELO and MAIL FROM) to the local Unbound. The experiment puts
# the program itself back in master.cf (policyd_spf_dns_cache_size: 0), measured side by side.
EXPERIMENTS = [
    ("nospfcache", "policyd-spf without dnspython's cache (policyd_spf_dns_cache_size: 0: the program itself in master.cf)",
     "set -e; sed -i 's|argv=/usr/libexec/mailward/policyd-spf |argv=/usr/bin/policyd-spf |' /etc/postfix/master.cf;"
     " postconf -M policyd-spf/unix | grep -q 'argv=/usr/bin/policyd-spf '; postfix reload"),
]
# --ablation: where mailward's CPU per message goes, by taking its checks away one at a time
# (cumulative, on mwtuned, starting again from mailward's own main.cf and master.cf; each step
# measured side by side with the untouched mailward MX). Never a configuration to run: it shows
# what each hand-off costs, the daemon's own CPU and Postfix's side of it (smtpd's milter and
# policy clients, cleanup applying the milters' header edits, their log lines).
ABLATION = [
    ("no-opendkim", "without the OpenDKIM milter (smtpd_milters: OpenDMARC only)",
     "set -e; postconf -e 'smtpd_milters=unix:/opendmarc/opendmarc.sock'; postfix reload"),
    ("no-policyd-spf", "and without the SPF policy service (check_policy_service removed)",
     "set -e; postconf -e 'smtpd_recipient_restrictions=permit_mynetworks, permit_sasl_authenticated,"
     " reject_unauth_destination'; postfix reload"),
    ("no-opendmarc", "and without OpenDMARC: mailward's Postfix with no check at all",
     "set -e; postconf -e 'smtpd_milters='; postfix reload"),
]
SAVE_MAILWARD = "cp /etc/postfix/main.cf /root/mailward-main.cf && cp /etc/postfix/master.cf /root/mailward-master.cf"
RESTORE_MAILWARD = ("cp /root/mailward-main.cf /etc/postfix/main.cf && cp /root/mailward-master.cf /etc/postfix/master.cf"
                    " && postfix reload >/dev/null 2>&1")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd: list[str] | str, check: bool = True, input: str | None = None, timeout: float | None = None,
       capture: bool = True) -> subprocess.CompletedProcess:
    if isinstance(cmd, str):
        cmd = ["bash", "-c", cmd]
    p = subprocess.run(cmd, input=input, text=True, capture_output=capture, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(cmd)[:300]}\n"
                           f"{(p.stdout or '')[-2000:]}\n{(p.stderr or '')[-2000:]}")
    return p


def pexec(name: str, script: str, check: bool = True, input: str | None = None,
          timeout: float | None = 600) -> str:
    return sh(["podman", "exec", "-i", name, "bash", "-c", script], check=check, input=input,
              timeout=timeout).stdout


def put(name: str, path: str, content: str, mode: str = "0644") -> None:
    pexec(name, f"cat > {shlex.quote(path)} && chmod {mode} {shlex.quote(path)}", input=content)


def cname(short: str) -> str:
    return f"{PREFIX}-{short}"


# ---------------------------------------------------------------- world: image, network, ns
def cleanup(names: list[str]) -> None:
    for n in names:
        sh(["podman", "rm", "-f", "-t", "2", n], check=False)
    sh(["podman", "network", "rm", "-f", NET], check=False)


def existing_tput_containers() -> list[str]:
    out = sh(["podman", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    return [n for n in out if n.startswith(PREFIX + "-")]


def wait_systemd(name: str) -> None:
    for _ in range(60):
        st = sh(["podman", "exec", name, "systemctl", "is-system-running"], check=False).stdout.strip()
        if st in ("running", "degraded"):
            return
        time.sleep(1)
    raise RuntimeError(f"systemd did not come up in {name}")


def run_container(short: str, ip: str, hostname: str, image: str, dns: str | None) -> str:
    name = cname(short)
    cmd = ["podman", "run", "-d", "--name", name, "--hostname", hostname, "--network", NET,
           "--ip", ip, "--label", "owner=mailward-tput"]
    if dns:
        cmd += ["--dns", dns]
    cmd += [image, "/sbin/init"]
    sh(cmd)
    return name


def build_image(rebuild: bool) -> None:
    have = sh(["podman", "image", "exists", IMAGE], check=False).returncode == 0
    if have and not rebuild:
        log(f"image {IMAGE} exists (reused; --rebuild-image to rebuild)")
        return
    log(f"building {IMAGE} from {BASE_IMAGE}: {' '.join(PACKAGES)}")
    name = run_container("build", f"{NET3}.2", "build.bench.example", BASE_IMAGE, None)
    try:
        wait_systemd(name)
        # policy-rc.d: no service starts during the build (unbound would fetch trust anchors).
        pexec(name, textwrap.dedent(f"""\
            set -e
            printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
            echo 'postfix postfix/main_mailer_type select Internet Site' | debconf-set-selections
            echo 'postfix postfix/mailname string localhost' | debconf-set-selections
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)} >/tmp/apt.log 2>&1 || {{ tail -30 /tmp/apt.log; exit 1; }}
            systemctl disable opendkim opendmarc named unbound unbound-resolvconf rspamd >/dev/null 2>&1 || true
            systemctl mask unbound unbound-resolvconf >/dev/null 2>&1 || true
            rm -f /usr/sbin/policy-rc.d /etc/unbound/unbound.conf.d/root-auto-trust-anchor-file.conf
            apt-get clean; rm -rf /var/lib/apt/lists/*
            useradd -m -s /usr/sbin/nologin bench
            """), timeout=900)
        sh(["podman", "stop", "-t", "5", name])
        sh(["podman", "commit", "-q", name, IMAGE])
    finally:
        sh(["podman", "rm", "-f", name], check=False)


def signed_message(size: int) -> tuple[str, str]:
    """A message From bench@src.example, DKIM-signed (rsa-sha256, relaxed/relaxed, 2048 bits,
    d=src.example) by a key made here, with a body of about ``size`` bytes in 76-character lines.
    Returns (message with CRLF line ends stripped to LF, TXT record value of the public key).
    smtp-source -F sends it as is (it only adds CR and dot-stuffing), so every copy verifies."""
    import base64
    import email.utils

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    line = "x" * 75
    body = "\r\n".join(line for _ in range(max(1, size // (len(line) + 2)))) + "\r\n"
    headers = (f"From: Bench <{MAIL_FROM}>\r\nTo: <{RCPT}>\r\nSubject: tput signed\r\n"
               f"Date: {email.utils.formatdate(localtime=False)}\r\n"
               f"Message-ID: <tput-signed@{SENDER_DOMAIN}>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n")
    msg = (headers + "\r\n" + body).encode()
    sig = dkim.sign(msg, SIGNED_SELECTOR.encode(), SENDER_DOMAIN.encode(), pem,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    if not dkim.verify(sig + msg, dnsfunc=lambda name, timeout=5: (
            b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub))):
        raise RuntimeError("the signed test message does not verify with its own key")
    return (sig + msg).decode().replace("\r\n", "\n"), f"v=DKIM1; k=rsa; p={base64.b64encode(pub).decode()}"


def zone(origin: str, body: str) -> str:
    return textwrap.dedent(f"""\
        $TTL 300
        $ORIGIN {origin}.
        @ IN SOA ns.{MX_DOMAIN}. hostmaster.{MX_DOMAIN}. ( 1 300 60 600 60 )
        @ IN NS ns.{MX_DOMAIN}.
        """) + body


def setup_ns(mx_hosts: dict[str, str], dkim_txt: str | None = None) -> str:
    name = run_container("ns", NS_IP, f"ns.{MX_DOMAIN}", IMAGE, None)
    wait_systemd(name)
    upstream = pexec(name, "awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf").strip()
    spf = f'"v=spf1 ip4:{SENDER_IP} -all"'
    zones = {
        SENDER_DOMAIN: zone(SENDER_DOMAIN, textwrap.dedent(f"""\
            @ IN MX 10 sender
            @ IN TXT {spf}
            sender IN A {SENDER_IP}
            sender IN TXT {spf}
            _dmarc IN TXT "v=DMARC1; p=reject"
            """) + (f"{SIGNED_SELECTOR}._domainkey IN TXT ( {txt_strings(dkim_txt)} )\n" if dkim_txt else "")),
        MX_DOMAIN: zone(MX_DOMAIN, f"ns IN A {NS_IP}\n@ IN MX 10 mx-mailward\n"
                        '@ IN TXT "v=spf1 mx -all"\n_dmarc IN TXT "v=DMARC1; p=none"\n'
                        + "".join(f"{h.split('.')[0]} IN A {ip}\n" for h, ip in mx_hosts.items())),
        f"231.89.10.in-addr.arpa": zone("231.89.10.in-addr.arpa",
                                        f"53 IN PTR ns.{MX_DOMAIN}.\n31 IN PTR {SENDER_HOST}.\n"
                                        + "".join(f"{ip.split('.')[-1]} IN PTR {h}.\n"
                                                  for h, ip in mx_hosts.items())),
    }
    for z, text in zones.items():
        put(name, f"/var/lib/bind/{z}.db", text)
    put(name, "/etc/bind/named.conf.local",
        "".join(f'zone "{z}" {{ type primary; file "/var/lib/bind/{z}.db"; }};\n' for z in zones))
    put(name, "/etc/bind/named.conf.options", textwrap.dedent(f"""\
        options {{
            directory "/var/cache/bind";
            listen-on {{ any; }};
            listen-on-v6 {{ none; }};
            recursion yes;
            allow-recursion {{ 127.0.0.0/8; {SUBNET}; }};
            allow-query {{ any; }};
            forwarders {{ {upstream}; }};
            forward only;
            dnssec-validation no;
            minimal-responses yes;
            querylog no;
        }};
        logging {{
            channel tput_queries {{ file "/var/log/named/query.log" versions 0 size 500m; print-time yes; }};
            category queries {{ tput_queries; }};
            category lame-servers {{ null; }};
        }};
        """))
    pexec(name, "mkdir -p /var/log/named && chown bind:bind /var/log/named && named-checkconf"
                " && systemctl enable --now named >/dev/null 2>&1 && systemctl restart named")
    for _ in range(30):
        if pexec(name, f"dig +short +time=1 +tries=1 @127.0.0.1 TXT {SENDER_DOMAIN}", check=False).strip():
            return name
        time.sleep(1)
    raise RuntimeError("named does not answer")


def setup_sender(message: str | None = None, sessions: int = 10) -> str:
    name = run_container("sender", SENDER_IP, SENDER_HOST, IMAGE, NS_IP)
    wait_systemd(name)
    if TLS:
        main = dict(SENDER_TLS_MAIN, smtp_destination_concurrency_limit=str(sessions),
                    default_destination_concurrency_limit=str(sessions))
        # smtp_tls_connection_reuse needs tlsproxy, which Debian's master.cf does not list
        pexec(name, "postconf -M tlsproxy/unix='tlsproxy unix - - n - 0 tlsproxy' && "
              "postconf -e " + " ".join(shlex.quote(f"{k}={v}") for k, v in main.items())
              + " && postfix check && systemctl restart postfix && test -x /usr/sbin/smtp-source")
    else:
        pexec(name, "systemctl disable --now postfix >/dev/null 2>&1; test -x /usr/sbin/smtp-source")
    if message is not None:
        put(name, SIGNED_PATH, message, "0600")
    return name


# ---------------------------------------------------------------- the MX configurations
# smtp-source -N makes every recipient different (<n>bench@bench.example), as real mail is, so
# trivial-rewrite's and the address caches are exercised; one regexp alias, the same on every MX,
# delivers them all to the local user bench.
BENCH_ALIASES = ("/etc/postfix/bench-recipients",
                 "/^[0-9]+" + RCPT.replace(".", "\\.") + "$/ " + RCPT + "\n")
PLAIN_MAIN = {
    "inet_protocols": "ipv4",
    "mydestination": f"$myhostname, {MX_DOMAIN}, localhost",
    "home_mailbox": "Maildir/",
    "virtual_alias_maps": f"regexp:{BENCH_ALIASES[0]}",
}
# (d) rspamd, Debian's package, as the one milter doing SPF, DKIM and DMARC with the outcomes
# mailward enforces: reject SPF fail and DMARC failures under p=reject (force_actions), verify
# DKIM, Authentication-Results added (milter_headers). Every other module off (local.d/<module>.conf
# enabled = false), of the C filters only dkim (no chartable, regexp, fuzzy_check), the normal and
# fuzzy workers off: the proxy scans itself (self_scan), one proxy process per core (the package's
# count = 1 would leave rspamd one core of the two). local_addrs only loopback: rspamd's
# default counts 10/8 as local and would skip SPF for the test network. The milter socket is a
# unix socket in Postfix's chroot, like mailward's milters (no loopback-TCP delayed-ACK stalls).
RSPAMD_KEEP = ("spf", "dkim", "dmarc", "force_actions", "milter_headers")
RSPAMD_SOCKET = "/var/spool/postfix/rspamd/milter.sock"
RSPAMD_SETUP = textwrap.dedent(f"""\
    for f in /etc/rspamd/modules.d/*.conf; do
      m=$(basename $f .conf)
      case " {' '.join(RSPAMD_KEEP)} " in *" $m "*) continue;; esac
      echo 'enabled = false;' > /etc/rspamd/local.d/$m.conf
    done
    printf 'filters = "dkim";\\nlocal_addrs = [127.0.0.0/8, "::1"];\\n' > /etc/rspamd/override.d/options.inc
    cat > /etc/rspamd/local.d/worker-proxy.inc <<X
    bind_socket = "{RSPAMD_SOCKET} mode=0666 owner=_rspamd";
    upstream "local" {{ default = yes; self_scan = yes; }}
    count = $(nproc);
    X
    echo 'enabled = false;' > /etc/rspamd/local.d/worker-normal.inc
    echo 'enabled = false;' > /etc/rspamd/local.d/worker-fuzzy.inc
    cat > /etc/rspamd/local.d/force_actions.conf <<'X'
    rules {{
      SPF_FAIL_REJECT {{ action = "reject"; expression = "R_SPF_FAIL"; message = "SPF fail"; }}
      DMARC_REJECT_POLICY {{ action = "reject"; expression = "DMARC_POLICY_REJECT"; message = "DMARC policy reject"; }}
    }}
    X
    echo 'use = ["authentication-results"];' > /etc/rspamd/local.d/milter_headers.conf
    mkdir -p {Path(RSPAMD_SOCKET).parent}
    chown _rspamd:postfix {Path(RSPAMD_SOCKET).parent}; chmod 750 {Path(RSPAMD_SOCKET).parent}
    usermod -aG _rspamd postfix
    rspamadm configtest >/dev/null
    systemctl enable --now rspamd >/dev/null 2>&1; systemctl restart rspamd
    for i in $(seq 120); do test -S {RSPAMD_SOCKET} && break; sleep 0.5; done
    test -S {RSPAMD_SOCKET}""")
TUTORIAL_MILTERS = {
    "milter_default_action": "accept",
    "milter_protocol": "6",
    "non_smtpd_milters": "$smtpd_milters",
}


def configure_manual(name: str, cfg: str, host: str) -> None:
    main = dict(PLAIN_MAIN, myhostname=host)
    script = ["set -e"]
    spf = cfg in ("spf", "tutorial")
    dkim = cfg in ("dkim", "tutorial")
    dmarc = cfg in ("dmarc", "tutorial")
    milters = []
    if spf:
        script.append("cat >> /etc/postfix/master.cf <<'EOF'\n"
                      "policyd-spf  unix  -       n       n       -       0       spawn\n"
                      "    user=policyd-spf argv=/usr/bin/policyd-spf\nEOF")
        main["policyd-spf_time_limit"] = "3600"
        main["smtpd_recipient_restrictions"] = ("permit_mynetworks, reject_unauth_destination, "
                                                "check_policy_service unix:private/policyd-spf")
    if dkim:
        # Socket: the brief's inet 8891. Nameservers: OpenDKIM's libunbound ignores resolv.conf
        # and would recurse from the root servers; it must ask ns (no query happens for
        # unsigned mail, this only keeps every lookup inside the test network). No
        # TrustAnchorFile: the test zones have no chain of trust from the root (with the
        # package's root key every key lookup of --signed times out after 5 s as bogus).
        script.append("sed -i -e 's|^Socket.*|Socket\\t\\t\\tinet:8891@localhost|'"
                      " -e '/^TrustAnchorFile/d' /etc/opendkim.conf"
                      f" && echo 'Nameservers\t\t{NS_IP}' >> /etc/opendkim.conf"
                      " && systemctl enable --now opendkim >/dev/null 2>&1 && systemctl restart opendkim")
        milters.append("inet:localhost:8891")
    if dmarc:
        script.append("sed -i 's|^Socket.*|Socket inet:8893@localhost|' /etc/opendmarc.conf"
                      " && systemctl enable --now opendmarc >/dev/null 2>&1 && systemctl restart opendmarc")
        milters.append("inet:localhost:8893")
    if cfg == "rspamd":
        script.append(RSPAMD_SETUP)
        # smtpd runs chrooted in /var/spool/postfix (Debian's master.cf)
        milters.append("unix:" + RSPAMD_SOCKET.removeprefix("/var/spool/postfix"))
    if milters:
        main.update(TUTORIAL_MILTERS)
        main["smtpd_milters"] = ", ".join(milters)
    script.append(f"printf '{BENCH_ALIASES[1]}' > {BENCH_ALIASES[0]}")
    script.append("postconf -e " + " ".join(shlex.quote(f"{k}={v}") for k, v in main.items()))
    script.append("postfix check && systemctl restart postfix")
    pexec(name, "\n".join(script))


def converge_mailward(out: Path, hosts: dict[str, str]) -> float:
    """hosts: container name -> mail_hostname. Returns seconds taken."""
    inv = out / "tput-inventory"
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    hosts_yml = {"all": {"children": {"mail": {"hosts": {
        n: {"ansible_connection": "containers.podman.podman",
            "ansible_python_interpreter": "/usr/bin/python3",
            "mail_hostname": h,
            "mail_public_ipv4": ip}
        for n, (h, ip) in hosts.items()}}}}}
    (inv / "hosts.yml").write_text(json.dumps(hosts_yml, indent=2) + "\n")
    group = {
        "mail_mynetworks": ["127.0.0.0/8", "[::1]/128"],
        "mail_domains": [{
            "name": MX_DOMAIN,
            "spf": {"mx": True, "all": "fail"},
            # Several mailward MX hosts share the domain: one selector per host (README).
            "mx": [{"host": f"mx-mailward.{MX_DOMAIN}", "priority": 10}],
            "dkim": [{"selector": f"tput{ip.split('.')[-1]}", "type": "rsa", "bits": 2048, "hosts": [n]}
                     for n, (_, ip) in hosts.items()],
            "dmarc": {"p": "none"},
        }],
        "dns_backend": "zonefile",
        "dns_zonefile_dir": str(out / "tput-dns"),
        "dns_mta_sts_policy_dir": "",
        # Same mailbox format as the other configurations (and as molecule/e2e).
        "postfix_main_cf_overrides": {"home_mailbox": "Maildir/",
                                      "virtual_alias_maps": PLAIN_MAIN["virtual_alias_maps"]},
        # As in molecule/e2e: the resolver role's Unbound forwards to ns (no root servers, no
        # DNSSEC for the test zones); OpenDKIM asks that Unbound (its default).
        "resolver_forwarders": [NS_IP],
        "resolver_dnssec": False,
    }
    (inv / "group_vars" / "mail.yml").write_text(json.dumps(group, indent=2) + "\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               CONTAINERS_CONF=str(ROOT / "containers" / "containers.conf"),
               ANSIBLE_CALLBACKS_ENABLED="", ANSIBLE_FORCE_COLOR="0")
    t0 = time.monotonic()
    with open(out / "tput-converge.log", "w") as fh:
        playbook = Path(sys.executable).parent / "ansible-playbook"
        p = subprocess.run([str(playbook) if playbook.exists() else "ansible-playbook",
                            "-i", str(inv), str(ROOT / "site.yml")],
                           cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"site.yml failed, see {out / 'tput-converge.log'}")
    return time.monotonic() - t0


# ---------------------------------------------------------------- measurement
WAITER = r"""
import os, sys, time, subprocess
n, timeout = int(sys.argv[1]), float(sys.argv[2])
d = '/home/bench/Maildir/new'
print('ready', flush=True)
end = time.time() + timeout
count = 0
while time.time() < end:
    try:
        count = len(os.listdir(d))
    except FileNotFoundError:
        count = 0
    if count >= n:
        break
    time.sleep(0.05)
t = time.time_ns()
# queue empty (postqueue -j prints one JSON line per queued message)
q = -1
for _ in range(100):
    q = len(subprocess.run(['postqueue', '-j'], capture_output=True, text=True).stdout.splitlines())
    if q == 0:
        break
    time.sleep(0.1)
time.sleep(0.3)
print('done', t, len(os.listdir(d)) if os.path.isdir(d) else 0, q, flush=True)
"""

CPU_SNAP = r"""
import os, json
procs = {}
for p in os.listdir('/proc'):
    if not p.isdigit():
        continue
    try:
        s = open(f'/proc/{p}/stat').read()
    except OSError:
        continue
    comm = s[s.index('(') + 1:s.rindex(')')]
    f = s[s.rindex(')') + 2:].split()
    # ppid; own utime+stime; cutime+cstime (children this process has reaped, with their reaped ones)
    procs[p] = [comm, f[1], int(f[11]) + int(f[12]), int(f[13]) + int(f[14])]
print(json.dumps(procs))
"""


def cpu_by_name(a: dict, b: dict, clk: int, n: int) -> dict:
    """CPU ms per message between two CPU_SNAP snapshots, by process name.

    A process alive at the end counts its own CPU since the first snapshot (all of it if it
    started in between). A process that exited in between is reaped by its parent, and the kernel
    adds its whole CPU to the parent's cutime/cstime: that growth, less what the exited children
    had already used at the first snapshot, is reported as "exited children of <parent>" (for
    Postfix's master: the cleanup, local, smtpd and spawn processes that ended during the run,
    with the policyd-spf processes spawn had reaped). So the total is the whole CPU used in the
    window by processes inside the container, up to the exec'd helpers whose parent is outside
    (podman exec), which only the cgroup figure includes.
    """
    def alive(pid: str) -> bool:
        return pid in a and pid in b and b[pid][0] == a[pid][0]

    ticks: dict[str, float] = {}
    for pid, (comm, _ppid, own, reaped) in b.items():
        old = a.get(pid)
        same = alive(pid)
        ticks[comm] = ticks.get(comm, 0) + own - (old[2] if same else 0)
        grown = reaped - (old[3] if same else 0)
        if grown:
            key = f"exited children of {comm}"
            ticks[key] = ticks.get(key, 0) + grown
    for pid, (comm, ppid, own, reaped) in a.items():
        if alive(pid):
            continue
        # Its CPU before the window (own and already reaped) ends up in the growth of the first
        # ancestor still alive (spawn reaps policyd-spf, master reaps spawn): take it out there.
        seen = {pid}
        while ppid in a and not alive(ppid) and ppid not in seen:
            seen.add(ppid)
            ppid = a[ppid][1]
        if ppid in b:
            key = f"exited children of {b[ppid][0]}"
            ticks[key] = ticks.get(key, 0) - own - reaped
    ms = {k: v * 1000.0 / clk / n for k, v in ticks.items()}
    return {k: round(v, 3) for k, v in sorted(ms.items(), key=lambda kv: -kv[1]) if abs(v) > 0.0005}


def started_during(a: dict, b: dict, comm: str) -> int:
    """Processes named comm in snapshot b that were not (under that name) in snapshot a; those
    that started and exited in between are not seen."""
    return sum(1 for pid, row in b.items() if row[0] == comm and (pid not in a or a[pid][0] != comm))


def reset_mailbox(mx: str) -> None:
    pexec(mx, "rm -rf /home/bench/Maildir/new /home/bench/Maildir/cur /home/bench/Maildir/tmp; "
              "test -z \"$(postqueue -j)\" || { postsuper -d ALL >/dev/null 2>&1; true; }")


def relay_via_sender(ip: str) -> None:
    """--tls: point the sender's Postfix at the MX under test (relayhost), once per change."""
    global _relay_of_sender
    if _relay_of_sender != ip:
        pexec(cname("sender"), f"postconf -e 'relayhost=[{ip}]:25' && postfix reload >/dev/null 2>&1")
        _relay_of_sender = ip


def smtp_source_cmd(ip: str, n: int, sessions: int, size: int) -> str:
    # -F (--signed): the pre-formatted signed message instead of smtp-source's own (-l, -S).
    body = f"-F {MESSAGE_FILE}" if MESSAGE_FILE else f"-l {size} -S tput"
    if TLS:
        ip = "127.0.0.1"  # the sender's Postfix, which relays to the MX with STARTTLS
    return (f"/usr/sbin/smtp-source -N -d -s {sessions} -m {n} {body} -f {MAIL_FROM} -t {RCPT}"
            f" -M {SENDER_HOST} {ip}:25")


def run_once(cfg: str, ip: str, n: int, sessions: int, size: int, reset: bool = True) -> dict:
    mx = cname(f"mx-{cfg}")
    if reset:
        reset_mailbox(mx)
    if TLS:
        relay_via_sender(ip)
    timeout = max(120.0, n / 5.0)
    waiter = subprocess.Popen(["podman", "exec", "-i", mx, "python3", "-c", WAITER, str(n), str(timeout)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert waiter.stdout is not None
    line = waiter.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"waiter did not start on {mx}: {line} {waiter.stderr.read() if waiter.stderr else ''}")
    p = sh(["podman", "exec", cname("sender"), "bash", "-c",
            f"date +%s%N; {smtp_source_cmd(ip, n, sessions, size)} 2>&1; echo rc=$?; date +%s%N"],
           timeout=timeout + 60)
    lines = p.stdout.strip().splitlines()
    t0, t1 = int(lines[0]), int(lines[-1])
    rc = lines[-2]
    errors = [ln for ln in lines[1:-2] if ln.strip()]
    out, _ = waiter.communicate(timeout=timeout + 60)
    done = [ln for ln in out.splitlines() if ln.startswith("done")]
    if not done:
        raise RuntimeError(f"waiter failed on {mx}: {out}")
    _, td, delivered, queued = done[0].split()
    sender_left = 0
    if TLS:  # the sender's queue must be empty too (every message relayed over TLS)
        sender_left = len(pexec(cname("sender"), "postqueue -j").splitlines())
    accept_s = (t1 - t0) / 1e9
    e2e_s = (int(td) - t0) / 1e9
    res = {"config": cfg, "messages": n, "sessions": sessions, "size": size,
           "accept_seconds": round(accept_s, 3), "delivered_seconds": round(e2e_s, 3),
           "accept_rate": round(n / accept_s, 2), "delivered_rate": round(n / e2e_s, 2),
           "delivered": int(delivered), "queue_left": int(queued), "smtp_source": rc,
           "ok": rc == "rc=0" and int(delivered) == n and int(queued) == 0 and sender_left == 0}
    if TLS:
        res["sender_queue_left"] = sender_left
    if errors:
        res["smtp_source_output"] = errors[:5]
    return res


# Outcomes: forged mail sent from ns (10.89.231.53, not in src.example's SPF) to an MX, by
# smtplib: "spf_fail" (MAIL FROM bench@src.example: SPF fail, -all) and "dmarc_fail" (null
# sender, HELO ns.bench.example without SPF, From: bench@src.example unsigned: DMARC fail under
# p=reject). Each reports the SMTP reply that ended the transaction (5xx = rejected).
PROBE = r"""
import smtplib, sys
ip, mail_from, helo = sys.argv[1], sys.argv[2], sys.argv[3]
msg = ('From: Bench <bench@src.example>\r\nTo: <bench@bench.example>\r\nSubject: forged\r\n'
       'Message-ID: <forged@src.example>\r\nDate: Wed, 02 Dec 2026 12:00:00 +0000\r\n\r\nforged\r\n')
s = smtplib.SMTP(ip, 25, local_hostname=helo, timeout=60)
try:
    s.sendmail(mail_from, ['bench@bench.example'], msg)
    print('250 accepted')
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print(code, 'RCPT', text.decode(errors='replace')[:100])
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, 'DATA', e.smtp_error.decode(errors='replace')[:100])
finally:
    try:
        s.quit()
    except Exception:
        pass
"""


def probe_outcomes(ip: str) -> dict:
    """The replies of one MX to the two forgeries of PROBE, sent from ns."""
    out = {}
    for key, mail_from in (("spf_fail", MAIL_FROM), ("dmarc_fail", "")):
        out[key] = pexec(cname("ns"), f"python3 -c {shlex.quote(PROBE)} {ip} {shlex.quote(mail_from)} "
                                      f"ns.{MX_DOMAIN}", check=False).strip()
    return out


def sample_headers(mx: str) -> list[str]:
    out = pexec(mx, "f=$(ls /home/bench/Maildir/new/* 2>/dev/null | head -1); [ -n \"$f\" ] && "
                    "sed '/^$/q' \"$f\"", check=False)
    keep = ("Received-SPF", "Authentication-Results", "DKIM-Signature", "Received:")
    hdrs, cur = [], None
    for ln in out.splitlines():
        if ln[:1] in (" ", "\t") and cur is not None:
            hdrs[-1] += " " + ln.strip()
            continue
        cur = ln
        hdrs.append(ln)
    return [h for h in hdrs if h.startswith(keep)]


def cpu_snapshot(name: str) -> dict:
    return json.loads(pexec(name, f"python3 -c {shlex.quote(CPU_SNAP)}"))


def cgroup_cpu_ns(name: str) -> int:
    """CPU time (ns) of a whole container so far, from its cgroup: every process counts, also the
    ones that exited during a run (Postfix's cleanup/local after max_use, podman exec helpers)."""
    pid = sh(["podman", "inspect", "-f", "{{.State.Pid}}", name]).stdout.strip()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, rel = line.split(":", 2)
        if "cpuacct" in controllers.split(","):  # cgroup v1
            mount = "/sys/fs/cgroup/" + controllers
            if not Path(mount).exists():
                mount = "/sys/fs/cgroup/cpuacct"
            return int(Path(mount + rel, "cpuacct.usage").read_text())
        if controllers == "":  # cgroup v2
            for stat in Path("/sys/fs/cgroup" + rel, "cpu.stat").read_text().splitlines():
                if stat.startswith("usage_usec "):
                    return int(stat.split()[1]) * 1000
    raise RuntimeError(f"no cpu accounting cgroup for {name} (pid {pid})")


def accounting(cfg: str, ip: str, n: int, sessions: int, size: int, clk: int) -> dict:
    """One extra run with BIND's query log on and CPU sampling; not part of the rates.

    CPU per message comes two ways: per process name from /proc (what each daemon costs; the
    processes that exit during the run are counted by their parent's reaped-children time, see
    cpu_by_name), and per container from the cgroup (complete: the MX, ns and the sender). The machine-wide sum gives a
    ceiling: with every core busy, no configuration can accept more than cores * 1000 / (CPU ms per
    message) messages per second, whatever it waits for.
    """
    mx = cname(f"mx-{cfg}")
    ns = cname("ns")
    sender = cname("sender")
    pexec(ns, "rndc querylog on >/dev/null; : > /var/log/named/query.log")
    # Emptying the mailbox of the previous run (up to 100,000 files) happens before the CPU
    # snapshots: counted inside them it added several ms per message, most for the fastest MX.
    reset_mailbox(mx)
    c0, n0 = cpu_snapshot(mx), cpu_snapshot(ns)
    g0 = {k: cgroup_cpu_ns(v) for k, v in (("mx", mx), ("ns", ns), ("sender", sender))}
    res = run_once(cfg, ip, n, sessions, size, reset=False)
    g1 = {k: cgroup_cpu_ns(v) for k, v in (("mx", mx), ("ns", ns), ("sender", sender))}
    c1, n1 = cpu_snapshot(mx), cpu_snapshot(ns)
    time.sleep(0.5)
    qlog = pexec(ns, "cat /var/log/named/query.log; rndc querylog off >/dev/null")
    queries: dict[str, int] = {}
    total = 0
    for ln in qlog.splitlines():
        if f"client @" not in ln or f" {ip}#" not in ln:
            continue
        try:
            q = ln.split("query: ", 1)[1].split()
            key = f"{q[2]} {q[0]}"  # TYPE name
        except IndexError:
            continue
        total += 1
        queries[key] = queries.get(key, 0) + 1

    mx_cpu = cpu_by_name(c0, c1, clk, n)
    pids = pexec(mx, "pgrep -c -x policyd-spf || true").strip()
    container_ms = {k: round((g1[k] - g0[k]) / 1e6 / n, 3) for k in g0}
    container_ms["total"] = round(sum(container_ms.values()), 3)
    return {"config": cfg, "run": res, "dns_queries_total": total,
            "container_cpu_ms_per_message": container_ms,
            "cpu_bound_ceiling_msgs_per_s": round((os.cpu_count() or 1) * 1000.0 / container_ms["total"], 1)
            if container_ms["total"] > 0 else None,
            "dns_queries_per_message": round(total / n, 3),
            "dns_queries": dict(sorted(queries.items(), key=lambda kv: -kv[1])[:15]),
            "mx_cpu_ms_per_message": mx_cpu,
            "mx_cpu_ms_per_message_total": round(sum(mx_cpu.values()), 3),
            "ns_cpu_ms_per_message": cpu_by_name(n0, n1, clk, n),
            "policyd_spf_processes_after": int(pids or 0),
            # policyd-spf processes started during the run (each costs a Python start-up)
            "policyd_spf_started": started_during(c0, c1, "policyd-spf")}


def accounting_n(run_n: int, args) -> int:
    """Messages of an accounting run: about 10 s of load (a quarter of a 60-s run's N), at least
    100 per session so start-up costs (podman exec, first policyd-spf spawn) stay small per
    message, at most a whole measured run."""
    return min(run_n, max(100 * args.sessions, int(run_n * 10 / max(1.0, args.seconds))))


def policyd_spf_micro(mx: str, requests: int) -> dict:
    """policyd-spf alone: start-up time, and per-request time of one process fed `requests`
    policy requests on stdin (the Postfix policy protocol), resolving the way the MX does."""
    req = (f"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
           f"client_address={SENDER_IP}\nclient_name={SENDER_HOST}\nhelo_name={SENDER_HOST}\n"
           f"sender={MAIL_FROM}\nrecipient={RCPT}\ninstance=%d\n\n")
    # What master.cf runs (mailward: the launcher with the DNS cache; the tutorial: the program).
    argv = pexec(mx, "postconf -M policyd-spf/unix").split("argv=", 1)[1].split()
    prog, conf = argv[0], (argv[1] if len(argv) > 1 else "/etc/postfix-policyd-spf-python/policyd-spf.conf")
    script = textwrap.dedent(f"""\
        import os, subprocess, sys, time
        n = {requests}
        tck = os.sysconf('SC_CLK_TCK')
        def cpu(pid):
            f = open(f'/proc/{{pid}}/stat').read().rsplit(')', 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000.0 / tck
        t0 = time.perf_counter()
        p = subprocess.Popen(['{prog}', '{conf}'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        req = {req!r}
        p.stdin.write(req % 0); p.stdin.flush()
        first = p.stdout.readline(); p.stdout.readline()
        t1 = time.perf_counter(); c1 = cpu(p.pid)
        for i in range(1, n + 1):
            p.stdin.write(req % i); p.stdin.flush()
            r = p.stdout.readline(); p.stdout.readline()
        t2 = time.perf_counter(); c2 = cpu(p.pid)
        p.stdin.close(); p.wait()
        print(round((t1 - t0) * 1000, 1), round((t2 - t1) * 1000 / n, 3), round(c1, 1), round((c2 - c1) / n, 3),
              first.strip()[:120], r.strip()[:120])
        """)
    out = pexec(mx, f"runuser -u policyd-spf -- python3 -c {shlex.quote(script)}").split(" ", 4)
    # wall ms, and CPU ms of the policyd-spf process itself (utime+stime, tick resolution: the
    # per-request figure is an average over `requests`)
    return {"startup_plus_first_request_ms": float(out[0]), "per_request_ms": float(out[1]),
            "startup_plus_first_request_cpu_ms": float(out[2]), "per_request_cpu_ms": float(out[3]),
            "answer": out[4].strip(), "program": prog}


# ---------------------------------------------------------------- report
# Configuration -> letter of the issue's ratios.
LETTERS = {"plain": "a", "tutorial": "b", "mailward": "c", "rspamd": "d"}
# Process names on the MX -> the check they do (the rest is Postfix and the system).
CHECK_OF_PROCESS = {"policyd-spf": "spf", "exited children of spawn": "spf", "spawn": "spf",
                    "opendkim": "dkim", "opendmarc": "dmarc", "rspamd": "rspamd",
                    "unbound": "resolver"}


def rate_ratios(rates: dict) -> dict:
    """{'c/a': c/a, ...} for every pair the issue asks for (c over a, b, d; b over a; d over a)
    whose two rates are known and non-zero."""
    r = {LETTERS[c]: v for c, v in rates.items() if c in LETTERS and v}
    out = {}
    for x, y in (("c", "a"), ("c", "b"), ("c", "d"), ("b", "a"), ("d", "a")):
        if x in r and y in r:
            out[f"{x}/{y}"] = round(r[x] / r[y], 3)
    return out


def cpu_per_check(mx_cpu: dict) -> dict:
    """CPU ms per message on the MX grouped by check (CHECK_OF_PROCESS), the rest as 'postfix
    and other', and the total."""
    out: dict[str, float] = {}
    for name, ms in mx_cpu.items():
        key = CHECK_OF_PROCESS.get(name, "postfix and other")
        out[key] = out.get(key, 0.0) + ms
    total = sum(out.values())
    out = {k: round(v, 3) for k, v in sorted(out.items())}
    out["total"] = round(total, 3)
    return out


def summary_mode(data: dict) -> str:
    """The summary's section of a run: cleartext/tls, signed or not."""
    return ("tls" if data.get("tls") else "cleartext") + ("_signed" if data.get("signed") else "")


def summarize(data: dict, source: Path | str) -> dict:
    """The stable summary of one run (throughput.json's data): one section keyed by mode with
    the rates used, the ratios as c_over_a..., CPU per message per check and per container, and
    the command that produced it."""
    rate_key = data.get("rate", "accept_rate_median")
    rates = {c: r[rate_key] for c, r in data["results"].items()}
    ratios = {k.replace("/", "_over_"): v for k, v in rate_ratios(rates).items()}
    acct = data.get("accounting", {})
    section = {
        "rate": "delivered msg/s at the MX" if rate_key.startswith("delivered") else "accepted msg/s",
        "rates": rates,
        "ratios": ratios,
        "cpu_ms_per_message_mx_by_check": {c: cpu_per_check(a.get("mx_cpu_ms_per_message", {}))
                                           for c, a in acct.items()},
        "cpu_ms_per_message_containers": {c: a.get("container_cpu_ms_per_message") for c, a in acct.items()},
        "all_ok": all(r.get("all_ok") for r in data["results"].values()),
        "forged_mail_outcomes": data.get("forged_mail_outcomes"),
        # --experiments / --ablation: each step's MX CPU per message by check, and its rate over mailward's
        "steps": {e["experiment"]: {"kind": e.get("kind", "experiment"), "change": e["change"], "gain": e["gain"],
                                    "cpu_ms_per_message_mx_by_check":
                                        cpu_per_check(e["accounting"].get("mx_cpu_ms_per_message", {}))}
                  for e in data.get("experiments", [])},
        "quick": data.get("quick"), "reps": data.get("reps"), "seconds_target": data.get("seconds_target"),
        "command": "python bench/throughput/run.py " + " ".join(shlex.quote(a) for a in data.get("argv", [])),
        "source": str(source),
        "when": data.get("when"),
        "loadavg_end": data.get("host", {}).get("loadavg_end"),
    }
    return {summary_mode(data): section}


def merge_summary(old: dict, new: dict) -> dict:
    """The summary file: every mode's latest section, and the headline ratios at the top level
    (c_over_a, c_over_b, c_over_d from cleartext unsigned runs, the same with _tls from --tls)."""
    modes = dict(old.get("modes", {}))
    for mode, section in new.items():
        # A run of too few configurations for any ratio (e.g. --configs mailward --experiments)
        # does not wipe the ratios of a full run of that mode: it is kept beside it.
        if not section.get("ratios") and modes.get(mode, {}).get("ratios"):
            modes[mode + "_partial"] = section
        else:
            modes[mode] = section
    top: dict = {}
    for mode, suffix in (("cleartext", ""), ("tls", "_tls")):
        for k, v in modes.get(mode, {}).get("ratios", {}).items():
            top[k + suffix] = v
    return {"what": "mailward throughput ratios (bench/throughput/run.py); figures, not pass/fail",
            **top, "modes": modes}


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else float("nan")


def chart(results: dict, path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:  # noqa: BLE001
        return f"matplotlib not importable ({exc}): no chart"
    names = list(results)
    acc = [results[n]["accept_rate_median"] for n in names]
    dlv = [results[n]["delivered_rate_median"] for n in names]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], acc, 0.4, label="accepted (smtp-source)")
    ax.bar([i + 0.2 for i in x], dlv, 0.4, label="delivered (queue empty)")
    ax.set_xticks(list(x), names, rotation=20)
    ax.set_ylabel("messages / second (median)")
    ax.set_title("mailward throughput: smtp-source -> MX (same host, shared cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return f"chart: {path}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs (about 4 s each instead of 60 s)")
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=10, help="parallel SMTP sessions (mailward's anvil: 50/client)")
    ap.add_argument("--size", type=int, default=4096, help="message body bytes (-l)")
    ap.add_argument("--seconds", type=float, help="target seconds per measured run")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset")
    ap.add_argument("--experiments", action="store_true",
                    help="also converge a second mailward MX and measure the experiments on it")
    ap.add_argument("--ablation", action="store_true",
                    help="also converge a second mailward MX and take its checks away one at a time "
                         "(ABLATION), each step measured side by side with mailward")
    ap.add_argument("--signed", action="store_true",
                    help="send a DKIM-signed message (smtp-source -F) so OpenDKIM verifies a signature")
    ap.add_argument("--tls", action="store_true",
                    help="relay through a real Postfix on the sender: STARTTLS required "
                         "(smtp_tls_security_level = encrypt), TLS connections reused; rates are "
                         "delivered messages/s at the MX")
    ap.add_argument("--summary", default="build/bench/summary.json",
                    help="merge this run's ratios and CPU per check into this file")
    ap.add_argument("--rebuild-image", action="store_true")
    ap.add_argument("--keep", action="store_true", help="leave containers and network running")
    args = ap.parse_args()
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "containers" / "containers.conf"))
    out = Path(args.out)
    if not out.is_absolute():
        out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.seconds or (4.0 if args.quick else 60.0)
    args.seconds = seconds
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown config {c}")
    global MESSAGE_FILE, TLS
    TLS = args.tls
    message, dkim_txt = signed_message(args.size) if args.signed else (None, None)
    MESSAGE_FILE = SIGNED_PATH if args.signed else None
    started = time.monotonic()
    created: list[str] = []
    stale = existing_tput_containers()
    if stale:
        log(f"removing leftovers of an earlier run: {' '.join(stale)}")
        cleanup(stale)
    try:
        sh(["podman", "network", "create", "--subnet", SUBNET, NET])
        build_image(args.rebuild_image)
        mx_all = {c: (CONFIGS[c][0], CONFIGS[c][1]) for c in configs}
        if args.experiments or args.ablation:
            mx_all[TUNED[0]] = (TUNED[1], TUNED[2])
        mx_hosts = {f"mx-{c}.{MX_DOMAIN}": f"{NET3}.{o}" for c, (_, o) in mx_all.items()}
        log("starting ns, sender and the MX containers")
        created.append(cname("ns"))
        setup_ns(mx_hosts, dkim_txt)
        created.append(cname("sender"))
        setup_sender(message, args.sessions)
        for c, (_, octet) in mx_all.items():
            created.append(cname(f"mx-{c}"))
            run_container(f"mx-{c}", f"{NET3}.{octet}", f"mx-{c}.{MX_DOMAIN}", IMAGE, NS_IP)
        for c in mx_all:
            wait_systemd(cname(f"mx-{c}"))
        for c in mx_all:
            if c not in ("mailward", TUNED[0]):
                configure_manual(cname(f"mx-{c}"), c, f"mx-{c}.{MX_DOMAIN}")
        converge_s = None
        mw = {cname(f"mx-{c}"): (f"mx-{c}.{MX_DOMAIN}", f"{NET3}.{mx_all[c][1]}")
              for c in mx_all if c in ("mailward", TUNED[0])}
        if mw:
            # The image ships without apt lists; mailward's mail_repos role trusts a recent cache.
            for n in mw:
                pexec(n, f"apt-get update -qq; mkdir -p /etc/postfix; printf '{BENCH_ALIASES[1]}' > {BENCH_ALIASES[0]}")
            log(f"converging {' '.join(mw)} with site.yml (log: {out / 'tput-converge.log'})")
            converge_s = converge_mailward(out, mw)
            log(f"converged in {converge_s:.0f} s")
        clk = int(pexec(cname("ns"), "getconf CLK_TCK").strip())
        ips = {c: f"{NET3}.{o}" for c, (_, o) in mx_all.items()}

        # warm-up + calibration: every process spawned, caches as in steady state
        log("warm-up and calibration")
        checks, per_cfg_n = {}, {}
        for c in mx_all:
            r = run_once(c, ips[c], 20 * args.sessions, args.sessions, args.size)
            if not r["ok"]:
                raise RuntimeError(f"warm-up failed for {c}: {r}")
            checks[c] = sample_headers(cname(f"mx-{c}"))
            if args.signed and c in ("dkim", "tutorial", "mailward", "rspamd") and not any(
                    h.startswith("Authentication-Results") and "dkim=pass" in h for h in checks[c]):
                raise RuntimeError(f"--signed: mx-{c} did not verify the DKIM signature: {checks[c]}")
            r = run_once(c, ips[c], 20 * args.sessions, args.sessions, args.size)
            # With --tls the sender's own Postfix accepts far faster than the MX delivers: size the
            # runs by the MX's delivered rate, or a 60-s point takes many minutes (seen: 11 min).
            rate = r["delivered_rate"] if TLS else r["accept_rate"]
            n = int(rate * seconds) // args.sessions * args.sessions
            per_cfg_n[c] = max(10 * args.sessions, min(n, 100000))
            log(f"  {c}: {rate:.0f} msg/s in warm-up -> {per_cfg_n[c]} messages per run")

        runs: list[dict] = []
        order = list(mx_all)
        outcomes = {c: probe_outcomes(ips[c]) for c in order}
        for c, o in outcomes.items():
            log(f"  forged mail to {c}: " + "; ".join(f"{k}: {v}" for k, v in o.items()))

        def measure(names: list[str], reps: int) -> None:
            for rep in range(reps):
                rot = names[rep % len(names):] + names[:rep % len(names)]
                for c in rot:
                    r = run_once(c, ips[c], per_cfg_n[c], args.sessions, args.size)
                    r["rep"] = rep
                    runs.append(r)
                    log(f"  rep {rep + 1} {c:9s} {r['accept_rate']:8.1f} msg/s accepted, "
                        f"{r['delivered_rate']:8.1f} delivered, {r['delivered']}/{r['messages']}"
                        f"{'' if r['ok'] else '  NOT OK'}")
                    time.sleep(1)

        log(f"measuring: {args.reps} reps x {len(order)} configs, -s {args.sessions} -l {args.size} -d")
        measure(order, args.reps)

        results = {}
        for c in order:
            rs = [r for r in runs if r["config"] == c]
            results[c] = {"label": mx_all[c][0],
                          "accept_rate_median": median([r["accept_rate"] for r in rs]),
                          "delivered_rate_median": median([r["delivered_rate"] for r in rs]),
                          "accept_rates": [r["accept_rate"] for r in rs],
                          "delivered_rates": [r["delivered_rate"] for r in rs],
                          "all_ok": all(r["ok"] for r in rs)}

        log("accounting pass: DNS queries (BIND query log) and CPU per process")
        acct = {}
        for c in order:
            acct[c] = accounting(c, ips[c], accounting_n(per_cfg_n[c], args), args.sessions,
                                 args.size, clk)
        micro = {}
        for c in order:
            if c in ("spf", "tutorial", "mailward"):
                micro[c] = policyd_spf_micro(cname(f"mx-{c}"), 100 if args.quick else 300)

        experiments = []
        steps = ([("experiment", e) for e in EXPERIMENTS] if args.experiments else []) + \
                ([("ablation", e) for e in ABLATION] if args.ablation else [])
        if steps and "mailward" in order:
            log("experiments/ablation on mwtuned (cumulative), each measured side by side with mailward")
            tuned = cname(f"mx-{TUNED[0]}")
            base_n = per_cfg_n["mailward"]
            per_cfg_n[TUNED[0]] = base_n
            pexec(tuned, SAVE_MAILWARD)
            previous = None
            for kind, (key, desc, script) in steps:
                if kind != previous:
                    # every list starts from mailward's own configuration
                    pexec(tuned, RESTORE_MAILWARD)
                    previous = kind
                pexec(tuned, script)
                run_once(TUNED[0], ips[TUNED[0]], 10 * args.sessions, args.sessions, args.size)
                start = len(runs)
                measure(["mailward", TUNED[0]], args.reps)
                mine = runs[start:]
                a = median([r["accept_rate"] for r in mine if r["config"] == "mailward"])
                b = median([r["accept_rate"] for r in mine if r["config"] == TUNED[0]])
                acc = accounting(TUNED[0], ips[TUNED[0]], accounting_n(base_n, args),
                                 args.sessions, args.size, clk)
                experiments.append({"experiment": key, "kind": kind, "change": desc, "script": script,
                                    "headers": sample_headers(tuned),
                                    "mailward_median": a, "tuned_median": b,
                                    "gain": round(b / a, 3) if a else None,
                                    "all_ok": all(r["ok"] for r in mine),
                                    "accounting": acc})
                log(f"  {key}: mailward {a:.1f} msg/s, with change {b:.1f} msg/s: x{b / a:.2f}; "
                    f"CPU ms/msg MX {acc['container_cpu_ms_per_message']['mx']:.2f} "
                    f"(mailward's in the accounting pass: {acct['mailward']['container_cpu_ms_per_message']['mx']:.2f})")

        elapsed = time.monotonic() - started
        # With --tls smtp-source only hands mail to the sender's Postfix: the MX's rate is the
        # delivered one (N / time until the MX has delivered all N).
        rate_key = "delivered_rate_median" if TLS else "accept_rate_median"
        ratios = rate_ratios({c: r[rate_key] for c, r in results.items()})
        base = results.get("plain", {}).get(rate_key)
        cpu = {c: a["container_cpu_ms_per_message"]["total"] for c, a in acct.items()}
        if cpu.get("plain") and cpu.get("mailward"):
            # If both were CPU-bound, c/a could not exceed this: the work per message, a over c.
            ratios["c/a_cpu_bound_ceiling"] = round(cpu["plain"] / cpu["mailward"], 3)
        # table
        print()
        print(f"{'configuration':52s} {'accepted/s':>10s} {'ratio':>6s} {'delivered/s':>11s} "
              f"{'DNS q/msg':>9s} {'MX CPU ms/msg':>13s} {'all CPU ms/msg':>14s} {'ceiling/s':>9s} ok")
        for c in order:
            r = results[c]
            ratio = r[rate_key] / base if base else float("nan")
            a = acct.get(c, {})
            print(f"{r['label'][:52]:52s} {r['accept_rate_median']:10.1f} {ratio:6.2f} "
                  f"{r['delivered_rate_median']:11.1f} {a.get('dns_queries_per_message', float('nan')):9.2f} "
                  f"{a.get('container_cpu_ms_per_message', {}).get('mx', float('nan')):13.2f} "
                  f"{a.get('container_cpu_ms_per_message', {}).get('total', float('nan')):14.2f} "
                  f"{a.get('cpu_bound_ceiling_msgs_per_s') or float('nan'):9.0f} "
                  f"{'yes' if r['all_ok'] else 'NO'}")
        print(f"ratios ({'delivered' if TLS else 'accepted'} msgs/s):", ", ".join(f"{k} = {v}" for k, v in ratios.items()))
        for e in experiments:
            print(f"experiment {e['experiment']}: {e['change']}: {e['mailward_median']} -> "
                  f"{e['tuned_median']} msg/s (x{e['gain']})")
        for c, m in micro.items():
            print(f"policyd-spf on mx-{c}: start-up + first request {m['startup_plus_first_request_ms']} ms "
                  f"({m['startup_plus_first_request_cpu_ms']} ms CPU), then {m['per_request_ms']} ms per request "
                  f"({m['per_request_cpu_ms']} ms CPU; one process, sequential)")
        print(f"run took {elapsed / 60:.1f} min")
        data = {
            "what": "mail throughput, smtp-source -> MX; figures only",
            "quick": args.quick, "reps": args.reps, "sessions": args.sessions, "size": args.size,
            "signed": args.signed, "tls": TLS, "rate": rate_key, "argv": sys.argv[1:],
            "message_bytes": len(message) if message else None,
            "smtp_source": smtp_source_cmd("<mx>", 0, args.sessions, args.size).replace(" -m 0", " -m <n>"),
            "messages_per_run": per_cfg_n, "seconds_target": seconds,
            "results": results, "ratios": ratios, "runs": runs, "accounting": acct,
            "policyd_spf_micro": micro, "experiments": experiments, "header_checks": checks,
            "forged_mail_outcomes": outcomes,
            "converge_seconds": converge_s, "elapsed_seconds": round(elapsed, 1),
            "host": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg()},
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        (out / "throughput.json").write_text(json.dumps(data, indent=2) + "\n")
        print(f"json: {out / 'throughput.json'}")
        spath = Path(args.summary)
        spath = spath if spath.is_absolute() else ROOT / spath
        spath.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(spath.read_text()) if spath.exists() else {}
        spath.write_text(json.dumps(merge_summary(old, summarize(data, out / "throughput.json")),
                                    indent=2) + "\n")
        print(f"summary: {spath}")
        print(chart(results, out / "throughput.png"))
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep:
            log(f"--keep: leaving {' '.join(created)} and {NET}")
        else:
            log("cleaning up containers and network")
            cleanup(list(dict.fromkeys(created + existing_tput_containers())))


if __name__ == "__main__":
    sys.exit(main())
