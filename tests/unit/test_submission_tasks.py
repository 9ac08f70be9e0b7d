"""The submission role's users-file tasks, taken from roles/submission/tasks/main.yml as they are
and run by ansible-playbook against a temporary file: two installs, re-runs, check mode, no_log.

The tasks are every task of the role that reads or writes submission_users_file; the test
only points them at a temporary path (and, as non-root, at the test's own owner).
"""
import grp
import json
import os
import pwd
import subprocess
import sys

import pytest
import yaml
from mw_testlib import COLLECTIONS

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ROLE = os.path.join(ROOT, "roles", "submission")

ALICE = {"name": "alice@example.test", "password": "alice-secret-pw", "senders": ["sales@example.test"]}
BOB = {"name": "bob@example.org", "password": "bob-secret-pw"}


def users_file_tasks():
    """The role's tasks that touch {{ submission_users_file }}, in order."""
    with open(os.path.join(ROLE, "tasks", "main.yml")) as handle:
        tasks = yaml.safe_load(handle)

    def walk(items):
        for task in items:
            if "block" in task:
                yield from walk(task["block"])
            else:
                yield task
    found = [task for task in walk(tasks) if "submission_users_file" in json.dumps(task)]
    assert found, "no task of the submission role uses submission_users_file"
    for task in found:
        for module in ("ansible.builtin.template", "template"):
            if module in task:
                task[module]["src"] = os.path.join(ROLE, "templates", os.path.basename(task[module]["src"]))
                if os.getuid() != 0:
                    task[module]["owner"] = pwd.getpwuid(os.getuid()).pw_name
    return found


def play(tmp_path, users, check=False):
    """Run the tasks once; return (per-task results by name, the playbook's stdout)."""
    playbook = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"submission_users_file": str(tmp_path / "users"),
                 "submission_dovecot_group": grp.getgrgid(os.getgid()).gr_name},
        "tasks": users_file_tasks(),
        "handlers": [{"name": "Reload dovecot", "ansible.builtin.debug": {"msg": "reload"}}],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    (tmp_path / "users.json").write_text(json.dumps({"submission_users": users}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_STDOUT_CALLBACK="json")
    env.pop("ANSIBLE_CONFIG", None)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
            "-c", "local", "-e", "@users.json", "-e", "ansible_python_interpreter=" + sys.executable,
            "--diff", "-v", "play.yml"]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("\n{") + 1:] if not proc.stdout.startswith("{") else proc.stdout)
    results = {task["task"]["name"]: task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]}
    return results, proc.stdout + proc.stderr


def written(results):
    return [name for name, result in results.items() if result.get("changed")]


def hashes(path):
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One sequence of runs (ansible-playbook costs seconds each), shared by the tests below:
    a check-mode first install, two installs of the same users, a re-run, a check-mode re-run,
    a check-mode and then a real run with a new password."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    seen = {}
    seen["check_first"] = play(one, [ALICE, BOB], check=True)
    seen["file_after_check_first"] = (one / "users").exists()
    seen["first"] = play(one, [ALICE, BOB])
    seen["other_install"] = play(two, [ALICE, BOB])
    seen["file_one"], seen["file_two"] = hashes(one / "users"), hashes(two / "users")
    seen["rerun"] = play(one, [ALICE, BOB])
    seen["check_rerun"] = play(one, [ALICE, BOB], check=True)
    seen["file_after_reruns"] = hashes(one / "users")
    new_password = [dict(ALICE, password="alice-new-pw"), BOB]
    seen["check_new_password"] = play(one, new_password, check=True)
    seen["file_after_check_new_password"] = hashes(one / "users")
    seen["new_password"] = play(one, new_password)
    seen["file_after_new_password"] = hashes(one / "users")
    return seen


def test_two_installs_of_the_same_users_get_different_hashes(runs):
    a, b = runs["file_one"], runs["file_two"]
    assert len(a) == len(b) == 2
    for line_a, line_b in zip(a, b):
        assert line_a.split(":")[0] == line_b.split(":")[0]
        assert line_a != line_b, "same login and password, same hash on two installs: %s" % line_a


def test_a_rerun_changes_nothing_and_keeps_the_hashes(runs):
    assert written(runs["first"][0]), runs["first"][0]
    assert written(runs["rerun"][0]) == [], runs["rerun"][0]
    assert runs["file_after_reruns"] == runs["file_one"]


def test_a_new_password_rewrites_only_its_line(runs):
    assert written(runs["new_password"][0])
    before, after = runs["file_after_reruns"], runs["file_after_new_password"]
    assert after[0] != before[0] and after[1] == before[1]


def test_check_mode_is_honest(runs):
    # nothing there yet: a change is announced and nothing is written
    assert written(runs["check_first"][0]) and not runs["file_after_check_first"]
    # nothing to do: check mode says so
    assert written(runs["check_rerun"][0]) == []
    # a new password: check mode announces the change and writes nothing
    assert written(runs["check_new_password"][0])
    assert runs["file_after_check_new_password"] == runs["file_after_reruns"]


def test_no_password_or_hash_in_the_output(runs):
    secrets = {"alice-secret-pw", "bob-secret-pw", "alice-new-pw"}
    for key in ("file_one", "file_two", "file_after_new_password"):
        secrets.update(line.split(":")[1] for line in runs[key])
    for name, value in runs.items():
        if isinstance(value, tuple):
            for secret in secrets:
                assert secret not in value[1], (name, secret)


def test_the_users_file_tasks_are_no_log():
    for task in users_file_tasks():
        assert task.get("no_log") is True, task.get("name")
