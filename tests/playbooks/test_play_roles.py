"""The plays' roles: role::<name> tags, the explicit hand-off of fragments to Postfix, the shared
Postfix role (package and validated reload) and the audit that renders through the postfix role.

The tag tests run ``ansible-playbook --list-tasks`` on the demo inventory: no host is contacted.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = ("mail.yml", "dns.yml", "validate.yml", "audit.yml")
PREFIX = "mailward.mail."


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def role_entries(playbook):
    return [entry for play in load(ROOT / "playbooks" / playbook) for entry in play.get("roles", [])]


def short(entry):
    return entry["role"][len(PREFIX):]


def list_tasks(*args):
    """The task names of site.yml per play, as --list-tasks prints them (with their tags)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--list-tasks", "-i", "inventory/demo", *args, "site.yml"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout
    # "      mailward.mail.opendkim : Install OpenDKIM\tTAGS: [role::opendkim]"
    return [line.strip() for line in proc.stdout.splitlines() if "\tTAGS: [" in line and ":" in line]


def task_roles(lines):
    """The roles whose own (not always-tagged) tasks would run."""
    return {m.group(1) for line in lines if "always" not in line.split("TAGS:")[1]
            for m in [re.match(r"mailward\.mail\.(\w+) : ", line)] if m}


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_role_of_a_play_is_tagged_with_its_name(playbook):
    entries = role_entries(playbook)
    assert entries
    for entry in entries:
        assert "role::" + short(entry) in entry.get("tags", []), entry


def test_tags_role_opendkim_selects_the_opendkim_role_only():
    lines = list_tasks("--tags", "role::opendkim")
    assert any(line.startswith("mailward.mail.opendkim : Install OpenDKIM") for line in lines), lines
    # opendkim and what it depends on; the inventory check runs whatever is selected (always)
    assert task_roles(lines) == {"opendkim", "mail_repos"}, task_roles(lines)
    assert any(line.startswith("mailward.mail.validate : Check mail_domains") for line in lines), lines
    # postfix still merges every listed fragment; the roles it comes from check their platform data
    # (always), which are role variables (tests/playbooks/test_skip_tags.py renders it)
    for role in ("policyd_spf", "opendmarc", "submission"):
        assert any(line.startswith("mailward.mail.%s : Check that this role has platform data" % role)
                   for line in lines), role


def test_skip_tags_role_dns_leaves_out_the_dns_role_only():
    everything = task_roles(list_tasks())
    assert "dns" in everything
    assert task_roles(list_tasks("--skip-tags", "role::dns")) == everything - {"dns"}


def test_mail_play_hands_postfix_every_fragment_explicitly():
    """Each role of mail.yml that defines <role>_postfix_fragment is listed in postfix_fragments, in the
    form the audit reads, and nothing else is; no role collects fragments by their names."""
    entries = role_entries("mail.yml")
    postfix = [e for e in entries if e["role"] == PREFIX + "postfix"]
    assert len(postfix) == 1
    listed = postfix[0]["postfix_fragments"]
    role_vars = {short(e): ROOT / "roles" / short(e) / "vars/main.yml" for e in entries}
    defining = [name for name, path in role_vars.items()
                if path.exists() and "%s_postfix_fragment" % name in (load(path) or {})]
    assert defining == ["policyd_spf", "opendkim", "opendmarc", "submission"]
    assert listed == ["{{ %s_postfix_fragment }}" % name for name in defining]
    for path in (ROOT / "roles").glob("*/**/*.yml"):
        assert "varnames" not in path.read_text(encoding="utf-8"), path


def test_platform_data_are_role_variables_not_loaded_by_a_task():
    """Per-family data live in each role's vars/main.yml (<role>_platforms, selected by the facts),
    defined wherever the role is in a play: no vars/<family>.yml for a task to load, which
    --skip-tags role::<name> would skip while the postfix role still reads the fragment."""
    assert not list((ROOT / "roles").glob("*/vars/Debian.yml")) + list((ROOT / "roles").glob("*/vars/RedHat.yml"))
    for path in (ROOT / "roles").glob("*/tasks/*.yml"):
        assert "include_vars" not in path.read_text(encoding="utf-8"), path
    for role in ("policyd_spf", "opendkim", "opendmarc", "submission", "postfix", "resolver"):
        platforms = load(ROOT / "roles" / role / "vars/main.yml")[role + "_platforms"]
        assert set(platforms) == {"Debian", "RedHat"}, role
        assert set(platforms["Debian"]) == set(platforms["RedHat"]), role


def dependencies(role):
    meta = load(ROOT / "roles" / role / "meta/main.yml") or {}
    names = [d["role"][len(PREFIX):] if isinstance(d, dict) else d[len(PREFIX):] for d in meta.get("dependencies") or []]
    return set(names).union(*(dependencies(name) for name in names)) if names else set()


def test_a_role_that_reloads_postfix_depends_on_postfix_common():
    """Whoever notifies the reload has the handler through its own dependencies (not by the
    accident of the postfix role being in the same play), and the old handler name is gone."""
    notifying = set()
    for path in (ROOT / "roles").glob("*/tasks/*.yml"):
        text = path.read_text(encoding="utf-8")
        assert "notify: Reload postfix" not in text, path
        if "notify: mailward reload postfix" in text:
            notifying.add(path.parts[-3])
    assert notifying == {"postfix", "policyd_spf", "submission"}
    for role in notifying:
        assert "postfix_common" in dependencies(role), role
    assert "mail_repos" in dependencies("postfix_common")


def test_the_reload_validates_first():
    handlers = load(ROOT / "roles/postfix_common/handlers/main.yml")
    listening = [h for h in handlers if h.get("listen") == "mailward reload postfix"]
    assert [h.get("ansible.builtin.command") for h in listening[:1]] == ["postfix check"]
    assert listening[1]["ansible.builtin.service"]["state"] == "reloaded"
    assert len(listening) == 2
    assert load(ROOT / "playbooks/mail.yml")[0]["force_handlers"] is True


def test_the_audit_renders_through_the_postfix_role():
    text = (ROOT / "roles/audit/tasks/drift.yml").read_text(encoding="utf-8")
    tasks = load(ROOT / "roles/audit/tasks/drift.yml")[0]["block"]
    includes = [t["ansible.builtin.include_role"] for t in tasks if "ansible.builtin.include_role" in t]
    assert {"name": PREFIX + "postfix", "tasks_from": "render"}.items() <= includes[-1].items()
    assert all(i["apply"]["check_mode"] is True for i in includes)
    assert "playbooks/mail.yml" in text and "audit_render_role" not in text
    assert not (ROOT / "plugins/action/audit_render_role.py").exists()
    # the read-only entry point renders on the controller; only the version is read on the host
    render = load(ROOT / "roles/postfix/tasks/render.yml")
    modules = {key for task in render for key in task if key.startswith("ansible.builtin.")}
    assert modules == {"ansible.builtin.import_tasks", "ansible.builtin.set_fact"}
    version = load(ROOT / "roles/postfix/tasks/version.yml")
    assert [t.get("changed_when") for t in version if "ansible.builtin.command" in t] == [False]


def test_validate_checks_the_variables_of_every_role_of_the_mail_play(tmp_path):
    """roles/validate reads the role list from playbooks/mail.yml (no copy of it): one wrong
    variable per role of that play, each is refused by name in the same run."""
    assert "validate_roles" not in (load(ROOT / "roles/validate/defaults/main.yml") or {})
    wrong = {"resolver": ("resolver_dnssec", "sometimes"), "policyd_spf": ("policyd_spf_temperror_defer", "perhaps"),
             "opendkim": ("opendkim_mode", "x"), "opendmarc": ("opendmarc_reject_failures", "rarely"),
             "submission": ("submission_port_587", "maybe"), "postfix": ("postfix_milter_default_action", "ignore")}
    assert set(wrong) == {short(entry) for entry in role_entries("mail.yml")}
    host = {"ansible_host": "198.51.100.254", "ansible_connection": "ssh", "mail_hostname": "mx.example.test",
            "mail_domains": [{"name": "example.test", "dkim": [{"selector": "s1", "type": "rsa", "bits": 2048}]}]}
    host.update(dict(wrong.values()))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"mail": {"hosts": {"mx-under-test": host}}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks/validate.yml")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                          timeout=300, check=False)
    assert proc.returncode != 0 and "unreachable=0" in proc.stdout, proc.stdout
    for name, value in wrong.values():
        assert re.search(r"\b%s\b[^\n]*%s|%s[^\n]*\b%s\b" % (name, value, value, name), proc.stdout), (name, proc.stdout)
