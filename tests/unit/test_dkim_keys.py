"""The dkim_keys module (plugins/modules/dkim_keys.py) run as Ansible runs it: a process with its arguments in a file.

Real openssl, real files in a temporary directory; the owner and group are the test's own. The
directories are root's when the tests run as root (the module's default); as another user the
test passes its own name as directory_owner, since only root may give a file away.
"""

import grp
import json
import os
import pwd
import resource
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODULE = "ansible_collections.mailward.mail.plugins.modules.dkim_keys"
# The collection's package root, for `python -m MODULE` (module_utils imported as Ansible ships them).
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "collections")]
                                                  + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
AS_ROOT = os.getuid() == 0
DIR_OWNER = "root" if AS_ROOT else OWNER


def run(tmp_path, keys, check_mode=False, max_files=None, **overrides):
    """Run the module once; return its JSON result (failed results too). overrides replace
    module arguments (directory, owner, group)."""
    args = {"keys": keys, "directory": str(tmp_path / "keys"), "owner": OWNER, "group": GROUP}
    if not AS_ROOT:
        args["directory_owner"] = OWNER
    args.update(overrides)
    if check_mode:
        args["_ansible_check_mode"] = True
    argfile = tmp_path / "args.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    # A module that opens a FIFO planted at a key path would block: the timeout turns that into a
    # test failure instead of a hung run.
    limit = None
    if max_files:
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))
    proc = subprocess.run([sys.executable, "-m", MODULE, str(argfile)], capture_output=True, text=True,
                          check=False, timeout=30, preexec_fn=limit, env=ENV)
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def cache(tmp_path):
    return json.loads((tmp_path / "keys" / ".public-keys.json").read_text())["keys"]


@pytest.fixture
def keydir(tmp_path):
    (tmp_path / "keys").mkdir(mode=0o700)
    return tmp_path


ED = [{"domain": "a.test", "selector": "s1", "type": "ed25519"},
      {"domain": "b.test", "selector": "s1", "type": "ed25519"}]


def test_generates_then_reads_from_cache(keydir):
    first = run(keydir, ED)
    assert first["changed"] is True
    assert sorted(first["generated"]) == ["a.test/s1", "b.test/s1"]
    assert all(k["public_key"].startswith("-----BEGIN PUBLIC KEY-----") for k in first["public_keys"])
    assert set(cache(keydir)) == {k["path"] for k in first["public_keys"]}
    assert oct(os.stat(keydir / "keys" / ".public-keys.json").st_mode & 0o777) == "0o600"

    second = run(keydir, ED)
    assert second["changed"] is False and second["generated"] == []
    assert [k["public_key"] for k in second["public_keys"]] == [k["public_key"] for k in first["public_keys"]]


def test_cache_is_used_only_while_the_key_file_is_unchanged(keydir):
    first = run(keydir, ED[:1])
    path = first["public_keys"][0]["path"]
    real = first["public_keys"][0]["public_key"]

    # Mark the cached entry: as long as the key file is untouched, the module answers from it.
    entries = cache(keydir)
    entries[path]["public"] = "MARKED"
    (keydir / "keys" / ".public-keys.json").write_text(json.dumps({"version": 1, "keys": entries}))
    assert run(keydir, ED[:1])["public_keys"][0]["public_key"] == "MARKED"

    # Any change of the file (here only its times) makes the module read the key again.
    os.utime(path, ns=(1, 1))
    assert run(keydir, ED[:1])["public_keys"][0]["public_key"] == real
    assert cache(keydir)[path]["public"] == real


def test_a_key_replaced_on_disk_is_judged_by_its_new_content(keydir):
    run(keydir, ED[:1])  # ed25519 key and its cache entry
    path = keydir / "keys" / "a.test" / "s1.private"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", str(path)], check=True, capture_output=True)
    result = run(keydir, ED[:1])
    assert result.get("failed") is True
    assert "selector s1 of a.test is a rsa key of 1024 bits on disk" in result["msg"]
    assert "asks for ed25519" in result["msg"]


def test_keys_that_left_the_inventory_leave_the_cache(keydir):
    run(keydir, ED)
    run(keydir, ED[1:])
    assert list(cache(keydir)) == [str(keydir / "keys" / "b.test" / "s1.private")]


def test_check_mode_writes_nothing(keydir):
    result = run(keydir, ED, check_mode=True)
    assert result["changed"] is True and sorted(result["generated"]) == ["a.test/s1", "b.test/s1"]
    assert os.listdir(keydir / "keys") == []


def test_a_corrupt_cache_is_ignored_and_rewritten(keydir):
    first = run(keydir, ED[:1])
    (keydir / "keys" / ".public-keys.json").write_text("{not json")
    again = run(keydir, ED[:1])
    assert again["changed"] is False
    assert again["public_keys"][0]["public_key"] == first["public_keys"][0]["public_key"]
    assert list(cache(keydir)) == [first["public_keys"][0]["path"]]


def test_check_mode_leaves_the_cache_alone(keydir):
    first = run(keydir, ED[:1])
    (keydir / "keys" / ".public-keys.json").unlink()
    again = run(keydir, ED[:1], check_mode=True)
    assert again["changed"] is False
    assert again["public_keys"][0]["public_key"] == first["public_keys"][0]["public_key"]
    assert not (keydir / "keys" / ".public-keys.json").exists()


def test_directories_are_roots_and_keys_the_owners(keydir):
    """Directories root:group 0750 (the opendkim user may not add, rename or replace anything);
    keys owner:group 0600 (see the module on why not root:group 0640)."""
    run(keydir, ED)
    for path in (keydir / "keys", keydir / "keys" / "a.test", keydir / "keys" / "b.test"):
        st = os.lstat(path)
        assert (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name) == (DIR_OWNER, GROUP)
        assert oct(st.st_mode & 0o7777) == "0o750", path
    for path in (keydir / "keys" / "a.test" / "s1.private", keydir / "keys" / "b.test" / "s1.private"):
        st = os.lstat(path)
        assert (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name) == (OWNER, GROUP)
        assert oct(st.st_mode & 0o7777) == "0o600", path


def test_an_old_layout_is_brought_to_the_new_one_once(keydir):
    """Trees made by earlier versions (per-domain directories 0700): fixed, then left alone."""
    run(keydir, ED[:1])
    os.chmod(keydir / "keys" / "a.test", 0o700)
    assert run(keydir, ED[:1])["changed"] is True
    assert oct(os.lstat(keydir / "keys" / "a.test").st_mode & 0o7777) == "0o750"
    assert run(keydir, ED[:1])["changed"] is False


# Symlinks and other intruders. Whoever can write in the key tree (the opendkim user, in trees
# made by earlier versions) must not be able to make root chown, chmod, read or write anything
# else. Each one stops the run with a message naming the path, and its target stays as it was.

def _victim(path, content=b"precious\n"):
    """A file the module must not touch; owned by someone else when the tests run as root."""
    path.write_bytes(content)
    os.chmod(path, 0o644)
    if AS_ROOT:
        os.chown(path, 4321, 4321)
    return path


def _state(path):
    st = os.lstat(path)
    content = path.read_bytes() if path.is_file() else sorted(os.listdir(path))
    return content, st.st_uid, st.st_gid, st.st_mode


def _ed25519_pem():
    return subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519"], check=True,
                          capture_output=True).stdout


def _assert_refused(result, path, what="symlink"):
    assert result.get("failed") is True, result
    assert str(path) in result["msg"], result["msg"]
    assert what in result["msg"], result["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_symlink_at_a_key_path_stops_the_run(keydir, check_mode):
    victim = _victim(keydir / "victim.pem", _ed25519_pem())  # a valid key: nothing else goes wrong
    before = _state(victim)
    (keydir / "keys" / "a.test").mkdir(mode=0o750)
    link = keydir / "keys" / "a.test" / "s1.private"
    link.symlink_to(victim)
    result = run(keydir, ED[:1], check_mode=check_mode)
    assert _state(victim) == before
    _assert_refused(result, link)
    assert os.path.islink(link)


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_symlink_at_a_domain_directory_stops_the_run(keydir, check_mode):
    elsewhere = keydir / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    if AS_ROOT:
        os.chown(elsewhere, 4321, 4321)
    before = _state(elsewhere)
    link = keydir / "keys" / "a.test"
    link.symlink_to(elsewhere)
    result = run(keydir, ED[:1], check_mode=check_mode)
    assert _state(elsewhere) == before
    _assert_refused(result, link)


def test_a_symlink_at_the_cache_stops_the_run(keydir):
    victim = _victim(keydir / "victim")
    before = _state(victim)
    link = keydir / "keys" / ".public-keys.json"
    link.symlink_to(victim)
    result = run(keydir, ED[:1])
    assert _state(victim) == before
    _assert_refused(result, link)
    assert os.path.islink(link)


def test_a_symlink_at_the_cache_temporary_name_stops_the_run(keydir):
    """Earlier versions wrote the cache through <directory>/.public-keys.json.tmp."""
    victim = _victim(keydir / "victim")
    before = _state(victim)
    link = keydir / "keys" / ".public-keys.json.tmp"
    link.symlink_to(victim)
    result = run(keydir, ED[:1])
    assert _state(victim) == before
    _assert_refused(result, link)


def test_a_fifo_at_a_key_path_stops_the_run(keydir):
    (keydir / "keys" / "a.test").mkdir(mode=0o750)
    fifo = keydir / "keys" / "a.test" / "s1.private"
    os.mkfifo(fifo, 0o600)
    _assert_refused(run(keydir, ED[:1]), fifo, "FIFO")


def test_a_hard_link_at_a_key_path_stops_the_run(keydir):
    """A second name for a key file: root would chown and chmod whatever it is."""
    victim = _victim(keydir / "victim.pem", _ed25519_pem())
    before = _state(victim)
    (keydir / "keys" / "a.test").mkdir(mode=0o750)
    link = keydir / "keys" / "a.test" / "s1.private"
    os.link(victim, link)
    result = run(keydir, ED[:1])
    assert _state(victim) == before
    _assert_refused(result, link, "2 hard links")


def test_a_file_at_a_domain_directory_stops_the_run(keydir):
    path = _victim(keydir / "keys" / "a.test")
    before = _state(path)
    _assert_refused(run(keydir, ED[:1]), path, "not a directory")
    assert _state(path) == before


def test_a_symlink_at_the_base_directory_stops_the_run(tmp_path):
    (tmp_path / "real").mkdir(mode=0o755)
    before = _state(tmp_path / "real")
    (tmp_path / "keys").symlink_to(tmp_path / "real")
    result = run(tmp_path, ED[:1])
    assert _state(tmp_path / "real") == before
    _assert_refused(result, tmp_path / "keys")


@pytest.mark.parametrize("domain,selector", [("..", "s1"), ("a.test/../..", "s1"), ("a.test", "../s1")])
def test_names_that_leave_the_key_tree_are_refused(keydir, domain, selector):
    result = run(keydir, [{"domain": domain, "selector": selector, "type": "ed25519"}])
    assert result.get("failed") is True, result
    assert "not a single path component" in result["msg"], result["msg"]
    assert os.listdir(keydir / "keys") == []


def test_check_mode_reports_owner_and_mode_drift_without_fixing_it(keydir):
    run(keydir, ED[:1])
    domain = keydir / "keys" / "a.test"
    os.chmod(domain, 0o700)
    result = run(keydir, ED[:1], check_mode=True)
    assert result["changed"] is True and result["generated"] == []
    assert oct(os.lstat(domain).st_mode & 0o7777) == "0o700"


def test_descriptors_are_not_kept_per_domain(keydir):
    """The module opens every directory and key it touches; with many domains they must be
    closed as it goes (here 120 domains, interleaved, under a limit of 96 descriptors)."""
    keys = [{"domain": "d%03d.test" % (i % 60), "selector": "s%d" % (i // 60), "type": "ed25519"}
            for i in range(120)]
    first = run(keydir, keys, max_files=96)
    assert first.get("failed") is not True, first.get("msg")
    assert len(first["generated"]) == 120
    assert run(keydir, keys, max_files=96)["changed"] is False


# On a new host the opendkim package, which creates the opendkim user and group and the directory
# above the key tree (/etc/opendkim on the RedHat family), is not installed yet: --check installs
# nothing, so the module meets a user, a group and a directory that do not exist.
NO_USER = "mailward-test-no-such-user"
NO_GROUP = "mailward-test-no-such-group"


@pytest.mark.parametrize("directory", ["keys", "not-yet/keys"])
def test_check_mode_on_a_new_host_reports_every_key_as_to_be_generated(tmp_path, directory):
    result = run(tmp_path, ED, check_mode=True, directory=str(tmp_path / directory),
                 owner=NO_USER, group=NO_GROUP)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert sorted(result["generated"]) == ["a.test/s1", "b.test/s1"]
    assert result["public_keys"] == []
    assert NO_USER in result["msg"] and NO_GROUP in result["msg"], result["msg"]
    assert sorted(os.listdir(tmp_path)) == ["args.json"]


def test_check_mode_reports_a_tree_the_missing_user_would_not_own(keydir):
    run(keydir, ED[:1])
    result = run(keydir, ED[:1], check_mode=True, owner=NO_USER)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True and result["generated"] == []
    assert NO_USER in result["msg"]


@pytest.mark.parametrize("option,name", [("owner", NO_USER), ("group", NO_GROUP)])
def test_a_missing_user_or_group_stops_a_real_run_naming_it(keydir, option, name):
    result = run(keydir, ED, **{option: name})
    assert result.get("failed") is True, result
    assert option in result["msg"] and name in result["msg"], result["msg"]
    assert os.listdir(keydir / "keys") == []
