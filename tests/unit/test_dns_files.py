"""dns_files pruning (issue 17, item 2), the module run as Ansible runs it: a process with an
arguments file (check mode and diff through the _ansible_* arguments)."""
import json
import os
import subprocess
import sys

from mw_testlib import COLLECTIONS

MODULE = os.path.join(COLLECTIONS, "ansible_collections", "mailward", "mail", "plugins", "modules", "dns_files.py")
MANIFEST = ".mailward-dns-files.json"
ALL = ["MX", "SPF", "DKIM", "DMARC", "DMARC_REPORT", "MTA_STS", "TLSRPT", "TLSA", "ADDRESS"]


def run(tmp_path, files, owners, check=False, scope=("example.test", "partner.test"), families=ALL, prune=True):
    args = {"path": str(tmp_path / "out"), "files": files, "owners": owners, "manifest": MANIFEST,
            "prune": prune, "prune_scope": list(scope), "prune_families": list(families),
            "_ansible_check_mode": check, "_ansible_diff": True}
    (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    out = subprocess.run([sys.executable, MODULE, str(tmp_path / "args.json")], capture_output=True, text=True,
                         env=env, check=False)
    result = json.loads(out.stdout)
    assert not result.get("failed"), result
    return result


def owners(*names):
    table = {"example.test.zone": (["example.test"], ["MX", "SPF"]),
             "partner.test.zone": (["partner.test"], ["MX"]),
             "example.test.mta-sts.txt": (["example.test"], ["MTA_STS"])}
    return {n: {"domains": table[n][0], "families": table[n][1]} for n in names}


def listing(tmp_path):
    return sorted(os.listdir(tmp_path / "out"))


def test_files_no_longer_written_are_removed_foreign_files_kept_check_mode_honest(tmp_path):
    every = ["example.test.zone", "partner.test.zone", "example.test.mta-sts.txt"]
    first = run(tmp_path, {n: "text of %s\n" % n for n in every}, owners(*every))
    assert first["changed"] and sorted(first["written"]) == sorted(every) and first["manifest_changed"]
    (tmp_path / "out" / "site.zone").write_text("a foreign file\n")
    (tmp_path / "out" / "notes.txt").write_text("another\n")
    again = run(tmp_path, {n: "text of %s\n" % n for n in every}, owners(*every))
    assert not again["changed"]

    # MTA-STS off for example.test, partner.test removed: check mode reports and diffs, changes nothing.
    keep = ["example.test.zone"]
    check = run(tmp_path, {n: "text of %s\n" % n for n in keep}, owners(*keep), check=True)
    assert check["changed"] and check["removed"] == ["example.test.mta-sts.txt", "partner.test.zone"]
    assert {d["before"] for d in check["diff"]} == {"text of example.test.mta-sts.txt\n", "text of partner.test.zone\n"}
    assert listing(tmp_path) == sorted(every + ["site.zone", "notes.txt", MANIFEST])

    done = run(tmp_path, {n: "text of %s\n" % n for n in keep}, owners(*keep))
    assert done["removed"] == check["removed"]
    assert listing(tmp_path) == sorted(keep + ["site.zone", "notes.txt", MANIFEST])
    assert not run(tmp_path, {n: "text of %s\n" % n for n in keep}, owners(*keep))["changed"]


def test_out_of_scope_unmanaged_or_prune_off_files_stay_listed(tmp_path):
    every = ["example.test.zone", "partner.test.zone", "example.test.mta-sts.txt"]
    run(tmp_path, {n: "x\n" for n in every}, owners(*every))
    keep = ["example.test.zone"]
    assert run(tmp_path, {n: "x\n" for n in keep}, owners(*keep), scope=["example.test"],
               families=["MX", "SPF"])["removed"] == []
    assert run(tmp_path, {n: "x\n" for n in keep}, owners(*keep), prune=False)["removed"] == []
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(every), "still ours: a later run may prune them"
    assert run(tmp_path, {n: "x\n" for n in keep}, owners(*keep))["removed"] == [
        "example.test.mta-sts.txt", "partner.test.zone"]


def test_files_of_an_earlier_version_without_manifest_are_never_removed(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.test.zone").write_text("written by the version before the manifest\n")
    result = run(tmp_path, {"example.test.zone": "x\n"}, owners("example.test.zone"), scope=["old.test", "example.test"])
    assert result["removed"] == [] and "old.test.zone" in listing(tmp_path)


def test_a_damaged_manifest_stops_without_removing_anything(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MANIFEST).write_text("{not json")
    (tmp_path / "out" / "partner.test.zone").write_text("x\n")
    args = {"path": str(tmp_path / "out"), "files": {}, "manifest": MANIFEST, "prune_scope": ["partner.test"],
            "prune_families": ALL}
    (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    out = subprocess.run([sys.executable, MODULE, str(tmp_path / "args.json")], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    result = json.loads(out.stdout)
    assert result["failed"] and "nothing was pruned" in result["msg"]
    assert "partner.test.zone" in listing(tmp_path)
