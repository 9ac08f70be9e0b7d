"""Unit tests for filter_plugins/mailward_roles.py (the roles' data-shaping helpers)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list, milter_port, milter_socket_for_postfix


def test_dkim_key_list_one_item_per_selector():
    domains = [
        {"name": "example.test", "dkim": [{"selector": "r1", "type": "rsa", "bits": 3072},
                                          {"selector": "e1", "type": "ed25519"}]},
        {"name": "example.org", "dkim": [{"selector": "mailward", "type": "rsa"}]},
    ]
    items = dkim_key_list(domains, "/etc/dkimkeys/")
    assert items == [
        {"domain": "example.test", "selector": "r1", "type": "rsa", "bits": 3072, "state": "active",
         "path": "/etc/dkimkeys/example.test/r1.private", "dns_name": "r1._domainkey.example.test"},
        {"domain": "example.test", "selector": "e1", "type": "ed25519", "bits": 0, "state": "active",
         "path": "/etc/dkimkeys/example.test/e1.private", "dns_name": "e1._domainkey.example.test"},
        {"domain": "example.org", "selector": "mailward", "type": "rsa", "bits": 2048, "state": "active",
         "path": "/etc/dkimkeys/example.org/mailward.private", "dns_name": "mailward._domainkey.example.org"},
    ]


def test_dkim_key_list_empty():
    assert dkim_key_list([], "/k") == []
    assert dkim_key_list(None, "/k") == []


@pytest.mark.parametrize("socket, expected", [
    ("inet:8891@localhost", "inet:localhost:8891"),
    ("inet:8893@127.0.0.1", "inet:127.0.0.1:8893"),
    ("inet:8891", "inet:localhost:8891"),
    ("inet6:8891@::1", "inet:[::1]:8891"),
    ("local:/var/spool/postfix/opendkim/opendkim.sock", "unix:/opendkim/opendkim.sock"),
    ("local:/run/opendmarc/opendmarc.sock", "unix:/run/opendmarc/opendmarc.sock"),
])
def test_milter_socket_for_postfix(socket, expected):
    assert milter_socket_for_postfix(socket) == expected


@pytest.mark.parametrize("socket", ["8891", "inet:99999@localhost", "inet:abc@localhost", "tcp:8891@x", None])
def test_milter_socket_refused(socket):
    with pytest.raises(AnsibleFilterError, match="milter socket"):
        milter_socket_for_postfix(socket)


def test_milter_port():
    assert milter_port("inet:8893@localhost") == 8893
    assert milter_port("local:/run/x.sock") is None


def test_dkim_key_list_keeps_the_selectors_of_this_host():
    domains = [{"name": "example.com", "dkim": [
        {"selector": "mx1", "type": "rsa", "bits": 2048, "hosts": ["mx1.example.com"]},
        {"selector": "mx2", "type": "rsa", "bits": 2048, "hosts": ["mx2.example.com"]},
        {"selector": "all", "type": "ed25519"},
    ]}]
    assert [k["selector"] for k in dkim_key_list(domains, "/k", "mx1.example.com")] == ["mx1", "all"]
    assert [k["selector"] for k in dkim_key_list(domains, "/k", "mx2.example.com")] == ["mx2", "all"]
    assert [k["selector"] for k in dkim_key_list(domains, "/k")] == ["mx1", "mx2", "all"]
