"""The postfix role's regexp tables, compiled and queried by Postfix's own postmap.

The e2e scenario sends these shapes over SMTP (molecule/e2e/tests/test_35_forgery.py); this is
the quick check of the patterns themselves, with the regexp engine Postfix uses. postmap comes
from scripts/setup.sh (Postfix is installed on the test machine as a checker).
"""

import os
import shutil
import subprocess

import jinja2
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATES = os.path.join(ROOT, "roles", "postfix", "templates")

FROM_REJECT = "REJECT 5.7.1 From: must hold exactly one plain author address (RFC 5322 3.6.2, DMARC RFC 7489 6.6.1)"
FROM_ENCODED = "REJECT 5.7.1 From: an encoded-word inside the address (RFC 2047 5)"
DKIM_REJECT = "REJECT 5.7.1 DKIM-Signature: d= or s= is not a plain domain name (RFC 6376 3.5)"
SENDER_REJECT = "REJECT 5.1.7 more than one @ or a quote in the envelope sender"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """query(name, key) -> postmap's answer for key in the rendered table, '' when nothing matches."""
    assert shutil.which("postmap"), "postmap missing: scripts/setup.sh installs postfix"
    workdir = tmp_path_factory.mktemp("postfix")
    (workdir / "main.cf").write_text("")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "# " + text
    for name in ("mailward-header-checks", "mailward-sender-syntax"):
        (workdir / name).write_text(env.get_template(name + ".j2").render(ansible_managed="test"))

    def query(name, key):
        out = subprocess.run(["postmap", "-c", str(workdir), "-q", key, "regexp:%s/%s" % (workdir, name)],
                             capture_output=True, text=True, check=False)
        assert out.stderr == "", out.stderr  # a pattern Postfix cannot compile warns here
        assert out.returncode in (0, 1), out
        return out.stdout.strip()
    return query


@pytest.mark.parametrize("header", [
    "From: bob@a.example",
    "From: Bob Example <bob@a.example>",
    'From: "Example, Bob" <bob@a.example>',
    'From: "Bob \\"the\\" builder" <bob@a.example>',
    "From: Bob Q. Example <bob@a.example>",
    "From: =?UTF-8?B?w4lsb8Ovc2UgTcO8bGxlcg==?= <bob@a.example>",
    "From: \u00c9lodie <bob@a.example>",
    "From: bob@a.example (Bob Example)",
    "From: Bob Example\n <bob@a.example>",
    "Sender: list-bounces@a.example, other@b.example",
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=a.example; i=@a.example; q=dns/txt;"
    " s=sel-2026_1; t=1; h=From : To : Subject; bh=Ab+/c=; b=Xy+/z==",
    "DKIM-Signature: d=mail.a.example;\n\ts=20230601; v=1",
])
def test_plain_headers_pass(table, header):
    assert table("mailward-header-checks", header) == ""


@pytest.mark.parametrize("header,expected", [
    ("From: bob@a.example, ceo@v.example", FROM_REJECT),
    ("From: <@a.example,@b.example:ceo@v.example>", FROM_REJECT),
    ("From: <bob@a.example>ceo@v.example", FROM_REJECT),
    ("From: ceo@v.example <bob@a.example>", FROM_REJECT),
    ('From: "ceo@v.example"@a.example', FROM_REJECT),
    ("From: bob@a.example (ceo@v.example)", FROM_REJECT),
    ("From: Board: ceo@v.example;", FROM_REJECT),
    ("From:", FROM_REJECT),
    ("from : bob@a.example, ceo@v.example", FROM_REJECT),
    ("From: <ceo@v.example\n .a.example>", FROM_REJECT),
    ("From: =?utf-8?b?Y2VvQHYuZXhhbXBsZQ==?=", FROM_ENCODED),
    ("From: CEO <=?utf-8?q?ceo=40v.example?=@a.example>", FROM_ENCODED),
    ('DKIM-Signature: v=1; d=v.example".a.example; s=x', DKIM_REJECT),
    ("DKIM-Signature: v=1; d=v.example; s=x(y)", DKIM_REJECT),
    ("DKIM-Signature: d=v\\.example; s=x", DKIM_REJECT),
])
def test_ambiguous_headers_are_refused(table, header, expected):
    assert table("mailward-header-checks", header) == expected


@pytest.mark.parametrize("sender,expected", [
    ("bob@a.example", ""),
    ("bob+tag=x@a.example", ""),
    ("ceo@v.example@a.example", SENDER_REJECT),   # "ceo@v.example"@a.example, unquoted by Postfix
    ('bo"b@a.example', SENDER_REJECT),
    ("bo b@a.example", SENDER_REJECT),
    ("bob\t@a.example", SENDER_REJECT),
])
def test_envelope_sender_syntax(table, sender, expected):
    assert table("mailward-sender-syntax", sender) == expected
