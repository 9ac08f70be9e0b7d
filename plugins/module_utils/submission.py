# -*- coding: utf-8 -*-
"""submission role: the lines of Dovecot's passwd-file of SASL users (SHA512-CRYPT).

Every hash gets a random salt, so the same login and password hash differently on every install
(earlier versions salted with sha256(login)[:16]: one login and password, one hash everywhere,
and one precomputation covered every install). For re-runs to stay idempotent, the hash already
stored for a login is kept while it still verifies that login's password; a new password, a
hash that does not verify, or a hash with the old login-derived salt gets a fresh one.

Unit tests: tests/unit/test_submission_users.py (the filter), tests/unit/test_submission_tasks.py
(the role's tasks around it).
"""

import hashlib
from collections.abc import Mapping

from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.encrypt import do_encrypt

try:
    from passlib.hash import sha512_crypt
except ImportError:  # pragma: no cover - password_hash needs passlib too (ansible-core 2.17+)
    sha512_crypt = None

SCHEME = "{SHA512-CRYPT}"


def _stored_hashes(content):
    """login -> crypt hash (without the scheme) of every SHA512-CRYPT line of a users file."""
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    stored = {}
    for line in (content or "").splitlines():
        if not line or line.startswith("#"):
            continue
        login, _, rest = line.partition(":")
        field = rest.split(":", 1)[0]
        if field.startswith(SCHEME):
            stored[login] = field[len(SCHEME):]
    return stored


def _login_salt(login):
    """The salt earlier versions derived from the login."""
    return hashlib.sha256(login.encode("utf-8")).hexdigest()[:16]


def _salt(crypt_hash):
    """The salt of a $6$[rounds=N$]salt$digest hash."""
    parts = crypt_hash.split("$")
    return parts[-2] if len(parts) >= 4 else None


def _still_good(password, crypt_hash, login):
    """Keep a stored hash only if it is SHA512-CRYPT, its salt is not the login-derived one of
    earlier versions, and it verifies the password."""
    if not crypt_hash.startswith("$6$") or _salt(crypt_hash) == _login_salt(login):
        return False
    if sha512_crypt is None:
        raise MailwardError("submission_users_lines: passlib is needed on the controller")
    try:
        return sha512_crypt.verify(password, crypt_hash)
    except (ValueError, TypeError):
        return False


def submission_users_lines(users, current_content=""):
    """The lines of the users file for ``users``; ``current_content`` is the file now on the host
    (empty or None when there is none). Never puts a password in an error message."""
    if not isinstance(users, (list, tuple)):
        raise MailwardError("submission_users must be a list of {name, password} dicts")
    stored = _stored_hashes(current_content)
    lines = []
    for number, user in enumerate(users, 1):
        if not isinstance(user, Mapping) or not user.get("name"):
            raise MailwardError("submission_users: item %d has no name" % number)
        login = to_text(user["name"]).lower()
        if user.get("password") is None:
            raise MailwardError("submission_users: %s has no password" % login)
        # to_text also decrypts an inline-vaulted password (AnsibleVaultEncryptedUnicode).
        password = to_text(user["password"])
        crypt_hash = stored.get(login)
        if not (crypt_hash and _still_good(password, crypt_hash, login)):
            # Same as password_hash('sha512') without a salt: passlib draws a random 16-character
            # salt from the system's CSPRNG; rounds 656000 (Ansible's explicit default).
            crypt_hash = do_encrypt(password, "sha512_crypt")
        lines.append("%s:%s%s::::::" % (login, SCHEME, crypt_hash))
    return lines
