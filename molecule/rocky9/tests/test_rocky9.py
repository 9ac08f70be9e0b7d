"""State checks of a converged Rocky 9 MX: the EL paths, users and services."""

import pytest

testinfra_hosts = ["podman://mailward-molecule-rocky9"]


@pytest.mark.parametrize("service", ["postfix", "opendkim", "opendmarc"])
def test_service_running(host, service):
    assert host.service(service).is_running
    assert host.service(service).is_enabled


def test_policyd_spf_el_paths(host):
    master = host.check_output("postconf -M policyd-spf/unix")
    assert "argv=/usr/libexec/postfix/policyd-spf /etc/python-policyd-spf/policyd-spf.conf" in master
    assert host.file("/usr/libexec/postfix/policyd-spf").exists
    assert host.file("/etc/python-policyd-spf/policyd-spf.conf").exists


def test_policyd_spf_user(host):
    user = host.user("policyd-spf")
    assert user.shell == "/bin/false"
    assert not host.file(user.home).exists


def test_dkim_key_on_el_path(host):
    key = host.file("/etc/opendkim/keys/example.test/mw2026r.private")
    assert key.user == "opendkim" and key.mode & 0o077 == 0


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:25", "tcp://127.0.0.1:8891", "tcp://127.0.0.1:8893"])
def test_listening(host, address):
    assert host.socket(address).is_listening

