"""scripts/demo-world.yml (run by `make demo`) parses and resolves its roles and modules.

ansible-lint does not read it (it is not in .ansible-lint's kinds); --syntax-check resolves role
names, so a role called by a short name after the move to the collection fails here, not on a
user's fresh machine.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def syntax_check(playbook):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run([binary, "--syntax-check", "-i", str(ROOT / "inventory" / "demo"), str(playbook)],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120, check=False)


def test_demo_world_playbook_parses():
    result = syntax_check(ROOT / "scripts" / "demo-world.yml")
    assert result.returncode == 0, result.stdout + result.stderr
