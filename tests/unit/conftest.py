"""Real keys and certificates made in the test run (mw_testlib sits beside this file: pytest's rootdir-relative import)."""
import pytest
from mw_testlib import self_signed


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
