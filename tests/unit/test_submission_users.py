"""Unit tests for plugins/module_utils/submission.py (Dovecot users file).

The salt of every SASL hash is random (the same login and password hash differently on every
install); a re-run keeps the stored hash while it still verifies the password.
"""

import hashlib

import pytest
from ansible.errors import AnsibleFilterError
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode
from passlib.hash import sha512_crypt

from ansible_collections.mailward.mail.plugins.module_utils import submission as sub
lines_for = sub.submission_users_lines

ALICE = {"name": "Alice@Example.test", "password": "alice-pw", "senders": ["sales@example.test"]}
BOB = {"name": "bob@example.org", "password": "bob-pw"}
HEADER = "#\n# Managed by mailward (Ansible). Local edits are overwritten.\n#\n"


def _file(lines):
    """The users file as the template writes it."""
    return HEADER + "".join(line + "\n" for line in lines)


def _hash(line):
    login, field = line.split(":")[:2]
    assert field.startswith("{SHA512-CRYPT}$6$"), line
    return login, field[len("{SHA512-CRYPT}"):]


def test_lines_have_the_dovecot_passwd_file_shape_and_verify():
    lines = lines_for([ALICE, BOB])
    assert [line.split(":")[0] for line in lines] == ["alice@example.test", "bob@example.org"]
    for line, user in zip(lines, (ALICE, BOB)):
        assert line.endswith("::::::") and line.count(":") == 7, line
        assert sha512_crypt.verify(user["password"], _hash(line)[1])


def test_a_rerun_keeps_every_hash_byte_for_byte():
    first = lines_for([ALICE, BOB])
    assert lines_for([ALICE, BOB], _file(first)) == first
    assert lines_for([ALICE, BOB], _file(first).encode("utf-8")) == first  # slurp | b64decode may give bytes


def test_a_changed_password_gets_a_new_hash_and_the_others_stay():
    first = lines_for([ALICE, BOB])
    changed = dict(BOB, password="bob-new-pw")
    again = lines_for([ALICE, changed], _file(first))
    assert again[0] == first[0]
    assert again[1] != first[1]
    assert sha512_crypt.verify("bob-new-pw", _hash(again[1])[1])
    assert not sha512_crypt.verify("bob-pw", _hash(again[1])[1])


def test_two_installs_of_the_same_login_and_password_differ():
    one, two = lines_for([ALICE]), lines_for([ALICE])
    assert one != two
    salt = lambda line: _hash(line)[1].split("$")[-2]  # noqa: E731
    assert salt(one[0]) != salt(two[0])
    assert len(salt(one[0])) == 16


def test_a_hash_salted_with_the_login_is_replaced_once():
    """Earlier versions salted with sha256(login)[:16]: same hash on every install. Such a hash
    still verifies, but is replaced by one with a random salt (once: the new one is kept)."""
    login = ALICE["name"].lower()
    derived = hashlib.sha256(login.encode()).hexdigest()[:16]
    old = "%s:{SHA512-CRYPT}%s::::::" % (login, sha512_crypt.using(salt=derived, rounds=656000).hash("alice-pw"))
    new = lines_for([ALICE], _file([old]))
    assert new != [old]
    assert derived not in new[0]
    assert lines_for([ALICE], _file(new)) == new


@pytest.mark.parametrize("stored", [
    "{PLAIN}alice-pw",
    "{SHA512-CRYPT}$6$rounds=656000$short$notahash",
    "{SHA512-CRYPT}",
    "",
])
def test_a_stored_value_that_is_not_a_good_hash_is_replaced(stored):
    new = lines_for([ALICE], _file(["alice@example.test:%s::::::" % stored]))
    assert sha512_crypt.verify("alice-pw", _hash(new[0])[1])


def test_a_stored_hash_is_only_used_for_its_own_login():
    first = lines_for([BOB])
    moved = first[0].replace("bob@example.org", "carol@example.org")
    carol = {"name": "carol@example.org", "password": "bob-pw"}
    # carol's line (copied from bob's) verifies: kept; bob, now absent from the file, gets a new one
    assert lines_for([carol], _file([moved])) == [moved]
    assert lines_for([BOB], _file([moved])) != first


def test_users_who_left_drop_out():
    first = lines_for([ALICE, BOB])
    assert lines_for([BOB], _file(first)) == [first[1]]


def test_empty_and_absent_file():
    assert lines_for([]) == []
    assert len(lines_for([ALICE], "")) == 1
    assert len(lines_for([ALICE], None)) == 1


def test_a_vault_encrypted_password_is_used_decrypted():
    vault = VaultLib([("default", VaultSecret(b"s3cret"))])
    password = AnsibleVaultEncryptedUnicode(vault.encrypt("alice-pw"))
    password.vault = vault
    line = lines_for([dict(ALICE, password=password)])[0]
    assert sha512_crypt.verify("alice-pw", _hash(line)[1])
    assert lines_for([dict(ALICE, password=password)], _file([line])) == [line]


@pytest.mark.parametrize("users", [[{"name": "x@example.test"}], [{"password": "pw-not-shown"}], ["x"],
                                   [{"name": "x@example.test", "password": None}]])
def test_bad_users_are_refused_without_showing_a_password(users):
    with pytest.raises(AnsibleFilterError) as info:
        lines_for(users)
    assert "pw-not-shown" not in str(info.value)
    assert "submission_users" in str(info.value)


def test_the_filter_is_registered():
    from ansible_collections.mailward.mail.plugins.filter.mailward_submission import FilterModule
    assert FilterModule().filters()["submission_users_lines"] is lines_for
