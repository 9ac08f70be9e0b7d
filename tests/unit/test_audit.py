"""Unit tests of the audit's pure logic (plugins/module_utils/audit.py).

DNS is a dict: ``{(name, type): answers}`` (or an rcode string for errors); names not in it are
NXDOMAIN. The generated records come from the real ``mail_domains_normalize`` /
``mail_domains_records``, as in the playbook.
"""
import base64
import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records
from ansible_collections.mailward.mail.plugins.module_utils.records import dkim_record

from ansible_collections.mailward.mail.plugins.module_utils import audit
from ansible_collections.mailward.mail.plugins.filter import mailward_audit as filters


def fake_resolver(zone, log=None):
    """A resolver callable over ``{(name, TYPE): [answers] | 'SERVFAIL'}``; other names NXDOMAIN."""
    names = {name.lower().rstrip(".") for name, _ in zone}

    def resolve(name, rtype):
        if log is not None:
            log.append((name, rtype))
        key = (name.lower().rstrip("."), rtype.upper())
        value = zone.get(key)
        if isinstance(value, str):
            return {"rcode": value, "answers": [], "error": "fake " + value}
        if value is not None:
            return {"rcode": "NOERROR", "answers": list(value)}
        return {"rcode": "NOERROR" if key[0] in names else "NXDOMAIN", "answers": []}

    return resolve


def by_id(checks):
    out = {c["id"]: c for c in checks}
    assert len(out) == len(checks), "duplicate ids"
    return out


# --------------------------------------------------------------------------------------------
# SPF lookup counting
# --------------------------------------------------------------------------------------------


def test_spf_counts_nested_includes_and_redirects():
    zone = {
        ("example.test", "TXT"): ["v=spf1 mx include:_a.example.test redirect=_r.example.test"],
        ("example.test", "MX"): ["10 mx.example.test."],
        ("mx.example.test", "A"): ["192.0.2.1"],
        ("_a.example.test", "TXT"): ["v=spf1 a:h1.example.test include:_b.example.test -all"],
        ("h1.example.test", "A"): ["192.0.2.2"],
        ("_b.example.test", "TXT"): ["v=spf1 exists:%{i}.x.example.test ip4:192.0.2.0/24 -all"],
        ("_r.example.test", "TXT"): ["v=spf1 a -all"],
        ("_r.example.test", "A"): ["192.0.2.3"],
    }
    result = audit.spf_evaluate("example.test", fake_resolver(zone))
    # mx, include:_a, a:h1, include:_b, exists, redirect, a (in _r) = 7
    assert result["lookups"] == 7
    assert result["voids"] == 0
    assert result["problems"] == []
    assert any("macro" in w for w in result["warnings"])
    assert set(result["records"]) == {"example.test", "_a.example.test", "_b.example.test", "_r.example.test"}


def test_spf_over_ten_lookups_through_includes_is_a_problem_naming_the_eleventh():
    zone = {("example.test", "TXT"): ["v=spf1 include:_1.example.test include:_2.example.test -all"]}
    for part in (1, 2):
        hosts = " ".join("a:h%d%d.example.test" % (part, i) for i in range(5))
        zone[("_%d.example.test" % part, "TXT")] = ["v=spf1 %s -all" % hosts]
        for i in range(5):
            zone[("h%d%d.example.test" % (part, i), "A")] = ["192.0.2.%d" % (10 * part + i)]
    log = []
    result = audit.spf_evaluate("example.test", fake_resolver(zone, log))
    assert result["lookups"] == 11  # the evaluation stops at the 11th term, as receivers do
    assert len(result["problems"]) == 1
    assert "number 11" in result["problems"][0] and "a:h23.example.test" in result["problems"][0]
    assert ("h23.example.test", "A") not in log and ("h24.example.test", "A") not in log
    # ten exactly is fine
    zone[("_2.example.test", "TXT")] = ["v=spf1 a:h20.example.test a:h21.example.test a:h22.example.test -all"]
    result = audit.spf_evaluate("example.test", fake_resolver(zone))
    assert (result["lookups"], result["problems"]) == (10, [])


def test_spf_void_lookups_over_two_are_a_problem():
    record = "v=spf1 a:gone1.example.test a:gone2.example.test ip4:192.0.2.1 -all"
    zone = {("example.test", "TXT"): [record]}
    result = audit.spf_evaluate("example.test", fake_resolver(zone))
    assert (result["voids"], result["problems"]) == (2, [])
    zone[("example.test", "TXT")] = [record.replace(" ip4", " exists:gone3.example.test ip4")]
    result = audit.spf_evaluate("example.test", fake_resolver(zone))
    assert result["voids"] == 3
    assert len(result["problems"]) == 1 and "void lookup number 3" in result["problems"][0]


def test_spf_include_without_spf_record_loop_and_unknown_mechanism():
    zone = {("example.test", "TXT"): ["v=spf1 include:nospf.example.test include:_l.example.test foo -all"],
            ("nospf.example.test", "TXT"): ["google-site-verification=x"],
            ("_l.example.test", "TXT"): ["v=spf1 include:example.test -all"]}
    problems = audit.spf_evaluate("example.test", fake_resolver(zone))["problems"]
    assert any("nospf.example.test has no SPF record" in p for p in problems)
    assert any("included again" in p for p in problems)
    assert any("unknown mechanism 'foo'" in p for p in problems)


def test_spf_redirect_ignored_with_all_and_mx_hosts_not_counted_as_terms():
    zone = {("example.test", "TXT"): ["v=spf1 mx redirect=_r.example.test -all"],
            ("example.test", "MX"): ["10 a.example.test.", "20 b.example.test."],
            ("a.example.test", "A"): ["192.0.2.1"], ("b.example.test", "AAAA"): ["2001:db8::1"]}
    log = []
    result = audit.spf_evaluate("example.test", fake_resolver(zone, log))
    assert result["lookups"] == 1
    assert ("_r.example.test", "TXT") not in log
    assert any("ignored" in w for w in result["warnings"])


def test_spf_dns_error_is_a_warning_and_two_spf_records_a_problem():
    zone = {("example.test", "TXT"): ["v=spf1 include:_x.example.test -all"], ("_x.example.test", "TXT"): "SERVFAIL"}
    result = audit.spf_evaluate("example.test", fake_resolver(zone))
    assert result["problems"] == [] and "SERVFAIL" in result["warnings"][0]
    zone = {("example.test", "TXT"): ["v=spf1 -all", "v=spf1 mx -all"]}
    assert "2 SPF records" in audit.spf_evaluate("example.test", fake_resolver(zone))["problems"][0]


# Bounded walks (issue 13 item 11): a crafted tree must not make the audit ask thousands of
# questions. RFC 7208 §4.6.4: at most 10 DNS-querying terms over the whole evaluation and 2 void
# lookups, more is permerror (receivers stop there); plus a deadline for the whole walk.


class TooManyQuestions(Exception):
    pass


def synthesizing_resolver(fan, log, cap=2000):
    """An attacker's name server: every name under evil.test has an SPF record including ``fan``
    names below it (no record to publish in advance, every question is a new one)."""

    def resolve(name, rtype):
        log.append((name, rtype))
        if len(log) > cap:
            raise TooManyQuestions("%d questions asked" % len(log))
        if rtype == "TXT" and name.endswith("evil.test"):
            children = " ".join("include:n%d.%s" % (i, name) for i in range(fan))
            return {"rcode": "NOERROR", "answers": ["v=spf1 %s -all" % children]}
        return {"rcode": "NOERROR", "answers": ["192.0.2.1"] if rtype == "A" else []}

    return resolve


def test_spf_include_chain_twelve_deep_stops_at_the_limit():
    zone = {("evil.test", "TXT"): ["v=spf1 include:c1.evil.test -all"]}
    for depth in range(1, 13):
        zone[("c%d.evil.test" % depth, "TXT")] = ["v=spf1 include:c%d.evil.test -all" % (depth + 1)]
    log = []
    result = audit.spf_evaluate("evil.test", fake_resolver(zone, log))
    # the domain's own TXT and the 10 allowed includes; the 11th include is not asked
    assert log == [("evil.test", "TXT")] + [("c%d.evil.test" % d, "TXT") for d in range(1, 11)]
    assert result["questions"] == 11 and result["lookups"] == 11
    assert result["problems"] == [result["stopped"]] and "number 11" in result["stopped"]
    assert not result["cut_short"]


@pytest.mark.parametrize("fan", [3, 10])
def test_spf_wide_fan_out_stops_at_the_limit(fan):
    log = []
    result = audit.spf_evaluate("evil.test", synthesizing_resolver(fan, log))
    assert len(log) <= 11 + 2
    assert len(log) == result["questions"] == 11
    assert "number 11" in result["stopped"] and "permerror" in result["stopped"]


def test_spf_a_and_mx_terms_in_a_fan_out_are_bounded_too():
    """Every counted term asks at most 1 + 2 x 10 questions (mx: the MX rrset, 10 hosts' A/AAAA)."""
    mx_hosts = ["10 m%d.evil.test." % i for i in range(10)]
    zone = {("evil.test", "TXT"): ["v=spf1 " + " ".join(["mx:evil.test"] * 12) + " -all"],
            ("evil.test", "MX"): mx_hosts}
    zone.update({("m%d.evil.test" % i, "A"): ["192.0.2.%d" % i] for i in range(10)})
    log = []
    result = audit.spf_evaluate("evil.test", fake_resolver(zone, log))
    assert result["lookups"] == 11 and "number 11" in result["stopped"]
    assert len(log) == 1 + 10 * (1 + 2 * 10)


def test_spf_more_than_ten_mx_hosts_is_a_permerror_without_asking_their_addresses():
    zone = {("example.test", "TXT"): ["v=spf1 mx a:after.example.test -all"],
            ("example.test", "MX"): ["10 m%d.example.test." % i for i in range(25)]}
    log = []
    result = audit.spf_evaluate("example.test", fake_resolver(zone, log))
    assert log == [("example.test", "TXT"), ("example.test", "MX")]
    assert "25 MX hosts" in result["stopped"] and result["problems"] == [result["stopped"]]


def test_spf_void_lookups_are_counted_and_the_third_stops_the_walk():
    zone = {("example.test", "TXT"): ["v=spf1 a:gone1.example.test include:_v.example.test "
                                      "exists:gone4.example.test a:gone5.example.test -all"],
            ("_v.example.test", "TXT"): ["v=spf1 mx:gone2.example.test exists:gone3.example.test -all"]}
    log = []
    result = audit.spf_evaluate("example.test", fake_resolver(zone, log))
    assert result["voids"] == 3
    assert "void lookup number 3" in result["stopped"] and "gone3.example.test" in result["stopped"]
    assert result["problems"] == [result["stopped"]]
    assert ("gone4.example.test", "A") not in log and ("gone5.example.test", "A") not in log
    # two void lookups are allowed, the walk goes on to the end
    zone[("gone3.example.test", "A")] = ["192.0.2.3"]
    zone[("gone4.example.test", "A")] = ["192.0.2.4"]
    zone[("gone5.example.test", "AAAA")] = ["2001:db8::5"]
    result = audit.spf_evaluate("example.test", fake_resolver(zone))
    assert (result["voids"], result["problems"], result["stopped"]) == (2, [], None)


class FakeClock:
    """Time advances ``step`` seconds at every resolver question."""

    def __init__(self, step):
        self.now = 1000.0
        self.step = step

    def __call__(self):
        return self.now


def test_spf_deadline_cuts_the_walk_short():
    clock = FakeClock(step=3.0)
    zone = {("example.test", "TXT"): ["v=spf1 " + " ".join("a:h%d.example.test" % i for i in range(8)) + " -all"]}
    zone.update({("h%d.example.test" % i, "A"): ["192.0.2.%d" % i] for i in range(8)})
    inner = fake_resolver(zone)
    log = []

    def slow(name, rtype):
        log.append((name, rtype))
        clock.now += clock.step
        return inner(name, rtype)

    result = audit.spf_evaluate("example.test", slow, deadline=20, clock=clock)
    # 20 s at 3 s per question: the 7th question ends at 1021 s; no question starts after the deadline
    assert len(log) == result["questions"] == 7
    assert result["cut_short"] and "20 s" in result["stopped"] and "7 DNS questions" in result["stopped"]
    assert result["problems"] == []
    # without a slow resolver the same record is evaluated to the end
    result = audit.spf_evaluate("example.test", inner, deadline=20, clock=FakeClock(0))
    assert (result["lookups"], result["cut_short"], result["stopped"]) == (8, False, None)


# --------------------------------------------------------------------------------------------
# DMARC and DKIM parsers
# --------------------------------------------------------------------------------------------


def test_dmarc_parser_accepts_a_valid_record_and_lists_destinations():
    parsed = audit.parse_dmarc("v=DMARC1; p=reject; sp=none; adkim=s; rua=mailto:a@example.test,"
                               "mailto:b@reports.test!10m; ruf=mailto:f@reports.test; fo=1:d")
    assert parsed["problems"] == [] and parsed["warnings"] == []
    assert parsed["destinations"] == ["example.test", "reports.test"]
    assert parsed["tags"]["p"] == "reject"


@pytest.mark.parametrize("record, fragment", [
    ("v=DMARC1; sp=reject", "p tag is missing"),
    ("v=DMARC1; p=block", "p=block"),
    ("v=DMARC1; p=none; p=reject", "appears twice"),
    ("p=none; v=DMARC1", "does not start with v=DMARC1"),
    ("v=DMARC1; p=none; rua=https://example.test/r", "not a mailto"),
    ("v=DMARC1; p=none; adkim=x", "adkim=x"),
    ("v=DMARC1; p=none; pct=150", "pct=150"),
    ("v=DMARC1; p=none; garbage", "not a tag=value"),
])
def test_dmarc_parser_problems(record, fragment):
    problems = audit.parse_dmarc(record)["problems"]
    assert any(fragment in p for p in problems), problems


def test_dmarc_parser_warns_on_legacy_and_unknown_tags():
    parsed = audit.parse_dmarc("v=DMARC1; p=none; pct=50; zz=1")
    assert parsed["problems"] == []
    assert len(parsed["warnings"]) == 2


def _p(key):
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_dkim_key_info_sizes_types_and_revocation(rsa2048, rsa1024, ed25519_key):
    info = audit.dkim_key_info("v=DKIM1; k=rsa; p=" + _p(rsa2048))
    assert (info["type"], info["bits"], info["problems"]) == ("rsa", 2048, [])
    info = audit.dkim_key_info("v=DKIM1; k=rsa; p=" + _p(rsa1024))
    assert info["bits"] == 1024 and "1024 bits" in info["problems"][0]
    raw = ed25519_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    info = audit.dkim_key_info("v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode())
    assert info["problems"] == []
    assert "revoked" in audit.dkim_key_info("v=DKIM1; p=")["problems"][0]
    assert "not base64" in audit.dkim_key_info("v=DKIM1; p=!!")["problems"][0]


# --------------------------------------------------------------------------------------------
# Published vs generated (dns_checks)
# --------------------------------------------------------------------------------------------


def _pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture()
def world(rsa2048, ed25519_key):
    domains = mail_domains_normalize([{
        "name": "example.test",
        "spf": {"mx": True, "include": ["_spf.partner.test"], "all": "fail"},
        "dkim": [{"selector": "r1", "type": "rsa"}, {"selector": "e1", "type": "ed25519"},
                 {"selector": "later", "type": "rsa"}],
        "dmarc": {"p": "reject", "rua": ["mailto:d@partner.test"]},
        "mta_sts": {"mode": "enforce"},
        "tlsrpt": {"rua": ["mailto:t@example.test"]},
    }], "mx1", "mx.example.test")
    keys = [{"domain": "example.test", "selector": "r1", "type": "rsa", "public_key": _pem(rsa2048)},
            {"domain": "example.test", "selector": "e1", "type": "ed25519", "public_key": _pem(ed25519_key)}]
    records = mail_domains_records(domains, public_keys=keys, mx_hosts=[{"name": "mx.example.test", "ipv4": "192.0.2.25"}])
    zone = {}
    for record in records:
        zone.setdefault((record["name"].rstrip("."), record["type"]), []).append(record["value"])
    zone[("example.test", "TXT")].append("site-verification=abc")  # not ours, must not matter
    zone[("_spf.partner.test", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 -all"]
    return {"domains": domains, "keys": keys, "records": records, "zone": zone}


def _run(world, zone=None, host_keys=None, kinds=None):
    return by_id(audit.dns_checks(world["records"], world["domains"],
                                  host_keys if host_keys is not None else {"mx1": world["keys"]},
                                  fake_resolver(zone if zone is not None else world["zone"]), kinds=kinds))


def test_dns_everything_published_as_generated_passes(world):
    checks = _run(world)
    expected_ids = {"dns.mx.example.test", "dns.spf.example.test", "dns.spf_limits.example.test",
                    "dns.dkim.r1.example.test", "dns.dkim.e1.example.test", "dns.dkim_key.r1.example.test",
                    "dns.dkim_key.e1.example.test", "dns.dmarc.example.test", "dns.dmarc_syntax.example.test",
                    "dns.dmarc_report_auth.example.test", "dns.mta_sts.example.test", "dns.tlsrpt.example.test",
                    "dns.a.mx.example.test", "dns.dkim.later.example.test"}
    assert set(checks) == expected_ids
    assert {k: c["status"] for k, c in checks.items() if c["status"] != "pass"} == {"dns.dkim.later.example.test": "warn"}
    assert checks["dns.spf_limits.example.test"]["details"]["lookups"] == 2


def test_dns_tampered_spf_fails_that_check_only(world):
    zone = dict(world["zone"])
    zone[("example.test", "TXT")] = ["v=spf1 a -all", "site-verification=abc"]
    checks = _run(world, zone)
    failed = {k for k, c in checks.items() if c["status"] == "fail"}
    assert failed == {"dns.spf.example.test"}
    assert checks["dns.spf.example.test"]["details"]["published"] == ["v=spf1 a -all"]
    assert checks["dns.spf_limits.example.test"]["details"]["evaluated"] == "published"


def test_dns_two_spf_records_or_none_fail(world):
    zone = dict(world["zone"])
    spf = next(r["value"] for r in world["records"] if r["kind"] == "spf")
    zone[("example.test", "TXT")] = [spf, "v=spf1 -all"]
    assert "2 records" in _run(world, zone)["dns.spf.example.test"]["summary"]
    zone[("example.test", "TXT")] = ["site-verification=abc"]
    checks = _run(world, zone)
    assert checks["dns.spf.example.test"]["summary"].endswith("not published")
    assert checks["dns.spf_limits.example.test"]["details"]["evaluated"].startswith("generated")


def test_dns_key_in_dns_not_matching_the_server_key_fails(world, rsa4096):
    zone = dict(world["zone"])
    zone[("r1._domainkey.example.test", "TXT")] = [dkim_record(_pem(rsa4096))]
    checks = _run(world, zone)
    assert checks["dns.dkim.r1.example.test"]["status"] == "fail"
    key = checks["dns.dkim_key.r1.example.test"]
    assert key["status"] == "fail" and "not the public half of the private key on mx1" in key["summary"]
    assert key["details"]["hosts"] == [{"host": "mx1", "matches": False}]


def test_dns_weak_key_is_refused_by_dkim_key_check(world, rsa1024):
    zone = dict(world["zone"])
    zone[("r1._domainkey.example.test", "TXT")] = ["v=DKIM1; k=rsa; p=" + _p(rsa1024)]
    assert "1024 bits" in _run(world, zone)["dns.dkim_key.r1.example.test"]["summary"]


def test_dns_report_authorization_missing_fails(world):
    zone = {k: v for k, v in world["zone"].items() if "_report._dmarc" not in k[0]}
    check = _run(world, zone)["dns.dmarc_report_auth.example.test"]
    assert check["status"] == "fail" and "example.test._report._dmarc.partner.test." in check["summary"]


def test_dns_report_destination_only_in_published_record_is_checked(world):
    zone = dict(world["zone"])
    dmarc = next(r["value"] for r in world["records"] if r["kind"] == "dmarc")
    zone[("_dmarc.example.test", "TXT")] = [dmarc + ",mailto:x@elsewhere.test"]
    checks = _run(world, zone)
    assert checks["dns.dmarc.example.test"]["status"] == "fail"
    auth = checks["dns.dmarc_report_auth.example.test"]
    assert auth["status"] == "fail" and "elsewhere.test" in auth["summary"]


def test_dns_invalid_published_dmarc_fails_syntax(world):
    zone = dict(world["zone"])
    zone[("_dmarc.example.test", "TXT")] = ["v=DMARC1; p=maybe"]
    assert _run(world, zone)["dns.dmarc_syntax.example.test"]["status"] == "fail"


def test_dns_servfail_and_mx_and_address_differences(world):
    zone = dict(world["zone"])
    zone[("_dmarc.example.test", "TXT")] = "SERVFAIL"
    zone[("example.test", "MX")] = ["10 mx.example.test.", "20 backup.example.test."]
    zone[("mx.example.test", "A")] = ["192.0.2.26"]
    checks = _run(world, zone)
    assert "cannot be read: SERVFAIL" in checks["dns.dmarc.example.test"]["summary"]
    assert checks["dns.mx.example.test"]["details"]["unexpected"] == ["20 backup.example.test."]
    assert checks["dns.a.mx.example.test"]["status"] == "fail"


def test_dns_spf_limit_and_deadline_are_failed_checks_with_a_clear_message(world):
    zone = dict(world["zone"])
    zone[("example.test", "TXT")] = ["v=spf1 include:n0.evil.test -all"]
    log = []
    inner = fake_resolver(zone)
    synth = synthesizing_resolver(10, log)

    def resolve(name, rtype):
        return synth(name, rtype) if name.endswith("evil.test") else inner(name, rtype)

    checks = by_id(audit.dns_checks(world["records"], world["domains"], {"mx1": world["keys"]}, resolve))
    limits = checks["dns.spf_limits.example.test"]
    assert limits["status"] == "fail"
    assert "more than 10 DNS-querying terms" in limits["summary"] and "stopped" in limits["summary"]
    assert len(log) <= 10
    # a walk cut short by the deadline fails too, and says that the check is incomplete
    clock = FakeClock(step=0)
    published = fake_resolver(world["zone"])  # v=spf1 mx include:_spf.partner.test -all

    def slow(name, rtype):
        clock.now += 30
        return published(name, rtype)

    checks = by_id(audit.dns_checks(world["records"], world["domains"], {"mx1": world["keys"]}, slow,
                                    spf_deadline=20, clock=clock))
    limits = checks["dns.spf_limits.example.test"]
    assert limits["status"] == "fail" and "cut short" in limits["summary"] and "incomplete" in limits["summary"]
    assert limits["details"]["questions"] == 1 and limits["details"]["cut_short"]


def test_dns_kinds_limit_the_checks(world):
    checks = _run(world, kinds=["spf"])
    assert set(checks) == {"dns.spf.example.test", "dns.spf_limits.example.test"}


# --------------------------------------------------------------------------------------------
# SMTP verdicts
# --------------------------------------------------------------------------------------------


def _cert(name="mx.example.test", days=90, key=None):
    from cryptography.hazmat.primitives.asymmetric import ec
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(), cert


def _good_probe(cert_b64):
    relay = {name: [{"rcpt_to": rcpt, "mail": [250, "2.1.0 Ok"], "rcpt": [554, "5.7.1 Relay access denied"]}]
             for name, rcpt in audit.relay_recipients("example.test", "mx.example.test").items()}
    tls = {"ok": True, "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "cert_der_b64": cert_b64,
           "verify": {"ok": False, "error": "self-signed certificate", "code": 18}}
    return {"ports": {
        "25": {"connect": {"ok": True}, "banner": [220, "mx.example.test ESMTP"], "ehlo": [250, "x"],
               "extensions": ["PIPELINING", "SIZE 52428800", "STARTTLS", "8BITMIME"],
               "vrfy": [502, "5.5.1 VRFY command is disabled"], "expn": [502, "5.5.2 Error: command not recognized"],
               "relay": relay, "starttls": tls,
               "tls_legacy": {"TLSv1": {"result": "refused", "error": "TLSV1_ALERT_PROTOCOL_VERSION"},
                              "TLSv1.1": {"result": "refused", "error": "TLSV1_ALERT_PROTOCOL_VERSION"}}},
        "587": {"connect": {"ok": False, "refused": True, "error": "ConnectionRefusedError"}}}}


def _smtp(probe, **kwargs):
    return by_id(audit.smtp_checks(probe, "mx.example.test", "mx.example.test", **kwargs))


def test_smtp_good_server_passes_with_self_signed_warning():
    cert_b64, _ = _cert()
    checks = _smtp(_good_probe(cert_b64))
    assert {k: c["status"] for k, c in checks.items() if c["status"] != "pass"} == \
        {"smtp.cert_trust.mx.example.test": "warn"}
    for name in audit.RELAY_PROBES:
        assert checks["smtp.relay.%s.mx.example.test" % name]["status"] == "pass"
    assert "not listening" in checks["smtp.auth_before_tls.587.mx.example.test"]["summary"]
    assert _smtp(_good_probe(cert_b64), require_trusted_cert=True)["smtp.cert_trust.mx.example.test"]["status"] == "fail"


@pytest.mark.parametrize("code, status", [(250, "fail"), (251, "fail"), (454, "warn"), (550, "pass")])
def test_smtp_relay_reply_classes(code, status):
    cert_b64, _ = _cert()
    probe = _good_probe(cert_b64)
    probe["ports"]["25"]["relay"]["percent_hack"][0]["rcpt"] = [code, "whatever"]
    checks = _smtp(probe)
    assert checks["smtp.relay.percent_hack.mx.example.test"]["status"] == status
    assert checks["smtp.relay.bang_path.mx.example.test"]["status"] == "pass"


def test_smtp_relay_probe_strings():
    rcpts = audit.relay_recipients("example.test", "mx.example.test")
    assert rcpts == {"foreign": "<user@other.test>", "percent_hack": "<user%other.test@example.test>",
                     "bang_path": "<other.test!user@example.test>",
                     "quoted_local": '<"user@other.test"@example.test>',
                     "source_route": "<@mx.example.test:user@other.test>"}


def test_smtp_vrfy_answered_auth_before_tls_and_legacy_tls_accepted_fail():
    cert_b64, _ = _cert()
    probe = _good_probe(cert_b64)
    port = probe["ports"]["25"]
    port["vrfy"] = [252, "2.0.0 postmaster"]
    port["extensions"].append("AUTH PLAIN LOGIN")
    port["tls_legacy"]["TLSv1"] = {"result": "accepted", "cipher": "ECDHE-RSA-AES128-SHA"}
    port["tls_legacy"]["TLSv1.1"] = {"result": "client_unsupported", "error": "NO_PROTOCOLS_AVAILABLE"}
    checks = _smtp(probe)
    assert checks["smtp.vrfy.mx.example.test"]["status"] == "fail"
    assert checks["smtp.auth_before_tls.25.mx.example.test"]["status"] == "fail"
    assert checks["smtp.tls_legacy.TLSv1.mx.example.test"]["status"] == "fail"
    assert checks["smtp.tls_legacy.TLSv1_1.mx.example.test"]["status"] == "warn"


def test_smtp_certificate_name_expiry_and_tlsa():
    cert_b64, cert = _cert(name="other.example.test", days=10)
    checks = _smtp(_good_probe(cert_b64), cert_min_days=21)
    assert checks["smtp.cert_name.mx.example.test"]["status"] == "fail"
    assert checks["smtp.cert_expiry.mx.example.test"]["status"] == "fail"
    assert _smtp(_good_probe(cert_b64), cert_min_days=5)["smtp.cert_expiry.mx.example.test"]["status"] == "pass"
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    good = "3 1 1 " + hashlib.sha256(spki).hexdigest().upper()
    assert _smtp(_good_probe(cert_b64), tlsa=[good])["smtp.tlsa_match.mx.example.test"]["status"] == "pass"
    assert _smtp(_good_probe(cert_b64), tlsa=["3 1 1 " + "00" * 32])["smtp.tlsa_match.mx.example.test"]["status"] == "fail"
    assert "smtp.tlsa_match.mx.example.test" not in _smtp(_good_probe(cert_b64))


def test_probe_inside_mynetworks_turns_relay_passes_into_warnings():
    cert_b64, _ = _cert()
    probe = _good_probe(cert_b64)
    probe["ports"]["25"]["connect"]["local_address"] = "10.89.0.1"
    checks = _smtp(probe, mynetworks=["127.0.0.0/8", "[::1]/128"])
    assert checks["smtp.probe_position.mx.example.test"]["status"] == "pass"
    assert checks["smtp.relay.foreign.mx.example.test"]["status"] == "pass"
    checks = _smtp(probe, mynetworks=["127.0.0.0/8", "10.89.0.0/24", "hash:/etc/postfix/network_table"])
    assert checks["smtp.probe_position.mx.example.test"]["status"] == "warn"
    assert "10.89.0.0/24" in checks["smtp.probe_position.mx.example.test"]["summary"]
    assert all(checks["smtp.relay.%s.mx.example.test" % p]["status"] == "warn" for p in audit.RELAY_PROBES)
    assert audit.probe_inside("::1", ["[::1]/128"]) == "::1/128"
    assert audit.probe_inside("::ffff:127.0.0.1", ["127.0.0.0/8"]) == "127.0.0.0/8"


def test_hostname_matching_rules():
    assert audit.hostname_matches("mx.example.test", ["*.example.test"])
    assert not audit.hostname_matches("a.mx.example.test", ["*.example.test"])
    assert not audit.hostname_matches("example.test", ["*.example.test"])
    assert audit.hostname_matches("MX.example.test.", ["mx.example.test"])


def test_smtp_port_25_down_and_no_starttls_fail():
    probe = {"ports": {"25": {"connect": {"ok": False, "refused": True, "error": "refused"}}}}
    checks = _smtp(probe)
    assert checks["smtp.connect.25.mx.example.test"]["status"] == "fail"
    cert_b64, _ = _cert()
    probe = _good_probe(cert_b64)
    probe["ports"]["25"]["extensions"].remove("STARTTLS")
    probe["ports"]["25"].pop("starttls")
    probe["ports"]["25"].pop("tls_legacy")
    checks = _smtp(probe)
    assert checks["smtp.starttls.25.mx.example.test"]["status"] == "fail"
    assert checks["smtp.tls_modern.mx.example.test"]["status"] == "fail"


# --------------------------------------------------------------------------------------------
# Drift and report
# --------------------------------------------------------------------------------------------

LIVE = """alias_maps = hash:/etc/aliases
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
    reject_unauth_destination
message_size_limit = 52428800
"""


def test_drift_names_the_differing_parameters():
    same = audit.drift_checks("mx", LIVE, LIVE + "config_directory = /tmp/x\n")
    assert [c["status"] for c in same] == ["pass"]  # postconf -c DIR reports its DIR: not drift
    edited = LIVE.replace("52428800", "1024").replace("    reject_unauth_destination\n", "") + "biff = yes\n"
    (check,) = audit.drift_checks("mx", edited, LIVE)
    assert check["id"] == "drift.main_cf.mx" and check["status"] == "fail"
    assert [d["name"] for d in check["details"]["differences"]] == ["biff", "message_size_limit",
                                                                     "smtpd_relay_restrictions"]
    assert audit.parse_postconf(LIVE)["smtpd_relay_restrictions"] == \
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"


def test_drift_master_cf_and_candidate_warnings():
    master = "smtp       inet  n       -       y       -       -       smtpd\n"
    checks = by_id(audit.drift_checks("mx", LIVE, LIVE, master, master + "submission inet n - y - - smtpd\n",
                                      warnings=["postconf: warning: x"]))
    assert checks["drift.main_cf.mx"]["status"] == "warn"
    assert checks["drift.master_cf.mx"]["status"] == "fail"
    assert "submission/inet" in checks["drift.master_cf.mx"]["summary"]


def test_drift_from_output_sections():
    out = "@@@live-n\n%s@@@candidate-n\n%s@@@live-M\nx\n@@@candidate-M\nx\n@@@candidate-warnings" % (LIVE, LIVE)
    assert [c["status"] for c in filters.audit_drift_from_output("mx", out)] == ["pass", "pass"]


def test_report_aggregation_and_markdown():
    checks = [audit.check("b.two", "warn", "meh"), audit.check("a.one", "pass", "ok"),
              audit.check("c.three", "fail", "broken | badly")]
    report = audit.aggregate(checks, {"hosts": ["mx"]})
    assert report["status"] == "fail"
    assert [c["id"] for c in report["checks"]] == ["a.one", "b.two", "c.three"]
    assert report["counts"] == {"pass": 1, "warn": 1, "fail": 1, "total": 3}
    assert report["failed"] == ["c.three"] and report["warned"] == ["b.two"]
    page = audit.render_markdown(report)
    assert page.startswith("# mailward audit: FAIL")
    assert "## Failed\n\n- `c.three`: broken \\| badly" in page
    assert audit.aggregate([audit.check("a.one", "pass", "ok")])["status"] == "pass"
    with pytest.raises(ValueError):
        audit.aggregate(checks + [audit.check("a.one", "pass", "again")])
    with pytest.raises(ValueError):
        audit.check("x", "ok", "no such status")


def test_relay_probe_filter_runs_the_foreign_probe_once():
    probes = filters.audit_relay_probes([{"name": "a.test"}, {"name": "b.test"}], "mx.a.test")
    names = [p["name"] for p in probes]
    assert names.count("foreign") == 1 and names.count("percent_hack") == 2
    assert filters.audit_kinds(["ADDRESS", "SPF"]) == ["a", "aaaa", "spf"]


def test_merge_filter_refuses_a_key_a_host_does_not_hold():
    """The audit merges like the dns role: a host's key for another host's selector is an error."""
    spec = [{"name": "example.test", "dkim": [{"selector": "s1", "type": "rsa", "hosts": ["mx1"]}]}]
    hostvars = {host: {"mail_domains_normalized": mail_domains_normalize(spec, host, host + ".example.test"),
                       "mail_hostname": host + ".example.test", "opendkim_public_keys": keys}
                for host, keys in (("mx1", []), ("mx2", [{"domain": "example.test", "selector": "s1",
                                                          "type": "rsa", "public_key": "PEM"}]))}
    merged = filters.audit_merge_hosts(["mx1", "mx2"], hostvars)
    assert "host mx2" in merged["error"] and "domain example.test selector s1" in merged["error"]
    assert merged["public_keys"] == []
    merged = filters.audit_merge_hosts(["mx1"], hostvars)
    assert "error" not in merged and [d["name"] for d in merged["domains"]] == ["example.test"]
