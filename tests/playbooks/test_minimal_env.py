"""scripts/minimal-env.sh (make minimal-env) can fail: the requirements file decides.

The check installs only what a collections requirements file names. Without community.general
the roles' community.general modules cannot be resolved and --syntax-check of the collection's
site playbook fails; a range the available copy does not meet stops the install. The green run
is `make minimal-env` itself (part of make test).
"""

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_check(tmp_path, collections):
    requirements = tmp_path / "requirements.yml"
    requirements.write_text(yaml.safe_dump({"collections": collections}))
    env = dict(os.environ, MINIMAL_ENV_REQUIREMENTS=str(requirements), MINIMAL_ENV_WORK=str(tmp_path / "work"))
    proc = subprocess.run([str(ROOT / "scripts/minimal-env.sh")], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    return proc.returncode, proc.stdout


def declared():
    return yaml.safe_load((ROOT / "collections/requirements.yml").read_text())["collections"]


def test_without_community_general_the_syntax_check_fails(tmp_path):
    rest = [item for item in declared() if item["name"] != "community.general"]
    assert len(rest) == len(declared()) - 1
    rc, output = run_check(tmp_path, rest)
    assert rc != 0, output
    assert "couldn't resolve module/action 'community.general." in output, output
    assert "FAILED: --syntax-check mailward.mail.site" in output, output


def test_a_range_the_copy_does_not_meet_stops_the_install(tmp_path):
    collections = [dict(item, version=">=99.0.0") if item["name"] == "community.general" else item
                   for item in declared()]
    rc, output = run_check(tmp_path, collections)
    assert rc != 0, output
    assert "community.general:>=99.0.0" in output, output
    assert "FAILED: ansible-galaxy could not install" in output, output
