"""Unit tests for the diff logic of plugins/modules/dns_nsupdate.py (no server needed)."""

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import pytest

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

    changes, errors, verified, count = mod.converge(FakeServer(), wanted, "axfr", 1, True,
                                                    {zone.to_text(): [42, digest]})
    assert (changes, errors, count, FakeServer.read) == ({}, [], 0, 0)
    assert verified == {zone.to_text(): [42, digest]}
    changes, errors, verified, count = mod.converge(FakeServer(), wanted, "axfr", 1, True,
                                                    {zone.to_text(): [41, digest]})
    assert count == 1 and FakeServer.read == 1 and list(changes) == [zone] and verified == {}
