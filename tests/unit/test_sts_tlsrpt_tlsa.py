"""mta_sts_record / mta_sts_policy / mta_sts_policy_id, tlsrpt_record, tlsa_record."""
import hashlib
import re
import ssl

import dns.rdata
import pytest

from ansible_collections.mailward.mail.plugins.module_utils.records import (mta_sts_policy, mta_sts_policy_id, mta_sts_record, tlsa_record,
                              tlsrpt_record)
from mw_testlib import public_pem, refusal, spki_from_certificate_der

D = "example.test"


# ---------------------------------------------------------------- MTA-STS

@pytest.mark.parametrize("policy_id, expected", [
    ("20261123", "v=STSv1; id=20261123"), (20261123, "v=STSv1; id=20261123"),
    ("a" * 32, "v=STSv1; id=" + "a" * 32), ("X", "v=STSv1; id=X"),
])
def test_mta_sts_record(policy_id, expected):
    assert mta_sts_record(policy_id) == expected


@pytest.mark.parametrize("bad", ["", "a" * 33, "2026-11-23", "id 1", None, True, "ünï"])
def test_mta_sts_record_refusals(bad):
    message = refusal(mta_sts_record, bad, domain=D)
    assert message.startswith("mta_sts_record: example.test: id: ") and "RFC 8461 §3.1" in message


def test_policy_text_uses_crlf_line_ends():
    text = mta_sts_policy("enforce", ["mx1.example.test", {"host": "MX2.example.test"},
                                      "*.backup.example.test", "mx1.example.test"], 604800)
    assert text == ("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\n"
                    "mx: mx2.example.test\r\nmx: *.backup.example.test\r\nmax_age: 604800\r\n")
    assert "\n" not in text.replace("\r\n", "")


def test_policy_mode_none_may_list_no_mx_and_max_age_bounds():
    assert mta_sts_policy("none", [], 0) == "version: STSv1\r\nmode: none\r\nmax_age: 0\r\n"
    assert mta_sts_policy("testing", "mx.example.test", "31557600").endswith(
        "max_age: 31557600\r\n")


@pytest.mark.parametrize("args, path, rule", [
    (("strict", ["mx.example.test"], 86400), "mode", "RFC 8461 §3.2"),
    (("enforce", [], 86400), "mx", "RFC 8461 §3.2"),
    (("enforce", ["mx.*.example.test"], 86400), "mx", "RFC 8461"),
    (("enforce", ["*.*.example.test"], 86400), "mx", "RFC 8461"),
    (("enforce", ["*.test"], 86400), "mx", "two labels"),
    (("enforce", ["mx.example.test"], 31557601), "max_age", "RFC 8461 §3.2"),
    (("enforce", ["mx.example.test"], -1), "max_age", "RFC 8461 §3.2"),
    (("enforce", ["mx.example.test"], True), "max_age", "RFC 8461 §3.2"),
    (("enforce", ["mx.example.test"], "1w"), "max_age", "RFC 8461 §3.2"),
])
def test_policy_refusals(args, path, rule):
    message = refusal(mta_sts_policy, *args, domain=D)
    assert message.startswith("mta_sts_policy: example.test: %s: " % path), message
    assert rule in message


def test_policy_id_is_stable_valid_and_changes_with_the_policy():
    one = mta_sts_policy("enforce", ["mx.example.test"], 604800)
    two = mta_sts_policy("testing", ["mx.example.test"], 604800)
    assert mta_sts_policy_id(one) == mta_sts_policy_id(str(one))
    assert mta_sts_policy_id(one) == hashlib.sha256(one.encode()).hexdigest()[:20]
    assert mta_sts_policy_id(one) != mta_sts_policy_id(two)
    assert re.fullmatch(r"[0-9a-f]{20}", mta_sts_policy_id(one))
    assert mta_sts_record(mta_sts_policy_id(one)) == "v=STSv1; id=" + mta_sts_policy_id(one)
    assert "RFC 8461" in refusal(mta_sts_policy_id, "", domain=D)


# ---------------------------------------------------------------- TLS-RPT

@pytest.mark.parametrize("rua, expected", [
    ("mailto:tls@example.test", "v=TLSRPTv1; rua=mailto:tls@example.test"),
    (["mailto:tls@example.test", "https://Reports.Example.NET/v1/tlsrpt",
      "mailto:tls@example.test"],
     "v=TLSRPTv1; rua=mailto:tls@example.test,https://reports.example.net/v1/tlsrpt"),
    (["mailto:a,b@example.test"], "v=TLSRPTv1; rua=mailto:a%2Cb@example.test"),
])
def test_tlsrpt_record(rua, expected):
    assert tlsrpt_record(rua) == expected


@pytest.mark.parametrize("rua, term", [
    ([], "at least one"),
    (None, "at least one"),
    (["http://r.example.net/"], "'http://r.example.net/'"),
    (["tls@example.test"], "'tls@example.test'"),
    (["https://r.example.net/a,b"], "%2C"),
    (["https://r.example.net/a;b"], "%3B"),
    (["https://user@r.example.net/"], "user information"),
    (["https://r_example/"], "host"),
    (["mailto:tls@localhost"], "two labels"),
])
def test_tlsrpt_refusals(rua, term):
    message = refusal(tlsrpt_record, rua, domain=D)
    assert message.startswith("tlsrpt_record: example.test: rua: ") and "RFC 8460 §3" in message
    assert term in message


# ---------------------------------------------------------------- TLSA

def independent_tlsa_data(pem, selector):
    der = ssl.PEM_cert_to_DER_cert(pem)
    return der if selector == 0 else spki_from_certificate_der(der)


@pytest.mark.parametrize("usage, selector, matching", [
    (3, 1, 1), (3, 0, 1), (3, 1, 2), (2, 0, 1), (3, 1, 0), (2, 0, 0), (1, 1, 1), (0, 0, 2),
])
def test_tlsa_matches_an_independent_computation(cert_pem, usage, selector, matching):
    data = independent_tlsa_data(cert_pem, selector)
    digest = {0: data, 1: hashlib.sha256(data).digest(), 2: hashlib.sha512(data).digest()}
    expected = "%d %d %d %s" % (usage, selector, matching, digest[matching].hex())
    assert tlsa_record(cert_pem, usage, selector, matching) == expected
    dns.rdata.from_text("IN", "TLSA", expected)  # valid presentation


def test_tlsa_default_is_3_1_1(cert_pem):
    data = independent_tlsa_data(cert_pem, 1)
    assert tlsa_record(cert_pem) == "3 1 1 " + hashlib.sha256(data).hexdigest()


def test_tlsa_from_a_public_key_for_selector_1(cert_pem, rsa2048):
    assert tlsa_record(public_pem(rsa2048)) == tlsa_record(cert_pem)
    assert "selector 1" in refusal(tlsa_record, public_pem(rsa2048), 3, 0, 1, domain=D)


def test_tlsa_chain_uses_the_first_certificate_for_end_entity_usages(cert_pem, other_cert_pem):
    chain = cert_pem + other_cert_pem
    assert tlsa_record(chain) == tlsa_record(cert_pem)
    message = refusal(tlsa_record, chain, 2, 0, 1, domain="mx.example.test")
    assert "2 certificates" in message and "RFC 6698 §2.1.1" in message


@pytest.mark.parametrize("kwargs, path, rule", [
    ({"usage": 4}, "usage", "RFC 6698 §2.1.1"),
    ({"selector": 2}, "selector", "RFC 6698 §2.1.2"),
    ({"matching": 3}, "matching", "RFC 6698 §2.1.3"),
    ({"usage": "three"}, "usage", "RFC 6698 §2.1.1"),
])
def test_tlsa_parameter_refusals(cert_pem, kwargs, path, rule):
    message = refusal(tlsa_record, cert_pem, domain="mx.example.test", **kwargs)
    assert message.startswith("tlsa_record: mx.example.test: %s: " % path) and rule in message


@pytest.mark.parametrize("garbage", ["nonsense", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                     "-----END CERTIFICATE-----\n", 42])
def test_tlsa_garbage_refused(garbage):
    message = refusal(tlsa_record, garbage, domain="mx.example.test")
    assert message.startswith("tlsa_record: mx.example.test: cert_pem: ")


def test_tlsa_private_key_refused(rsa2048):
    from cryptography.hazmat.primitives import serialization
    private = rsa2048.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    assert "PRIVATE key" in refusal(tlsa_record, private)
