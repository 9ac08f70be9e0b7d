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
  - "Layout: C(<directory>) and C(<directory>/<domain>) are directories owned by
    O(directory_owner) (root) and O(group), mode 0750; a key is C(<directory>/<domain>/<selector>.private),
    owned by O(owner) and O(group), mode 0600. Only root can add, rename or replace anything in
    the tree; the owner (opendkim) can read its keys."
  - Nothing in the tree is followed. The module runs as root on a tree another user may have
    written to (earlier versions made it the opendkim user's); a symlink, or anything that is
    not a directory where a directory belongs or not a regular file with one link where a key
    or the cache belongs, stops the module with a message naming the path, and nothing is
    changed through it. Also in check mode.
  - "Reading a public key costs two openssl runs (about 35 ms); with a thousand domains that was
    most of an idempotent re-run. The type, size and public key of every key are therefore kept
    in C(<directory>/.public-keys.json) (root, 0600), keyed by the private key's inode, size,
    mtime and ctime; a key whose file changed in any way is read again. The cache is not state
    the user manages: deleting it only costs one slow run. Writing it does not count as a change."
  - "Selector lifecycle (C(state) of each key, docs/dkim-rotation.md): C(active) and C(standby)
    keys are generated when missing and read; a C(retired) key is never generated nor read (its
    record is the revocation, an empty p=, reported as an empty RV(public_keys[].public_key)) and
    is removed once the selector has been retired on this host for O(retired_key_days) days (a
    regular file with one link, checked like every key; nothing is followed)."
  - "When each key was made, published, activated and retired is kept in
    C(<directory>/.selectors.json) (root, 0600; written like the cache, not counted as a change)
    and returned with each key: the audit's key age and activation checks read it. Selectors
    that leave the list leave the record; deleting it restarts the clocks (a retired key is kept
    longer; a key's age then starts at its file's mtime)."
  - In check mode on a host where O(owner) or O(group) does not exist yet (the package that
    creates them is not installed), every missing key is reported as to be generated and RV(msg)
    names the missing accounts; a real run with a missing account fails naming it.
options:
  keys:
    description:
      - One dict per selector, with C(domain), C(selector), C(type) (C(rsa) or C(ed25519)),
        C(bits) (RSA only) and C(state) (C(active), C(standby) or C(retired); default C(active)),
        as P(mailward.mail.dkim_key_list#filter) returns them.
    type: list
    elements: dict
    required: true
  directory:
    description: Base directory; a key lives at C(<directory>/<domain>/<selector>.private).
    type: path
    required: true
  owner:
    description: Owner of the key files (the user OpenDKIM runs as).
    type: str
    required: true
  group:
    description: Group of the key files and of the directories.
    type: str
    required: true
  directory_owner:
    description:
      - Owner of the base and per-domain directories. Leave it root; the unit tests, which may
        run as another user, are what it is for.
    type: str
    default: root
  retired_key_days:
    description:
      - Days a retired selector's private key is kept on this host, counted from the run that
        first saw the selector retired; then it is removed (0 - at once). While it is kept,
        setting the selector back to C(standby) or C(active) undoes a mistaken retirement with
        the same key.
    type: int
    default: 7
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Keys that are missing are reported in RV(generated) and not written, retired keys due for removal in RV(removed) and not removed; existing keys are still read.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - openssl (command line, on the managed host)
  - python cryptography on the managed host is used to read existing keys when present (else openssl)
seealso:
  - plugin: mailward.mail.dkim_key_list
    plugin_type: filter
  - plugin: mailward.mail.dkim_record
    plugin_type: filter
author: mailward
"""

EXAMPLES = r"""
- name: Generate missing DKIM keys and read every public key
  mailward.mail.dkim_keys:
    keys:
      - {domain: example.test, selector: mailward, type: rsa, bits: 2048}
      - {domain: example.test, selector: ed2025, type: ed25519}
    directory: /etc/opendkim/keys
    owner: opendkim
    group: opendkim
  become: true
  register: dkim_result

- name: Only read the public keys, changing nothing (as the opendkim role's public_keys entry point does)
  mailward.mail.dkim_keys:
    keys: "{{ mail_domains_normalized | mailward.mail.dkim_key_list('/etc/opendkim/keys', inventory_hostname) }}"
    directory: /etc/opendkim/keys
    owner: opendkim
    group: opendkim
  become: true
  check_mode: true
  register: dkim_result
"""

RETURN = r"""
public_keys:
  description:
    - One item per active or standby key that exists (in check mode, keys still to be generated
      are left out) and one per retired selector (key or not, with an empty public_key).
  type: list
  elements: dict
  returned: always
  contains:
    domain:
      description: The mail domain.
      type: str
    selector:
      description: The DKIM selector.
      type: str
    type:
      description: C(rsa) or C(ed25519), as found on disk (retired - as asked for).
      type: str
    bits:
      description: RSA key size; 0 for Ed25519.
      type: int
    path:
      description: Path of the private key.
      type: str
    public_key:
      description: The public key, PEM; empty for a retired selector.
      type: str
    state:
      description: C(active), C(standby) or C(retired), as asked for.
      type: str
    state_since:
      description: When this host first saw the selector in its current state (seconds since the epoch, as every time here).
      type: float
    created:
      description: When the key was generated, or (first seen here) its file's mtime.
      type: float
    published_since:
      description: When this host first held this key under a selector of the inventory (the earliest its record can have been published).
      type: float
    active_since:
      description: Start of the current active spell; null unless active.
      type: float
    retired_since:
      description: When this host first saw the selector retired; null unless retired.
      type: float
    key_removed:
      description: When the retired key was removed (in check mode - would be); null if not.
      type: float
    signing_since:
      description: When this host first had an active selector of the domain (a later activation is a switch, not the domain's first key).
      type: float
  sample:
    - domain: example.test
      selector: mailward
      type: rsa
      bits: 2048
      path: /etc/opendkim/keys/example.test/mailward.private
      public_key: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh...\n-----END PUBLIC KEY-----\n"
      state: active
      state_since: 1767225600.0
      created: 1767225600.0
      published_since: 1767225600.0
      active_since: 1767225600.0
      retired_since: null
      key_removed: null
      signing_since: 1767225600.0
generated:
  description: The keys generated in this run (in check mode, those that would be), as C(<domain>/<selector>).
  type: list
  elements: str
  returned: always
  sample: [example.test/mailward]
removed:
  description: Retired keys removed in this run (in check mode, those that would be), as C(<domain>/<selector>).
  type: list
  elements: str
  returned: always
  sample: [example.test/mw2025]
msg:
  description: In check mode, the accounts (O(owner), O(group)) that do not exist yet.
  type: str
  returned: when O(owner) or O(group) is missing in check mode
"""

import errno
import grp
import json
import os
import pwd
import secrets
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mailward.mail.plugins.module_utils.dkim import key_path, rsa_bits

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - fallback to the openssl command
    HAS_CRYPTOGRAPHY = False

# Directories 0750, not writable by the group: the opendkim user must not be able to put a symlink
# (or anything else) where root later chowns, chmods or writes. Readable and searchable by the
# group, so OpenDKIM reaches its keys.
DIR_MODE = 0o750
# Keys owner-only (opendkim, 0600), not root:opendkim 0640. OpenDKIM's RequireSafeKeys check
# (dkimf_securefile -> dkimf_checkfsnode in opendkim/opendkim.c, 2.11) accepts a key owned by
# root or by the user it runs as, but with any group bit set it also requires that nobody but
# that user and root be in the file's group, by primary gid or as a member. The opendkim role
# puts postfix into the opendkim group (to reach the milter socket), so a group-readable key is
# "not secure" there and signing stops. Owned by opendkim is safe here: the key is opendkim's
# own secret, and in a root-owned 0750 directory it cannot rename, replace or add anything.
KEY_MODE = 0o600
CACHE_NAME = ".public-keys.json"
# The selectors' lifecycle as this host saw it (when each key was made, published, activated,
# retired, removed): what the audit's key age and activation checks and the removal of retired
# keys count from. Unlike the cache it is state: deleting it restarts those clocks (a retired key
# is then kept longer, an old key looks as old as its file's mtime).
LIFECYCLE_NAME = ".selectors.json"
# The temporary name earlier versions wrote the cache through; a symlink left there is refused.
OLD_CACHE_TMP = CACHE_NAME + ".tmp"


class Unsafe(Exception):
    """Something that does not belong is at a path the module manages."""


def check_name(name, what):
    """A domain or selector must name one entry of one directory, not a way out of the tree."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise Unsafe("%s %r is not a single path component" % (what, name))


def kind(st):
    """What an lstat() result is, in words."""
    mode = st.st_mode
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    if stat.S_ISREG(mode):
        return "a regular file with %d hard links" % st.st_nlink if st.st_nlink != 1 else "a regular file"
    return "of unknown type %o" % stat.S_IFMT(mode)


def refuse(path, st, expected):
    raise Unsafe(
        "%s is %s, not %s. The module runs as root and follows nothing in the key tree; "
        "someone who could write there may have planted it: look at it, remove it, then run again"
        % (path, kind(st), expected))


def lstat_at(dir_fd, name):
    """lstat() of name in the directory open at dir_fd; None if there is nothing there."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_checked(dir_fd, name, path, want_dir):
    """Open name (in dir_fd) that must be a real directory, or a regular file with one link.

    Checked with lstat() before the open (so a FIFO or a device is never opened), opened with
    O_NOFOLLOW, and the descriptor checked again with fstat(): whatever is swapped in between
    is refused, never followed. None if there is nothing there.
    """
    st = lstat_at(dir_fd, name)
    if st is None:
        return None
    expected = "a directory" if want_dir else "a regular file with one link"

    def acceptable(st):
        if want_dir:
            return stat.S_ISDIR(st.st_mode)
        return stat.S_ISREG(st.st_mode) and st.st_nlink == 1

    if not acceptable(st):
        refuse(path, st, expected)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if want_dir:
        flags |= os.O_DIRECTORY
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.ENOENT):
            now = lstat_at(dir_fd, name)
            if now is not None:
                refuse(path, now, expected)
            raise Unsafe("%s vanished while it was being opened" % path)
        raise
    st = os.fstat(fd)
    if not acceptable(st):
        os.close(fd)
        refuse(path, st, expected)
    return fd


def open_base(directory):
    """The base directory, opened without following a symlink at its last component.

    Its parents (/etc, /etc/opendkim) belong to root; only the last component is checked.
    """
    parent, name = os.path.split(directory.rstrip("/") or "/")
    parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_checked(parent_fd, name, directory, want_dir=True), parent_fd
    except BaseException:
        os.close(parent_fd)
        raise


def ensure_owner_mode(fd, uid, gid, mode, check_mode=False):
    """Set owner, group and mode through the descriptor; return True if anything changed (in
    check mode: would change)."""
    st = os.fstat(fd)
    changed = False
    if (st.st_uid, st.st_gid) != (uid, gid):
        if not check_mode:
            os.fchown(fd, uid, gid)
        changed = True
    # fchown() may clear set-id bits: the mode is read again.
    if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
        if not check_mode:
            os.fchmod(fd, mode)
        changed = True
    return changed


def make_dir(parent_fd, name, path, uid, gid):
    """Create a key directory and return it open, owner and mode already set."""
    os.mkdir(name, 0o700, dir_fd=parent_fd)
    fd = open_checked(parent_fd, name, path, want_dir=True)
    ensure_owner_mode(fd, uid, gid, DIR_MODE)
    return fd


def write_new(dir_fd, prefix, data, uid, gid, mode):
    """Write data to a new, randomly named file in dir_fd; return its name.

    Like tempfile.mkstemp (O_CREAT|O_EXCL|O_NOFOLLOW, so nothing that is already there, symlink
    or not, is opened), but relative to the descriptor of a directory already checked. Owner and
    mode are set through the descriptor before any content is written.
    """
    name = "%s.%s" % (prefix, secrets.token_hex(8))
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(fd)
    return name


def read_fd(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def new_key(module, path, key_type, bits):
    """A new private key as PEM bytes, from openssl's standard output (no file of its own)."""
    if key_type == "rsa":
        argv = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits]
    else:
        argv = ["openssl", "genpkey", "-algorithm", "ED25519"]
    rc, out, err = module.run_command(argv, encoding=None)
    if rc != 0 or b"PRIVATE KEY" not in out:
        module.fail_json(msg="openssl could not generate %s: %s" % (path, err.decode(errors="replace").strip()))
    return out


def generate(module, dir_fd, name, path, key_type, bits, uid, gid):
    """Generate a key and put it at name in dir_fd: complete (written under a temporary name,
    then linked), owner and mode set before the key is written, never over anything."""
    data = new_key(module, path, key_type, bits)
    tmp = write_new(dir_fd, "." + name, data, uid, gid, KEY_MODE)
    try:
        # link(), unlike rename(), fails if anything (a symlink too) appeared at the name.
        os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise Unsafe("%s appeared while its key was being generated; nothing was written there" % path)
    finally:
        os.unlink(tmp, dir_fd=dir_fd)


def describe(module, path, data):
    """Return (type, bits, public PEM) of a private key given as PEM bytes."""
    if HAS_CRYPTOGRAPHY:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            module.fail_json(msg="%s is not a readable private key: %s" % (path, exc))
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        if isinstance(key, rsa.RSAPrivateKey):
            return "rsa", key.key_size, public
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "ed25519", 0, public
        return type(key).__name__, 0, public
    # The key goes to openssl on standard input: openssl opens no path in the tree.
    rc, text, err = module.run_command(["openssl", "pkey", "-noout", "-text"], data=data,
                                       binary_data=True)
    if rc != 0:
        module.fail_json(msg="%s is not a readable private key: %s" % (path, err.strip()))
    rc, public, err = module.run_command(["openssl", "pkey", "-pubout"], data=data, binary_data=True)
    first = text.splitlines()[0] if text else ""
    if "ED25519" in first.upper():
        return "ed25519", 0, public
    bits = int("".join(ch for ch in first.split("(")[-1].split("bit")[0] if ch.isdigit()) or 0)
    return "rsa", bits, public


def file_signature(st):
    """What must stay the same for a cached public key to still be right."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def check_old_tmp(base_fd, directory, check_mode):
    """Earlier versions wrote the cache through .public-keys.json.tmp, following a symlink there.
    A symlink (or any non-file) at that name is refused; a leftover file is removed."""
    st = lstat_at(base_fd, OLD_CACHE_TMP)
    if st is None:
        return
    if not stat.S_ISREG(st.st_mode):
        refuse(os.path.join(directory, OLD_CACHE_TMP), st, "a regular file (or nothing)")
    if not check_mode:
        os.unlink(OLD_CACHE_TMP, dir_fd=base_fd)


def load_json(base_fd, directory, name):
    """A version 1 JSON file of the base directory as a dict; unreadable or foreign: {}.

    A symlink or other non-file at its name is refused, not read.
    """
    fd = open_checked(base_fd, name, os.path.join(directory, name), want_dir=False)
    if fd is None:
        return {}
    try:
        data = json.loads(read_fd(fd).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("version") != 1:
        return {}
    return data


def save_json(base_fd, name, content):
    """Write a JSON file of the base directory atomically, readable by root only: a new file,
    then rename() over the old name (rename replaces a name, it never writes through a symlink)."""
    data = json.dumps(dict(content, version=1), sort_keys=True).encode("utf-8")
    tmp = write_new(base_fd, name, data, os.geteuid(), os.getegid(), 0o600)
    try:
        os.replace(tmp, name, src_dir_fd=base_fd, dst_dir_fd=base_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=base_fd)
        raise


def load_cache(base_fd, directory):
    """The cache as a dict path -> entry; an unreadable or foreign file counts as empty."""
    keys = load_json(base_fd, directory, CACHE_NAME).get("keys")
    return keys if isinstance(keys, dict) else {}


def save_cache(base_fd, entries):
    """Write the public key cache (see load_cache)."""
    save_json(base_fd, CACHE_NAME, {"keys": entries})


def load_lifecycle(base_fd, directory):
    """The lifecycle record: ({"<domain>/<selector>": entry}, {"<domain>": entry})."""
    data = load_json(base_fd, directory, LIFECYCLE_NAME) if base_fd is not None else {}
    selectors, domains = data.get("selectors"), data.get("domains")
    return (dict((k, v) for k, v in (selectors.items() if isinstance(selectors, dict) else ())
                 if isinstance(v, dict)),
            dict((k, v) for k, v in (domains.items() if isinstance(domains, dict) else ())
                 if isinstance(v, dict)))


def lifecycle_step(old, state, now, key_mtime=None, new_key=False):
    """The lifecycle entry of one selector after this run (pure; ``now`` is the run's clock).

    ``old``: the recorded entry (None: first sight); ``key_mtime``: the key file's mtime when it
    exists; ``new_key``: the key was generated in this run. Fields (seconds since the epoch):
    created (the key's birth: its generation, or at first sight the file's mtime if earlier),
    published_since (when this host first held this key under a selector of the inventory; every
    state is published by the dns play of the same converge, so the record cannot have been
    visible before), state and state_since, active_since (start of the current active spell),
    retired_since (first seen retired; the private key is removed counting from it), key_removed.
    """
    entry = dict(old) if isinstance(old, dict) else {}
    if new_key or "created" not in entry:
        born = now if new_key or key_mtime is None else min(now, key_mtime)
        entry.update(created=born, published_since=now, key_removed=None)
    if entry.get("state") != state:
        entry.update(state=state, state_since=now,
                     active_since=now if state == "active" else None,
                     retired_since=now if state == "retired" else None)
    for field in ("active_since", "retired_since", "key_removed"):
        entry.setdefault(field, None)
    return entry


def retired_key_due(entry, now, days):
    """True when a retired selector's private key has been retired for ``days`` days."""
    since = entry.get("retired_since")
    return entry.get("state") == "retired" and since is not None and now - since >= days * 86400


def describe_cached(module, path, fd, cache, fresh):
    """describe(), but from the cache when the key file has not changed since it was read.

    Every entry used or made is put into fresh (the next cache): keys that left the inventory
    drop out of it.
    """
    signature = file_signature(os.fstat(fd))
    entry = cache.get(path)
    if not (isinstance(entry, dict) and entry.get("signature") == signature
            and isinstance(entry.get("public"), str)):
        have_type, have_bits, public = describe(module, path, read_fd(fd))
        entry = dict(signature=signature, type=have_type, bits=have_bits, public=public)
    fresh[path] = entry
    return entry["type"], entry["bits"], entry["public"]


def run(module, directory, keys, uid, gid, dir_uid, now=None):
    """The module's work; raises Unsafe.

    Returns (changed, generated, removed, public_keys, problems).
    """
    check_mode = module.check_mode
    now = time.time() if now is None else now
    retired_days = module.params.get("retired_key_days")
    retired_days = 7 if retired_days is None else retired_days
    changed = False
    generated = []
    removed = []
    public_keys = []
    problems = []
    fds = []
    for item in keys:
        check_name(item["domain"], "domain")
        check_name(item["selector"], "selector")
    try:
        try:
            base_fd, parent_fd = open_base(directory)
        except FileNotFoundError:
            # Check mode on a new host: the package that makes the parent (/etc/opendkim on the
            # RedHat family) is not installed yet, so the whole tree is still to be made.
            if not check_mode:
                raise
            base_fd, parent_fd = None, None
        if parent_fd is not None:
            fds.append(parent_fd)
        if base_fd is None and not check_mode:
            base_fd = make_dir(parent_fd, os.path.basename(directory.rstrip("/")), directory, dir_uid, gid)
            changed = True
        if base_fd is not None:
            fds.append(base_fd)
            changed |= ensure_owner_mode(base_fd, dir_uid, gid, DIR_MODE, check_mode)
            check_old_tmp(base_fd, directory, check_mode)
            cache = load_cache(base_fd, directory)
        else:
            cache = {}
        fresh = {}
        old_selectors, old_domains = load_lifecycle(base_fd, directory)
        selectors, domains = {}, {}
        # One descriptor for the domain at hand and one for the key at hand, closed when done: a
        # thousand domains must not mean a thousand open descriptors (the limit is often 1024).
        current, domain_fd = None, None
        for item in keys:
            domain, selector = item["domain"], item["selector"]
            key_type = item.get("type", "rsa")
            bits = rsa_bits(item.get("bits")) if key_type == "rsa" else 0
            path = key_path(directory, domain, selector)
            domain_dir = os.path.dirname(path)
            name = os.path.basename(path)

            if domain != current:
                if domain_fd is not None:
                    fds.remove(domain_fd)
                    os.close(domain_fd)
                current, domain_fd = domain, None
                if base_fd is not None:
                    domain_fd = open_checked(base_fd, domain, domain_dir, want_dir=True)
                    if domain_fd is None and not check_mode:
                        domain_fd = make_dir(base_fd, domain, domain_dir, dir_uid, gid)
                    elif domain_fd is not None:
                        changed |= ensure_owner_mode(domain_fd, dir_uid, gid, DIR_MODE, check_mode)
                if domain_fd is not None:
                    fds.append(domain_fd)

            ident = "%s/%s" % (domain, selector)
            state = item.get("state") or "active"
            key_fd = open_checked(domain_fd, name, path, want_dir=False) if domain_fd is not None else None
            if state == "retired":
                # Never generated, never read: its record is the revocation (empty p=). The key
                # (checked above: a regular file, not followed) goes after retired_key_days.
                mtime = os.fstat(key_fd).st_mtime if key_fd is not None else None
                if key_fd is not None:
                    os.close(key_fd)
                entry = lifecycle_step(old_selectors.get(ident), state, now, mtime)
                if key_fd is not None and retired_key_due(entry, now, retired_days):
                    changed = True
                    removed.append(ident)
                    if not check_mode:
                        os.unlink(name, dir_fd=domain_fd)
                    entry["key_removed"] = now
                selectors[ident] = entry
                public_keys.append(dict(entry, domain=domain, selector=selector, type=key_type,
                                        bits=bits, path=path, public_key=""))
                continue
            new_key = key_fd is None
            if key_fd is None:
                changed = True
                generated.append(ident)
                if check_mode:
                    continue
                generate(module, domain_fd, name, path, key_type, bits, uid, gid)
                key_fd = open_checked(domain_fd, name, path, want_dir=False)
            else:
                changed |= ensure_owner_mode(key_fd, uid, gid, KEY_MODE, check_mode)
            try:
                mtime = os.fstat(key_fd).st_mtime
                have_type, have_bits, public = describe_cached(module, path, key_fd, cache, fresh)
            finally:
                os.close(key_fd)
            entry = lifecycle_step(old_selectors.get(ident), state, now, mtime, new_key)
            selectors[ident] = entry
            if state == "active":
                domains[domain] = old_domains.get(domain) or {"signing_since": now}
            if have_type != key_type or (key_type == "rsa" and have_bits != bits):
                problems.append(
                    "%s: selector %s of %s is a %s key%s on disk, the inventory asks for %s%s; "
                    "a different key needs a new selector (publish it, then switch)"
                    % (path, selector, domain, have_type, " of %d bits" % have_bits if have_bits else "",
                       key_type, " of %d bits" % bits if bits else "")
                )
            public_keys.append(dict(entry, domain=domain, selector=selector, type=have_type,
                                    bits=have_bits, path=path, public_key=public))

        for item in public_keys:
            item["signing_since"] = (domains.get(item["domain"]) or {}).get("signing_since")
        if fresh != cache and not check_mode and base_fd is not None:
            save_cache(base_fd, fresh)
        if (selectors, domains) != (old_selectors, old_domains) and not check_mode and base_fd is not None:
            save_json(base_fd, LIFECYCLE_NAME, {"selectors": selectors, "domains": domains})
    finally:
        for fd in fds:
            os.close(fd)
    return changed, generated, removed, public_keys, problems


def account_ids(module):
    """(uid of owner, gid of group, uid of directory_owner, what is missing).

    An account that does not exist stops a real run, naming it. In check mode on a new host the
    opendkim user and group are not there yet (the package --check did not install makes them):
    its id is None, which no file on disk has, so every existing file and directory is reported
    as to be given to it.
    """
    ids, missing = [], []
    for option, kind_, lookup in (("owner", "user", lambda n: pwd.getpwnam(n).pw_uid),
                                  ("group", "group", lambda n: grp.getgrnam(n).gr_gid),
                                  ("directory_owner", "user", lambda n: pwd.getpwnam(n).pw_uid)):
        name = module.params[option]
        try:
            ids.append(lookup(name))
        except KeyError:
            if not module.check_mode:
                module.fail_json(msg="%s: %s %s does not exist on this host (the OpenDKIM package "
                                     "creates the opendkim user and group: install it first)"
                                     % (option, kind_, name))
            ids.append(None)
            missing.append("%s %s (%s)" % (kind_, name, option))
    return ids[0], ids[1], ids[2], missing


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keys=dict(type="list", elements="dict", required=True, no_log=False),
            directory=dict(type="path", required=True),
            owner=dict(type="str", required=True),
            group=dict(type="str", required=True),
            directory_owner=dict(type="str", default="root"),
            retired_key_days=dict(type="int", default=7),
        ),
        supports_check_mode=True,
    )
    if module.params["retired_key_days"] < 0:
        module.fail_json(msg="retired_key_days: %d: must be 0 or more (days a retired selector's "
                             "private key is kept)" % module.params["retired_key_days"])
    uid, gid, dir_uid, missing = account_ids(module)
    try:
        changed, generated, removed, public_keys, problems = run(
            module, module.params["directory"], module.params["keys"], uid, gid, dir_uid)
    except Unsafe as exc:
        module.fail_json(msg="DKIM key tree: %s" % exc)
    if problems:
        module.fail_json(msg="DKIM keys do not match the inventory:\n" + "\n".join(problems),
                         changed=changed, generated=generated)
    result = dict(changed=changed, generated=generated, removed=removed, public_keys=public_keys)
    if missing:
        result["msg"] = ("check mode: %s do not exist yet (the package this run would install creates "
                         "them): missing keys are reported as to be generated, existing files and "
                         "directories as to be given to them" % ", ".join(missing))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
