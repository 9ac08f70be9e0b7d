"""Issue 13 item 9 through Ansible itself: the dns role's dns_publish action and the audit's merge
filter take a host's DKIM keys only for the selectors that host holds (dkim_key_list).

Two local hosts: selector s1 is held by mx1 only, s2 by mx2 only, ``all`` by both. Runs the dns
role (zonefile backend, in tmp_path) and the audit_merge_hosts filter with ansible-playbook.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from mw_testlib import COLLECTIONS, public_pem

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

PLAYBOOK = textwrap.dedent("""\
    - name: Publish
      hosts: mail
      gather_facts: false
      roles:
        - role: mailward.mail.dns
    """)

AUDIT_PLAYBOOK = textwrap.dedent("""\
    - name: Merge as the audit does
      hosts: mail
      gather_facts: false
      tasks:
        - name: Normalize as the audit's prepare step does
          ansible.builtin.set_fact:
            mail_domains_normalized: "{{ mail_domains | mailward.mail.mail_domains_normalize(inventory_hostname, mail_hostname) }}"
        - name: Merge
          ansible.builtin.copy:
            content: "{{ ansible_play_hosts | mailward.mail.audit_merge_hosts(hostvars) | to_json }}"
            dest: "{{ out_dir }}/merged.json"
            mode: "0644"
          run_once: true
          delegate_to: localhost
    """)


def _inventory(tmp_path, keys_mx1, keys_mx2):
    domains = [{"name": "example.test", "mx": [{"host": "mx1.example.test", "priority": 10}],
                "dkim": [{"selector": "s1", "type": "rsa", "hosts": ["mx1"]},
                         {"selector": "s2", "type": "rsa", "hosts": ["mx2"]},
                         {"selector": "all", "type": "rsa"}]}]

    def items(keys):
        return [{"domain": "example.test", "selector": sel, "type": "rsa", "public_key": pem} for sel, pem in keys]

    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "mail_domains": domains, "dns_zonefile_dir": str(tmp_path / "zones"),
              "dns_manage_types": ["DKIM"], "out_dir": str(tmp_path)}
    inventory = {"all": {"children": {"mail": {"hosts": {
        "mx1": dict(common, mail_hostname="mx1.example.test", opendkim_public_keys=items(keys_mx1)),
        "mx2": dict(common, mail_hostname="mx2.example.test", opendkim_public_keys=items(keys_mx2))}}}}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    return str(path)


def _play(tmp_path, playbook, inventory, limit=None):
    (tmp_path / "play.yml").write_text(playbook)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    env.pop("ANSIBLE_CONFIG", None)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, "play.yml"]
    if limit:
        argv += ["--limit", limit]
    return subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def pems(rsa2048, rsa4096):
    return public_pem(rsa2048), public_pem(rsa4096)


def test_dns_role_publishes_each_hosts_own_selectors(tmp_path, pems):
    mine, other = pems
    result = _play(tmp_path, PLAYBOOK, _inventory(tmp_path, [("s1", mine), ("all", mine)],
                                                  [("s2", other), ("all", mine)]))
    assert result.returncode == 0, result.stdout + result.stderr
    zone = (tmp_path / "zones" / "example.test.zone").read_text()
    assert {"s1._domainkey.example.test.", "s2._domainkey.example.test.", "all._domainkey.example.test."} == {
        line.split()[0] for line in zone.splitlines() if "_domainkey" in line and not line.startswith(";")}


@pytest.mark.parametrize("limit", [None, "mx2"])
def test_dns_role_refuses_a_key_for_another_hosts_selector(tmp_path, pems, limit):
    mine, other = pems
    result = _play(tmp_path, PLAYBOOK, _inventory(tmp_path, [("s1", mine)], [("s2", other), ("s1", other)]),
                   limit=limit)
    assert result.returncode != 0
    assert "host mx2: reports a DKIM public key for domain example.test selector s1" in result.stdout
    assert not (tmp_path / "zones").exists()  # nothing written


def test_audit_merge_filter_refuses_it_inside_ansible(tmp_path, pems):
    mine, other = pems
    result = _play(tmp_path, AUDIT_PLAYBOOK, _inventory(tmp_path, [("s1", mine)], [("s1", other)]))
    assert result.returncode == 0, result.stdout + result.stderr
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert "host mx2: reports a DKIM public key for domain example.test selector s1" in merged["error"]
