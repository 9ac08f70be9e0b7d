"""RedHat-family render check that runs on this Debian machine.

No Rocky image can be fetched here, so the roles' templates are rendered with their RedHat
variables and the facts of EL 9 and EL 10 (tests/redhat/render.yml), and what the EL packages
require of the result is asserted here: paths, users, sockets, map types, compatibility_level,
and the choices the roles' tasks make from data. The daemons' own checkers, in the versions EL
ships, read the same files in test_el_checkers.py; the platform check is in test_platform.py.
"""

import json
import re
import sys

import pytest
import yaml

from conftest import BIN, ROOT, ansible_env, decisions, run


def master_services(rendered_dir):
    master = (rendered_dir / "postfix/master.cf").read_text()
    return [line.split() for line in master.splitlines() if line and not line[0].isspace() and not line.startswith("#")]


def main_cf(rendered_dir):
    """main.cf as a dict (continuation lines joined)."""
    params, name = {}, None
    for line in (rendered_dir / "postfix/main.cf").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line[0].isspace() and name:
            params[name] = (params[name] + " " + line.strip()).strip()
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        params[name] = value.strip()
    return params


def items(value):
    return [item.strip() for item in value.split(",") if item.strip()]


# --- Postfix -------------------------------------------------------------------------------

def test_master_cf_uses_el_policyd_spf_paths(rendered):
    line = next(fields for fields in master_services(rendered) if fields[0] == "policyd-spf")
    assert line[:8] == ["policyd-spf", "unix", "-", "n", "n", "-", "0", "spawn"], line
    assert " ".join(line[8:]) == ("user=policyd-spf argv=/usr/libexec/mailward/policyd-spf "
                                  "/etc/python-policyd-spf/policyd-spf.conf"), line


def test_master_cf_el10_runs_policyd_spf_from_the_virtualenv(rendered_el10):
    """EPEL 10 has no pypolicyd-spf: the pip method is the default there, same config file."""
    line = next(fields for fields in master_services(rendered_el10) if fields[0] == "policyd-spf")
    assert " ".join(line[8:]) == ("user=policyd-spf argv=/usr/libexec/mailward/policyd-spf "
                                  "/etc/python-policyd-spf/policyd-spf.conf"), line


def test_policyd_spf_method_per_el_major(rendered, rendered_el10):
    assert decisions(rendered)["policyd_spf_install_method"] == "package"
    assert decisions(rendered_el10)["policyd_spf_install_method"] == "pip"


def test_policyd_spf_launcher_runs_with_the_programs_interpreter(rendered, rendered_el10):
    """The launcher (dnspython's cache, then the program's entry point) runs with the Python the
    program itself runs with: EPEL 9's script is /usr/bin/python3's, EL 10's is the virtualenv's."""
    for rendered_dir, python, program in ((rendered, "/usr/bin/python3", "/usr/libexec/postfix/policyd-spf"),
                                          (rendered_el10, "/opt/mailward/policyd-spf/bin/python",
                                           "/opt/mailward/policyd-spf/bin/policyd-spf")):
        launcher = (rendered_dir / "policyd-spf/policyd-spf").read_text()
        assert launcher.splitlines()[0] == "#!" + python, launcher
        assert "LRUCache(10000)" in launcher and "from spf_engine.policyd_spf import main" in launcher, launcher
        assert decisions(rendered_dir)["policyd_spf_binary"] == program
        assert decisions(rendered_dir)["policyd_spf_command"] == "/usr/libexec/mailward/policyd-spf"


@pytest.mark.parametrize("which", ["rendered", "rendered_el10"])
def test_master_cf_is_not_chrooted_on_el(which, request):
    services = master_services(request.getfixturevalue(which))
    assert len(services) > 20, services
    chroots = {fields[0] + "/" + fields[1]: fields[4] for fields in services}
    assert set(chroots.values()) == {"n"}, chroots


def test_main_cf_el9_maps_and_milters(rendered):
    main = main_cf(rendered)
    assert main["alias_maps"] == "hash:/etc/aliases"
    assert main["smtpd_tls_cert_file"] == "/etc/pki/tls/mailward/smtpd.crt"
    # Unix sockets in the packages' runtime directories; Postfix is not chrooted, so the paths
    # are absolute (the fromcheck milter keeps TCP: its SELinux type is unconfined_service_t).
    assert items(main["smtpd_milters"]) == ["unix:/run/opendkim/opendkim.sock", "unix:/run/opendmarc/opendmarc.sock"]
    assert items(main["non_smtpd_milters"]) == ["unix:/run/opendkim/opendkim.sock"]
    assert items(main["mailward_submission_milters"]) == [
        "inet:localhost:8890", "unix:/run/opendkim/opendkim.sock", "unix:/run/opendmarc/opendmarc.sock"]
    restrictions = items(main["smtpd_recipient_restrictions"])
    assert restrictions.index("reject_unauth_destination") < restrictions.index("check_policy_service unix:private/policyd-spf")


def test_main_cf_el10_uses_lmdb(rendered_el10):
    text = (rendered_el10 / "postfix/main.cf").read_text()
    assert main_cf(rendered_el10)["alias_maps"] == "lmdb:/etc/aliases", text
    assert "hash:" not in text and "btree:" not in text, text


def test_postfix_lmdb_package_only_where_lmdb_is_used(rendered, rendered_el10):
    assert "postfix-lmdb" not in decisions(rendered)["postfix_packages"]
    assert "postfix-lmdb" in decisions(rendered_el10)["postfix_packages"]


def test_el10_postscreen_cache_is_lmdb(tmp_path):
    """postscreen's cache defaults to btree: (Berkeley DB), which EL 10's Postfix lacks."""
    out = tmp_path / "el10-postscreen"
    rc, output = run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(ROOT / "tests/redhat/render.yml"),
                      "-e", json.dumps({"render_dir": str(out), "el_major": "10", "postfix_mail_version": "3.8.5",
                                        "postfix_postscreen_enabled": True, "render_only": ["postfix/main.cf"],
                                        "ansible_python_interpreter": sys.executable})],
                     env=ansible_env(), cwd=ROOT)
    assert rc == 0, output
    main = main_cf(out)
    assert main["postscreen_cache_map"] == "lmdb:$data_directory/postscreen_cache", main
    assert "btree:" not in (out / "postfix/main.cf").read_text()


def compatibility_level(version, configured=""):
    """The postfix role's compatibility_level expression (vars/main.yml), as Ansible templates it."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    expression = yaml.safe_load((ROOT / "roles/postfix/vars/main.yml").read_text())["postfix_compatibility_level_effective"]
    variables = {"postfix_compatibility_level": configured}
    if version is not None:
        variables["postfix_mail_version"] = version
    return Templar(loader=DataLoader(), variables=variables).template(expression)


@pytest.mark.parametrize("version, level", [("3.5.9", "2"), ("3.5.10", "2"), ("3.5.11", "3.6"),
                                            ("3.5.25", "3.6"), ("3.7.11", "3.6"), ("3.8.5", "3.6"),
                                            (None, "3.6")])
def test_compatibility_level_follows_the_installed_postfix(version, level):
    """EL 9.0-9.4 shipped Postfix 3.5.9, which reads compatibility_level as a number only:
    "3.6" stops it ("bad numerical configuration"); 3.5.11 and later read the major.minor form
    (mail_params.c, 3.5.11). Unknown (the audit renders on the controller): a current Postfix."""
    assert compatibility_level(version) == level


def test_compatibility_level_can_be_set():
    assert compatibility_level("3.5.9", configured="3.6") == "3.6"


def test_main_cf_carries_the_derived_level(rendered):
    baseline = yaml.safe_load((ROOT / "roles/postfix/vars/main.yml").read_text())["postfix_main_cf_baseline"]
    assert baseline["compatibility_level"] == "{{ postfix_compatibility_level_effective }}"
    assert main_cf(rendered)["compatibility_level"] == "3.6"


# --- policyd-spf ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["rendered", "rendered_el10"])
def test_policyd_spf_conf_enforces(which, request):
    conf = (request.getfixturevalue(which) / "policyd-spf/policyd-spf.conf").read_text()
    assert re.search(r"^TestOnly = 1$", conf, re.M)
    assert re.search(r"^TempError_Defer = True$", conf, re.M)
    assert re.search(r"^HELO_reject = Fail$", conf, re.M)


# --- OpenDKIM / OpenDMARC ------------------------------------------------------------------

@pytest.mark.parametrize("which", ["rendered", "rendered_el10"])
def test_opendkim_el_paths(which, request):
    rendered_dir = request.getfixturevalue(which)
    conf = (rendered_dir / "opendkim/opendkim.conf").read_text()
    assert "KeyTable                file:/etc/opendkim/KeyTable" in conf
    assert "SigningTable            refile:/etc/opendkim/SigningTable" in conf
    assert re.search(r"^UserID\s+opendkim:opendkim$", conf, re.M), conf
    # In the package's RuntimeDirectory (opendkim:opendkim 0750, dkim_milter_data_t): mailward
    # does not make it (a directory Ansible makes would carry another SELinux label).
    assert re.search(r"^Socket\s+local:/run/opendkim/opendkim\.sock$", conf, re.M), conf
    assert decisions(rendered_dir)["opendkim_runtime_dir"] == "/run/opendkim"
    keytable = (rendered_dir / "opendkim/KeyTable").read_text()
    assert "example.com:mw2026r:/etc/opendkim/keys/example.com/mw2026r.private" in keytable
    assert "mw2026e" not in keytable, "ed25519 selector must not sign with rsa-sha256"


@pytest.mark.parametrize("which", ["rendered", "rendered_el10"])
def test_opendmarc_el_settings(which, request):
    """The EPEL unit runs OpenDMARC as opendmarc:opendmarc (the package's "UserID opendmarc:mail"
    has no effect there), so the socket and /run/opendmarc are reached through group opendmarc."""
    rendered_dir = request.getfixturevalue(which)
    conf = (rendered_dir / "opendmarc/opendmarc.conf").read_text()
    assert re.search(r"^UserID\s+opendmarc:opendmarc$", conf, re.M), conf
    assert re.search(r"^Socket\s+local:/run/opendmarc/opendmarc\.sock$", conf, re.M), conf
    assert re.search(r"^UMask\s+0007$", conf, re.M), conf
    assert re.search(r"^TrustedAuthservIDs\s+mx1\.example\.com$", conf, re.M), conf


@pytest.mark.parametrize("which", ["rendered", "rendered_el10"])
def test_postfix_joins_the_milters_groups(which, request):
    """The postfix role (not the milter roles, which may run before Postfix is installed) puts
    its user into the groups of the unix sockets; the TCP fromcheck milter needs none."""
    assert decisions(request.getfixturevalue(which))["postfix_milter_groups"] == ["opendkim", "opendmarc"]


# --- submission ----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["rendered", "rendered_el10"])
def test_submission_on_el(which, request):
    rendered_dir = request.getfixturevalue(which)
    line = next(fields for fields in master_services(rendered_dir) if fields[0] == "submission")
    assert line[:8] == ["submission", "inet", "n", "-", "n", "-", "-", "smtpd"], line
    master = (rendered_dir / "postfix/master.cf").read_text()
    for option in ("smtpd_tls_security_level=encrypt", "smtpd_sasl_type=dovecot", "smtpd_tls_auth_only=yes",
                   "smtpd_milters=$mailward_submission_milters",
                   "smtpd_relay_restrictions=permit_sasl_authenticated,reject"):
        assert "-o " + option in master, (option, master)
    unit = (rendered_dir / "submission/mailward-fromcheck.service").read_text()
    assert "--socket inet:8890@localhost" in unit, unit
    assert decisions(rendered_dir)["submission_fromcheck_packages"] == ["python3-pymilter"]
