"""RedHat-family check that runs on this Debian machine.

No Rocky image can be fetched here, so the roles' templates are rendered with their
RedHat variables (tests/redhat/render.yml) and the results are fed to the real daemons'
own checkers installed on this machine: `postconf -c DIR`, `postfix -c DIR check`,
`opendkim -n` and `opendmarc -n`. The EL paths in the rendered files are asserted too.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(argv, **kwargs):
    """Run a command; return (rc, combined output)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    return proc.returncode, proc.stdout


def render(out_dir, el_major="9"):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_LIBRARY=str(ROOT / "tests/redhat/library"), ANSIBLE_FORCE_COLOR="0")
    rc, output = run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(ROOT / "tests/redhat/render.yml"),
                      "-e", "render_dir=%s" % out_dir, "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "el_major=%s" % el_major], env=env, cwd=ROOT)
    assert rc == 0, output
    return out_dir


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render(tmp_path_factory.mktemp("el9"))


@pytest.fixture(scope="module")
def rendered_el10(tmp_path_factory):
    return render(tmp_path_factory.mktemp("el10"), el_major="10")


def need(tool):
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")
    assert path, "%s is not installed: run `make setup`" % tool
    return path


# --- Postfix -------------------------------------------------------------------------------

def test_master_cf_uses_el_policyd_spf_paths(rendered):
    master = (rendered / "postfix/master.cf").read_text()
    line = next(line for line in master.splitlines() if line.startswith("policyd-spf "))
    assert line.split()[:8] == ["policyd-spf", "unix", "-", "n", "n", "-", "0", "spawn"], line
    assert "user=policyd-spf argv=/usr/libexec/postfix/policyd-spf /etc/python-policyd-spf/policyd-spf.conf" in line


def test_master_cf_is_not_chrooted_on_el(rendered):
    master = (rendered / "postfix/master.cf").read_text()
    services = [line.split() for line in master.splitlines() if line and not line[0].isspace() and not line.startswith("#")]
    assert len(services) > 20, master
    chroots = {fields[0] + "/" + fields[1]: fields[4] for fields in services}
    assert set(chroots.values()) == {"n"}, chroots


def test_main_cf_el9_maps_and_milters(rendered):
    main = (rendered / "postfix/main.cf").read_text()
    assert "alias_maps = hash:/etc/aliases" in main
    assert "smtpd_tls_cert_file = /etc/pki/tls/mailward/smtpd.crt" in main


def test_main_cf_el10_uses_lmdb(rendered_el10):
    main = (rendered_el10 / "postfix/main.cf").read_text()
    assert "alias_maps = lmdb:/etc/aliases" in main, main
    assert "hash:" not in main, main


def test_postconf_reads_the_el_config_without_warnings(rendered):
    rc, out = run([need("postconf"), "-c", str(rendered / "postfix"), "-n"])
    assert rc == 0, out
    assert "warning" not in out, out
    milters = run([need("postconf"), "-c", str(rendered / "postfix"), "-h", "smtpd_milters"])[1]
    assert milters.strip().split(", ") == ["inet:localhost:8891", "inet:localhost:8893"], milters
    restrictions = run([need("postconf"), "-c", str(rendered / "postfix"), "-h", "smtpd_recipient_restrictions"])[1]
    items = [item.strip() for item in restrictions.split(",")]
    assert items.index("reject_unauth_destination") < items.index("check_policy_service unix:private/policyd-spf")
    rc, out = run([need("postconf"), "-c", str(rendered / "postfix"), "-M"])
    assert rc == 0 and "policyd-spf unix" in out, out


def test_postfix_check_accepts_the_el_config(rendered):
    rc, out = run([need("postfix"), "-c", str(rendered / "postfix"), "check"])
    assert rc == 0, out


def test_postfix_check_catches_a_broken_value(rendered, tmp_path):
    """The checker is really consulted: a bad numeric value fails it."""
    broken = tmp_path / "postfix"
    shutil.copytree(rendered / "postfix", broken)
    with open(broken / "main.cf", "a") as handle:
        handle.write("message_size_limit = fifty\n")
    # postfix writes the reason to a terminal only; `script` provides one (as the role does).
    rc, out = run(["script", "-qec", "%s -c %s check" % (need("postfix"), broken), "/dev/null"],
                  stdin=subprocess.DEVNULL)
    assert rc != 0 and "bad numerical configuration: message_size_limit = fifty" in out, out


# --- policyd-spf ---------------------------------------------------------------------------

def test_policyd_spf_conf_enforces(rendered):
    conf = (rendered / "policyd-spf/policyd-spf.conf").read_text()
    assert re.search(r"^TestOnly = 1$", conf, re.M)
    assert re.search(r"^TempError_Defer = True$", conf, re.M)
    assert re.search(r"^HELO_reject = Fail$", conf, re.M)


# --- OpenDKIM ------------------------------------------------------------------------------

def localize(conf_text, rendered, names):
    """Point the EL table paths at the rendered copies, so the checker opens real files."""
    for name in names:
        conf_text = conf_text.replace("/etc/opendkim/%s" % name, str(rendered / "opendkim" / name))
    return conf_text


def test_opendkim_el_paths(rendered):
    conf = (rendered / "opendkim/opendkim.conf").read_text()
    assert "KeyTable                file:/etc/opendkim/KeyTable" in conf
    assert "SigningTable            refile:/etc/opendkim/SigningTable" in conf
    assert "Socket                  inet:8891@localhost" in conf
    keytable = (rendered / "opendkim/KeyTable").read_text()
    assert "example.com:mw2026r:/etc/opendkim/keys/example.com/mw2026r.private" in keytable
    assert "mw2026e" not in keytable, "ed25519 selector must not sign with rsa-sha256"


def test_opendkim_accepts_the_el_config(rendered, tmp_path):
    conf = localize((rendered / "opendkim/opendkim.conf").read_text(), rendered,
                    ["KeyTable", "SigningTable", "TrustedHosts"])
    path = tmp_path / "opendkim.conf"
    path.write_text(conf)
    rc, out = run([need("opendkim"), "-n", "-x", str(path)])
    assert rc == 0, out


def test_opendkim_rejects_a_broken_config(rendered, tmp_path):
    path = tmp_path / "opendkim.conf"
    path.write_text((rendered / "opendkim/opendkim.conf").read_text() + "Mode bogus\n")
    rc, out = run([need("opendkim"), "-n", "-x", str(path)])
    assert rc != 0, out


# --- OpenDMARC -----------------------------------------------------------------------------

def test_opendmarc_el_settings(rendered):
    conf = (rendered / "opendmarc/opendmarc.conf").read_text()
    assert re.search(r"^UserID\s+opendmarc:mail$", conf, re.M), conf
    assert re.search(r"^Socket\s+inet:8893@localhost$", conf, re.M), conf
    assert re.search(r"^TrustedAuthservIDs\s+mx1\.example\.com$", conf, re.M), conf


def test_opendmarc_accepts_the_el_config(rendered, tmp_path):
    conf = (rendered / "opendmarc/opendmarc.conf").read_text()
    conf = conf.replace("/etc/opendmarc/ignore.hosts", str(rendered / "opendmarc/ignore.hosts"))
    path = tmp_path / "opendmarc.conf"
    path.write_text(conf)
    rc, out = run([need("opendmarc"), "-n", "-c", str(path)])
    assert rc == 0, out


def test_submission_service_on_el(rendered):
    rc, out = run([need("postconf"), "-c", str(rendered / "postfix"), "-M", "submission/inet"])
    assert rc == 0, out
    fields = out.split()
    assert fields[:8] == ["submission", "inet", "n", "-", "n", "-", "-", "smtpd"], out
    for option in ("smtpd_tls_security_level=encrypt", "smtpd_sasl_type=dovecot", "smtpd_tls_auth_only=yes",
                   "smtpd_sender_restrictions=reject_sender_login_mismatch,reject_non_fqdn_sender",
                   "smtpd_relay_restrictions=permit_sasl_authenticated,reject"):
        assert "-o " + option in out, (option, out)
