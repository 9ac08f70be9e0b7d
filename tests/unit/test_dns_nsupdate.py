"""Unit tests for the diff logic of plugins/modules/dns_nsupdate.py (no server needed)."""

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import pytest

from ansible_collections.mailward.mail.plugins.module_utils import dns_plan as plan
from ansible_collections.mailward.mail.plugins.modules import dns_nsupdate as mod

APEX = dns.name.from_text("example.test.")
TXT = dns.rdatatype.TXT


def rrset(rdtype, ttl, *texts):
    return dns.rdataset.from_text(dns.rdataclass.IN, rdtype, ttl, *texts)


def wanted(*records):
    return mod.group_wanted([dict({"zone": "example.test", "ttl": 3600}, **r) for r in records])


def spf(value="v=spf1 mx -all"):
    return {"name": "example.test.", "type": "TXT", "value": value}


def test_nothing_to_do_when_equal():
    want = wanted(spf())[APEX]
    assert mod.plan_zone(want, {(APEX, TXT): rrset(TXT, 3600, '"v=spf1 mx -all"')}) == []


def test_stale_spf_replaced_foreign_txt_kept():
    want = wanted(spf())[APEX]
    current = {(APEX, TXT): rrset(TXT, 3600, '"v=spf1 a -all"', '"google-site-verification=x"')}
    ((name, rdtype, ttl, delete, add),) = mod.plan_zone(want, current)
    assert [r.to_text() for r in delete] == ['"v=spf1 a -all"']
    assert [r.to_text() for r in add] == ['"v=spf1 mx -all"']


def test_spf_tag_is_case_insensitive_and_two_spf_records_both_go():
    want = wanted(spf())[APEX]
    current = {(APEX, TXT): rrset(TXT, 3600, '"V=SPF1 a -all"', '"v=spf1 ~all"')}
    ((_, _, _, delete, add),) = mod.plan_zone(want, current)
    assert sorted(r.to_text() for r in delete) == ['"V=SPF1 a -all"', '"v=spf1 ~all"']


def test_added_when_missing():
    want = wanted(spf())[APEX]
    ((_, _, _, delete, add),) = mod.plan_zone(want, {})
    assert delete == [] and len(add) == 1


def test_differently_split_txt_is_equal():
    value = "v=DKIM1; k=rsa; p=" + "A" * 400
    name = dns.name.from_text("s._domainkey.example.test.")
    want = wanted({"name": name.to_text(), "type": "TXT", "value": value})[APEX]
    other_split = '"%s" "%s" "%s"' % (value[:100], value[100:300], value[300:])
    assert mod.plan_zone(want, {(name, TXT): rrset(TXT, 3600, other_split)}) == []


def test_dkim_rrset_is_owned_whole():
    name = dns.name.from_text("s._domainkey.example.test.")
    want = wanted({"name": name.to_text(), "type": "TXT", "value": "v=DKIM1; k=ed25519; p=new"})[APEX]
    current = {(name, TXT): rrset(TXT, 3600, '"k=rsa; p=old-without-version"')}
    ((_, _, _, delete, add),) = mod.plan_zone(want, current)
    assert [r.to_text() for r in delete] == ['"k=rsa; p=old-without-version"']


def test_ttl_change_readds_everything_of_ours():
    want = wanted(spf())[APEX]
    current = {(APEX, TXT): rrset(TXT, 300, '"v=spf1 mx -all"', '"other=1"')}
    ((_, _, ttl, delete, add),) = mod.plan_zone(want, current)
    assert ttl == 3600 and [r.to_text() for r in delete] == ['"v=spf1 mx -all"'] and len(add) == 1


def test_mx_rrset_compared_canonically():
    want = wanted({"name": "example.test.", "type": "MX", "value": "10 MX1.Example.Test."})[APEX]
    current = {(APEX, dns.rdatatype.MX): rrset(dns.rdatatype.MX, 3600, "10 mx1.example.test.")}
    assert mod.plan_zone(want, current) == []
    current = {(APEX, dns.rdatatype.MX): rrset(dns.rdatatype.MX, 3600, "10 mx1.example.test.", "5 old.example.test.")}
    ((_, _, _, delete, add),) = mod.plan_zone(want, current)
    assert [r.to_text() for r in delete] == ["5 old.example.test."] and add == []


def test_mx_target_stays_absolute():
    want = wanted({"name": "example.test.", "type": "MX", "value": "10 mx1.example.test."})[APEX]
    ((_, _, _, _, add),) = mod.plan_zone(want, {})
    assert add[0].exchange.is_absolute()


def test_cname_at_a_managed_name_fails():
    name = dns.name.from_text("_dmarc.example.test.")
    want = wanted({"name": name.to_text(), "type": "TXT", "value": "v=DMARC1; p=none"})[APEX]
    current = {(name, dns.rdatatype.CNAME): rrset(dns.rdatatype.CNAME, 3600, "elsewhere.test.")}
    with pytest.raises(mod.PlanError, match="has a CNAME"):
        mod.plan_zone(want, current)


def test_group_refuses_records_outside_their_zone_and_mixed_ttls():
    with pytest.raises(mod.PlanError, match="not inside zone"):
        mod.group_wanted([{"zone": "a.test", "name": "b.test.", "type": "TXT", "value": "x", "ttl": 1}])
    with pytest.raises(mod.PlanError, match="different TTLs"):
        mod.group_wanted([{"zone": "a.test", "name": "a.test.", "type": "MX", "value": "10 m.a.test.", "ttl": 1},
                          {"zone": "a.test", "name": "a.test.", "type": "MX", "value": "20 n.a.test.", "ttl": 2}])


def test_given_strings_must_join_to_the_value():
    rdata = mod.make_rdata({"name": "a.test.", "type": "TXT", "value": "abcdef", "strings": ["abc", "def"]})
    assert rdata.strings == (b"abc", b"def")
    with pytest.raises(mod.PlanError, match="do not join"):
        mod.make_rdata({"name": "a.test.", "type": "TXT", "value": "abcdef", "strings": ["abc"]})


def test_chunks_never_split_a_utf8_character():
    value = "é" * 200
    chunks = mod.chunk_txt(value)
    assert all(len(c) <= 255 for c in chunks) and b"".join(chunks).decode() == value


def test_soa_answer_parses_the_serial_from_the_wire():
    import dns.flags
    import dns.message
    import dns.rrset

    query = dns.message.make_query("example.test.", "SOA")
    query.id = 7
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.answer.append(dns.rrset.from_text("example.test.", 300, "IN", "SOA",
                                               "ns.example.test. hostmaster.example.test. 2026112301 3600 600 86400 300"))
    assert mod._soa_answer(response.to_wire()) == (7, 2026112301)
    response.flags &= ~dns.flags.AA
    assert mod._soa_answer(response.to_wire()) is None, "a non-authoritative answer is not trusted"
    empty = dns.message.make_response(query)
    empty.flags |= dns.flags.AA
    assert mod._soa_answer(empty.to_wire()) is None


def test_zone_digest_depends_on_values_and_ttl_only():
    records = [{"zone": "a.test", "name": "a.test.", "type": "TXT", "value": "v=spf1 -all", "ttl": 300},
               {"zone": "a.test", "name": "a.test.", "type": "MX", "value": "10 m.a.test.", "ttl": 300}]
    (rrsets,) = mod.group_records(records).values()
    (reordered,) = mod.group_records(list(reversed(records))).values()
    assert mod.zone_digest(rrsets) == mod.zone_digest(reordered)
    (changed,) = mod.group_records([dict(records[0], ttl=600), records[1]]).values()
    assert mod.zone_digest(rrsets) != mod.zone_digest(changed)


def test_cache_round_trip_keeps_other_servers(tmp_path):
    path = str(tmp_path / "sub" / "cache.json")
    assert mod.load_cache(path, "s1") == {}
    mod.save_cache(path, "s1", {"a.test.": [5, "d"]})
    mod.save_cache(path, "s2", {"b.test.": [1, "e"]})
    assert mod.load_cache(path, "s1") == {"a.test.": [5, "d"]}
    assert mod.load_cache(path, "s2") == {"b.test.": [1, "e"]}
    (tmp_path / "sub" / "cache.json").write_text("not json")
    assert mod.load_cache(path, "s1") == {}


def test_converge_skips_zones_the_cache_vouches_for():
    records = [{"zone": "a.test", "name": "a.test.", "type": "TXT", "value": "v=spf1 -all", "ttl": 300}]
    wanted = mod.group_records(records)
    (zone,) = wanted
    digest = mod.zone_digest(wanted[zone])

    class FakeServer:
        read = 0

        def serials(self, zones):
            return {z: 42 for z in zones}

        def read_axfr(self, zone):
            FakeServer.read += 1
            return 43, {}

        def send(self, zone, changes):
            raise AssertionError("check mode must not send")

    changes, errors, verified, count, _ = mod.converge(FakeServer(), wanted, "axfr", 1, True,
                                                       {zone.to_text(): [42, digest]})
    assert (changes, errors, count, FakeServer.read) == ({}, [], 0, 0)
    assert verified == {zone.to_text(): [42, digest]}
    changes, errors, verified, count, _ = mod.converge(FakeServer(), wanted, "axfr", 1, True,
                                                       {zone.to_text(): [41, digest]})
    assert count == 1 and FakeServer.read == 1 and list(changes) == [zone] and verified == {}


# ------------------------------------------------------------------------------------------
# Pruning (issue 17, item 2): the registry at _mailward.<zone> lists what was published; what it
# lists and is no longer generated is removed, nothing else.
# ------------------------------------------------------------------------------------------

REGISTRY = dns.name.from_text("_mailward.example.test.")
S1 = dns.name.from_text("s1._domainkey.example.test.")
S2 = dns.name.from_text("s2._domainkey.example.test.")
STS = dns.name.from_text("_mta-sts.example.test.")
ALL_FAMILIES = ["MX", "SPF", "DKIM", "DMARC", "DMARC_REPORT", "MTA_STS", "TLSRPT", "TLSA", "ADDRESS"]


def own(**kwargs):
    kwargs.setdefault("scope", ["example.test", "mx1.example.test"])
    kwargs.setdefault("families", ALL_FAMILIES)
    return mod.Ownership("_mailward", 3600, **kwargs)


def rec(name, rtype, value, kind, domain="example.test"):
    return {"zone": "example.test", "ttl": 3600, "name": name, "type": rtype, "value": value, "kind": kind,
            "domain": domain}


def registry_rrset(*entries):
    texts = ['"%s"' % plan.registry_text(plan.registry_entry(r)) for r in entries]
    return rrset(TXT, 3600, *texts)


def plan_of(records, current, ownership):
    grouped = mod.group_records(records)
    rrsets = grouped.get(APEX, {})
    return mod.plan_all(APEX, rrsets, mod.build_rrsets(rrsets), current, ownership)


def by_name(changes):
    return {(name.to_text(), dns.rdatatype.to_text(rdtype)): ([r.to_text() for r in delete], [r.to_text() for r in add])
            for name, rdtype, _, delete, add in changes}


DKIM1 = rec("s1._domainkey.example.test.", "TXT", "v=DKIM1; k=ed25519; p=one", "dkim")
DKIM2 = rec("s2._domainkey.example.test.", "TXT", "v=DKIM1; k=ed25519; p=two", "dkim")
STS_REC = rec("_mta-sts.example.test.", "TXT", "v=STSv1; id=1", "mta_sts")


def test_a_removed_selector_and_mta_sts_turned_off_are_pruned_foreign_txt_kept():
    current = {(REGISTRY, TXT): registry_rrset(DKIM1, DKIM2, STS_REC),
               (S1, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=one"'),
               (S2, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=two"', '"foreign-keep=1"'),
               (STS, TXT): rrset(TXT, 3600, '"v=STSv1; id=1"', '"foreign-keep=2"')}
    changes, pruned, registry = plan_of([DKIM1], current, own())
    got = by_name(changes)
    assert got[("s2._domainkey.example.test.", "TXT")] == (['"v=DKIM1; k=ed25519; p=two"'], [])
    assert got[("_mta-sts.example.test.", "TXT")] == (['"v=STSv1; id=1"'], [])
    deleted, added = got[("_mailward.example.test.", "TXT")]
    assert len(deleted) == 2 and added == []
    assert [(e["name"], e["family"]) for e in pruned] == [("_mta-sts.example.test.", "MTA_STS"),
                                                         ("s2._domainkey.example.test.", "DKIM")]
    assert registry is current[(REGISTRY, TXT)], "the registry as read is the update's prerequisite"
    assert set(got) == {("s2._domainkey.example.test.", "TXT"), ("_mta-sts.example.test.", "TXT"),
                        ("_mailward.example.test.", "TXT")}


def test_records_of_an_earlier_version_are_adopted_never_deleted():
    """No registry yet: what is wanted now is registered; an unregistered old DKIM record stays."""
    current = {(S1, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=one"'),
               (S2, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=old"')}
    changes, pruned, registry = plan_of([DKIM1], current, own())
    assert pruned == [] and registry is None
    assert by_name(changes) == {("_mailward.example.test.", "TXT"): (
        [], ['"v=mailward1 f=DKIM d=example.test n=s1._domainkey.example.test. t=TXT g=v=dkim1"'])}
    # Second run against the result: nothing to do.
    current[(REGISTRY, TXT)] = registry_rrset(DKIM1)
    assert plan_of([DKIM1], current, own())[0] == []


def test_nothing_is_pruned_outside_scope_unmanaged_families_kept_names_or_with_prune_off():
    current = {(REGISTRY, TXT): registry_rrset(DKIM1, DKIM2, STS_REC),
               (S1, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=one"'),
               (S2, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=two"'),
               (STS, TXT): rrset(TXT, 3600, '"v=STSv1; id=1"')}
    for ownership in (own(prune=False), own(scope=["other.test"]), own(families=["MX", "SPF"]),
                      own(keep=[("s2._domainkey.example.test", "TXT"), ("_mta-sts.example.test.", "txt")])):
        changes, pruned, _ = plan_of([DKIM1], current, ownership)
        assert (changes, pruned) == ([], []), "the registry keeps listing them, to be pruned later"


def test_a_pruned_rrset_of_another_type_goes_whole_and_a_zone_with_nothing_wanted_loses_its_registry():
    mx = rec("example.test.", "MX", "10 mx1.example.test.", "mx")
    addr = rec("mx1.example.test.", "A", "192.0.2.1", "a", domain="mx1.example.test")
    current = {(REGISTRY, TXT): registry_rrset(mx, addr),
               (APEX, dns.rdatatype.MX): rrset(dns.rdatatype.MX, 3600, "10 mx1.example.test.", "20 x.example.test."),
               (dns.name.from_text("mx1.example.test."), dns.rdatatype.A): rrset(dns.rdatatype.A, 3600, "192.0.2.1")}
    changes, pruned, _ = plan_of([], current, own(scope=["example.test"]))
    got = by_name(changes)
    assert got[("example.test.", "MX")] == (["10 mx1.example.test.", "20 x.example.test."], [])
    assert ("mx1.example.test.", "A") not in got, "mx1.example.test is not in scope"
    assert len(got[("_mailward.example.test.", "TXT")][0]) == 1, "the MX entry leaves the registry"
    changes, pruned, _ = plan_of([], current, own(scope=["example.test", "mx1.example.test"]))
    deleted, added = by_name(changes)[("_mailward.example.test.", "TXT")]
    assert sorted(deleted) == sorted(r.to_text() for r in current[(REGISTRY, TXT)]) and added == []
    assert by_name(changes)[("mx1.example.test.", "A")] == (["192.0.2.1"], [])


def test_foreign_strings_in_the_registry_rrset_are_kept_and_not_parsed():
    current = {(REGISTRY, TXT): rrset(TXT, 3600, '"v=mailward1 f=DKIM broken"', '"someone-else=1"'),
               (S1, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=one"'),
               (S2, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=two"')}
    changes, pruned, _ = plan_of([DKIM1], current, own())
    got = by_name(changes)
    assert pruned == [] and set(got) == {("_mailward.example.test.", "TXT")}
    deleted, added = got[("_mailward.example.test.", "TXT")]
    assert deleted == ['"v=mailward1 f=DKIM broken"'] and len(added) == 1


def test_no_record_may_be_published_at_the_registry_name():
    with pytest.raises(mod.PlanError, match="registry"):
        plan_of([rec("_mailward.example.test.", "TXT", "v=spf1 -all", "spf")], {}, own())


def test_converge_prunes_in_one_update_with_the_registry_as_prerequisite_then_is_idempotent():
    """The defect of issue 17: before, converge never deleted what it no longer generated."""
    state = {(REGISTRY, TXT): registry_rrset(DKIM1, DKIM2),
             (S1, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=one"'),
             (S2, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=two"', '"foreign-keep=1"')}

    class FakeServer:
        sent = []

        def serials(self, zones):
            return {z: 1 for z in zones}

        def read_axfr(self, zone):
            return 1, dict(state)

        def send(self, zone, changes, registry=None):
            FakeServer.sent.append((changes, registry))
            for name, rdtype, ttl, delete, add in changes:
                keep = [r for r in state.get((name, rdtype), []) if mod.rdata_key(r) not in
                        {mod.rdata_key(d) for d in delete}] + list(add)
                state[(name, rdtype)] = dns.rdataset.from_rdata_list(ttl, keep) if keep else None
                if not keep:
                    del state[(name, rdtype)]

    wanted = mod.group_records([DKIM1])
    changes, errors, verified, _, pruned = mod.converge(FakeServer(), wanted, "axfr", 1, False, {}, own())
    assert errors == [] and [e["name"] for e in pruned[APEX]] == ["s2._domainkey.example.test."]
    assert len(FakeServer.sent) == 1
    assert FakeServer.sent[0][1][0] == REGISTRY
    assert {mod.rdata_key(r) for r in state[(S2, TXT)]} == {b"foreign-keep=1"}
    assert [plan.registry_parse(mod.rdata_key(r).decode()) for r in state[(REGISTRY, TXT)]] == \
        [plan.registry_entry(DKIM1)]
    assert list(verified) == ["example.test."]
    changes, errors, _, _, pruned = mod.converge(FakeServer(), wanted, "axfr", 1, False, {}, own())
    assert (changes, errors, pruned, len(FakeServer.sent)) == ({}, [], {}, 1)


def test_query_mode_asks_the_registry_then_the_names_it_lists():
    asked = []
    served = {(REGISTRY, TXT): registry_rrset(DKIM1, DKIM2),
              (S2, TXT): rrset(TXT, 3600, '"v=DKIM1; k=ed25519; p=two"')}

    class FakeServer:
        def read_query(self, zones_wanted, extra=None):
            out = {}
            for zone, rrsets in zones_wanted.items():
                keys = list(rrsets) + list((extra or {}).get(zone, []))
                asked.append(keys)
                out[zone] = (1, {k: served[k] for k in keys if k in served})
            return out

    wanted = mod.build_rrsets(mod.group_records([DKIM1])[APEX])
    states = mod.read_zones(FakeServer(), "query", {APEX: wanted}, 1, own())
    assert asked == [[(S1, TXT), (REGISTRY, TXT)], [(S2, TXT)]]
    assert set(states[APEX][1]) == {(REGISTRY, TXT), (S2, TXT)}


def test_the_cache_digest_changes_with_the_pruning_settings_and_the_registered_domain():
    (rrsets,) = mod.group_records([DKIM1]).values()
    (moved,) = mod.group_records([dict(DKIM1, domain="other.test")]).values()
    assert mod.zone_digest(rrsets, own().digest_text()) != mod.zone_digest(rrsets, own(prune=False).digest_text())
    assert mod.zone_digest(rrsets) != mod.zone_digest(moved)
