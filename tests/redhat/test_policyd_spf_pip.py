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
