"""The pip method of the policyd_spf role (the default on EL 10, where EPEL has no pypolicyd-spf):
the role's pinned packages, installed the way the role installs them, answer Postfix's policy
requests with the EL 10 policyd-spf.conf, with the semantics the package has on EL 9 and Debian.

The virtualenv is made once (build/checker/policyd-spf-<hash of the pins>, from PyPI, a few
seconds) and reused. DNS is taken away with a network namespace of its own (`unshare -n`,
root), so a lookup fails as it does when the domain's name servers are down: with dnspython that
is a TempError, and `TempError_Defer = True` defers (450 4.7.24) instead of accepting unchecked
mail; the same file with the setting turned off accepts with a Temperror header, which shows
the file is what decides. This machine's Python is 3.11; EL 10's is 3.12.
"""

import hashlib
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

PINS = yaml.safe_load((ROOT / "roles/policyd_spf/defaults/main.yml").read_text())["policyd_spf_pip_packages"]

REQUEST = ("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=SMTP\nhelo_name=client.example.org\n"
           "queue_id=\nsender=alice@example.org\nrecipient=bob@example.com\nclient_address={address}\n"
           "client_name=unknown\ninstance=1.2.3\n\n")


@pytest.fixture(scope="module")
def policyd_spf():
    """The virtualenv's policyd-spf, made as the role makes it (python3 -m venv, its own pip)."""
    venv = ROOT / "build/checker" / ("policyd-spf-" + hashlib.sha256("\n".join(PINS).encode()).hexdigest()[:12])
    binary = venv / "bin/policyd-spf"
    if not binary.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        proc = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--no-input",
                               "--disable-pip-version-check", *PINS],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.returncode == 0 and binary.exists(), proc.stdout
    return binary


def ask(binary, conf, address):
    proc = subprocess.run(["unshare", "-n", str(binary), str(conf)], input=REQUEST.format(address=address),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_pins_are_the_roles(policyd_spf):
    freeze = subprocess.run([str(policyd_spf.parent / "python"), "-m", "pip", "freeze"],
                            stdout=subprocess.PIPE, text=True, check=True).stdout.lower()
    for pin in PINS:
        assert pin.lower() in freeze.replace("_", "-"), (pin, freeze)


def test_dns_failure_defers_with_the_el10_config(policyd_spf, rendered_el10):
    answer = ask(policyd_spf, rendered_el10 / "policyd-spf/policyd-spf.conf", "192.0.2.1")
    assert answer.startswith("action=defer_if_permit 4.7.24 "), answer
    assert "SPF Temporary Error" in answer, answer


def test_without_temperror_defer_the_same_failure_is_accepted(policyd_spf, rendered_el10, tmp_path):
    """The negative case: the answer above comes from the configuration file."""
    conf = (rendered_el10 / "policyd-spf/policyd-spf.conf").read_text()
    assert "TempError_Defer = True" in conf
    changed = tmp_path / "policyd-spf.conf"
    changed.write_text(conf.replace("TempError_Defer = True", "TempError_Defer = False"))
    answer = ask(policyd_spf, changed, "192.0.2.1")
    assert answer.startswith("action=prepend Received-SPF: Temperror"), answer


def test_loopback_is_skipped(policyd_spf, rendered_el10):
    answer = ask(policyd_spf, rendered_el10 / "policyd-spf/policyd-spf.conf", "127.0.0.1")
    assert answer.startswith("action=prepend X-Comment: SPF check N/A for local connections"), answer


# --- the launcher (policyd_spf_dns_cache_size): dnspython's cache, nothing else changed ---------
# A name server of the test's own in a network and mount namespace (loopback only, /etc/resolv.conf
# bound over): it logs every query, answers TXT for *.example.org with an SPF record (TTL 300), and
# SERVFAILs the first query for flaky.example.org. The same five requests go to one process of the
# launcher and to one of the program itself, as Postfix hands a session's requests to one process.
FAKE_DNS = r"""
import pathlib, socket, sys
import dns.message, dns.rcode, dns.rdatatype, dns.rrset
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
log = open(sys.argv[1], "a", buffering=1)
pathlib.Path(sys.argv[2]).touch()
seen = {}
while True:
    data, addr = sock.recvfrom(4096)
    query = dns.message.from_wire(data)
    name, rdtype = query.question[0].name.to_text(), query.question[0].rdtype
    seen[name] = seen.get(name, 0) + 1
    log.write("%s %s\n" % (name, dns.rdatatype.to_text(rdtype)))
    reply = dns.message.make_response(query)
    if name == "flaky.example.org." and seen[name] == 1:
        reply.set_rcode(dns.rcode.SERVFAIL)
    elif rdtype == dns.rdatatype.TXT and name.endswith("example.org."):
        reply.answer.append(dns.rrset.from_text(name, 300, "IN", "TXT", '"v=spf1 ip4:192.0.2.1 -all"'))
    else:
        reply.set_rcode(dns.rcode.NXDOMAIN)
    sock.sendto(reply.to_wire(), addr)
"""

SENDERS = ["alice@example.org"] * 3 + ["bob@flaky.example.org"] * 2


def ask_with_dns(command, conf, tmp_path, senders=None):
    """The answers of one process to `senders` ((sender, client address) pairs; default SENDERS
    from 192.0.2.1), and the queries that reached the name server."""
    senders = senders or [(sender, "192.0.2.1") for sender in SENDERS]
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (tmp_path / "fake_dns.py").write_text(FAKE_DNS)
    log, ready = tmp_path / "queries.log", tmp_path / "ready"
    # One message each (its own instance: policyd-spf answers a message's further recipients "dunno").
    requests = "".join(REQUEST.replace("alice@example.org", sender).replace("instance=1.2.3", "instance=1.2.%d" % n)
                       .format(address=address) for n, (sender, address) in enumerate(senders))
    script = (f"ip link set lo up && mount --bind {tmp_path}/resolv.conf /etc/resolv.conf"
              f" && {{ {sys.executable} {tmp_path}/fake_dns.py {log} {ready} & pid=$!; }}"
              f" && while [ ! -e {ready} ]; do sleep 0.05; done"
              f" && {' '.join(map(str, command))} {conf}; rc=$?; kill $pid; exit $rc")
    proc = subprocess.run(["unshare", "-n", "-m", "sh", "-c", script], input=requests,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    answers = [block.strip() for block in proc.stdout.split("\n\n") if block.strip()]
    return answers, log.read_text().splitlines()


@pytest.fixture(scope="module")
def launcher(rendered_el10):
    return rendered_el10 / "policyd-spf/policyd-spf"


def test_launcher_keeps_answers_and_never_a_servfail(policyd_spf, launcher, rendered_el10, tmp_path):
    conf = rendered_el10 / "policyd-spf/policyd-spf.conf"
    for name in ("program", "launcher"):
        (tmp_path / name).mkdir()
    program = ask_with_dns([policyd_spf], conf, tmp_path / "program")
    cached = ask_with_dns([policyd_spf.parent / "python", launcher], conf, tmp_path / "launcher")
    for answers, _ in (program, cached):
        assert len(answers) == 5, answers
        # The same decisions: Pass three times, the SERVFAIL deferred (TempError_Defer), then Pass
        # once the name server answers: the failure was not kept.
        assert all(a.startswith("action=prepend Received-SPF: Pass") for a in answers[:3] + answers[4:]), answers
        assert answers[3].startswith("action=defer_if_permit 4.7.24 "), answers
    # The program asks for the same two TXT records again for every request; the launcher once.
    assert program[1].count("example.org. TXT") == 3 and program[1].count("client.example.org. TXT") == 5, program[1]
    assert cached[1].count("example.org. TXT") == 1 and cached[1].count("client.example.org. TXT") == 1, cached[1]
    assert cached[1].count("flaky.example.org. TXT") == 2, cached[1]


def test_launcher_caches_records_not_verdicts(policyd_spf, launcher, rendered_el10, tmp_path):
    """The attacker's next try: a message passes from the address the domain's record allows, then
    the same envelope sender and HELO come from an address it does not. The cache holds the DNS
    answer, never the verdict: the second message is still evaluated against the client address
    and refused (Fail at MAIL FROM), by the same process, with no new query."""
    conf = rendered_el10 / "policyd-spf/policyd-spf.conf"
    answers, queries = ask_with_dns([policyd_spf.parent / "python", launcher], conf, tmp_path,
                                    [("alice@example.org", "192.0.2.1"), ("alice@example.org", "198.51.100.7")])
    assert answers[0].startswith("action=prepend Received-SPF: Pass"), answers
    assert answers[1].startswith("action=550 5.7.23 "), answers
    assert queries.count("example.org. TXT") == 1, queries
