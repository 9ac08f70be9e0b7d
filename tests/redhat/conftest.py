"""Shared renders of the roles for the RedHat family (tests/redhat/render.yml), once per session.

Each EL major release is rendered with the Postfix version that release ships (the postfix role
reads it from the host with `postconf -d mail_version`): EL 9.5 and later 3.5.25, EL 10 3.8.5
(docs/el.md has the sources).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# The Postfix each EL major ships (the first EL 9 releases had 3.5.9: see test_render_redhat.py).
EL_POSTFIX = {"9": "3.5.25", "10": "3.8.5"}


def run(argv, **kwargs):
    """Run a command; return (rc, combined output)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    return proc.returncode, proc.stdout


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_LIBRARY=str(ROOT / "tests/redhat/library"), ANSIBLE_FORCE_COLOR="0")


def render_command(out_dir, el_major="9", postfix_version=None, distribution="Rocky", only=None):
    extra = {"render_dir": str(out_dir), "el_major": el_major, "el_distribution": distribution,
             "postfix_mail_version": postfix_version or EL_POSTFIX[el_major],
             "ansible_python_interpreter": sys.executable}
    if only is not None:
        extra["render_only"] = only
    return [str(BIN / "ansible-playbook"), "-i", "localhost,", str(ROOT / "tests/redhat/render.yml"), "-e", json.dumps(extra)]


def render(out_dir, el_major="9", postfix_version=None, distribution="Rocky", only=None):
    """Render the roles' templates for <distribution> <el_major> into out_dir; return out_dir."""
    rc, output = run(render_command(out_dir, el_major, postfix_version, distribution, only), env=ansible_env(), cwd=ROOT)
    assert rc == 0, output
    return Path(out_dir)


@pytest.fixture(scope="session")
def renders(tmp_path_factory):
    """Rocky Linux 9 (Postfix 3.5.25) and 10 (Postfix 3.8.5), rendered side by side."""
    outs = {major: tmp_path_factory.mktemp("el" + major) for major in EL_POSTFIX}
    procs = {major: subprocess.Popen(render_command(out, major), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=ansible_env(), cwd=ROOT)
             for major, out in outs.items()}
    for major, proc in procs.items():
        output = proc.communicate()[0]
        assert proc.returncode == 0, output
    return outs


@pytest.fixture(scope="session")
def rendered(renders):
    """Rocky Linux 9 (Postfix 3.5.25)."""
    return renders["9"]


@pytest.fixture(scope="session")
def rendered_el10(renders):
    """Rocky Linux 10 (Postfix 3.8.5)."""
    return renders["10"]


def decisions(rendered_dir):
    """What the roles' tasks decide from data (render.yml writes it)."""
    return json.loads((Path(rendered_dir) / "decisions.json").read_text())
