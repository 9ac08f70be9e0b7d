"""mail_domains_normalize and mail_domains_records."""
import copy
import re

import dns.rdata
import pytest

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records
from ansible_collections.mailward.mail.plugins.module_utils.records import (dkim_record, dmarc_record, mta_sts_policy, mta_sts_policy_id,
                              spf_record, tlsa_record, tlsrpt_record, txt_chunks, txt_strings)
from mw_testlib import public_pem, refusal

HOST, MX = "mail1", "mx.example.test"
LINE = re.compile(r"^host mail1: (mail_hostname|mail_domains(\[\d+\] \([^)]*\))?)(: [\w.\[\]]+)?: .+")


def normalize(domains, mail_hostname=MX):
    return mail_domains_normalize(domains, HOST, mail_hostname)


def problems(domains, mail_hostname=MX):
    lines = refusal(mail_domains_normalize, domains, HOST, mail_hostname).splitlines()
    for line in lines:
        assert LINE.match(line), line
    return lines


# ---------------------------------------------------------------- normalize: defaults

def test_every_default_is_filled():
    assert normalize([{"name": "example.test"}]) == [{
        "name": "example.test",
        "mx": [{"host": MX, "priority": 10}],
        "spf": {"mx": True, "all": "fail"},
        "dkim": [{"selector": "mailward", "type": "rsa", "bits": 2048, "state": "active"}],
        "dmarc": {"p": "none"},
        "mta_sts": None,
        "tlsrpt": None,
        "tlsa": False,
    }]


def test_null_keys_count_as_absent_and_empty_list_is_fine():
    assert normalize(None) == [] and normalize([]) == []
    item = {"name": "example.test", "mx": None, "spf": None, "dkim": None, "dmarc": None,
            "mta_sts": None, "tlsrpt": None, "tlsa": None}
    assert normalize([item]) == normalize([{"name": "example.test"}])


def test_given_values_are_kept_and_completed():
    item = {"name": "example.test",
            "mx": [{"host": "mx1.example.test", "priority": "20"}, {"host": "mx2.example.test"}],
            "spf": {"ip4": ["192.0.2.10"]},
            "dkim": [{"selector": "r1"}, {"selector": "e1", "type": "ED25519"},
                     {"selector": "r2", "type": "rsa", "bits": 4096}],
            "dmarc": {"p": "reject", "rua": "mailto:d@example.test"},
            "mta_sts": {"mode": "enforce", "max_age": 86400},
            "tlsrpt": {"rua": "mailto:tls@example.test"},
            "tlsa": True}
    out = normalize([item])[0]
    assert out["mx"] == [{"host": "mx1.example.test", "priority": 20},
                         {"host": "mx2.example.test", "priority": 10}]
    assert out["spf"] == {"ip4": ["192.0.2.10"], "all": "fail"}  # replaces the default: no mx
    assert out["dkim"] == [{"selector": "r1", "type": "rsa", "bits": 2048, "state": "active"},
                           {"selector": "e1", "type": "ed25519", "state": "active"},
                           {"selector": "r2", "type": "rsa", "bits": 4096, "state": "active"}]
    assert out["dmarc"] == {"p": "reject", "rua": "mailto:d@example.test"}
    policy = mta_sts_policy("enforce", ["mx1.example.test", "mx2.example.test"], 86400)
    assert out["mta_sts"] == {"mode": "enforce", "max_age": 86400, "id": mta_sts_policy_id(policy)}
    assert out["tlsrpt"] == {"rua": ["mailto:tls@example.test"]}
    assert out["tlsa"] is True


def test_redirect_gets_no_all_and_explicit_mta_sts_id_is_kept():
    out = normalize([{"name": "example.test", "spf": {"redirect": "_spf.example.net"},
                      "mta_sts": {"mode": "testing", "id": 2026112301}}])[0]
    assert out["spf"] == {"redirect": "_spf.example.net"}
    assert out["mta_sts"] == {"mode": "testing", "max_age": 604800, "id": "2026112301"}


def test_normalize_is_idempotent_and_does_not_touch_its_input():
    domains = [{"name": "example.test", "mta_sts": {"mode": "enforce"},
                "dkim": [{"selector": "s1"}], "spf": {"mx": True}},
               {"name": "example.org", "tlsrpt": {"rua": ["mailto:t@example.org"]}}]
    before = copy.deepcopy(domains)
    once = normalize(domains)
    assert domains == before
    assert normalize(once) == once


# ---------------------------------------------------------------- normalize: problems

def test_multi_error_inventory_gives_one_message_with_every_line():
    domains = [
        {"name": "example.test",
         "spf": {"ip4": ["192.0.2.300"], "include": ["i%d.example.net" % n for n in range(1, 12)]}},
        {"name": "example.org", "dmarc": {"p": "rejcet"}},
        {"name": "example.net", "dmarc": {"p": "reject", "rua": "reports@example.net"}},
    ]
    assert problems(domains) == [
        "host mail1: mail_domains[0] (example.test): spf.ip4: '192.0.2.300': is not an IPv4 "
        "address or CIDR network (RFC 7208 §5.6)",
        "host mail1: mail_domains[0] (example.test): spf.include: 'include:i11.example.net': 11 "
        "DNS-querying terms (a, mx, include, exists, redirect) in the record; at most 10 are "
        "allowed and this is the 11th (RFC 7208 §4.6.4)",
        "host mail1: mail_domains[1] (example.org): dmarc.p: 'rejcet': must be one of "
        "none|quarantine|reject (RFC 9989 §4.7)",
        "host mail1: mail_domains[2] (example.net): dmarc.rua: 'reports@example.net': is not a "
        "mailto: URI (RFC 9989 §4.7, §4.8; RFC 7489 §6.2)",
    ]


@pytest.mark.parametrize("domains, expected", [
    ([{"mx": []}], "mail_domains[0] (?): name: is required"),
    ([{"name": "localhost"}], "mail_domains[0] (localhost): name: 'localhost': is not a fully"),
    ([{"name": "Example.test"}], "name: 'Example.test': must be lower case"),
    ([{"name": "example.test."}], "name: 'example.test.': has an empty label"),
    ([{"name": "example.test"}, {"name": "EXAMPLE.TEST"}],
     "mail_domains[1] (EXAMPLE.TEST): name: 'EXAMPLE.TEST': duplicate of mail_domains[0]"),
    ([{"name": "example.test", "dmakrc": {}}], "(example.test): dmakrc: unknown key"),
    (["example.test"], "mail_domains[0] (?): must be a mapping"),
    ([{"name": "example.test", "mx": [{"host": "mx.example.test", "priority": 70000}]}],
     "mx[0].priority: 70000: must be an integer 0..65535"),
    ([{"name": "example.test", "mx": [{"host": "mx_1.example.test"}]}],
     "mx[0].host: 'mx_1.example.test': label 'mx_1' is not"),
    ([{"name": "example.test", "mx": [{"host": "a.example.test"}, {"host": "A.example.test"}]}],
     "mx[1].host: 'A.example.test': listed twice"),
    ([{"name": "example.test", "mx": [{"hots": "a.example.test"}]}],
     "mx[0].hots: unknown key (allowed: host, priority); did you mean 'host'?"),
    ([{"name": "example.test", "mx": "mx.example.test"}], "mx: must be a non-empty list"),
    ([{"name": "example.test", "dkim": [{"selector": "bad_sel"}]}], "dkim[0].selector: 'bad_sel'"),
    ([{"name": "example.test", "dkim": [{"selector": "a"}, {"selector": "A"}]}],
     "dkim[1].selector: 'A': duplicate of dkim[0]"),
    ([{"name": "example.test", "dkim": [{"selector": "a", "type": "dsa"}]}], "dkim[0].type: 'dsa'"),
    ([{"name": "example.test", "dkim": [{"selector": "a", "bits": 1024}]}],
     "dkim[0].bits: 1024: must be an integer 2048..4096 (RFC 8301 §3.2)"),
    ([{"name": "example.test", "dkim": [{"selector": "a", "bits": 8192}]}], "dkim[0].bits: 8192"),
    ([{"name": "example.test", "dkim": [{"selector": "a", "type": "ed25519", "bits": 256}]}],
     "dkim[0].bits: 256: not allowed for ed25519"),
    ([{"name": "example.test", "dkim": [{"selector": "a", "size": 2048}]}],
     "dkim[0].size: unknown key"),
    ([{"name": "example.test", "spf": "v=spf1 -all"}], "spf: must be a mapping"),
    ([{"name": "example.test", "spf": {"all": "pass"}}], "spf.all: 'pass'"),
    ([{"name": "example.test", "dmarc": {"p": "none", "ruf": "mailto:x@example.test",
                                         "fo": "0:1"}}], "dmarc.fo: '0:1'"),
    ([{"name": "example.test", "mta_sts": {"max_age": 1}}], "mta_sts.mode: is required"),
    ([{"name": "example.test", "mta_sts": {"mode": "enforce", "max_age": 99999999}}],
     "mta_sts.max_age: 99999999: is out of range"),
    ([{"name": "example.test", "mta_sts": {"mode": "enforce", "id": "2026-11-23"}}],
     "mta_sts.id: '2026-11-23'"),
    ([{"name": "example.test", "mta_sts": {"mode": "enforce", "maxage": 1}}],
     "mta_sts.maxage: unknown key"),
    ([{"name": "example.test", "tlsrpt": {}}], "tlsrpt.rua: None: at least one"),
    ([{"name": "example.test", "tlsrpt": {"rua": ["ftp://x.example.test"]}}],
     "tlsrpt.rua: 'ftp://x.example.test'"),
    ([{"name": "example.test", "tlsa": "yes"}], "tlsa: 'yes': must be true or false"),
])
def test_each_problem(domains, expected):
    lines = problems(domains)
    assert any(expected in line for line in lines), lines


def test_bad_mail_hostname_is_reported_once():
    lines = problems([{"name": "example.test"}, {"name": "example.org"}], mail_hostname="mx")
    assert lines == ["host mail1: mail_hostname: 'mx': is not a fully qualified name (it needs "
                     "at least two labels)"]


def test_mail_domains_not_a_list():
    assert problems({"name": "example.test"}) == [
        "host mail1: mail_domains: must be a list, not dict"]


# ---------------------------------------------------------------- records

@pytest.fixture(scope="module")
def keys(rsa2048, ed25519_key):
    return {"rsa": public_pem(rsa2048), "ed25519": public_pem(ed25519_key)}


@pytest.fixture(scope="module")
def full_domain():
    return {"name": "example.test",
            "mx": [{"host": "mx1.example.test", "priority": 10},
                   {"host": "mx2.example.test", "priority": 20}],
            "spf": {"mx": True, "include": ["_spf.example.net"]},
            "dkim": [{"selector": "r1"}, {"selector": "e1", "type": "ed25519"},
                     {"selector": "nokey"}],
            "dmarc": {"p": "reject", "rua": ["mailto:d@example.test",
                                             "mailto:d@reports.example.net"]},
            "mta_sts": {"mode": "enforce"},
            "tlsrpt": {"rua": ["mailto:tls@example.test"]},
            "tlsa": True}


def public_keys(keys):
    return [{"domain": "example.test", "selector": "r1", "type": "rsa", "public_key": keys["rsa"],
             "bits": 2048, "path": "/etc/dkimkeys/example.test/r1.private"},
            {"domain": "example.test", "selector": "e1", "type": "ed25519",
             "public_key": keys["ed25519"]},
            {"domain": "example.test", "selector": "retired", "type": "rsa",
             "public_key": keys["rsa"]},
            {"domain": "other.test", "selector": "r1", "type": "rsa", "public_key": keys["rsa"]}]


def test_records_of_a_full_domain(full_domain, keys, cert_pem):
    domains = normalize([full_domain])
    records = mail_domains_records(domains, public_keys=public_keys(keys),
                                   mx_hosts=[{"name": "mx1.example.test", "ipv4": "192.0.2.10",
                                              "ipv6": "2001:0db8::10", "cert_pem": cert_pem},
                                             {"name": "www.example.test", "ipv4": "192.0.2.80",
                                              "cert_pem": cert_pem}])
    dom = domains[0]
    assert records == [
        {"name": "example.test.", "type": "MX", "value": "10 mx1.example.test.", "kind": "mx",
         "domain": "example.test"},
        {"name": "example.test.", "type": "MX", "value": "20 mx2.example.test.", "kind": "mx",
         "domain": "example.test"},
        {"name": "example.test.", "type": "TXT", "kind": "spf", "domain": "example.test",
         "value": "v=spf1 mx include:_spf.example.net -all"},
        {"name": "r1._domainkey.example.test.", "type": "TXT", "kind": "dkim",
         "domain": "example.test", "value": dkim_record(keys["rsa"])},
        {"name": "e1._domainkey.example.test.", "type": "TXT", "kind": "dkim",
         "domain": "example.test", "value": dkim_record(keys["ed25519"], "ed25519")},
        {"name": "_dmarc.example.test.", "type": "TXT", "kind": "dmarc", "domain": "example.test",
         "value": dmarc_record(dom["dmarc"])},
        {"name": "example.test._report._dmarc.reports.example.net.", "type": "TXT",
         "kind": "dmarc_report_auth", "domain": "example.test", "value": "v=DMARC1"},
        {"name": "_mta-sts.example.test.", "type": "TXT", "kind": "mta_sts",
         "domain": "example.test", "value": "v=STSv1; id=" + dom["mta_sts"]["id"]},
        {"name": "_smtp._tls.example.test.", "type": "TXT", "kind": "tlsrpt",
         "domain": "example.test", "value": tlsrpt_record(["mailto:tls@example.test"])},
        {"name": "mx1.example.test.", "type": "A", "value": "192.0.2.10", "kind": "a",
         "domain": "mx1.example.test"},
        {"name": "mx1.example.test.", "type": "AAAA", "value": "2001:db8::10", "kind": "aaaa",
         "domain": "mx1.example.test"},
        {"name": "_25._tcp.mx1.example.test.", "type": "TLSA", "kind": "tlsa",
         "domain": "mx1.example.test", "value": tlsa_record(cert_pem)},
        {"name": "www.example.test.", "type": "A", "value": "192.0.2.80", "kind": "a",
         "domain": "www.example.test"},
    ]


def test_every_record_is_valid_rdata_and_txt_values_round_trip(full_domain, keys, cert_pem):
    records = mail_domains_records(normalize([full_domain]), public_keys(keys),
                                   [{"name": "mx1.example.test", "ipv4": "192.0.2.10",
                                     "cert_pem": cert_pem}])
    for record in records:
        assert record["name"].endswith(".") and record["name"] == record["name"].lower()
        text = txt_strings(record["value"]) if record["type"] == "TXT" else record["value"]
        rdata = dns.rdata.from_text("IN", record["type"], text)
        if record["type"] == "TXT":
            assert b"".join(rdata.strings) == record["value"].encode()
            assert list(rdata.strings) == [c.encode() for c in txt_chunks(record["value"])]
    rsa = [r for r in records if r["name"].startswith("r1._domainkey")][0]
    assert len(txt_chunks(rsa["value"])) == 2  # a 2048-bit key needs two strings


def test_records_use_the_same_generators_as_normalize():
    domains = normalize([{"name": "example.test", "spf": {"ip4": ["192.0.2.1"]}}])
    values = {r["kind"]: r["value"] for r in mail_domains_records(domains)}
    assert values == {"mx": "10 mx.example.test.", "spf": spf_record(domains[0]["spf"]),
                      "dmarc": "v=DMARC1; p=none"}


def test_shared_mx_gives_one_tlsa_and_tlsa_false_gives_none(cert_pem):
    domains = normalize([{"name": "example.test", "tlsa": True}, {"name": "example.org",
                                                                 "tlsa": True}])
    host = [{"name": MX, "cert_pem": cert_pem}]
    assert [r["kind"] for r in mail_domains_records(domains, mx_hosts=host)].count("tlsa") == 1
    plain = normalize([{"name": "example.test"}])
    assert "tlsa" not in [r["kind"] for r in mail_domains_records(plain, mx_hosts=host)]


def test_record_problems_are_collected(keys):
    domains = normalize([{"name": "example.test", "dkim": [{"selector": "r1"},
                                                           {"selector": "e1", "type": "ed25519"}]}])
    bad_keys = [{"domain": "example.test", "selector": "r1", "type": "rsa",
                 "public_key": keys["ed25519"]},
                {"domain": "example.test", "selector": "e1", "type": "rsa",
                 "public_key": keys["rsa"]}]
    lines = refusal(mail_domains_records, domains, public_keys=bad_keys,
                    mx_hosts=[{"name": "mx.example.test", "ipv4": "2001:db8::1"}]).splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("mail_domains[0] (example.test): dkim[0].public_key: ")
    assert "ed25519 key but key_type is rsa" in lines[0]
    assert lines[1].startswith("mail_domains[0] (example.test): dkim[1].type: ")
    assert lines[2].startswith("mx_hosts[0]: ipv4: '2001:db8::1'")


def test_conflicting_public_keys_refused(keys):
    domains = normalize([{"name": "example.test", "dkim": [{"selector": "r1"}]}])
    twice = [{"domain": "example.test", "selector": "r1", "public_key": keys["rsa"]},
             {"domain": "example.test", "selector": "r1", "public_key": keys["ed25519"]}]
    assert "a different key" in refusal(mail_domains_records, domains, public_keys=twice)
    same = [twice[0], dict(twice[0])]
    assert len(mail_domains_records(domains, public_keys=same)) == 4


def test_unnormalized_input_refused():
    message = refusal(mail_domains_records, [{"name": "example.test"}])
    assert "mail_domains_normalize" in message


def test_identical_records_are_emitted_once(cert_pem):
    domains = normalize([{"name": "example.test", "tlsa": True}])
    host = {"name": MX, "ipv4": "192.0.2.10", "cert_pem": cert_pem}
    kinds = [r["kind"] for r in mail_domains_records(domains, mx_hosts=[host, dict(host)])]
    assert kinds.count("a") == 1 and kinds.count("tlsa") == 1


def test_values_with_line_breaks_stay_on_their_problem_line():
    lines = problems([{"name": "ex\nample.test", "spf": {"include": ["a\nb.example.net"]}}])
    assert len(lines) == 2, lines
    assert "(ex\\nample.test): name: 'ex\\nample.test'" in lines[0]
    assert "spf.include: 'a\\nb.example.net'" in lines[1]


def test_dkim_selector_hosts_kept_and_checked():
    from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize as normalize
    out = normalize([{"name": "example.com", "dkim": [
        {"selector": "mx1", "hosts": ["mx1.example.com"]}, {"selector": "mx2", "hosts": "mx2.example.com"}]}],
        "mx1.example.com", "mx1.example.com")
    assert out[0]["dkim"][0]["hosts"] == ["mx1.example.com"]
    assert out[0]["dkim"][1]["hosts"] == ["mx2.example.com"]
    with pytest.raises(Exception, match=r"dkim\[0\]\.hosts"):
        normalize([{"name": "example.com", "dkim": [{"selector": "s", "hosts": []}]}], "h", "mx.example.com")
