"""State checks of a converged Rocky Linux MX (9 or 10): EL paths, users, sockets, services.

What a container cannot show (SELinux, firewalld) is listed in molecule/rocky9/README.md.
"""

import re

import pytest

testinfra_hosts = ["podman://mailward-molecule-rocky9"]


@pytest.fixture(scope="module")
def el_major(host):
    return host.check_output(". /etc/os-release && echo ${VERSION_ID%%.*}")


@pytest.mark.parametrize("service", ["postfix", "opendkim", "opendmarc", "dovecot", "mailward-fromcheck", "unbound"])
def test_service_running(host, service):
    assert host.service(service).is_running, host.run("systemctl status %s --no-pager", service).stdout
    assert host.service(service).is_enabled


def test_policyd_spf_el_paths(host, el_major):
    """EL 9: EPEL's pypolicyd-spf. EL 10 (no EPEL package): mailward's pinned virtualenv."""
    binary = "/usr/libexec/postfix/policyd-spf" if el_major == "9" else "/opt/mailward/policyd-spf/bin/policyd-spf"
    master = host.check_output("postconf -M policyd-spf/unix")
    # The launcher (dnspython's cache on) runs the program's entry point with the program's Python.
    assert "argv=/usr/libexec/mailward/policyd-spf /etc/python-policyd-spf/policyd-spf.conf" in master, master
    assert host.file(binary).exists
    python = "/usr/bin/python3" if el_major == "9" else "/opt/mailward/policyd-spf/bin/python"
    assert host.file("/usr/libexec/mailward/policyd-spf").content_string.startswith("#!%s\n" % python)
    assert "spf_engine.policyd_spf" in host.file(binary).content_string
    assert host.file("/etc/python-policyd-spf/policyd-spf.conf").exists


def test_policyd_spf_user(host):
    user = host.user("policyd-spf")
    assert user.shell == "/bin/false"
    assert not host.file(user.home).exists


def test_dkim_keys_keep_the_package_ownership(host):
    """The EPEL package owns /etc/opendkim/keys as root:opendkim 0750; mailward keeps it."""
    keys = host.file("/etc/opendkim/keys")
    assert (keys.user, keys.group, keys.mode) == ("root", "opendkim", 0o750), (keys.user, keys.group, oct(keys.mode))
    key = host.file("/etc/opendkim/keys/example.test/mw2026r.private")
    assert key.user == "opendkim" and key.mode & 0o077 == 0


@pytest.mark.parametrize("milter, path", [("opendkim", "/run/opendkim/opendkim.sock"),
                                          ("opendmarc", "/run/opendmarc/opendmarc.sock")])
def test_milters_on_unix_sockets_in_their_runtime_directories(host, milter, path):
    directory = host.file(path.rsplit("/", 1)[0])
    assert (directory.user, directory.group, directory.mode) == (milter, milter, 0o750), \
        (directory.user, directory.group, oct(directory.mode))
    assert host.socket("unix://%s" % path).is_listening
    assert milter in host.user("postfix").groups, host.user("postfix").groups
    assert "unix:%s" % path in host.check_output("postconf -h smtpd_milters")


def test_opendmarc_runs_as_opendmarc_opendmarc(host):
    line = host.check_output("ps -o user=,group= -C opendmarc | head -1").split()
    assert line == ["opendmarc", "opendmarc"], line


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:25", "tcp://0.0.0.0:587", "tcp://127.0.0.1:8890"])
def test_listening(host, address):
    assert host.socket(address).is_listening


def test_compatibility_level_matches_the_installed_postfix(host):
    version = host.check_output("postconf -dh mail_version")
    level = host.check_output("postconf -h compatibility_level")
    parts = tuple(int(part) for part in version.split("."))
    assert level == ("3.6" if parts >= (3, 5, 11) else "2"), (version, level)
    assert host.run("postfix check").rc == 0


def test_local_mail_is_signed_through_the_socket(host):
    """sendmail -> cleanup -> OpenDKIM over /run/opendkim: the delivered copy carries a signature."""
    host.check_output("printf 'From: root@example.test\\nTo: root@mx.example.test\\nSubject: el-sign\\n\\nx\\n' | "
                      "sendmail -f root@example.test root@mx.example.test")
    for _ in range(20):
        spool = host.run("cat /var/spool/mail/root")
        if "Subject: el-sign" in spool.stdout:
            break
        host.run("sleep 1")
    assert "Subject: el-sign" in spool.stdout, host.run("journalctl -u postfix --no-pager | tail -20").stdout
    assert re.search(r"^DKIM-Signature: .*d=example\.test", spool.stdout, re.M), spool.stdout
