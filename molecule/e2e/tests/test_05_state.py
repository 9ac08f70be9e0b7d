"""Before any traffic: mx runs what site.yml configured (sockets Postfix uses, config on disk)."""

import re

import pytest

from conftest import IP

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


def nameservers(host, path="/etc/resolv.conf"):
    return [line.split()[1] for line in host.file(path).content_string.splitlines() if line.startswith("nameserver")]


def test_senders_resolve_through_ns(hosts):
    for host in (hosts.ok, hosts.bad):
        assert nameservers(host) == [IP["ns"]]


def test_mx_resolves_through_its_own_unbound_which_forwards_to_ns(hosts):
    """The resolver role: libc (policyd-spf, OpenDMARC, Postfix - also inside its chroot) and
    OpenDKIM's libunbound all ask 127.0.0.1, and that Unbound asks ns."""
    assert nameservers(hosts.mx) == ["127.0.0.1"]
    assert nameservers(hosts.mx, "/var/spool/postfix/etc/resolv.conf") == ["127.0.0.1"]
    assert re.search(r"^Nameservers\s+127\.0\.0\.1$", hosts.mx.check_output("cat /etc/opendkim.conf"), re.M)
    forwards = hosts.mx.check_output("unbound-control list_forwards")
    assert re.search(r"^\. IN forward %s$" % re.escape(IP["ns"]), forwards, re.M), forwards


def test_mx_answers_a_repeated_lookup_from_its_cache(hosts):
    def stat(name):
        out = hosts.mx.check_output("unbound-control stats_noreset")
        return int(re.search(r"^%s=(\d+)$" % re.escape(name), out, re.M).group(1))
    name = "mail.partner-strict.example"
    first = hosts.mx.run("getent ahostsv4 %s", name)
    assert first.rc == 0 and IP["ok"] in first.stdout, first.stdout + first.stderr
    hits = stat("total.num.cachehits")
    again = hosts.mx.run("getent ahostsv4 %s", name)
    assert again.rc == 0 and IP["ok"] in again.stdout
    assert stat("total.num.cachehits") > hits, "the second lookup of %s was not a cache hit" % name


def test_policyd_spf_tells_a_servfail_from_no_record(hosts):
    """pyspf has two DNS drivers. With py3dns (Debian's default) a SERVFAIL from the resolver -
    what any recursive resolver, Unbound included, answers when the domain's name servers are
    down - comes back as "no records": SPF None, and the mail passes unchecked instead of being
    deferred (check 9a). With dnspython it is a TempError. The policyd_spf role installs dnspython,
    which pyspf prefers when it is there."""
    driver = hosts.mx.check_output("python3 -c 'import spf; print(spf.DNSLookup.__name__)'")
    assert driver == "DNSLookup_dnspython", driver
