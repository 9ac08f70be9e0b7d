"""Make filter_plugins/ importable and provide real keys and certificates made in the test run.

Ansible loads filter_plugins/ by path; the tests import the modules by name.
"""
import datetime
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FILTER_PLUGINS = os.path.abspath(os.path.join(HERE, "..", "..", "filter_plugins"))
for path in (FILTER_PLUGINS, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)


def _rsa(bits):
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_pem(private_key):
    """PEM SubjectPublicKeyInfo of a private key's public half (what opendkim exports)."""
    from cryptography.hazmat.primitives import serialization
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="session")
def rsa1024():
    return _rsa(1024)


@pytest.fixture(scope="session")
def rsa2048():
    return _rsa(2048)


@pytest.fixture(scope="session")
def rsa4096():
    return _rsa(4096)


@pytest.fixture(scope="session")
def rsa4104():
    return _rsa(4104)


@pytest.fixture(scope="session")
def ed25519_key():
    from cryptography.hazmat.primitives.asymmetric import ed25519
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def ec_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


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


@pytest.fixture(scope="session")
def cert_pem(rsa2048):
    return self_signed(rsa2048)


@pytest.fixture(scope="session")
def other_cert_pem(ec_key):
    return self_signed(ec_key, "ca.example.test")
