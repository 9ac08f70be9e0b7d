"""--skip-tags role::<name> on the mail play (issue 16, item 5): the postfix role still plugs in the
fragment of a role whose tasks are skipped, exactly as when that role runs.

The mail play of playbooks/mail.yml (its pre_tasks, roles, tags and hand-off, as written) runs on
localhost with the platform pretended (tests/redhat/library/platform_facts). Only what --tags
selects runs: the always-tagged tasks (the inventory check) and one task added after the roles
that renders main.cf and master.cf through the postfix role's read-only entry point (the audit's
way, roles/audit/tasks/drift.yml) with the fragments the play hands that role. No host is touched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FRAGMENT_ROLES = ("policyd_spf", "opendkim", "opendmarc", "submission")
# family, distribution, major, the Postfix that release ships (tests/redhat/conftest.py)
PLATFORMS = {
    "debian12": ("Debian", "Debian", "12", "3.7.11"),
    "rocky9": ("RedHat", "Rocky", "9", "3.5.25"),
    "rocky10": ("RedHat", "Rocky", "10", "3.8.5"),
}
INVENTORY = {
    "mail_hostname": "mx1.example.com",
    "mail_mynetworks": ["127.0.0.0/8", "[::1]/128", "192.0.2.0/24"],
    "mail_domains": [
        {"name": "example.com", "spf": {"mx": True, "ip4": ["192.0.2.10"], "all": "fail"},
         "dkim": [{"selector": "mw2026r", "type": "rsa", "bits": 2048}], "dmarc": {"p": "reject"}},
    ],
    "submission_users": [{"name": "alice@example.com", "password": "alice-secret", "senders": ["alice@example.com"]}],
}


def mail_play(family, distribution, major):
    """playbooks/mail.yml's play on localhost, pretending the platform, plus the render task."""
    play = yaml.safe_load((ROOT / "playbooks/mail.yml").read_text(encoding="utf-8"))[0]
    postfix = [entry for entry in play["roles"] if entry["role"] == "mailward.mail.postfix"][0]
    play.update(hosts="localhost", connection="local", become=False, gather_facts=False)
    play.pop("gather_subset", None)
    play["pre_tasks"] = [{
        "name": "Pretend the platform",
        "platform_facts": {"facts": {"os_family": family, "distribution": distribution,
                                     "distribution_major_version": major, "architecture": "x86_64"}},
        "tags": ["always"],
    }] + play.get("pre_tasks", [])
    play["tasks"] = [
        {"name": "Render main.cf and master.cf through the postfix role with the play's hand-off",
         "ansible.builtin.include_role": {"name": "mailward.mail.postfix", "tasks_from": "render",
                                          "apply": {"tags": ["render"]}},
         "vars": {"postfix_fragments": postfix["postfix_fragments"]},
         "tags": ["render"]},
        {"name": "Write what the postfix role would install",
         "ansible.builtin.copy": {"dest": "{{ render_out }}", "mode": "0644",
                                  "content": "{{ postfix_rendered | to_nice_json }}"},
         "tags": ["render"]},
    ]
    return [play]


def renders(tmp_path, platform, runs):
    """Run the play with --tags render plus each run's arguments, side by side; return
    {run: (rc, output, what the postfix role would install or None)}."""
    family, distribution, major, postfix_version = PLATFORMS[platform]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(mail_play(family, distribution, major), sort_keys=False), encoding="utf-8")
    # JSON results: a message stays on one line (the YAML format folds long ones).
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LIBRARY=str(ROOT / "tests/redhat/library"), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    procs = {}
    for number, args in enumerate(runs):
        out = tmp_path / ("rendered-%d.json" % number)
        extra = dict(INVENTORY, render_out=str(out), postfix_mail_version=postfix_version,
                     ansible_python_interpreter=sys.executable)
        procs[args] = (out, subprocess.Popen(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "--tags", "render", "-e", json.dumps(extra), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT))
    results = {}
    for args, (out, proc) in procs.items():
        output = proc.communicate(timeout=300)[0]
        results[args] = (proc.returncode, output, json.loads(out.read_text()) if out.exists() else None)
    return results


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_skipping_the_roles_that_plug_into_postfix_keeps_their_fragments(tmp_path, platform):
    skips = [("--skip-tags", "role::" + role) for role in FRAGMENT_ROLES]
    skips.append(("--skip-tags", ",".join("role::" + role for role in FRAGMENT_ROLES)))
    results = renders(tmp_path, platform, [()] + skips)
    rc, output, everything = results[()]
    assert rc == 0, output
    master = everything["master.cf"]
    assert "policyd-spf" in master and "spawn user=policyd-spf" in master, master
    assert "opendkim" in everything["main.cf"] and "opendmarc" in everything["main.cf"]
    failures = {args[1]: (output.split("fatal: ")[-1][:600] if rc else "rendered differently")
                for args, (rc, output, skipped) in results.items() if rc != 0 or skipped != everything}
    assert not failures, "\n".join("--skip-tags %s: %s" % item for item in failures.items())


def test_a_family_without_platform_data_stops_naming_host_role_and_family(tmp_path):
    PLATFORMS["suse15"] = ("Suse", "openSUSE Leap", "15", "3.7.11")
    try:
        results = renders(tmp_path, "suse15", [()])
    finally:
        del PLATFORMS["suse15"]
    rc, output, rendered = results[()]
    assert rc != 0 and rendered is None, output
    assert "host localhost: the policyd_spf role has no platform data for the OS family Suse" in output, output
    assert "it knows Debian, RedHat (policyd_spf_platforms, roles/policyd_spf/vars/main.yml)" in output, output
