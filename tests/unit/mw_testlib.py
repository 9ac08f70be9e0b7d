"""Helpers for the unit tests, independent of the code under test."""
import datetime
import os
import re

import pytest
from ansible.errors import AnsibleFilterError

# The collections root that holds mailward.mail (a link to the repository): ANSIBLE_COLLECTIONS_PATH.
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "collections"))


def refusal(function, *args, **kwargs):
    """Call ``function`` expecting an AnsibleFilterError; return its message."""
    with pytest.raises(AnsibleFilterError) as info:
        function(*args, **kwargs)
    return str(info.value)


def parse_txt_presentation(text):
    """Parse zone-file TXT RDATA (quoted strings, \\X and \\DDD escapes) into a list of bytes."""
    data = text.encode("utf-8")
    strings, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 1] == b" ":
            pos += 1
            continue
        assert data[pos:pos + 1] == b'"', "expected a quote at %d in %r" % (pos, text)
        pos += 1
        out = bytearray()
        while True:
            byte = data[pos:pos + 1]
            assert byte, "unterminated string in %r" % text
            if byte == b'"':
                pos += 1
                break
            if byte == b"\\":
                if re.match(rb"\d{3}", data[pos + 1:pos + 4]):
                    out.append(int(data[pos + 1:pos + 4]))
                    pos += 4
                else:
                    out += data[pos + 1:pos + 2]
                    pos += 2
                continue
            assert byte not in (b"\n", b"\r"), "raw line break inside a string"
            out += byte
            pos += 1
        strings.append(bytes(out))
    return strings


def _der_tlv(data, pos):
    """(tag, content start, end) of the DER element at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return tag, pos, pos + length


def spki_from_certificate_der(der):
    """The SubjectPublicKeyInfo element of an X.509 certificate, by walking the DER by hand."""
    _, cert_start, _ = _der_tlv(der, 0)            # Certificate ::= SEQUENCE
    _, tbs_start, tbs_end = _der_tlv(der, cert_start)  # tbsCertificate ::= SEQUENCE
    fields, pos = [], tbs_start
    while pos < tbs_end:
        tag, _, end = _der_tlv(der, pos)
        fields.append((tag, pos, end))
        pos = end
    first = 1 if fields[0][0] == 0xA0 else 0        # [0] version is optional
    _, start, end = fields[first + 5]                # serial, sigalg, issuer, validity, subject, spki
    return der[start:end]


def public_pem(private_key):
    """PEM SubjectPublicKeyInfo of a private key's public half (what opendkim exports)."""
    from cryptography.hazmat.primitives import serialization
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def self_signed(private_key, name="mx.example.test"):
    """A self-signed certificate (PEM text) for ``name``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(private_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()
