"""spf_record: valid records, term order, IP forms, the 10-lookup boundary and every refusal."""
import pytest

from ansible_collections.mailward.mail.plugins.module_utils.records import spf_record
from mw_testlib import refusal

D = "example.test"


def includes(count):
    return ["i%d.example.net" % n for n in range(1, count + 1)]


# ---------------------------------------------------------------- valid records

@pytest.mark.parametrize("spec, expected", [
    ({"mx": True, "ip4": ["192.0.2.10"]}, "v=spf1 mx ip4:192.0.2.10 -all"),
    ({}, "v=spf1 -all"),
    ({"all": "fail"}, "v=spf1 -all"),
    ({"a": False, "mx": False, "include": [], "redirect": ""}, "v=spf1 -all"),
    ({"mx": True, "all": "softfail"}, "v=spf1 mx ~all"),
    ({"mx": True, "all": "neutral"}, "v=spf1 mx ?all"),
    ({"a": True}, "v=spf1 a -all"),
    ({"a": ["web.example.test"], "mx": ["mx1.example.test", "mx2.example.test"]},
     "v=spf1 a:web.example.test mx:mx1.example.test mx:mx2.example.test -all"),
    ({"include": "_spf.google.com"}, "v=spf1 include:_spf.google.com -all"),
    ({"mx": True, "redirect": "_spf.example.net"}, "v=spf1 mx redirect=_spf.example.net"),
    ({"redirect": "_spf.example.net"}, "v=spf1 redirect=_spf.example.net"),
    ({"exists": ["%{i}._spf.example.com"]}, "v=spf1 exists:%{i}._spf.example.com -all"),
    ({"exists": ["%{ir}.%{v}._spf.%{d2}"]}, "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"),
    ({"include": ["Example.NET", "example.net", "example.net."]}, "v=spf1 include:Example.NET -all"),
])
def test_valid_records(spec, expected):
    assert spf_record(spec) == expected


def test_term_order_is_fixed_whatever_the_key_order():
    spec = {"all": "softfail", "exists": ["%{i}.e.example.net"], "include": ["i.example.net"],
            "ip6": ["2001:db8::1"], "ip4": ["192.0.2.1"], "mx": True, "a": True}
    assert spf_record(spec) == ("v=spf1 a mx ip4:192.0.2.1 ip6:2001:db8::1 include:i.example.net "
                                "exists:%{i}.e.example.net ~all")


def test_addresses_deduplicated_in_order_and_host_prefix_dropped():
    spec = {"ip4": ["198.51.100.0/24", "192.0.2.10", "192.0.2.10/32", "198.51.100.0/24"],
            "ip6": ["2001:db8::10", "2001:0db8:0:0:0:0:0:10/128"]}
    assert spf_record(spec) == ("v=spf1 ip4:198.51.100.0/24 ip4:192.0.2.10 ip6:2001:db8::10 "
                                "-all")


@pytest.mark.parametrize("written, published", [
    ("2001:db8::10", "2001:db8::10"),                                   # compressed
    ("2001:DB8::10", "2001:db8::10"),                                   # upper case
    ("2001:0db8:0000:0000:0000:0000:0000:0010", "2001:db8::10"),        # full form
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),                      # longest zero run
    ("2001:db8::10/128", "2001:db8::10"),                               # host prefix dropped
    ("2001:db8::/32", "2001:db8::/32"),                                 # CIDR
    ("2001:0db8:0000:0000::/64", "2001:db8::/64"),                      # CIDR, full form
    ("::1", "::1"),
])
def test_ipv6_forms(written, published):
    assert spf_record({"ip6": [written]}) == "v=spf1 ip6:%s -all" % published


@pytest.mark.parametrize("written", ["::ffff:192.0.2.1", "::ffff:c000:201", "::FFFF:192.0.2.0/120"])
def test_ipv4_mapped_ipv6_refused_with_ip4_hint(written):
    message = refusal(spf_record, {"ip6": [written]}, domain=D)
    assert "ip6" in message and written in message
    assert "IPv4-mapped" in message and "under ip4" in message and "RFC 7208 §5" in message


# ---------------------------------------------------------------- the 10-lookup boundary

def test_ten_lookups_accepted():
    record = spf_record({"include": includes(10)})
    assert record.count("include:") == 10


def test_eleven_lookups_refused_naming_the_eleventh_term():
    message = refusal(spf_record, {"include": includes(11)}, domain=D)
    assert message.startswith("spf_record: example.test: include: ")
    assert "'include:i11.example.net'" in message
    assert "11 DNS-querying terms" in message and "RFC 7208 §4.6.4" in message


def test_every_querying_term_counts():
    # a + mx + 6 includes + exists + redirect = 10: accepted
    spec = {"a": True, "mx": True, "include": includes(6), "exists": ["%{i}.x.example.net"],
            "redirect": "r.example.net"}
    assert spf_record(spec).endswith("redirect=r.example.net")
    spec["include"] = includes(7)  # 11: the redirect is the 11th term
    message = refusal(spf_record, spec, domain=D)
    assert "'redirect=r.example.net'" in message and "RFC 7208 §4.6.4" in message


def test_host_lists_count_one_per_host_and_addresses_count_none():
    assert spf_record({"a": ["h%d.example.test" % n for n in range(10)],
                       "ip4": ["192.0.2.%d" % n for n in range(1, 60)]})
    message = refusal(spf_record, {"a": ["h%d.example.test" % n for n in range(10)], "mx": True})
    assert "'mx'" in message and "11 DNS-querying terms" in message


def test_duplicates_do_not_count_twice():
    assert spf_record({"include": includes(10) + ["I1.example.net"]}).count("include:") == 10


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("spec, path, term, rule", [
    ({"all": "pass"}, "all", "'pass'", "RFC 7208 §5.1"),
    ({"all": "+all"}, "all", "'+all'", "RFC 7208 §5.1"),
    ({"mx": True, "all": "-all"}, "all", "'-all'", "RFC 7208 §4.6.2"),
    ({"mx": True, "all": "reject"}, "all", "'reject'", "RFC 7208"),
    ({"ptr": True}, "ptr", "True", "RFC 7208 §5.5"),
    ({"ptr": "example.test"}, "ptr", "'example.test'", "RFC 7208 §5.5"),
    ({"include": ["ptr:example.net"]}, "include", "'ptr:example.net'", "RFC 7208 §5.5"),
    ({"a": ["ptr"]}, "a", "'ptr'", "RFC 7208 §5.5"),
    ({"exists": ["%{p}.example.net"]}, "exists", "'%{p}.example.net'", "RFC 7208 §7.3"),
    ({"mx": True, "redirect": "r.example.net", "all": "fail"}, "all", "'fail'", "RFC 7208 §5.1"),
    ({"all": "softfail"}, "all", "'softfail'", "RFC 7208 §4.7"),
    ({"all": "neutral", "include": []}, "all", "'neutral'", "RFC 7208 §4.7"),
    ({"ip4": ["192.0.2.10/24"]}, "ip4", "'192.0.2.10/24'", "RFC 7208 §5.6"),
    ({"ip6": ["2001:db8::1/64"]}, "ip6", "'2001:db8::1/64'", "RFC 7208 §5.6"),
    ({"ip4": ["256.1.1.1"]}, "ip4", "'256.1.1.1'", "RFC 7208 §5.6"),
    ({"ip4": ["192.0.2.010"]}, "ip4", "'192.0.2.010'", "RFC 7208 §5.6"),
    ({"ip4": [3232235777]}, "ip4", "3232235777", "RFC 7208 §5.6"),
    ({"ip4": ["2001:db8::1"]}, "ip4", "'2001:db8::1'", "RFC 7208 §5.6"),
    ({"ip6": ["192.0.2.1"]}, "ip6", "'192.0.2.1'", "RFC 7208 §5.6"),
    ({"ip6": ["fe80::1%eth0"]}, "ip6", "'fe80::1%eth0'", "RFC 7208 §5.6"),
    ({"ip4": ["0.0.0.0/0"]}, "ip4", "'0.0.0.0/0'", "RFC 7208 §5.1"),
    ({"ip6": ["::/0"]}, "ip6", "'::/0'", "RFC 7208 §5.1"),
    ({"include": ["localhost"]}, "include", "'localhost'", "two labels"),
    ({"include": ["-bad.example.net"]}, "include", "'-bad.example.net'", "RFC 1123 §2.1"),
    ({"include": ["exa mple.net"]}, "include", "'exa mple.net'", "RFC 1123 §2.1"),
    ({"include": ["a" * 64 + ".example.net"]}, "include", "'aaaa", "RFC 1035 §2.3.4"),
    ({"include": [".".join(["a" * 60] * 5)]}, "include", "'aaaa", "RFC 1035 §2.3.4"),
    ({"include": ["example.123"]}, "include", "'example.123'", "RFC 7208 §7.1"),
    ({"include": ["example..net"]}, "include", "'example..net'", "RFC 1035 §2.3.4"),
    ({"include": ["bücher.example"]}, "include", "'bücher.example'", "RFC 5890"),
    ({"redirect": "not a domain"}, "redirect", "'not a domain'", "RFC 1123 §2.1"),
    ({"mx": ["mx_1"]}, "mx", "'mx_1'", "two labels"),
    ({"exists": ["%{c}.example.net"]}, "exists", "only allowed in exp=", "RFC 7208 §7.2"),
    ({"exists": ["%{x}.example.net"]}, "exists", "'%{x}.example.net'", "RFC 7208 §7.2"),
    ({"exists": ["%{i0}.example.net"]}, "exists", "'%{i0}.example.net'", "RFC 7208 §7.3"),
    ({"exists": ["50%.example.net"]}, "exists", "'50%.example.net'", "RFC 7208 §7.1"),
    ({"exists": ["%{i}.example.123"]}, "exists", "'%{i}.example.123'", "RFC 7208 §7.1"),
    ({"exists": ["%{i}..example.net"]}, "exists", "'%{i}..example.net'", "RFC 1035 §2.3.4"),
    ({"inculde": ["i.example.net"]}, "inculde", "did you mean 'include'", "docs/schema.md"),
    ({"include": True}, "include", "True", "docs/schema.md"),
    ({"a": "yes"}, "a", "'yes'", "two labels"),
])
def test_refusals_name_domain_path_term_and_rule(spec, path, term, rule):
    message = refusal(spf_record, spec, domain=D)
    assert message.startswith("spf_record: %s: %s: " % (D, path)), message
    assert term in message, message
    assert rule in message, message


def test_refusal_without_domain_still_names_filter_and_term():
    message = refusal(spf_record, {"all": "pass"})
    assert message.startswith("spf_record: all: 'pass':")


def test_not_a_mapping():
    assert "must be a mapping" in refusal(spf_record, ["mx"], domain=D)


def test_every_independent_problem_is_reported():
    spec = {"ip4": ["bad", "192.0.2.1/24"], "inclde": [], "include": includes(11),
            "all": "pass"}
    lines = refusal(spf_record, spec, domain=D).splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith("spf_record: example.test: ") for line in lines)
    joined = "\n".join(lines)
    for needle in ("'bad'", "'192.0.2.1/24'", "'inclde'", "'include:i11.example.net'", "'pass'"):
        assert needle in joined


# ---------------------------------------------------------------- ranges that amount to +all

@pytest.mark.parametrize("key, values, space", [
    ("ip4", ["0.0.0.0/1", "128.0.0.0/1"], "IPv4"),
    ("ip6", ["::/1", "8000::/1"], "IPv6"),
    ("ip6", ["8000::/1", "::/2", "4000::/2"], "IPv6"),
])
def test_networks_that_together_cover_everything_are_refused(key, values, space):
    lines = refusal(spf_record, {key: values}, domain=D).splitlines()
    union = [line for line in lines if "together cover every" in line]
    assert len(union) == 1, lines
    assert union[0].startswith("spf_record: example.test: %s: %s: together cover every %s address"
                               % (key, values, space)), union
    assert "the same as +all (RFC 7208 §5.1)" in union[0]


def test_allowed_networks_covering_everything_together_are_refused():
    # 256 /8 networks: each one is allowed, together they are +all
    message = refusal(spf_record, {"ip4": ["%d.0.0.0/8" % n for n in range(256)]}, domain=D)
    assert message.count("\n") == 0 and "together cover every IPv4 address" in message, message
    assert spf_record({"ip4": ["%d.0.0.0/8" % n for n in range(255)]}).count("ip4:") == 255


@pytest.mark.parametrize("key, value, limit", [
    ("ip4", "0.0.0.0/1", "/8"), ("ip4", "10.0.0.0/7", "/8"), ("ip4", "128.0.0.0/2", "/8"),
    ("ip6", "::/1", "/16"), ("ip6", "2000::/3", "/16"), ("ip6", "2000::/15", "/16"),
])
def test_a_single_very_broad_network_is_refused(key, value, limit):
    message = refusal(spf_record, {key: [value]}, domain=D)
    assert message.startswith("spf_record: example.test: %s: '%s': " % (key, value)), message
    assert "authorizes a large part of the Internet" in message and limit in message, message


@pytest.mark.parametrize("key, value", [("ip4", "10.0.0.0/8"), ("ip6", "2001::/16"),
                                        ("ip6", "2001:db8::/32")])
def test_the_broadest_allowed_network_passes(key, value):
    assert spf_record({key: [value]}) == "v=spf1 %s:%s -all" % (key, value)


# ---------------------------------------------------------------- loops through the domain itself

@pytest.mark.parametrize("spec, path, term, rule", [
    ({"include": ["example.test"]}, "include", "'example.test'", "RFC 7208 §4.6.4, §5.2"),
    ({"include": ["_spf.example.net", "Example.TEST."]}, "include", "'Example.TEST.'",
     "RFC 7208 §4.6.4, §5.2"),
    ({"redirect": "example.test"}, "redirect", "'example.test'", "RFC 7208 §4.6.4, §6.1"),
    ({"mx": True, "redirect": "EXAMPLE.test."}, "redirect", "'EXAMPLE.test.'",
     "RFC 7208 §4.6.4, §6.1"),
])
def test_include_or_redirect_of_the_domain_itself_is_refused(spec, path, term, rule):
    message = refusal(spf_record, spec, domain=D)
    assert message.startswith("spf_record: %s: %s: %s: " % (D, path, term)), message
    assert "permerror" in message and rule in message, message


def test_include_of_a_subdomain_or_without_domain_passes():
    assert spf_record({"include": ["_spf.example.test"], "redirect": ""}, domain=D)
    assert spf_record({"redirect": "_spf.example.test"}, domain=D)
    assert spf_record({"include": ["example.test"]})  # no domain given: nothing to compare
