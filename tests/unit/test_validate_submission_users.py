"""submission_users is checked at inventory time (mail_domains_normalize host_vars=...).

users.j2 writes ``name:{SHA512-CRYPT}hash::::::`` and sender-logins.j2 ``sender login,login``:
a ``:`` plus a newline in a name adds a login with a known password, a newline or a space in a
sender adds map entries. Passwords never appear in a message.
"""
import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize
from mw_testlib import refusal

HOST, MX = "mail1", "mx.example.test"
DOMAINS = [{"name": "example.test"}]
SECRET = "s3cret-Pa55word"
INJECTED = "evil@example.test:{PLAIN}known::::::\nalice@example.test"


def check(users):
    return mail_domains_normalize(DOMAINS, HOST, MX, host_vars={"submission_users": users})


def problems(users):
    message = refusal(mail_domains_normalize, DOMAINS, HOST, MX,
                      host_vars={"submission_users": users})
    assert SECRET not in message, message
    lines = message.splitlines()
    for line in lines:
        assert line.startswith("host mail1: submission_users"), line
    return lines


def user(name="alice@example.test", **extra):
    return dict({"name": name, "password": SECRET}, **extra)


def vaulted(plaintext):
    secret = VaultSecret(b"unit-test-vault-password")
    return AnsibleVaultEncryptedUnicode.from_plaintext(plaintext, VaultLib([("default", secret)]),
                                                       secret)


@pytest.mark.parametrize("users", [
    [],
    [user(), user("bob@example.org")],
    [user("Alice@Example.test", senders=["sales@example.test", "info@sub.example.test"])],
    [user("o'brien+tag@example.test", senders=[])],
    [{"name": "alice@example.test", "password": vaulted(SECRET)}],
])
def test_good_users_pass(users):
    assert check(users)


@pytest.mark.parametrize("name, reason", [
    (INJECTED, "white space or control characters"),
    ("alice@example.test:x", "':'"),
    ("alice@example.test\n", "white space or control characters"),
    ("alice@example.test\r", "white space or control characters"),
    ("al ice@example.test", "white space or control characters"),
    ("alice@example.test\u2028", "white space or control characters"),
    ("alice,bob@example.test", "','"),
    ('"alice"@example.test', "'\"'"),
    ("alice\\@example.test", "a backslash"),
    ("alice", "one address local@domain"),
    ("alice@bob@example.test", "one address local@domain"),
    ("@example.test", "empty local part"),
    ("alice@localhost", "is not a fully qualified name"),
    ("alice@example.test.", "has an empty label"),
    ("alice@exa_mple.test", "RFC 1123 §2.1"),
    ("alice@b\u00fccher.example", "A-label"),
    ("alice@" + "a" * 64 + ".test", "at most 63"),
    ("", "is empty"),
    (42, "must be a string"),
])
def test_bad_login_name_is_refused(name, reason):
    lines = problems([user(), user(name)])
    assert len(lines) == 1 and lines[0].startswith("host mail1: submission_users[1].name: "), lines
    assert reason in lines[0], lines
    assert "\n" not in lines[0]


def test_the_injection_of_the_review_is_refused_and_shown_escaped():
    lines = problems([user(INJECTED)])
    assert lines[0].startswith("host mail1: submission_users[0].name: 'evil@example.test:{PLAIN}"
                               "known::::::\\nalice@example.test'"), lines


@pytest.mark.parametrize("sender, reason", [
    ("sales@example.test alice@example.test", "white space"),
    ("sales@example.test\nevil@example.test", "white space"),
    ("sales@example.test,evil@example.test", "','"),
    ("sales:x@example.test", "':'"),
    ("sales", "one address local@domain"),
    ("sales@", "is empty"),
    (["sales@example.test"], "must be a string"),
])
def test_bad_sender_is_refused(sender, reason):
    lines = problems([user(senders=["info@example.test", sender])])
    assert len(lines) == 1 and lines[0].startswith("host mail1: submission_users[0].senders[1]: "), lines
    assert reason in lines[0], lines


@pytest.mark.parametrize("senders", ["sales@example.test", None, {"sales@example.test": 1}])
def test_senders_not_a_list_is_refused(senders):
    lines = problems([user(senders=senders)])
    assert len(lines) == 1 and lines[0].startswith("host mail1: submission_users[0].senders: "
                                                   "must be a list"), lines


@pytest.mark.parametrize("item, path, reason", [
    ({"password": SECRET}, "submission_users[0].name", "is required"),
    ({"name": "alice@example.test"}, "submission_users[0].password", "is required"),
    ({"name": "alice@example.test", "password": None}, "submission_users[0].password", "is required"),
    ({"name": "alice@example.test", "password": ""}, "submission_users[0].password", "must not be empty"),
    ({"name": "alice@example.test", "password": vaulted("")}, "submission_users[0].password",
     "must not be empty"),
    ({"name": "alice@example.test", "password": 12345678}, "submission_users[0].password",
     "must be a string, not int"),
    ({"name": "alice@example.test", "password": SECRET, "sender": ["s@example.test"]},
     "submission_users[0].sender", "unknown key (allowed: name, password, senders); did you mean"),
    ("alice@example.test:" + SECRET, "submission_users[0]", "must be a mapping"),
])
def test_each_item_problem(item, path, reason):
    lines = problems([item])
    assert len(lines) == 1 and lines[0].startswith("host mail1: %s: " % path), lines
    assert reason in lines[0], lines


def test_a_password_is_never_shown():
    for password in (12345678, ["x", SECRET], {"p": SECRET}):
        lines = problems([{"name": "alice@example.test", "password": password}])
        assert "password: must be a string" in lines[0], lines
    assert "12345678" not in "\n".join(problems([{"name": "a@example.test", "password": 12345678}]))


def test_duplicate_logins_are_refused_case_insensitively():
    lines = problems([user(), user("bob@example.org"), user("ALICE@example.TEST")])
    assert lines == ["host mail1: submission_users[2].name: 'ALICE@example.TEST': duplicate of "
                     "submission_users[0] (logins are compared case-insensitively)"]


@pytest.mark.parametrize("users", ["alice@example.test", {"name": "alice@example.test"}, None])
def test_not_a_list_is_refused(users):
    lines = problems(users)
    assert len(lines) == 1 and lines[0].startswith("host mail1: submission_users: must be a list"), lines
    assert "alice" not in lines[0]  # a mapping given instead of a list may hold a password


def test_every_problem_at_once():
    lines = problems([user(INJECTED, senders=["a b@example.test"]),
                      {"name": "bob@example.org", "password": ""}, user("alice@example.test"),
                      user("ALICE@example.test")])
    assert [line.split(": ")[1] for line in lines] == [
        "submission_users[0].name", "submission_users[0].senders[0]", "submission_users[1].password",
        "submission_users[3].name"], lines
