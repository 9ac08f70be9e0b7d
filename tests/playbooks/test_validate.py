"""The inventory check refuses bad input before any host is touched.

playbooks/validate.yml runs on the controller only. These tests run it against an inventory
whose host does not exist (an unreachable SSH address): a pass proves no connection was made,
and every refusal must name the host, the domain and the variable.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

GOOD_DOMAIN = {
    "name": "example.test",
    "spf": {"mx": True, "ip4": ["192.0.2.10"], "all": "fail"},
    "dkim": [{"selector": "s1", "type": "rsa", "bits": 2048}],
    "dmarc": {"p": "reject", "rua": ["mailto:dmarc@example.test"]},
}


def run_validate(tmp_path, host_vars, extra_yaml="", args=()):
    """Run playbooks/validate.yml; ``extra_yaml``: more host variables as YAML text (tags)."""
    inventory = {
        "all": {"children": {"mail": {"hosts": {"mx-under-test": dict(
            {"ansible_host": "198.51.100.254", "ansible_connection": "ssh",
             "mail_hostname": "mx.example.test"}, **host_vars)}}}}
    }
    path = tmp_path / "inventory.yml"
    text = yaml.safe_dump(inventory)
    if extra_yaml:
        indent = " " * (text.index("mail_hostname") - text.rindex("\n", 0, text.index("mail_hostname")) - 1)
        text += "".join(indent + line + "\n" for line in extra_yaml.splitlines())
    path.write_text(text)
    # JSON results: a message stays on one line (the YAML format folds long ones and doubles ').
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(path), *args, str(ROOT / "playbooks/validate.yml")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                          timeout=300)
    return proc.returncode, proc.stdout


def test_good_inventory_passes_without_touching_the_host(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN]})
    assert rc == 0, out
    assert "unreachable=0" in out and "failed=0" in out, out


@pytest.mark.parametrize("domain_patch, expected", [
    ({"spf": {"ip4": ["192.0.2.300"], "all": "fail"}}, ["spf.ip4", "192.0.2.300"]),
    ({"dmarc": {"p": "rejetc"}}, ["dmarc.p", "rejetc"]),
    ({"spf": {"include": ["i%d.example.net" % n for n in range(11)], "all": "fail"}}, ["spf", "11"]),
    ({"dmarc": {"p": "reject", "rua": ["dmarc@example.test"]}}, ["dmarc.rua", "mailto:"]),
    ({"dkim": [{"selector": "s1", "type": "rsa", "bits": 1024}]}, ["dkim", "1024"]),
    ({"spf": {"ip4": ["0.0.0.0/1", "128.0.0.0/1"], "all": "fail"}},
     ["spf.ip4", "['0.0.0.0/1', '128.0.0.0/1']", "together cover every IPv4 address"]),
    ({"spf": {"ip6": ["2000::/3"], "all": "fail"}}, ["spf.ip6", "2000::/3", "large part of the Internet"]),
    ({"spf": {"mx": True, "include": ["EXAMPLE.test."], "all": "fail"}}, ["spf.include", "permerror"]),
    ({"spf": {"redirect": "example.test"}}, ["spf.redirect", "permerror"]),
])
def test_bad_domain_fails_naming_host_domain_and_variable(tmp_path, domain_patch, expected):
    rc, out = run_validate(tmp_path, {"mail_domains": [dict(GOOD_DOMAIN, **domain_patch)]})
    assert rc != 0, out
    assert "mx-under-test" in out and "example.test" in out, out
    for fragment in expected:
        assert fragment in out, "%r not in:\n%s" % (fragment, out)
    assert "unreachable=0" in out, out


def test_every_mistake_is_reported_at_once(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [
        dict(GOOD_DOMAIN, spf={"ip4": ["300.1.1.1"], "all": "fail"}),
        dict(GOOD_DOMAIN, name="example.org", dmarc={"p": "reject", "rua": ["nobody@example.org"]}),
    ]})
    assert rc != 0, out
    assert "300.1.1.1" in out and "example.org" in out and "mailto:" in out, out


def test_bad_role_variable_fails_before_any_change(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN], "postfix_milter_default_action": "ignore"})
    assert rc != 0, out
    assert "postfix_milter_default_action" in out and "ignore" in out, out


def test_policyd_spf_authentication_results_header_is_refused(tmp_path):
    """An A-R prepended by policyd-spf would be dropped with every inbound A-R (message_drop_headers)."""
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN], "policyd_spf_header_type": "AR"})
    assert rc != 0, out
    assert "policyd_spf_header_type" in out and "AR" in out, out


def test_domain_without_a_signing_selector_is_refused(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [dict(GOOD_DOMAIN, dkim=[{"selector": "e1", "type": "ed25519"}])]})
    assert rc != 0, out
    assert "mx-under-test" in out and "example.test" in out and "opendkim_signature_algorithm" in out, out


def test_resolver_forwarder_given_as_a_name_is_refused(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN],
                                      "resolver_forwarders": ["192.0.2.53", "dns.example.net"]})
    assert rc != 0, out
    assert "host mx-under-test: resolver_forwarders[1]: 'dns.example.net': is not an IP" in out, out
    assert "resolver_forwarders[0]" not in out, out
    assert "unreachable=0" in out, out


def test_open_relay_mynetworks_is_refused_naming_host_variable_and_value(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN],
                                      "mail_mynetworks": ["0.0.0.0/0", "[::]/0"]})
    assert rc != 0, out
    assert "host mx-under-test: mail_mynetworks[0]: '0.0.0.0/0': matches every address" in out, out
    assert "host mx-under-test: mail_mynetworks[1]: '[::]/0': matches every address" in out, out
    assert "unreachable=0" in out, out


def test_broad_mynetworks_need_the_opt_in(tmp_path):
    host_vars = {"mail_domains": [GOOD_DOMAIN], "mail_mynetworks": ["127.0.0.0/8", "10.0.0.0/7"]}
    rc, out = run_validate(tmp_path, host_vars)
    assert rc != 0, out
    assert "mail_mynetworks[1]: '10.0.0.0/7': is broader than /8" in out, out
    assert "mail_mynetworks_allow_broad" in out, out
    rc, out = run_validate(tmp_path, dict(host_vars, mail_mynetworks_allow_broad=True))
    assert rc == 0, out


def test_mynetworks_not_a_list_is_refused(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN], "mail_mynetworks": "0.0.0.0/0"})
    assert rc != 0, out
    assert "host mx-under-test: mail_mynetworks: must be a list" in out, out


def test_the_host_variables_and_the_domains_are_reported_at_once(tmp_path):
    rc, out = run_validate(tmp_path, {
        "mail_domains": [dict(GOOD_DOMAIN, dmarc={"p": "rejetc"})],
        "mail_public_ipv6": "2001:db8::25%\nevil.example.test. 60 IN A 192.0.2.66",
        "mail_public_ipv4": "2001:db8::25",
        "resolver_forwarders": ["fe80::53%eth0"]})
    assert rc != 0, out
    for fragment in ("host mx-under-test: mail_public_ipv6: '2001:db8::25%\\\\nevil",  # _show escape, then JSON escape
                     "zone index", "host mx-under-test: mail_public_ipv4: '2001:db8::25': is not an IPv4",
                     "host mx-under-test: resolver_forwarders[0]: 'fe80::53%eth0'",
                     "mail_domains[0] (example.test): dmarc.p: 'rejetc'"):
        assert fragment in out, "%r not in:\n%s" % (fragment, out)


def test_resolver_forwarders_as_addresses_with_ports_pass(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN],
                                      "resolver_forwarders": ["192.0.2.53", "192.0.2.54@5353", "2001:db8::53"]})
    assert rc == 0, out


def test_resolver_switch_must_be_a_boolean(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN], "resolver_dnssec": "sometimes"})
    assert rc != 0, out
    assert "resolver_dnssec" in out and "sometimes" in out, out


def test_submission_login_that_would_inject_a_passwd_line_is_refused(tmp_path):
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN], "submission_users": [
        {"name": "evil@example.test:{PLAIN}known::::::\nalice@example.test", "password": "pw-0f-alice",
         "senders": ["sales@example.test other@example.test"]},
        {"name": "bob@example.test", "password": "pw-0f-bob"},
        {"name": "BOB@example.test", "password": "pw-0f-bob2"}]})
    assert rc != 0, out
    for fragment in ("host mx-under-test: submission_users[0].name: 'evil@example.test:{PLAIN}known",
                     "host mx-under-test: submission_users[0].senders[0]: 'sales@example.test other",
                     "host mx-under-test: submission_users[2].name: 'BOB@example.test': duplicate"):
        assert fragment in out, "%r not in:\n%s" % (fragment, out)
    assert "pw-0f-" not in out, out
    assert "unreachable=0" in out, out


def test_submission_user_with_a_vaulted_password_passes(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret

    (tmp_path / "vault-pass").write_text("validate-test\n")
    secret = VaultSecret(b"validate-test")
    cipher = VaultLib([("default", secret)]).encrypt("alice-pw", secret).decode()
    # The usual form: the password names a vaulted variable. (An inline !vault value in
    # submission_users is refused by validate_argument_spec itself, before and after this check.)
    extra = "submission_users:\n  - name: alice@example.test\n" + \
        "    password: \"{{ vault_alice_password }}\"\nvault_alice_password: !vault |\n" + \
        "".join("  %s\n" % line for line in cipher.splitlines())
    rc, out = run_validate(tmp_path, {"mail_domains": [GOOD_DOMAIN]}, extra_yaml=extra,
                           args=("--vault-password-file", str(tmp_path / "vault-pass")))
    assert rc == 0, out


def test_a_domain_whose_dmarc_name_is_too_long_is_refused(tmp_path):
    name = ".".join(["a" * 63] * 3 + ["b" * 48, "example.test"])  # 253 characters, a valid name
    assert len(name) == 253
    rc, out = run_validate(tmp_path, {"mail_domains": [dict(GOOD_DOMAIN, name=name)]})
    assert rc != 0, out
    assert "host mx-under-test: mail_domains[0] (aaaa" in out, out
    assert "): dmarc: the DMARC record name '_dmarc.aaaa" in out and "is 260 characters long" in out, out
    assert "dkim[0].selector: 's1': the DKIM key name" in out and "RFC 1035" in out, out
    assert "unreachable=0" in out, out
