"""Addresses from the inventory go through one strict parser (ip_address_strict / ip_network_strict).

Python's ipaddress accepts an IPv6 scope id with anything in it (``fe80::1%<newline>...``); a
value like that must never reach a zone fragment, unbound.conf or main.cf.
"""
import ipaddress

import pytest

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_records
from ansible_collections.mailward.mail.plugins.module_utils.records import ip_address_strict, ip_network_strict, spf_record
from mw_testlib import refusal

SCOPED = ["fe80::1%eth0", "fe80::1%\nevil. IN A 192.0.2.66", "2001:db8::1%1", "fe80::1%"]


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.10", ipaddress.IPv4Address("192.0.2.10")),
    ("2001:DB8::10", ipaddress.IPv6Address("2001:db8::10")),
    ("::1", ipaddress.IPv6Address("::1")),
])
def test_address_accepted(text, expected):
    assert ip_address_strict(text) == expected


@pytest.mark.parametrize("text, reason", [(text, "zone index") for text in SCOPED] + [
    (" 192.0.2.10", "whitespace or control"),
    ("192.0.2.10\n", "whitespace or control"),
    ("2001:db8::1\x00", "whitespace or control"),
    ("192.0.2.1\u2028", "whitespace or control"),
    ("١٩٢.0.2.1", "non-ASCII"),
    ("", "is empty"),
    (3232235777, "must be a string, not int"),
    (None, "must be a string, not NoneType"),
    ("192.0.2.300", "is not an IPv4 or IPv6 address"),
    ("192.0.2.0/24", "is not an IPv4 or IPv6 address"),
    ("mx.example.test", "is not an IPv4 or IPv6 address"),
])
def test_address_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        ip_address_strict(text)


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.0/24", "192.0.2.0/24"),
    ("192.0.2.10", "192.0.2.10/32"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("0.0.0.0/0", "0.0.0.0/0"),  # parsing only: callers judge the breadth
])
def test_network_accepted(text, expected):
    assert ip_network_strict(text) == ipaddress.ip_network(expected)


@pytest.mark.parametrize("text, reason", [(text, "zone index") for text in SCOPED] + [
    ("fe80::%eth0/64", "zone index"),
    ("192.0.2.10/24", "host bits set"),
    ("192.0.2.0/255.255.255.0", "prefix length must be a decimal number"),
    ("192.0.2.0/024", "prefix length must be a decimal number"),
    ("192.0.2.0/", "prefix length must be a decimal number"),
    ("192.0.2.0/24 ", "whitespace or control"),
    ("192.0.2.0/33", "is not an IPv4 or IPv6 address or network"),
    ("[2001:db8::]/32", "is not an IPv4 or IPv6 address or network"),
    (24, "must be a string, not int"),
])
def test_network_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        ip_network_strict(text)


def test_network_loose_keeps_the_other_checks():
    assert ip_network_strict("192.0.2.10/24", strict=False) == ipaddress.ip_network("192.0.2.0/24")
    with pytest.raises(ValueError, match="zone index"):
        ip_network_strict("fe80::1%x/64", strict=False)


@pytest.mark.parametrize("raw", SCOPED)
def test_mx_host_address_with_a_zone_index_never_reaches_a_record(raw):
    message = refusal(mail_domains_records, [], mx_hosts=[{"name": "mx.example.test", "ipv6": raw}])
    assert message.startswith("mx_hosts[0]: ipv6: ") and "zone index" in message, message
    assert "\n" not in message, message  # the value is shown escaped, on one line


def test_spf_refuses_a_netmask_instead_of_a_prefix_length():
    message = refusal(spf_record, {"ip4": ["192.0.2.0/255.255.255.0"]}, domain="example.test")
    assert message.startswith("spf_record: example.test: ip4: '192.0.2.0/255.255.255.0'"), message
