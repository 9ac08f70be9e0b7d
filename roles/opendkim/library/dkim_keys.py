#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: make sure every DKIM private key exists, in one round trip."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dkim_keys
short_description: Generate missing DKIM keys and return every public key
description:
  - Takes the full list of (domain, selector, type, bits) for a host and, in one call,
    generates the keys that are missing (RSA or Ed25519, with openssl), fixes owner and mode,
    and returns the public key of every selector so that the DNS records can be published.
  - An existing key is never replaced. If its type or size differs from what is asked for,
    the module fails, because a new key needs a new selector (publish it first, then sign).
  - Reading a public key costs two openssl runs (about 35 ms); with a thousand domains that was
    most of an idempotent re-run. The type, size and public key of every key are therefore kept
    in C(<directory>/.public-keys.json) (root, 0600), keyed by the private key's inode, size,
    mtime and ctime; a key whose file changed in any way is read again. The cache is not state
    the user manages: deleting it only costs one slow run. Writing it does not count as a change.
options:
  keys:
    description: List of dicts with domain, selector, type (rsa|ed25519) and bits (rsa).
    type: list
    elements: dict
    required: true
  directory:
    description: Base directory; a key lives at <directory>/<domain>/<selector>.private.
    type: path
    required: true
  owner:
    description: Owner of the key files and of the per-domain directories.
    type: str
    required: true
  group:
    description: Group of the key files and directories.
    type: str
    required: true
author: mailward
"""

RETURN = r"""
public_keys:
  description: One item per key, with domain, selector, type, bits, path and public_key (PEM).
  type: list
  returned: always
generated:
  description: The keys that were generated in this run, as domain/selector.
  type: list
  returned: always
"""

import grp
import json
import os
import pwd
import subprocess

from ansible.module_utils.basic import AnsibleModule

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - fallback to the openssl command
    HAS_CRYPTOGRAPHY = False


def key_path(directory, domain, selector):
    """Where the private key of domain/selector lives."""
    return os.path.join(directory, domain, selector + ".private")


def generate(module, path, key_type, bits):
    """Generate a private key with openssl, created 0600 from the start."""
    if key_type == "rsa":
        argv = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits]
    else:
        argv = ["openssl", "genpkey", "-algorithm", "ED25519"]
    tmp = path + ".tmp"
    old_umask = os.umask(0o077)
    try:
        rc, out, err = module.run_command(argv + ["-out", tmp])
    finally:
        os.umask(old_umask)
    if rc != 0:
        module.fail_json(msg="openssl could not generate %s: %s" % (path, err.strip()))
    os.rename(tmp, path)


def describe(module, path):
    """Return (type, bits, public PEM) of an existing private key."""
    if HAS_CRYPTOGRAPHY:
        with open(path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        if isinstance(key, rsa.RSAPrivateKey):
            return "rsa", key.key_size, public
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "ed25519", 0, public
        return type(key).__name__, 0, public
    rc, text, err = module.run_command(["openssl", "pkey", "-in", path, "-noout", "-text"])
    if rc != 0:
        module.fail_json(msg="%s is not a readable private key: %s" % (path, err.strip()))
    rc, public, err = module.run_command(["openssl", "pkey", "-in", path, "-pubout"])
    first = text.splitlines()[0] if text else ""
    if "ED25519" in first.upper():
        return "ed25519", 0, public
    bits = int("".join(ch for ch in first.split("(")[-1].split("bit")[0] if ch.isdigit()) or 0)
    return "rsa", bits, public


CACHE_NAME = ".public-keys.json"


def file_signature(path):
    """What must stay the same for a cached public key to still be right."""
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def load_cache(directory):
    """The cache as a dict path -> entry; an unreadable or foreign file counts as empty."""
    try:
        with open(os.path.join(directory, CACHE_NAME)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("keys"), dict):
        return {}
    return data["keys"]


def save_cache(directory, entries):
    """Write the cache atomically, readable by root only."""
    path = os.path.join(directory, CACHE_NAME)
    tmp = path + ".tmp"
    old_umask = os.umask(0o077)
    try:
        with open(tmp, "w") as handle:
            json.dump({"version": 1, "keys": entries}, handle, sort_keys=True)
        os.rename(tmp, path)
    finally:
        os.umask(old_umask)


def describe_cached(module, path, cache, fresh):
    """describe(), but from the cache when the key file has not changed since it was read.

    Every entry used or made is put into fresh (the next cache): keys that left the inventory
    drop out of it.
    """
    signature = file_signature(path)
    entry = cache.get(path)
    if not (isinstance(entry, dict) and entry.get("signature") == signature
            and isinstance(entry.get("public"), str)):
        have_type, have_bits, public = describe(module, path)
        entry = dict(signature=signature, type=have_type, bits=have_bits, public=public)
    fresh[path] = entry
    return entry["type"], entry["bits"], entry["public"]


def ensure_owner_mode(path, uid, gid, mode):
    """Set owner, group and mode; return True if anything changed."""
    st = os.stat(path)
    changed = False
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        changed = True
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        changed = True
    return changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keys=dict(type="list", elements="dict", required=True, no_log=False),
            directory=dict(type="path", required=True),
            owner=dict(type="str", required=True),
            group=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    directory = module.params["directory"]
    uid = pwd.getpwnam(module.params["owner"]).pw_uid
    gid = grp.getgrnam(module.params["group"]).gr_gid

    changed = False
    generated = []
    public_keys = []
    problems = []
    cache = load_cache(directory)
    fresh = {}
    for item in module.params["keys"]:
        domain, selector = item["domain"], item["selector"]
        key_type = item.get("type", "rsa")
        bits = int(item.get("bits") or 2048) if key_type == "rsa" else 0
        path = key_path(directory, domain, selector)
        domain_dir = os.path.dirname(path)

        if not os.path.exists(path):
            changed = True
            generated.append("%s/%s" % (domain, selector))
            if module.check_mode:
                continue
            if not os.path.isdir(domain_dir):
                os.makedirs(domain_dir, 0o700)
            ensure_owner_mode(domain_dir, uid, gid, 0o700)
            generate(module, path, key_type, bits)
        elif not module.check_mode:
            changed |= ensure_owner_mode(domain_dir, uid, gid, 0o700)

        if not module.check_mode:
            changed |= ensure_owner_mode(path, uid, gid, 0o600)
        have_type, have_bits, public = describe_cached(module, path, cache, fresh)
        if have_type != key_type or (key_type == "rsa" and have_bits != bits):
            problems.append(
                "%s: selector %s of %s is a %s key%s on disk, the inventory asks for %s%s; "
                "a different key needs a new selector (publish it, then switch)"
                % (path, selector, domain, have_type, " of %d bits" % have_bits if have_bits else "",
                   key_type, " of %d bits" % bits if bits else "")
            )
        public_keys.append(dict(domain=domain, selector=selector, type=have_type, bits=have_bits,
                                path=path, public_key=public))

    if fresh != cache and not module.check_mode and os.path.isdir(directory):
        save_cache(directory, fresh)
    if problems:
        module.fail_json(msg="DKIM keys do not match the inventory:\n" + "\n".join(problems),
                         changed=changed, generated=generated)
    module.exit_json(changed=changed, generated=generated, public_keys=public_keys)


if __name__ == "__main__":
    main()
