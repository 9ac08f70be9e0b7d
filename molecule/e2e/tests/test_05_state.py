"""Before any traffic: mx runs what site.yml configured (sockets Postfix uses, config on disk)."""

import pytest

from test_90_faults import milter_runs_config_on_disk


@pytest.mark.parametrize("service,path,socket", [
    ("opendkim", "/etc/opendkim.conf", "/var/spool/postfix/opendkim/opendkim.sock"),
    ("opendmarc", "/etc/opendmarc.conf", "/var/spool/postfix/opendmarc/opendmarc.sock"),
])
def test_milter_runs_the_configured_socket_and_file(hosts, service, path, socket):
    milters = hosts.mx.check_output("postconf -h smtpd_milters")
    listening = hosts.mx.check_output("ss -lxH")
    assert socket in listening, "Postfix uses %s but %s does not listen there:\n%s" % (milters, service, listening)
    ok, detail = milter_runs_config_on_disk(hosts.mx, service, path)
    assert ok, detail


def test_resolver_of_every_host_is_ns(hosts):
    for host in (hosts.mx, hosts.ok, hosts.bad):
        servers = [line.split()[1] for line in host.file("/etc/resolv.conf").content_string.splitlines()
                   if line.startswith("nameserver")]
        assert servers == ["10.89.200.53"], servers
