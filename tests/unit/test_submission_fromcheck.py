"""The decision logic of mailward-fromcheck, the submission milter (plugins/module_utils/fromcheck.py).

The milter ships as one file that the submission role copies to the host (roles/submission/files/
links to it); its pure functions (parse the From header, read the sender/login map, decide) are
imported here from the collection.
pymilter is not needed for that: the milter imports it only when it runs.
"""

import pytest

from ansible_collections.mailward.mail.plugins.module_utils import fromcheck as fc

# What roles/submission/templates/sender-logins.j2 writes for the molecule default scenario.
MAP_TEXT = """\
#
# Ansible managed
#
# envelope sender  ->  the login(s) allowed to use it (reject_sender_login_mismatch)
alice@example.test alice@example.test
bob@example.org bob@example.org
sales@example.test alice@example.test
"""
OWNERS = fc.parse_owners(MAP_TEXT)
ALICE = "alice@example.test"


# --- the From header: exactly one mailbox, or refused ----------------------------------------

@pytest.mark.parametrize("value, address", [
    ("alice@example.test", "alice@example.test"),
    ("<alice@example.test>", "alice@example.test"),
    ('"Alice" <alice@example.test>', "alice@example.test"),
    ("Alice Liddell <Alice@Example.TEST>", "alice@example.test"),
    ('"Doe, Alice" <alice@example.test>', "alice@example.test"),
    ('"Alice \\"A\\" Liddell" <alice@example.test>', "alice@example.test"),
    ("Alice Q. Liddell <alice@example.test>", "alice@example.test"),
    ("=?utf-8?q?Al=C3=AFce?= <alice@example.test>", "alice@example.test"),
    ('"Alïce" <alice@example.test>', "alice@example.test"),
    ("Alice\r\n <alice@example.test>", "alice@example.test"),
    ("Alice\n\t<alice@example.test>", "alice@example.test"),
    ("  alice.liddell+news@mail.example.test  ", "alice.liddell+news@mail.example.test"),
    ("Alice<alice@example.test>", "alice@example.test"),
])
def test_parse_from_one_mailbox(value, address):
    assert fc.parse_from(value) == address


@pytest.mark.parametrize("value, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("alice@example.test, ceo@example.org", "more than one address"),
    ("Alice <alice@example.test>, ceo@example.org", "more than one address"),
    ("Alice <alice@example.test> <ceo@example.org>", "more than one address"),
    ("alice@example.test ceo@example.org", "a space in the address"),
    ("alice@example.test (ceo@example.org)", "a comment"),
    ("Alice (the boss) <alice@example.test>", "a comment"),
    ("undisclosed-recipients:;", "group syntax"),
    ("Team: alice@example.test;", "group syntax"),
    ("<@relay.example.org:alice@example.test>", "a source route"),
    ("ceo@example.org <alice@example.test>", "an @ outside the address"),
    ("Alice <alice@example.test> ceo", "text after the address"),
    ('"Alice <alice@example.test>', "an unterminated quoted string"),
    ("Alice alice@example.test>", "an unbalanced >"),
    ("Alice <alice@example.test", "an unbalanced <"),
    ('"ceo@example.org"@example.test', "a quoted local part"),
    ('Alice <"ceo"@example.test>', "a quoted local part"),
    ("alice@[192.0.2.1]", "an address literal"),
    ("alice", "no @ in the address"),
    ("<>", "no @ in the address"),
    ("alice@example.test@example.org", "more than one @ in the address"),
    ("al..ice@example.test", "a malformed local part"),
    (".alice@example.test", "a malformed local part"),
    ("alïce@example.test", "a malformed local part"),
    ("alice@-example.test", "a malformed domain"),
    ("alice@example..test", "a malformed domain"),
    ("alice@example.test.", "a malformed domain"),
    ("alice@localhost", "a malformed domain"),
    ("alice@exa_mple.test", "a malformed domain"),
    ("a" * 65 + "@example.test", "an address too long"),
    ("alice@" + "a" * 250 + ".test", "an address too long"),
    ("alice@example.test\nBcc: ceo@example.org", "a line break"),
    ("alice@example.test\r", "a line break"),
    ("Al\x00ice <alice@example.test>", "a control character"),
    ("\udcff <alice@example.test>", "bytes that are not UTF-8"),
])
def test_parse_from_refuses_what_is_not_one_plain_mailbox(value, reason):
    with pytest.raises(fc.FromError) as info:
        fc.parse_from(value)
    assert str(info.value) == reason


# --- the sender/login map: the file Postfix reads for reject_sender_login_mismatch ---------

def test_parse_owners_reads_the_rendered_map():
    assert OWNERS == {
        "alice@example.test": frozenset({"alice@example.test"}),
        "bob@example.org": frozenset({"bob@example.org"}),
        "sales@example.test": frozenset({"alice@example.test"}),
    }


def test_parse_owners_lists_continuations_and_case():
    owners = fc.parse_owners("Shared@Example.TEST  alice@example.test,Bob@example.org\n"
                             "   carol@example.test\n\n# comment\n@example.net dave@example.net\n")
    assert owners == {
        "shared@example.test": frozenset({"alice@example.test", "bob@example.org", "carol@example.test"}),
        "@example.net": frozenset({"dave@example.net"}),
    }


@pytest.mark.parametrize("text, message", [
    ("alice@example.test\n", "line 1: a key without logins"),
    ("a@example.test x\na@example.test y\n", "line 2: a@example.test listed twice"),
    ("  a@example.test x\n", "line 1: a continuation line without an entry"),
])
def test_parse_owners_refuses_a_map_it_cannot_read_exactly(text, message):
    with pytest.raises(ValueError) as info:
        fc.parse_owners(text)
    assert str(info.value) == message


@pytest.mark.parametrize("address, logins", [
    ("alice@example.test", {"alice@example.test"}),
    ("alice+news@example.test", {"alice@example.test"}),
    ("sales@example.test", {"alice@example.test"}),
    ("ceo@example.test", set()),
    ("ceo@example.org", set()),
    ("+@example.test", set()),
])
def test_owners_of_looks_up_like_postfix(address, logins):
    """Full address, then without the +extension (recipient_delimiter), then @domain."""
    assert fc.owners_of(address, OWNERS) == logins


def test_owners_of_domain_entry_and_exact_entry_first():
    owners = fc.parse_owners("@example.net dave@example.net\nboss@example.net erin@example.net\n")
    assert fc.owners_of("anyone@example.net", owners) == {"dave@example.net"}
    assert fc.owners_of("boss@example.net", owners) == {"erin@example.net"}


# --- the decision ---------------------------------------------------------------------------

@pytest.mark.parametrize("login, froms", [
    (ALICE, ['"Alice" <alice@example.test>']),
    (ALICE, ["alice@example.test"]),
    (ALICE, ["sales@example.test"]),
    (ALICE, ["Sales <SALES@example.test>"]),
    (ALICE, ["alice+lists@example.test"]),
    ("Alice@Example.Test", ["alice@example.test"]),
    ("bob@example.org", ["Bob <bob@example.org>"]),
])
def test_check_message_allows_the_logins_own_addresses(login, froms):
    assert fc.check_message(login, froms, OWNERS) is None


@pytest.mark.parametrize("login, froms, reply", [
    (ALICE, ["ceo@example.org"], "header From <ceo@example.org> not owned by login alice@example.test"),
    (ALICE, ["CEO <ceo@example.test>"], "header From <ceo@example.test> not owned by login alice@example.test"),
    (ALICE, ["bob@example.org"], "header From <bob@example.org> not owned by login alice@example.test"),
    (ALICE, ["someone@elsewhere.test"], "header From <someone@elsewhere.test> not owned by login alice@example.test"),
    ("bob@example.org", ["sales@example.test"], "header From <sales@example.test> not owned by login bob@example.org"),
    (ALICE, ["alice@example.test, ceo@example.org"],
     "header From not accepted (more than one address): use one address, user@domain or Name <user@domain>"),
    (ALICE, ["ceo@example.org <alice@example.test>"],
     "header From not accepted (an @ outside the address): use one address, user@domain or Name <user@domain>"),
    (ALICE, [], "message without a From header"),
    (ALICE, ["alice@example.test", "alice@example.test"], "message with 2 From headers: exactly one is allowed"),
    (None, ["alice@example.test"], "no SASL login on this session: header From cannot be checked"),
    ("", ["alice@example.test"], "no SASL login on this session: header From cannot be checked"),
])
def test_check_message_refuses(login, froms, reply):
    assert fc.check_message(login, froms, OWNERS) == reply


def test_refusal_text_is_safe_for_libmilter():
    """libmilter drops a reply with a single %, and a reply is one line of printable ASCII."""
    reply = fc.check_message("mallory%x@example.test\r\n", ["a%b@example.test"], OWNERS)
    assert reply == "header From <a?b@example.test> not owned by login mallory?x@example.test??"
    long_login = "x" * 500 + "@example.test"
    reply = fc.check_message(long_login, ["ceo@example.org"], OWNERS)
    assert len(reply) < 300 and reply.endswith("...")


def test_check_message_reads_bytes_as_utf8():
    assert fc.check_message(ALICE, [b'"Al\xc3\xafce" <alice@example.test>'], OWNERS) is None
    assert fc.check_message(ALICE, [b'"Al\xefce" <alice@example.test>'], OWNERS) == (
        "header From not accepted (bytes that are not UTF-8): use one address, user@domain or Name <user@domain>")


# --- the command line the role uses as its checker -------------------------------------------

def test_check_mode_accepts_a_good_map(tmp_path, capsys):
    path = tmp_path / "map"
    path.write_text(MAP_TEXT)
    assert fc.main(["--check", "--map", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "%s: 3 sender addresses" % path


def test_check_mode_refuses_a_bad_map(tmp_path, capsys):
    path = tmp_path / "map"
    path.write_text("alice@example.test\n")
    assert fc.main(["--check", "--map", str(path)]) == 1
    assert capsys.readouterr().err.strip() == "%s: line 1: a key without logins" % path
