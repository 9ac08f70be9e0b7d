"""The platform check of the mail_repos role and the package sources it uses, per platform.

tests/redhat/platform.yml runs roles/mail_repos/tasks/platform.yml once for hosts that pretend
to be Rocky 8, Alma 9, Rocky 10, RHEL 9, RHEL 10 and Debian 12 (fake facts, nothing installed):
EL 8 must stop with its reason, the others pass and report where EPEL and CodeReady Builder come
from (docs/el.md, items 1 and 3).
"""

import json
import re
import sys

import pytest
import yaml

from conftest import BIN, ROOT, ansible_env, run

PLATFORMS = {
    "rocky8": {"el_family": "RedHat", "el_distribution": "Rocky", "el_major": "8"},
    "alma9": {"el_family": "RedHat", "el_distribution": "AlmaLinux", "el_major": "9"},
    "rocky10": {"el_family": "RedHat", "el_distribution": "Rocky", "el_major": "10"},
    "rhel9": {"el_family": "RedHat", "el_distribution": "RedHat", "el_major": "9"},
    "rhel10": {"el_family": "RedHat", "el_distribution": "RedHat", "el_major": "10"},
    "debian12": {"el_family": "Debian", "el_distribution": "Debian", "el_major": "12"},
}


@pytest.fixture(scope="module")
def platform_run(tmp_path_factory):
    """One run of tests/redhat/platform.yml for every platform above (one host each)."""
    out = tmp_path_factory.mktemp("platform")
    inventory = {"all": {"hosts": {name: dict(facts, ansible_connection="local", ansible_python_interpreter=sys.executable)
                                   for name, facts in PLATFORMS.items()}}}
    (out / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(ansible_env(), ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    rc, output = run([str(BIN / "ansible-playbook"), "-i", str(out / "inventory.yml"), str(ROOT / "tests/redhat/platform.yml"),
                      "-e", "render_dir=%s" % out], env=env, cwd=ROOT)
    return rc, output, out


def recap(output, host):
    match = re.search(r"^%s\s+:\s+ok=(\d+)\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)" % host, output, re.M)
    assert match, output
    return int(match.group(1)), int(match.group(2))


def test_el8_is_refused_with_the_reason(platform_run):
    rc, output, _ = platform_run
    assert rc != 0, output
    assert recap(output, "rocky8")[1] == 1, output
    assert "host rocky8: EL 8 is not supported: ansible-core 2.17 and later cannot run modules on EL 8" in output, output


@pytest.mark.parametrize("host", ["alma9", "rocky10", "rhel9", "rhel10", "debian12"])
def test_supported_platforms_pass(platform_run, host):
    _, output, out = platform_run
    assert recap(output, host)[1] == 0, output
    assert (out / ("%s.json" % host)).exists(), output


def test_rocky_and_alma_use_their_epel_release_and_crb(platform_run):
    out = platform_run[2]
    for host in ("alma9", "rocky10"):
        sources = json.loads((out / ("%s.json" % host)).read_text())
        assert sources == {"epel_package": "epel-release", "epel_key": "", "crb_rhsm_repo": "", "crb_repo": "crb"}, sources


@pytest.mark.parametrize("host, major", [("rhel9", "9"), ("rhel10", "10")])
def test_rhel_installs_epel_from_its_rpm_and_crb_through_subscription_manager(platform_run, host, major):
    """epel-release is not in Red Hat's repositories, and CodeReady Builder is the subscription's."""
    sources = json.loads((platform_run[2] / ("%s.json" % host)).read_text())
    assert sources["epel_package"] == "https://dl.fedoraproject.org/pub/epel/epel-release-latest-%s.noarch.rpm" % major
    assert sources["epel_key"] == "https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-%s" % major
    assert sources["crb_rhsm_repo"] == "codeready-builder-for-rhel-%s-x86_64-rpms" % major
