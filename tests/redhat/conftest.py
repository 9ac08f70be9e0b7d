"""Helpers shared by the RedHat-family tests (tests/redhat)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(argv, **kwargs):
    """Run a command; return (rc, combined output)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    return proc.returncode, proc.stdout


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_LIBRARY=str(ROOT / "tests/redhat/library"), ANSIBLE_FORCE_COLOR="0")
