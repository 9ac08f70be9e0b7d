"""The EL-rendered configuration, checked by the daemons' own checkers in the versions EL ships.

No EL package can be fetched here, but Debian's archive has the same upstream versions: the
checker images (scripts/build-checker-images.sh, podman) are Debian 11 and Debian 12 roots with
Postfix, OpenDKIM, OpenDMARC, Dovecot and Unbound. Each EL major's files go to the image whose
version of that daemon is the closest one not newer than EL's (a setting the older version
accepts, the newer one knows too; docs/el.md has the table and the sources):

    EL 9:  Postfix 3.5.25, OpenDKIM 2.11.0 beta2, Dovecot 2.3.16, Unbound 1.16.2  -> Debian 11
           OpenDMARC 1.4.2 (EPEL 9)                                            -> Debian 12
    EL 10: Postfix 3.8.5, Dovecot 2.3.21, Unbound 1.20.0, OpenDMARC 1.4.2      -> Debian 12

The checks are the roles' own (postconf -n without a warning, postfix check, postmap on the
regexp tables, opendkim -n, opendmarc -n, doveconf -n, unbound-checkconf), run on the files at
their EL paths. Every checker also gets a broken file that it must refuse, so a checker that is
not consulted (or an image without it) fails the test; and Postfix 3.5 must refuse a parameter
that only 3.6 knows, which shows the EL 9 files really meet EL 9's version.

All cases of one image run in one container (about a second); the images are built once by
`make checker-images` (a cold build of both takes about three minutes).
"""

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT

IMAGES = {"bullseye": "localhost/mailward-checker-bullseye:latest",
          "bookworm": "localhost/mailward-checker-bookworm:latest"}

# What each image must contain: the checks are only as good as these versions.
IMAGE_VERSIONS = {
    "bullseye": {"postfix": "3.5.25-", "opendkim": "2.11.0~beta2-", "opendmarc": "1.4.0~beta1",
                 "dovecot-core": "1:2.3.13", "unbound": "1.13.1-"},
    "bookworm": {"postfix": "3.7.", "opendkim": "2.11.0~beta2-", "opendmarc": "1.4.2-",
                 "dovecot-core": "1:2.3.19", "unbound": "1.17.1-"},
}

# Which image checks which daemon, per EL major (see the module docstring).
CHECKERS = {
    "9": {"postfix": "bullseye", "opendkim": "bullseye", "opendmarc": "bookworm",
          "dovecot": "bullseye", "unbound": "bullseye"},
    "10": {"postfix": "bookworm", "opendkim": "bookworm", "opendmarc": "bookworm",
           "dovecot": "bookworm", "unbound": "bookworm"},
}

# The root trust anchor the EL unbound package ships at /var/lib/unbound/root.key (unbound-checkconf
# refuses an auto-trust-anchor-file that does not exist).
ROOT_KEY = ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"

# Each checker: the command, run in the case directory (./ holds the rendered files of that EL
# major), exactly as the role runs it; and how to break its input.
POSTFIX_TABLES = ["mailward-header-checks", "mailward-sender-syntax"]
CHECKS = {
    "postconf": ("postfix", """
        warnings=$(postconf -c "$PWD/postfix" -n 2>&1 >/dev/null)
        if [ -n "$warnings" ]; then echo "$warnings"; exit 1; fi
        postconf -c "$PWD/postfix" -M >/dev/null
        """),
    "postfix-check": ("postfix", """
        script -qec "postfix -c $PWD/postfix check" /dev/null </dev/null
        """),
    "postmap": ("postfix", """
        for table in %s; do
          warnings=$(postmap -q 'From: mailward-check@example.com' "regexp:$PWD/postfix/$table" 2>&1 >/dev/null) || true
          if [ -n "$warnings" ]; then echo "$table: $warnings"; exit 1; fi
        done
        """ % " ".join(POSTFIX_TABLES)),
    "opendkim": ("opendkim", """
        mkdir -p /etc/opendkim && cp opendkim/KeyTable opendkim/SigningTable opendkim/TrustedHosts /etc/opendkim/
        opendkim -n -x opendkim/opendkim.conf
        """),
    "opendmarc": ("opendmarc", """
        mkdir -p /etc/opendmarc && cp opendmarc/ignore.hosts /etc/opendmarc/
        opendmarc -n -c opendmarc/opendmarc.conf
        """),
    "doveconf": ("dovecot", """
        doveconf -n -c dovecot/dovecot.conf >/dev/null
        """),
    "unbound-checkconf": ("unbound", """
        mkdir -p /var/lib/unbound && cp root.key /var/lib/unbound/root.key
        unbound-checkconf unbound/unbound.conf
        """),
}

# A broken file per checker: (file, text appended, what the refusal must say).
BREAKS = {
    "postconf": ("postfix/main.cf", "mailward_no_such_parameter = 1\n", "unused parameter: mailward_no_such_parameter"),
    "postfix-check": ("postfix/main.cf", "message_size_limit = fifty\n",
                      "bad numerical configuration: message_size_limit = fifty"),
    "postmap": ("postfix/mailward-header-checks", "/^From:(.*/ REJECT broken\n", "mailward-header-checks"),
    "opendkim": ("opendkim/opendkim.conf", "Mode bogus\n", "unknown mode"),
    "opendmarc": ("opendmarc/opendmarc.conf", "RejectFailures maybe\n", "illegal value"),
    "doveconf": ("dovecot/dovecot.conf", "mailward_no_such_setting = 1\n", "Unknown setting: mailward_no_such_setting"),
    "unbound-checkconf": ("unbound/unbound.conf", "server:\n    mailward-no-such-option: yes\n",
                          "unknown keyword 'mailward-no-such-option'"),
}

RUNNER = """#!/bin/sh
# One container, every case: each runs in a copy of its directory, so /etc is the only shared place.
for case in /cases/*/; do
  name=$(basename "$case")
  rm -rf "/work/$name" && mkdir -p /work && cp -a "$case" "/work/$name"
  (cd "/work/$name" && sh ./check) >"/cases/$name.out" 2>&1
  echo $? >"/cases/$name.rc"
done
cat /etc/mailward-checker-versions >/cases/versions.txt
"""


def podman_env():
    return dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(ROOT / "containers/containers.conf")))


def add_case(cases, name, rendered_dir, check, breaks=None):
    case = cases / name
    shutil.copytree(rendered_dir, case)
    (case / "check").write_text("set -e\n" + textwrap.dedent(check))
    (case / "root.key").write_text(ROOT_KEY)
    if breaks:
        path, text = breaks
        with open(case / path, "a") as handle:
            handle.write(text)


@pytest.fixture(scope="module")
def results(rendered, rendered_el10, tmp_path_factory):
    """Run every case in its image; return {(image, case): (rc, output)} and the images' versions."""
    for image in IMAGES.values():
        proc = subprocess.run(["podman", "image", "exists", image], env=podman_env())
        assert proc.returncode == 0, "checker image %s is missing: run `make checker-images`" % image
    base = tmp_path_factory.mktemp("checkers")
    found, versions = {}, {}
    renders = {"9": rendered, "10": rendered_el10}
    for image_name, image in IMAGES.items():
        cases = base / image_name
        cases.mkdir()
        for major, daemons in CHECKERS.items():
            for check, (daemon, command) in CHECKS.items():
                if daemons[daemon] != image_name:
                    continue
                add_case(cases, "el%s-%s" % (major, check), renders[major], command)
                add_case(cases, "el%s-%s-broken" % (major, check), renders[major], command, BREAKS[check][:2])
        if image_name == "bullseye":
            # Postfix 3.5 (EL 9) does not know a parameter Postfix 3.6 introduced.
            add_case(cases, "el9-postconf-3.6-parameter", renders["9"], CHECKS["postconf"][1],
                     ("postfix/main.cf", "smtpd_relay_before_recipient_restrictions = yes\n"))
        (cases / "run.sh").write_text(RUNNER)
        name = "mailward-checker-%s-%d" % (image_name, os.getpid())
        proc = subprocess.run(["podman", "run", "--rm", "--name", name, "--network", "none",
                               "-v", "%s:/cases" % cases, image, "sh", "/cases/run.sh"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=podman_env(), timeout=300)
        assert proc.returncode == 0, proc.stdout
        versions[image_name] = dict(line.split(" ", 1) for line in (cases / "versions.txt").read_text().splitlines())
        for rc_file in cases.glob("*.rc"):
            case = rc_file.name[:-3]
            found[(image_name, case)] = (int(rc_file.read_text()), (cases / (case + ".out")).read_text())
    return found, versions


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_checker_images_hold_the_expected_versions(results, image):
    versions = results[1][image]
    for package, prefix in IMAGE_VERSIONS[image].items():
        assert versions[package].startswith(prefix), (image, package, versions[package])


CASES = [(major, check) for major in CHECKERS for check in CHECKS]


@pytest.mark.parametrize("major, check", CASES)
def test_el_config_passes_the_checker(results, major, check):
    image = CHECKERS[major][CHECKS[check][0]]
    rc, output = results[0][(image, "el%s-%s" % (major, check))]
    assert rc == 0, "%s (%s, %s): %s" % (check, image, IMAGE_VERSIONS[image], output)


@pytest.mark.parametrize("major, check", CASES)
def test_the_checker_refuses_a_broken_file(results, major, check):
    """Proves the checker is consulted, in that image, on that file."""
    image = CHECKERS[major][CHECKS[check][0]]
    rc, output = results[0][(image, "el%s-%s-broken" % (major, check))]
    assert rc != 0, "%s accepted a broken file: %s" % (check, output)
    assert BREAKS[check][2] in output, output


def test_postfix_35_refuses_a_postfix_36_parameter(results):
    """The EL 9 files meet Postfix 3.5, not the 3.7 of this machine: 3.5 warns about a 3.6 name."""
    rc, output = results[0][("bullseye", "el9-postconf-3.6-parameter")]
    assert rc != 0 and "unused parameter: smtpd_relay_before_recipient_restrictions" in output, output

