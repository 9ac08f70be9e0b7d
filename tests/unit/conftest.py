"""Make filter_plugins/ importable and provide real keys and certificates made in the test run.

Ansible loads filter_plugins/ by path; the tests import the modules by name.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FILTER_PLUGINS = os.path.abspath(os.path.join(HERE, "..", "..", "filter_plugins"))
for path in (FILTER_PLUGINS, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

from mw_testlib import self_signed  # noqa: E402  (needs the path above)


def _rsa(bits):
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


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


@pytest.fixture(scope="session")
def cert_pem(rsa2048):
    return self_signed(rsa2048)


@pytest.fixture(scope="session")
def other_cert_pem(ec_key):
    return self_signed(ec_key, "ca.example.test")
