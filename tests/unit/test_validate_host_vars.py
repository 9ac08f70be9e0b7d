"""The host's own variables are checked with mail_domains, in the same single error.

mail_domains_normalize(..., host_vars={...}) is what roles/validate calls; a key missing from
host_vars is not checked (the validate role passes every variable, with its default).
"""
import re

import pytest

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize
from mw_testlib import refusal

HOST, MX = "mail1", "mx.example.test"
LINE = re.compile(r"^host mail1: ([a-z_46]+(\[\d+\])?(\.[a-z]+)?"
                  r"|mail_domains\[\d+\] \([^)]*\): [\w.\[\]]+): .+")
DOMAINS = [{"name": "example.test"}]


def check(**host_vars):
    return mail_domains_normalize(DOMAINS, HOST, MX, host_vars=host_vars)


def problems(domains=DOMAINS, **host_vars):
    lines = refusal(mail_domains_normalize, domains, HOST, MX, host_vars=host_vars).splitlines()
    for line in lines:
        assert LINE.match(line), line
    return lines


def test_without_host_vars_nothing_changes():
    assert mail_domains_normalize(DOMAINS, HOST, MX) == check()


def test_host_vars_must_be_a_mapping():
    message = refusal(mail_domains_normalize, DOMAINS, HOST, MX, host_vars=["mail_mynetworks"])
    assert "host_vars must be a mapping" in message


# ---------------------------------------------------------------- mail_mynetworks

@pytest.mark.parametrize("networks", [
    ["127.0.0.0/8", "[::1]/128"],
    ["127.0.0.0/8", "[::1]/128", "198.51.100.0/24", "192.0.2.10", "[2001:db8::1]"],
    ["10.0.0.0/8", "[2001:db8::]/32", "[fe80::]/64"],
    [],
])
def test_good_mynetworks_pass(networks):
    assert check(mail_mynetworks=networks, mail_mynetworks_allow_broad=False)


@pytest.mark.parametrize("entry, reason", [
    ("0.0.0.0/0", "matches every address"),
    ("[::]/0", "matches every address"),
    ("[::ffff:0:0]/96", "matches every IPv4 address"),
    ("10.0.0.0/7", "broader than /8"),
    ("128.0.0.0/1", "broader than /8"),
    ("[2001::]/16", "broader than /32"),
    ("[::ffff:0.0.0.0]/100", "broader than /8"),
    ("192.0.2.10/24", "host bits set: write the network 192.0.2.0/24"),
    ("[2001:db8::1]/64", "host bits set: write the network [2001:db8::]/64"),
    ("2001:db8::/32", "in brackets, [addr] or [addr]/n"),
    ("::1", "in brackets"),
    ("[192.0.2.0]/24", "IPv4 network in brackets"),
    ("[2001:db8::/32", "brackets"),
    ("[2001:db8::]32", "brackets"),
    ("127.0.0.0/8, 10.0.0.0/8", "one network per list item"),
    ("127.0.0.0/8 10.0.0.0/8", "one network per list item"),
    ("127.0.0.0/8\n", "one network per list item"),
    ("[fe80::1%eth0]", "zone index"),
    ("[fe80::1%\nx]", "zone index"),
    ("192.0.2.0/255.255.255.0", "decimal number"),
    ("mynetworks.example.test", "is not an IPv4 or IPv6 address or network"),
    ("hash:/etc/postfix/network_table", "is not an IPv4"),
    ("/etc/postfix/networks", "is not an IPv4"),
    ("", "is empty"),
    (8, "must be a string"),
    (None, "must be a string"),
])
def test_bad_mynetworks_entry_is_refused_naming_host_variable_and_value(entry, reason):
    lines = problems(mail_mynetworks=["127.0.0.0/8", entry])
    assert len(lines) == 1, lines
    assert lines[0].startswith("host mail1: mail_mynetworks[1]: "), lines
    assert reason in lines[0], lines
    shown = entry.encode("unicode_escape").decode() if isinstance(entry, str) else repr(entry)
    assert shown[:20] in lines[0], lines


def test_the_open_relay_of_the_review_is_refused_entry_by_entry():
    lines = problems(mail_mynetworks=["0.0.0.0/0", "[::]/0"])
    assert [line.split(": ")[1] for line in lines] == ["mail_mynetworks[0]", "mail_mynetworks[1]"]
    assert "'0.0.0.0/0'" in lines[0] and "'[::]/0'" in lines[1], lines


@pytest.mark.parametrize("entry", ["10.0.0.0/7", "[2001::]/16", "[::ffff:0.0.0.0]/100"])
def test_a_broad_network_passes_with_the_opt_in(entry):
    assert check(mail_mynetworks=[entry], mail_mynetworks_allow_broad=True)


@pytest.mark.parametrize("entry", ["0.0.0.0/0", "[::]/0", "[::ffff:0:0]/96"])
def test_every_address_is_refused_even_with_the_opt_in(entry):
    lines = problems(mail_mynetworks=[entry], mail_mynetworks_allow_broad=True)
    assert "matches every" in lines[0] and "even with mail_mynetworks_allow_broad" in lines[0]


@pytest.mark.parametrize("value", ["127.0.0.0/8", "127.0.0.0/8 [::1]/128", {"net": "127.0.0.0/8"},
                                   None, 8])
def test_mynetworks_not_a_list_is_refused(value):
    lines = problems(mail_mynetworks=value)
    assert len(lines) == 1 and lines[0].startswith("host mail1: mail_mynetworks: must be a list"), lines


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_opt_in_must_be_a_boolean(value):
    lines = problems(mail_mynetworks=["127.0.0.0/8"], mail_mynetworks_allow_broad=value)
    assert lines[0].startswith("host mail1: mail_mynetworks_allow_broad: "), lines
    assert "must be true or false" in lines[0]


# ---------------------------------------------------------------- mail_public_ipv4 / ipv6

@pytest.mark.parametrize("ipv4, ipv6", [("192.0.2.10", "2001:db8::10"), (None, None), ("", ""),
                                        ("10.89.200.25", None)])
def test_good_public_addresses_pass(ipv4, ipv6):
    assert check(mail_public_ipv4=ipv4, mail_public_ipv6=ipv6)


@pytest.mark.parametrize("var, value, reason", [
    ("mail_public_ipv6", "fe80::1%eth0", "zone index"),
    ("mail_public_ipv6", "2001:db8::10%\nevil. IN A 192.0.2.66", "zone index"),
    ("mail_public_ipv6", "192.0.2.10", "is not an IPv6 address"),
    ("mail_public_ipv6", "::ffff:192.0.2.10", "IPv4-mapped"),
    ("mail_public_ipv6", "2001:db8::/64", "is not an IPv4 or IPv6 address"),
    ("mail_public_ipv4", "2001:db8::10", "is not an IPv4 address"),
    ("mail_public_ipv4", "192.0.2.300", "is not an IPv4 or IPv6 address"),
    ("mail_public_ipv4", "192.0.2.10\n", "whitespace or control"),
    ("mail_public_ipv4", ["192.0.2.10"], "must be a string"),
    ("mail_public_ipv4", 3232235786, "must be a string"),
])
def test_bad_public_address_is_refused(var, value, reason):
    lines = problems(**{var: value})
    assert len(lines) == 1 and lines[0].startswith("host mail1: %s: " % var), lines
    assert reason in lines[0], lines
    assert "\n" not in lines[0]


# ---------------------------------------------------------------- resolver_forwarders

def test_good_forwarders_pass():
    assert check(resolver_forwarders=["192.0.2.53", "192.0.2.54@5353", "2001:db8::53",
                                      "2001:db8::53@53"])
    assert check(resolver_forwarders=[])


@pytest.mark.parametrize("entry, reason", [
    ("dns.example.net", "not a name"),
    ("fe80::1%eth0", "zone index"),
    ("fe80::1%eth0@53", "zone index"),
    ("192.0.2.53\nforward-addr: 203.0.113.9", "whitespace or control"),
    ("192.0.2.53@0", "port '0'"),
    ("192.0.2.53@053", "port '053'"),
    ("192.0.2.53@", "port ''"),
    ("999.1.1.1", "is not an IPv4 or IPv6 address"),
    ("192.0.2.53@65536", "port '65536'"),
    ("192.0.2.53@x", "port 'x'"),
    ("192.0.2.53@\u0665\u0663", "port"),
    ("2001:db8:::53", "is not an IPv4 or IPv6 address"),
    ("", "is empty"),
    (53, "must be a string"),
])
def test_bad_forwarder_is_refused_naming_the_entry(entry, reason):
    lines = problems(resolver_forwarders=["192.0.2.53", entry])
    assert len(lines) == 1 and lines[0].startswith("host mail1: resolver_forwarders[1]: "), lines
    assert reason in lines[0], lines


def test_forwarders_not_a_list_is_refused():
    assert problems(resolver_forwarders="192.0.2.53") == [
        "host mail1: resolver_forwarders: must be a list of IP addresses, not str"]


# ---------------------------------------------------------------- all at once

def test_host_and_domain_problems_come_in_one_error():
    lines = problems([{"name": "example.test", "dmarc": {"p": "rejcet"}}],
                     mail_mynetworks=["0.0.0.0/0"], mail_public_ipv6="fe80::1%eth0",
                     resolver_forwarders=["dns.example.net"])
    assert [line.split(": ")[1] for line in lines] == [
        "mail_mynetworks[0]", "mail_public_ipv6", "resolver_forwarders[0]",
        "mail_domains[0] (example.test)"], lines
