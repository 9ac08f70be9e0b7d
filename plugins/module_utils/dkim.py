# -*- coding: utf-8 -*-
"""DKIM key facts shared by the inventory check, the dkim_keys module, the records and the audit.

Pure Python; ``cryptography`` is imported only by ``public_key_value``. Modules run this file
on managed hosts too.
"""

import base64
import os

# RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits and SHOULD use 2048; verifiers
# need not accept more than 4096. mailward signs with 2048..4096 and flags less in DNS.
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096
RSA_DEFAULT_BITS = 2048
KEY_TYPES = ("rsa", "ed25519")


def rsa_bits(value):
    """The RSA size of a selector spec's ``bits`` (None or 0: the default)."""
    return int(value or RSA_DEFAULT_BITS)


def key_path(directory, domain, selector):
    """Where the private key of domain/selector lives: <directory>/<domain>/<selector>.private."""
    return os.path.join(str(directory).rstrip("/") or "/", domain, selector + ".private")


def public_key_value(public_key, key_type="rsa"):
    """The p= value of a public key object or PEM: base64 of the SubjectPublicKeyInfo DER (rsa,
    RFC 6376 §3.6.1) or of the raw 32-byte key (ed25519, RFC 8463 §4.2). No size checks."""
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    if isinstance(public_key, (str, bytes)):
        data = public_key.encode("ascii") if isinstance(public_key, str) else public_key
        public_key = serialization.load_pem_public_key(data)
    if key_type == "ed25519":
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode("ascii")
