"""DKIM selector lifecycle (issue 17, item 1): active / standby / retired, from the inventory to
the tables, the records, the key files and the audit. docs/dkim-rotation.md is the runbook.

The module runs as a process (as in test_dkim_keys.py); its clock is faked by moving the times
it recorded in <keys>/.selectors.json into the past, which is what the passing days would do.
"""

import json
import os
import time

import jinja2
import pytest
from ansible.plugins.filter.core import FilterModule as CoreFilters

from ansible_collections.mailward.mail.plugins.module_utils.audit import (dkim_lifecycle_checks, dns_checks,
                                                                           DKIM_ACTIVATION_WARN_DAYS)
from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError
from ansible_collections.mailward.mail.plugins.module_utils.inventory import (mail_domains_normalize,
                                                                               mail_domains_records)
from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list
from test_dkim_keys import keydir, run  # noqa: F401  (keydir: a fixture)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DAY = 86400


def normalize(domains, host="mx1"):
    return mail_domains_normalize(domains, host, "mx.example.test")


def rotation(old_state, new_state, **new):
    return [{"name": "example.test", "dkim": [{"selector": "old", "state": old_state},
                                              dict({"selector": "new", "state": new_state}, **new)]}]


# ------------------------------------------------------------------------------- inventory

def test_state_defaults_to_active_and_is_kept():
    out = normalize(rotation("active", "STANDBY"))[0]["dkim"]
    assert [(s["selector"], s["state"]) for s in out] == [("old", "active"), ("new", "standby")]
    assert normalize([{"name": "example.test"}])[0]["dkim"][0]["state"] == "active"
    # The result normalizes to itself (the validate role's output is fed back in by other plays).
    once = normalize(rotation("retired", "active"))
    assert normalize(once) == once


def test_unknown_state_is_refused_naming_host_domain_and_variable():
    with pytest.raises(MailwardError) as error:
        normalize(rotation("active", "revoked"))
    assert "host mx1: mail_domains[0] (example.test): dkim[1].state: 'revoked': must be active" in str(error.value)


@pytest.mark.parametrize("old, new", [("standby", "standby"), ("retired", "standby"), ("retired", "retired")])
def test_a_host_must_hold_an_active_selector(old, new):
    with pytest.raises(MailwardError) as error:
        normalize(rotation(old, new))
    text = str(error.value)
    assert "host mx1: mail_domains[0] (example.test): dkim: no selector held by host mx1 is active" in text
    assert "old: %s, new: %s" % (old, new) in text


def test_the_active_selector_rule_is_per_host():
    domains = [{"name": "example.test", "dkim": [
        {"selector": "a1", "hosts": ["mx1"], "state": "active"},
        {"selector": "b1", "hosts": ["mx2"], "state": "standby"}]}]
    normalize(domains, host="mx1")  # mx1 signs with a1
    normalize(domains, host="mx3")  # holds none of them: nothing to sign with, nothing to refuse
    with pytest.raises(MailwardError, match="no selector held by host mx2 is active"):
        normalize(domains, host="mx2")


def test_dkim_key_list_carries_the_state():
    items = dkim_key_list(normalize(rotation("retired", "active")), "/k", "mx1")
    assert [(i["selector"], i["state"]) for i in items] == [("old", "retired"), ("new", "active")]
    assert dkim_key_list([{"name": "x.test", "dkim": [{"selector": "s"}]}], "/k")[0]["state"] == "active"


# --------------------------------------------------------------------------------- records

def _pem():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def dkim_records(domains, keys):
    return {r["name"]: r["value"] for r in mail_domains_records(domains, keys) if r["kind"] == "dkim"}


def test_retired_publishes_the_revocation_without_any_key_and_standby_its_key():
    domains = normalize([
        {"name": "example.test", "dkim": [{"selector": "old", "state": "retired"},
                                          {"selector": "new", "state": "standby", "type": "ed25519"},
                                          {"selector": "cur"}]},
        {"name": "other.test", "dkim": [{"selector": "gone", "state": "retired"}, {"selector": "live"}]}])
    pem = _pem()
    keys = [{"domain": "example.test", "selector": "new", "type": "ed25519", "public_key": pem},
            # the module reports a retired selector with an empty key
            {"domain": "other.test", "selector": "gone", "type": "rsa", "public_key": ""}]
    records = dkim_records(domains, keys)
    assert records["old._domainkey.example.test."] == "v=DKIM1; p="  # no host reported a key for it
    assert records["new._domainkey.example.test."].startswith("v=DKIM1; k=ed25519; p=")
    assert records["gone._domainkey.other.test."] == "v=DKIM1; p="
    assert "live._domainkey.other.test." not in records  # active, but no key known yet
    assert "cur._domainkey.example.test." not in records


def test_an_unretired_selector_reported_without_a_key_publishes_nothing():
    # Before: an empty public_key of an active selector gave the revocation record, which would
    # revoke a signing key in DNS. Only the inventory's state retires a selector.
    domains = normalize([{"name": "example.test", "dkim": [{"selector": "s1"}]}])
    assert dkim_records(domains, [{"domain": "example.test", "selector": "s1", "public_key": ""}]) == {}


# ---------------------------------------------------------------------------------- tables

def render(template, keys):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROOT, "roles/opendkim/templates")),
                             keep_trailing_newline=True, trim_blocks=True)
    env.filters.update(CoreFilters().filters())
    text = env.get_template(template).render(ansible_managed="managed", opendkim_signing_keys=keys)
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_signing_and_key_tables_hold_only_the_active_selectors():
    keys = dkim_key_list(normalize(rotation("standby", "active") + [
        {"name": "other.test", "dkim": [{"selector": "r1", "state": "retired"}, {"selector": "a1"}]}]), "/k", "mx1")
    assert render("SigningTable.j2", keys) == ["*@example.test new._domainkey.example.test",
                                               "*@other.test a1._domainkey.other.test"]
    assert render("KeyTable.j2", keys) == [
        "new._domainkey.example.test example.test:new:/k/example.test/new.private",
        "a1._domainkey.other.test other.test:a1:/k/other.test/a1.private"]


# ---------------------------------------------------------------------------------- module

def keys_of(states):
    return [{"domain": "example.test", "selector": sel, "type": "ed25519", "state": state}
            for sel, state in states]


def lifecycle(keydir):
    return json.loads((keydir / "keys" / ".selectors.json").read_text())


def shift(keydir, ident, days, *fields):
    """Move recorded times of one selector ``days`` into the past (the fake clock)."""
    path = keydir / "keys" / ".selectors.json"
    data = json.loads(path.read_text())
    for field in fields:
        data["selectors"][ident][field] -= days * DAY
    path.write_text(json.dumps(data))


def test_module_records_the_lifecycle_and_never_generates_a_retired_key(keydir):
    before = time.time()
    first = run(keydir, keys_of([("old", "active"), ("gone", "retired")]))
    assert first["changed"] is True and first["generated"] == ["example.test/old"]
    assert not (keydir / "keys" / "example.test" / "gone.private").exists()
    old, gone = first["public_keys"]
    assert old["state"] == "active" and old["public_key"].startswith("-----BEGIN PUBLIC KEY")
    assert before <= old["created"] == old["published_since"] == old["active_since"] == old["signing_since"]
    assert gone["state"] == "retired" and gone["public_key"] == "" and gone["retired_since"] >= before
    assert set(lifecycle(keydir)["selectors"]) == {"example.test/old", "example.test/gone"}

    # Add a standby selector, then switch: the times of the switch are recorded, nothing else moves.
    second = run(keydir, keys_of([("old", "active"), ("new", "standby")]))
    assert second["generated"] == ["example.test/new"]
    assert set(lifecycle(keydir)["selectors"]) == {"example.test/old", "example.test/new"}  # gone left
    new = second["public_keys"][1]
    assert new["active_since"] is None and new["published_since"] >= old["published_since"]
    third = run(keydir, keys_of([("old", "standby"), ("new", "active")]))
    assert third["changed"] is False  # a switch changes the tables (opendkim role), not the keys
    old3, new3 = third["public_keys"]
    assert old3["active_since"] is None and old3["state"] == "standby"
    assert new3["active_since"] >= new3["published_since"] == new["published_since"]
    assert new3["signing_since"] == old["signing_since"]  # the domain was signing before: a switch


def test_retired_key_is_removed_after_the_configured_days(keydir):
    run(keydir, keys_of([("old", "active"), ("new", "active")]))
    key = keydir / "keys" / "example.test" / "old.private"
    first = run(keydir, keys_of([("old", "retired"), ("new", "active")]), retired_key_days=7)
    assert first["changed"] is False and first["removed"] == [] and key.exists()
    shift(keydir, "example.test/old", 6, "retired_since")
    assert run(keydir, keys_of([("old", "retired"), ("new", "active")]), retired_key_days=7)["removed"] == []
    assert key.exists()
    shift(keydir, "example.test/old", 1.01, "retired_since")
    # check mode reports the removal and removes nothing
    dry = run(keydir, keys_of([("old", "retired"), ("new", "active")]), check_mode=True, retired_key_days=7)
    assert dry["changed"] is True and dry["removed"] == ["example.test/old"] and key.exists()
    done = run(keydir, keys_of([("old", "retired"), ("new", "active")]), retired_key_days=7)
    assert done["changed"] is True and done["removed"] == ["example.test/old"] and not key.exists()
    assert done["public_keys"][0]["public_key"] == "" and done["public_keys"][0]["key_removed"]
    # Gone for good: the next run has nothing to do, the record stays the revocation.
    again = run(keydir, keys_of([("old", "retired"), ("new", "active")]), retired_key_days=7)
    assert again["changed"] is False and again["removed"] == [] and again["generated"] == []
    assert lifecycle(keydir)["selectors"]["example.test/old"]["key_removed"] == done["public_keys"][0]["key_removed"]


def test_undoing_a_retirement_within_the_days_keeps_the_key(keydir):
    first = run(keydir, keys_of([("old", "active"), ("new", "active")]))
    run(keydir, keys_of([("old", "retired"), ("new", "active")]), retired_key_days=0)
    # retired_key_days 0: removed by the run that first saw it retired
    assert not (keydir / "keys" / "example.test" / "old.private").exists()
    back = run(keydir, keys_of([("old", "standby"), ("new", "active")]))
    # A new key under the old name: published_since restarts, so an activation now is "early".
    assert back["generated"] == ["example.test/old"]
    assert back["public_keys"][0]["public_key"] != first["public_keys"][0]["public_key"]
    assert back["public_keys"][0]["published_since"] > first["public_keys"][0]["published_since"]


def test_removal_follows_nothing(keydir):
    run(keydir, keys_of([("old", "active"), ("new", "active")]))
    domain_dir = keydir / "keys" / "example.test"
    target = keydir / "precious"
    target.write_text("not a key")
    os.unlink(domain_dir / "old.private")
    os.symlink(target, domain_dir / "old.private")
    out = run(keydir, keys_of([("old", "retired"), ("new", "active")]), retired_key_days=0)
    assert out.get("failed") and "old.private is a symlink" in out["msg"], out
    assert target.read_text() == "not a key" and os.path.islink(domain_dir / "old.private")


def test_negative_days_are_refused(keydir):
    out = run(keydir, keys_of([("old", "active")]), retired_key_days=-1)
    assert out.get("failed") and "retired_key_days: -1" in out["msg"]


def test_an_existing_key_seen_first_is_as_old_as_its_file(keydir):
    run(keydir, keys_of([("old", "active")]))
    key = keydir / "keys" / "example.test" / "old.private"
    os.unlink(keydir / "keys" / ".selectors.json")  # a host converged before the lifecycle existed
    os.utime(key, (time.time() - 200 * DAY,) * 2)
    item = run(keydir, keys_of([("old", "active")]))["public_keys"][0]
    assert time.time() - item["created"] > 199 * DAY
    # ...and its activation is the domain's first signing key, not an early switch
    assert item["active_since"] == item["signing_since"] == item["published_since"]


# ----------------------------------------------------------------------------------- audit

NOW = 1_800_000_000.0


def key(selector, state="active", created=NOW - DAY, published=NOW - 10 * DAY, active=NOW - 5 * DAY,
        signing=NOW - 400 * DAY, domain="example.test"):
    return {"domain": domain, "selector": selector, "state": state, "created": created,
            "published_since": published, "active_since": active if state == "active" else None,
            "signing_since": signing}


def by_id(checks):
    return {c["id"]: c for c in checks}


def test_key_age_warns_above_the_limit_only_for_active_keys():
    checks = by_id(dkim_lifecycle_checks({"mx1": [key("young"), key("old", created=NOW - 181 * DAY),
                                                  key("waiting", state="standby", created=NOW - 900 * DAY)]},
                                         NOW, max_age_days=180, ttl=3600))
    assert checks["dkim.key_age.example.test.young"]["status"] == "pass"
    old = checks["dkim.key_age.example.test.old"]
    assert old["status"] == "warn" and "181.0 days old on mx1" in old["summary"], old
    assert "dkim.key_age.example.test.waiting" not in checks
    assert by_id(dkim_lifecycle_checks({"mx1": [key("old", created=NOW - 181 * DAY)]}, NOW,
                                       max_age_days=365))["dkim.key_age.example.test.old"]["status"] == "pass"


def test_activation_before_a_ttl_of_publication_warns():
    early = key("new", published=NOW - 3600, active=NOW - 3000)  # 600 s after publication, TTL 3600
    checks = by_id(dkim_lifecycle_checks({"mx1": [early]}, NOW, ttl=3600))
    check = checks["dkim.activation.example.test.new"]
    assert check["status"] == "warn" and "became active 600 s after" in check["summary"], check
    assert by_id(dkim_lifecycle_checks({"mx1": [early]}, NOW, ttl=300))[
        "dkim.activation.example.test.new"]["status"] == "pass"
    # A week later it is history: the fact stays, the warning goes.
    later = by_id(dkim_lifecycle_checks({"mx1": [early]}, NOW + DKIM_ACTIVATION_WARN_DAYS * DAY, ttl=3600))
    assert later["dkim.activation.example.test.new"]["status"] == "pass"
    assert "more than 7 days ago" in later["dkim.activation.example.test.new"]["summary"]


def test_the_domains_first_key_is_not_an_early_switch():
    first = key("s1", published=NOW - DAY, active=NOW - DAY, signing=NOW - DAY)
    check = by_id(dkim_lifecycle_checks({"mx1": [first]}, NOW, ttl=3600))["dkim.activation.example.test.s1"]
    assert check["status"] == "pass" and "first signing key" in check["summary"]


def test_hosts_without_lifecycle_times_are_skipped():
    assert dkim_lifecycle_checks({"mx1": [{"domain": "example.test", "selector": "s", "public_key": "x"}]}, NOW) == []


def test_dns_check_of_a_retired_selector_wants_the_revocation():
    domains = normalize(rotation("retired", "active", type="ed25519"))
    pem = _pem()
    keys = [{"domain": "example.test", "selector": "new", "type": "ed25519", "public_key": pem},
            {"domain": "example.test", "selector": "old", "type": "rsa", "public_key": ""}]
    expected = mail_domains_records(domains, keys)
    new_value = next(r["value"] for r in expected if r["name"].startswith("new."))

    def resolver(old_value):
        def resolve(name, rtype):
            answers = {"old._domainkey.example.test": [old_value], "new._domainkey.example.test": [new_value]}
            return {"rcode": "NOERROR", "answers": answers.get(name, [])} if rtype == "TXT" else {"rcode": "NOERROR", "answers": []}
        return resolve

    good = by_id(dns_checks(expected, domains, {"mx1": keys}, resolver("v=DKIM1; p="), kinds=["dkim"]))
    assert good["dns.dkim.old.example.test"]["status"] == "pass"
    assert good["dns.dkim_key.old.example.test"]["status"] == "pass", good["dns.dkim_key.old.example.test"]
    assert "revoked" in good["dns.dkim_key.old.example.test"]["summary"]
    assert good["dns.dkim_key.new.example.test"]["status"] == "pass"
    stale = by_id(dns_checks(expected, domains, {"mx1": keys}, resolver(new_value.replace("new", "x")), kinds=["dkim"]))
    assert stale["dns.dkim.old.example.test"]["status"] == "fail"
    assert stale["dns.dkim_key.old.example.test"]["status"] == "fail"
    assert "still holds a key" in stale["dns.dkim_key.old.example.test"]["summary"]
