"""The filter plugins load through Ansible itself (not only by import), from the collection, module_utils included."""
import os
import subprocess
import sys
import textwrap

from mw_testlib import COLLECTIONS


PLAYBOOK = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      vars:
        mail_domains:
          - name: example.test
            spf: {ip4: [192.0.2.10]}
            dmarc: {p: reject, rua: [mailto:d@reports.example.net]}
      tasks:
        - name: records
          ansible.builtin.debug:
            msg: "{{ mail_domains | mailward.mail.mail_domains_normalize(inventory_hostname, 'mx.example.test')
                     | mailward.mail.mail_domains_records | map(attribute='value') | map('mailward.mail.txt_strings') | list }}"
        - name: refusal
          ansible.builtin.debug:
            msg: "{{ {'all': 'pass'} | mailward.mail.spf_record(domain='example.test') }}"
          ignore_errors: true
    """)


def test_filters_run_inside_ansible(tmp_path):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_HOME=str(tmp_path / "home"),
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    env.pop("ANSIBLE_CONFIG", None)  # the Makefile exports the repo's ansible.cfg
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    result = subprocess.run([playbook, "-i", "localhost,", "-c", "local", "play.yml"],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '\\"v=spf1 ip4:192.0.2.10 -all\\"' in result.stdout
    assert '\\"v=DMARC1\\"' in result.stdout  # the report authorization record
    assert "spf_record: example.test: all: 'pass'" in result.stdout
