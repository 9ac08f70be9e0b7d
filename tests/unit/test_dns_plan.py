"""Unit tests for plugins/module_utils/dns_plan.py (merge, selection, zones, fragments)."""

import types

import dns.rdatatype
import dns.zone
import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list as key_list

from ansible_collections.mailward.mail.plugins.module_utils import dns_plan as plan
from ansible_collections.mailward.mail.plugins.module_utils import inventory
from ansible_collections.mailward.mail.plugins.module_utils import records as records_mod


def _pub(key):
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def rsa_pem():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return _pub(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def other_rsa_pem():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return _pub(rsa.generate_private_key(public_exponent=65537, key_size=2048))


DOMAINS = [
    {"name": "example.test", "mx": [{"host": "mx1.example.test", "priority": 10}],
     "dkim": [{"selector": "s1", "type": "rsa"}],
     "dmarc": {"p": "reject", "rua": ["mailto:d@partner.test"]},
     "mta_sts": {"mode": "enforce"}, "tlsrpt": {"rua": ["mailto:t@example.test"]}, "tlsa": True},
]


def _hostvars(rsa_pem, **overrides):
    base = {
        "mx1": {"mail_domains_normalized": inventory.mail_domains_normalize(DOMAINS, "mx1", "mx1.example.test"),
                "mail_hostname": "mx1.example.test", "mail_public_ipv4": "192.0.2.1",
                "opendkim_public_keys": [{"domain": "example.test", "selector": "s1", "type": "rsa",
                                          "public_key": rsa_pem}]},
        "mx2": {"mail_domains_normalized": inventory.mail_domains_normalize(DOMAINS, "mx2", "mx2.example.test"),
                "mail_hostname": "mx2.example.test",
                "opendkim_public_keys": [{"domain": "example.test", "selector": "s1", "type": "rsa",
                                          "public_key": rsa_pem + "\n"}]},
    }
    for host, values in overrides.items():
        base[host].update(values)
    return base


def test_merge_dedupes_domains_and_keys(rsa_pem):
    merged = plan.dns_merge_hosts(["mx1", "mx2"], _hostvars(rsa_pem), key_list)
    assert [d["name"] for d in merged["domains"]] == ["example.test"]
    assert len(merged["public_keys"]) == 1
    assert merged["mx_hosts"] == [{"name": "mx1.example.test", "ipv4": "192.0.2.1"}, {"name": "mx2.example.test"}]
    assert any("TLSA mx1.example.test" in n and "dns_tlsa_cert_pem" in n for n in merged["notes"])


def test_merge_refuses_a_domain_described_differently(rsa_pem):
    other = [dict(DOMAINS[0], dmarc={"p": "none"})]
    hostvars = _hostvars(rsa_pem, mx2={"mail_domains_normalized": inventory.mail_domains_normalize(
        other, "mx2", "mx2.example.test")})
    with pytest.raises(AnsibleFilterError) as info:
        plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)
    message = str(info.value)
    assert "domain example.test" in message and "mx1" in message and "mx2" in message and "dmarc" in message


def test_merge_refuses_different_keys_for_one_selector(rsa_pem, other_rsa_pem):
    hostvars = _hostvars(rsa_pem, mx2={"opendkim_public_keys": [
        {"domain": "example.test", "selector": "s1", "type": "rsa", "public_key": other_rsa_pem}]})
    with pytest.raises(AnsibleFilterError) as info:
        plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)
    message = str(info.value)
    assert "domain example.test selector s1" in message and "hosts mx1 and mx2" in message


def test_merge_refuses_one_mx_name_with_two_addresses(rsa_pem):
    hostvars = _hostvars(rsa_pem, mx2={"mail_hostname": "mx1.example.test", "mail_public_ipv4": "192.0.2.9"})
    with pytest.raises(AnsibleFilterError, match="mx host mx1.example.test: hosts mx1 and mx2"):
        plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)


def test_merge_notes_a_selector_without_key(rsa_pem):
    merged = plan.dns_merge_hosts(["mx1"], _hostvars(rsa_pem, mx1={"opendkim_public_keys": []}), key_list)
    assert any("DKIM example.test selector s1: no public key" in n for n in merged["notes"])


def test_merge_needs_the_normalized_domains():
    with pytest.raises(AnsibleFilterError, match="host mx1: mail_domains_normalized is not set"):
        plan.dns_merge_hosts(["mx1"], {"mx1": {}}, key_list)


# Which host may report which key (issue 13 item 9): a selector with `hosts` belongs only to
# those inventory hosts, one without to every host (dkim_key_list, as the opendkim role uses it).

SPLIT = [
    {"name": "example.test", "mx": [{"host": "mx1.example.test", "priority": 10}],
     "dkim": [{"selector": "s1", "type": "rsa", "hosts": ["mx1"]},
              {"selector": "s2", "type": "rsa", "hosts": ["mx2"]},
              {"selector": "all", "type": "rsa"}]},
]


def _split_hostvars(keys_mx1, keys_mx2, domains_mx2=None):
    def item(selector, pem, domain="example.test"):
        return {"domain": domain, "selector": selector, "type": "rsa", "public_key": pem}
    return {
        "mx1": {"mail_domains_normalized": inventory.mail_domains_normalize(SPLIT, "mx1", "mx1.example.test"),
                "mail_hostname": "mx1.example.test", "opendkim_public_keys": [item(*k) for k in keys_mx1]},
        "mx2": {"mail_domains_normalized": inventory.mail_domains_normalize(domains_mx2 or SPLIT, "mx2",
                                                                           "mx2.example.test"),
                "mail_hostname": "mx2.example.test", "opendkim_public_keys": [item(*k) for k in keys_mx2]},
    }


def test_merge_takes_each_hosts_keys_for_its_own_selectors(rsa_pem, other_rsa_pem):
    hostvars = _split_hostvars([("s1", rsa_pem), ("all", rsa_pem)], [("s2", other_rsa_pem), ("all", rsa_pem)])
    merged = plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)
    assert sorted((k["selector"], k["public_key"]) for k in merged["public_keys"]) == \
        sorted([("s1", rsa_pem), ("all", rsa_pem), ("s2", other_rsa_pem)])
    assert not [n for n in merged["notes"] if n.startswith("DKIM")]


def test_merge_refuses_a_key_for_a_selector_of_another_host(rsa_pem, other_rsa_pem):
    """mx2 reports a key for s1, which only mx1 holds: refused, naming host, domain and selector."""
    hostvars = _split_hostvars([("s1", rsa_pem)], [("s2", rsa_pem), ("s1", other_rsa_pem)])
    with pytest.raises(AnsibleFilterError) as info:
        plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)
    message = str(info.value)
    assert "host mx2" in message and "domain example.test selector s1" in message
    assert "different DKIM public keys" not in message  # the foreign key is not compared, it is refused
    # the same key as mx1's is refused too: mx2 must not hold s1's private key at all
    hostvars = _split_hostvars([("s1", rsa_pem)], [("s1", rsa_pem)])
    with pytest.raises(AnsibleFilterError, match="host mx2.*domain example.test selector s1"):
        plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)


def test_merge_refuses_a_foreign_key_when_its_owner_is_not_in_the_play(other_rsa_pem):
    """--limit mx2: mx1 (the owner of s1) is not in the play; mx2's key for s1 is still refused."""
    hostvars = _split_hostvars([], [("s1", other_rsa_pem)])
    with pytest.raises(AnsibleFilterError, match="host mx2.*domain example.test selector s1"):
        plan.dns_merge_hosts(["mx2"], hostvars, key_list)


def test_merge_refuses_a_key_for_a_domain_the_host_does_not_serve(rsa_pem):
    other = [{"name": "other.test", "mx": [{"host": "mx2.example.test", "priority": 10}]}]
    hostvars = _split_hostvars([("s1", rsa_pem)], [("all", rsa_pem)], domains_mx2=other)
    with pytest.raises(AnsibleFilterError, match="host mx2.*domain example.test selector all"):
        plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)


def test_merge_needs_the_key_list_filter(rsa_pem):
    with pytest.raises(TypeError):
        plan.dns_merge_hosts(["mx1"], _hostvars(rsa_pem))  # pylint: disable=no-value-for-parameter


def test_merge_filter_assigns_selectors_with_dkim_key_list(rsa_pem, other_rsa_pem):
    """The dns_merge_hosts filter takes each host's keys only for the selectors dkim_key_list gives it."""
    from ansible_collections.mailward.mail.plugins.filter.mailward_dns import FilterModule
    merge = FilterModule().filters()["dns_merge_hosts"]
    merged = merge(["mx1", "mx2"], _hostvars(rsa_pem))
    assert len(merged["public_keys"]) == 1
    hostvars = _split_hostvars([], [("s1", other_rsa_pem)])
    with pytest.raises(AnsibleFilterError, match="host mx2.*selector s1"):
        merge(["mx2"], hostvars)


def test_select_maps_manage_types_to_kinds():
    recs = [{"name": "a.", "type": "TXT", "kind": k} for k in plan.KIND_TO_TYPE]
    assert {r["kind"] for r in plan.dns_select(recs, ["DMARC_REPORT", "ADDRESS"])} == {"dmarc_report_auth", "a", "aaaa"}
    assert plan.dns_select(recs, list(plan.MANAGE_TYPES)) == recs
    with pytest.raises(AnsibleFilterError, match="unknown SPF1"):
        plan.dns_select(recs, ["SPF1"])
    with pytest.raises(AnsibleFilterError, match="unknown kind 'caa'"):
        plan.dns_select([{"name": "a.", "type": "CAA", "kind": "caa"}], ["MX"])


def test_zone_of_prefers_the_longest_zone():
    zones = ["example.test.", "sub.example.test."]
    assert plan.zone_of("_dmarc.sub.example.test.", zones) == "sub.example.test."
    assert plan.zone_of("example.test.", zones) == "example.test."
    assert plan.zone_of("badexample.test.", zones) is None


def test_zones_auto_and_mapping():
    assert plan.dns_zones([{"name": "b.test"}, {"name": "a.test"}], "auto") == ["a.test.", "b.test."]
    assert plan.dns_zones([{"name": "lists.a.test"}], {"lists.a.test": "a.test"}) == ["a.test."]
    with pytest.raises(AnsibleFilterError, match="does not contain it"):
        plan.dns_zones([{"name": "a.test"}], {"a.test": "b.test"})


def test_zone_records_attach_zone_ttl_and_txt_forms():
    recs = [{"name": "a.test.", "type": "TXT", "value": "v=spf1 -all", "kind": "spf"},
            {"name": "a.test._report._dmarc.elsewhere.test.", "type": "TXT", "value": "v=DMARC1",
             "kind": "dmarc_report_auth"},
            {"name": "a.test.", "type": "MX", "value": "10 mx.a.test.", "kind": "mx"}]
    out = plan.dns_zone_records(recs, ["a.test"], 300, chunks=[["v=spf1 -all"], ["v=DMARC1"], ["x"]])
    assert [r["zone"] for r in out["records"]] == ["a.test", "a.test"]
    assert out["records"][0]["strings"] == ["v=spf1 -all"] and out["records"][0]["ttl"] == 300
    assert "strings" not in out["records"][1]
    assert [r["name"] for r in out["outside"]] == ["a.test._report._dmarc.elsewhere.test."]
    guessed = plan.dns_zone_records(recs, ["a.test"], 300, guess=True)
    assert guessed["outside"] == [] and guessed["records"][1]["zone"] == "elsewhere.test"


def test_fragments_parse_back_to_the_generated_records(rsa_pem):
    """records -> zone fragment -> dnspython parse gives the same names, types and values."""
    hostvars = _hostvars(rsa_pem)
    merged = plan.dns_merge_hosts(["mx1", "mx2"], hostvars, key_list)
    recs = inventory.mail_domains_records(merged["domains"], public_keys=merged["public_keys"],
                                          mx_hosts=merged["mx_hosts"])
    texts = [records_mod.txt_strings(r["value"]) for r in recs]
    placed = plan.dns_zone_records(recs, ["example.test"], 3600, texts=texts, guess=True)["records"]
    files = plan.dns_zone_fragments(placed, "; managed\n", merged["domains"])
    assert set(files) == {"example.test.zone", "partner.test.zone"}
    assert "is not one of this inventory's mail domains" in files["partner.test.zone"]
    assert files["example.test.zone"].startswith("; managed\n")
    got = set()
    for name, text in files.items():
        zone = dns.zone.from_text(text, origin=name[:-len(".zone")] + ".", relativize=False, check_origin=False)
        for owner, rdataset in zone.iterate_rdatasets():
            for rdata in rdataset:
                value = (b"".join(rdata.strings).decode() if rdata.rdtype == dns.rdatatype.TXT
                         else rdata.to_text())
                got.add((owner.to_text(), dns.rdatatype.to_text(rdata.rdtype), value))
    assert got == {(r["name"], r["type"], r["value"]) for r in recs}


def test_fragments_need_txt_text():
    with pytest.raises(AnsibleFilterError, match="has no text"):
        plan.dns_zone_fragments([{"zone": "a.test", "name": "a.test.", "type": "TXT", "value": "x", "ttl": 1}], ";")


# ------------------------------------------------------------------------------------------
# Pruning (issue 17, item 2): registry entries and the zonefile manifest
# ------------------------------------------------------------------------------------------

def _entry(name, rtype="TXT", tag="", family="DKIM", domain="example.test"):
    return {"family": family, "domain": domain, "name": name, "type": rtype, "tag": tag}


def test_registry_entry_text_round_trip_and_foreign_values():
    record = {"kind": "dmarc_report_auth", "domain": "example.test", "type": "TXT", "value": "v=DMARC1",
              "name": "Example.Test._report._dmarc.Partner.Test"}
    entry = plan.registry_entry(record)
    assert entry == {"family": "DMARC_REPORT", "domain": "example.test", "type": "TXT", "tag": "v=dmarc1",
                     "name": "example.test._report._dmarc.partner.test."}
    text = plan.registry_text(entry)
    assert text == "v=mailward1 f=DMARC_REPORT d=example.test n=example.test._report._dmarc.partner.test. t=TXT g=v=dmarc1"
    assert plan.registry_parse(text) == entry
    mx = plan.registry_entry({"family": "MX", "domain": "example.test", "name": "example.test.", "type": "mx",
                              "value": "10 mx1.example.test."})
    assert plan.registry_parse(plan.registry_text(mx)) == mx and mx["tag"] == ""
    for foreign in ("google-site-verification=x", "v=mailward1", "v=mailward1 f=DKIM n=a. t=TXT",
                    "v=mailward1 f=DKIM d=a n=a. t=TXT x=1", "v=mailward1 f=DKIM d=a d=b n=a. t=TXT", ""):
        assert plan.registry_parse(foreign) is None, foreign
    with pytest.raises(AnsibleFilterError, match="unknown family"):
        plan.registry_entry({"kind": "nope", "name": "a.", "type": "TXT", "value": "x"})


def test_registry_plan_prunes_only_what_is_registered_in_scope_managed_and_not_kept():
    s1 = _entry("s1._domainkey.example.test.", tag="v=dkim1")
    s2 = _entry("s2._domainkey.example.test.", tag="v=dkim1")
    other = _entry("s9._domainkey.other.test.", tag="v=dkim1", domain="other.test")
    sts = _entry("_mta-sts.example.test.", tag="v=stsv1", family="MTA_STS")
    families = list(plan.MANAGE_TYPES)
    entries, pruned = plan.registry_plan([s1, s2, other, sts], [s1], True, ["example.test"], families)
    assert pruned == [sts, s2] and entries == [s1, other]
    assert plan.registry_plan([s1, s2], [s1], False, ["example.test"], families) == ([s1, s2], [])
    assert plan.registry_plan([s1, s2], [s1], True, ["example.test"], ["MX"]) == ([s1, s2], [])
    assert plan.registry_plan([s1, s2], [s1], True, ["example.test"], families,
                              keep=[("S2._domainkey.example.test", "txt")]) == ([s1, s2], [])
    # Adoption: nothing registered yet, what is wanted becomes registered; nothing is pruned.
    assert plan.registry_plan([], [s1, s1], True, ["example.test"], families) == ([s1], [])
    # A wanted entry replaces a registered one with the same key (new domain/family attribution).
    moved = dict(s1, domain="other.test")
    assert plan.registry_plan([s1], [moved], True, ["example.test"], families) == ([moved], [])


def test_manifest_plan_removes_only_files_it_wrote_in_scope():
    manifest = {"example.test.zone": {"domains": ["example.test"], "families": ["MX", "SPF"]},
                "example.test.mta-sts.txt": {"domains": ["example.test"], "families": ["MTA_STS"]},
                "other.test.zone": {"domains": ["other.test"], "families": ["MX"]},
                "mixed.test.zone": {"domains": ["example.test", "other.test"], "families": ["MX"]}}
    owners = {"example.test.zone": {"domains": ["Example.Test"], "families": ["MX"]}}
    families = list(plan.MANAGE_TYPES)
    new, remove = plan.manifest_plan(manifest, owners, True, ["example.test"], families)
    assert remove == ["example.test.mta-sts.txt"]
    assert new == {"example.test.zone": {"domains": ["example.test"], "families": ["MX"]},
                   "other.test.zone": manifest["other.test.zone"], "mixed.test.zone": manifest["mixed.test.zone"]}
    assert plan.manifest_plan(manifest, owners, True, ["example.test", "other.test"], families)[1] == [
        "example.test.mta-sts.txt", "mixed.test.zone", "other.test.zone"]
    assert plan.manifest_plan(manifest, owners, True, ["example.test"], ["MX"])[1] == []
    assert plan.manifest_plan(manifest, owners, False, ["example.test"], families)[1] == []
    assert plan.manifest_plan({}, owners, True, ["example.test"], families) == (
        {"example.test.zone": {"domains": ["example.test"], "families": ["MX"]}}, [])


def test_zone_of_a_removed_domain():
    zones = {"example.test.", "partner.test."}
    assert plan.zone_of_removed("old.test", zones) == "old.test."
    assert plan.zone_of_removed("mx9.example.test", zones) == "example.test."
    assert plan.zone_of_removed("lists.old.test", zones, {"lists.old.test": "old.test"}) == "old.test."


def test_prune_settings_of_the_publish_action(rsa_pem):
    from ansible.errors import AnsibleError
    from ansible_collections.mailward.mail.plugins.action.dns_publish import prune_settings

    merged = plan.dns_merge_hosts(["mx1", "mx2"], _hostvars(rsa_pem), key_list)
    scope, removed, keep = prune_settings(merged, ["Old.Test.", "mx9.example.test"])
    assert scope == ["example.test", "mx1.example.test", "mx2.example.test", "mx9.example.test", "old.test"]
    assert removed == ["old.test", "mx9.example.test"]
    assert keep == [("s1._domainkey.example.test.", "TXT")], "a configured selector is never pruned"
    with pytest.raises(AnsibleError, match="example.test is still a mail domain"):
        prune_settings(merged, ["example.test"])
    with pytest.raises(AnsibleError, match="dns_prune_domains: 'bad name'"):
        prune_settings(merged, ["bad name"])
