"""dkim_record with real keys generated in the test run."""
import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.mailward.mail.plugins.module_utils.records import dkim_record
from mw_testlib import public_pem, refusal

D = "example.test"
MESSAGE = (b"From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: hi\r\n"
           b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\n"
           b"Hello Bob.\r\n")


def p_tag(record):
    return dict(part.split("=", 1) for part in record.split("; "))["p"]


def test_rsa_2048_record_carries_the_subjectpublickeyinfo(rsa2048):
    record = dkim_record(public_pem(rsa2048), domain=D, selector="s1")
    assert record.startswith("v=DKIM1; k=rsa; p=")
    der = base64.b64decode(p_tag(record), validate=True)
    assert der == rsa2048.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert serialization.load_der_public_key(der).public_numbers() == \
        rsa2048.public_key().public_numbers()


def test_rsa_4096_accepted(rsa4096):
    assert dkim_record(public_pem(rsa4096)).startswith("v=DKIM1; k=rsa; p=")


def test_pkcs1_rsa_public_key_is_published_as_subjectpublickeyinfo(rsa2048):
    pkcs1 = rsa2048.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.PKCS1).decode()
    assert "BEGIN RSA PUBLIC KEY" in pkcs1
    assert dkim_record(pkcs1) == dkim_record(public_pem(rsa2048))


def test_ed25519_record_carries_the_raw_32_byte_key(ed25519_key):
    record = dkim_record(public_pem(ed25519_key).encode(), key_type="ed25519")
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(p_tag(record), validate=True)
    assert len(raw) == 32
    assert raw == ed25519_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)


@pytest.mark.parametrize("key", [None, "", "  \n", b""])
def test_empty_key_gives_the_revocation_record(key):
    assert dkim_record(key, domain=D, selector="old") == "v=DKIM1; p="


def _verify(message, record):
    return dkim.verify(message, dnsfunc=lambda name, timeout=5: record.encode())


def test_dkimpy_verifies_a_signature_against_the_rsa_record(rsa2048):
    private = rsa2048.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    signed = dkim.sign(MESSAGE, b"s1", b"example.test", private) + MESSAGE
    assert _verify(signed, dkim_record(public_pem(rsa2048)))
    assert not _verify(signed, "v=DKIM1; p=")


def test_ed25519_record_key_verifies_a_signature_of_the_private_key(ed25519_key):
    # dkimpy needs pynacl for ed25519 (not installed): check the published key directly.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    record = dkim_record(public_pem(ed25519_key), key_type="ed25519")
    published = Ed25519PublicKey.from_public_bytes(base64.b64decode(p_tag(record)))
    published.verify(ed25519_key.sign(MESSAGE), MESSAGE)  # raises InvalidSignature if wrong


def test_rsa_1024_refused(rsa1024):
    message = refusal(dkim_record, public_pem(rsa1024), domain=D, selector="s1")
    assert message.startswith("dkim_record: example.test selector s1: public_key: ")
    assert "1024-bit" in message and "RFC 8301 §3.2" in message


def test_rsa_over_4096_refused(rsa4104):
    message = refusal(dkim_record, public_pem(rsa4104), domain=D)
    assert "4104-bit" in message and "RFC 8301 §3.2" in message


def test_type_mismatch_refused(rsa2048, ed25519_key):
    message = refusal(dkim_record, public_pem(ed25519_key), key_type="rsa", domain=D)
    assert "ed25519 key but key_type is rsa" in message and "RFC 6376 §3.6.1" in message
    message = refusal(dkim_record, public_pem(rsa2048), key_type="ed25519", domain=D)
    assert "rsa key but key_type is ed25519" in message


def test_unsupported_key_type_refused(ec_key):
    message = refusal(dkim_record, public_pem(ec_key), domain=D)
    assert "public_key" in message and "rsa or ed25519" in message


def test_unknown_key_type_argument_refused(rsa2048):
    message = refusal(dkim_record, public_pem(rsa2048), key_type="dsa", domain=D)
    assert "key_type: 'dsa'" in message


@pytest.mark.parametrize("garbage", [
    "not a key",
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    b"\x00\x01binary",
    12345,
    "-----BEGIN PUBLIC KEY-----\nbücher\n-----END PUBLIC KEY-----\n",
])
def test_garbage_refused(garbage):
    message = refusal(dkim_record, garbage, domain=D, selector="s1")
    assert message.startswith("dkim_record: example.test selector s1: public_key: ")


def test_private_key_refused_without_echoing_it(rsa2048):
    private = rsa2048.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    message = refusal(dkim_record, private, domain=D)
    assert "PRIVATE key" in message
    body = private.splitlines()[1]
    assert body[:20] not in message
