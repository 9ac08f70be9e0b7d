"""roles/opendkim/library/dkim_keys.py run as Ansible runs it: a process with its arguments in a file.

Real openssl, real files in a temporary directory; the owner and group are the test's own.
"""

import grp
import json
import os
import pwd
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODULE = os.path.join(ROOT, "roles", "opendkim", "library", "dkim_keys.py")
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run(tmp_path, keys, check_mode=False):
    """Run the module once; return its JSON result (failed results too)."""
    args = {"keys": keys, "directory": str(tmp_path / "keys"), "owner": OWNER, "group": GROUP}
    if check_mode:
        args["_ansible_check_mode"] = True
    argfile = tmp_path / "args.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, MODULE, str(argfile)], capture_output=True, text=True,
                          check=False)
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
