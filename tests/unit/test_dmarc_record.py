"""dmarc_record and dmarc_report_authorizations."""
import pytest

from ansible_collections.mailward.mail.plugins.module_utils.records import DMARC_TAG_ORDER, dmarc_record, dmarc_report_authorizations
from mw_testlib import refusal

D = "example.test"


def tags(record):
    """[(name, value)] of a DMARC record, parsed independently."""
    return [tuple(part.split("=", 1)) for part in record.split("; ")]


@pytest.mark.parametrize("spec, expected", [
    ({"p": "reject"}, "v=DMARC1; p=reject"),
    ({"p": "none"}, "v=DMARC1; p=none"),
    ({"p": "Quarantine"}, "v=DMARC1; p=quarantine"),
    ({"p": "reject", "rua": "mailto:d@example.test"}, "v=DMARC1; p=reject; rua=mailto:d@example.test"),
    ({"p": "reject", "rua": [], "ruf": None}, "v=DMARC1; p=reject"),
    ({"p": "reject", "t": True, "psd": False}, "v=DMARC1; p=reject; t=y; psd=n"),
    ({"p": "reject", "ruf": ["mailto:f@example.test"], "fo": 1},
     "v=DMARC1; p=reject; ruf=mailto:f@example.test; fo=1"),
    ({"p": "reject", "ruf": ["mailto:f@example.test"], "fo": ["0", "d", "s", "d"]},
     "v=DMARC1; p=reject; ruf=mailto:f@example.test; fo=0:d:s"),
])
def test_valid_records(spec, expected):
    assert dmarc_record(spec) == expected


def test_full_record_has_fixed_tag_order_and_no_duplicates():
    spec = {"fo": "1:d", "ruf": ["mailto:f@example.test"], "rua": ["mailto:a@example.test"],
            "psd": "n", "t": "y", "aspf": "s", "adkim": "r", "np": "reject",
            "sp": "quarantine", "p": "reject"}
    record = dmarc_record(spec)
    assert record == ("v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=r; aspf=s; t=y; "
                      "psd=n; rua=mailto:a@example.test; ruf=mailto:f@example.test; fo=1:d")
    names = [name for name, _ in tags(record)]
    assert names[:2] == ["v", "p"] and len(names) == len(set(names))
    assert names[1:] == [tag for tag in DMARC_TAG_ORDER if tag in names]


def test_legacy_tags_allowed_only_with_legacy_and_placed_before_rua():
    spec = {"legacy": True, "p": "quarantine", "ri": "86400", "rf": "afrf", "pct": 50,
            "rua": "mailto:a@example.test", "t": "n"}
    assert dmarc_record(spec) == ("v=DMARC1; p=quarantine; t=n; pct=50; rf=afrf; ri=86400; "
                                  "rua=mailto:a@example.test")


def test_uris_are_normalized_and_encoded_and_keep_size_suffix():
    spec = {"p": "reject", "rua": ["MAILTO:a,b!c@Reports.Example.NET!10M",
                                   "mailto:x;y@example.test", "mailto:100%@example.test",
                                   "mailto:pre%2Cencoded@example.test!5"]}
    rua = dict(tags(dmarc_record(spec)))["rua"]
    assert rua.split(",") == ["mailto:a%2Cb%21c@reports.example.net!10m",
                              "mailto:x%3By@example.test", "mailto:100%25@example.test",
                              "mailto:pre%2Cencoded@example.test!5"]


def test_duplicate_uris_are_published_once():
    spec = {"p": "reject", "rua": ["mailto:a@example.test", "mailto:a@EXAMPLE.test"]}
    assert dmarc_record(spec) == "v=DMARC1; p=reject; rua=mailto:a@example.test"


@pytest.mark.parametrize("spec, path, term, rule", [
    ({}, "p", "required", "RFC 9989 §4.7"),
    ({"p": None, "sp": "reject"}, "p", "required", "RFC 9989 §4.7"),
    ({"p": "rejet"}, "p", "'rejet'", "RFC 9989 §4.7"),
    ({"p": False}, "p", "False", "quote it"),
    ({"p": "reject", "sp": "block"}, "sp", "'block'", "RFC 9989 §4.7"),
    ({"p": "reject", "np": "x"}, "np", "'x'", "RFC 9989 §4.7"),
    ({"p": "reject", "adkim": "strict"}, "adkim", "'strict'", "RFC 9989 §4.7"),
    ({"p": "reject", "aspf": "x"}, "aspf", "'x'", "RFC 9989 §4.7"),
    ({"p": "reject", "t": "maybe"}, "t", "'maybe'", "RFC 9989 §4.7"),
    ({"p": "reject", "psd": "x"}, "psd", "'x'", "RFC 9989 §4.7"),
    ({"p": "reject", "fo": "1"}, "fo", "'1'", "RFC 9989 §4.7"),
    ({"p": "reject", "ruf": "mailto:f@example.test", "fo": "2"}, "fo", "'2'", "§4.8"),
    ({"p": "reject", "ruf": "mailto:f@example.test", "fo": "0:1"}, "fo", "'0:1'", "§4.8"),
    ({"p": "reject", "pct": 100}, "pct", "100", "RFC 9989 Appendix C.5.2"),
    ({"p": "reject", "rf": "afrf"}, "rf", "'afrf'", "RFC 9989 Appendix C.5.2"),
    ({"p": "reject", "ri": 86400}, "ri", "86400", "RFC 9989 Appendix C.5.2"),
    ({"p": "reject", "legacy": False, "pct": 0}, "pct", "0", "legacy: true"),
    ({"p": "reject", "legacy": True, "pct": 101}, "pct", "101", "RFC 7489 §6.3"),
    ({"p": "reject", "legacy": True, "pct": True}, "pct", "True", "RFC 7489 §6.3"),
    ({"p": "reject", "legacy": True, "rf": "iodef"}, "rf", "'iodef'", "RFC 7489 §6.3"),
    ({"p": "reject", "legacy": True, "ri": 0}, "ri", "0", "RFC 7489 §6.3"),
    ({"p": "reject", "legacy": "yes"}, "legacy", "'yes'", "docs/schema.md"),
    ({"p": "reject", "rua": ["dmarc@example.test"]}, "rua", "'dmarc@example.test'", "RFC 9989"),
    ({"p": "reject", "rua": ["https://r.example.net/"]}, "rua", "'https://r.example.net/'",
     "RFC 9989"),
    ({"p": "reject", "rua": "mailto:"}, "rua", "'mailto:'", "RFC 9989"),
    ({"p": "reject", "rua": "mailto:d@localhost"}, "rua", "'mailto:d@localhost'", "two labels"),
    ({"p": "reject", "rua": "mailto: d@example.test"}, "rua", "whitespace", "RFC 9989"),
    ({"p": "reject", "ruf": "mailto:d@example.test?subject=x"}, "ruf", "header", "RFC 9989"),
    ({"p": "reject", "rua": {"to": "x"}}, "rua", "{'to': 'x'}", "docs/schema.md"),
    ({"p": "reject", "rau": ["mailto:d@example.test"]}, "rau", "or 'rua'?", "schema"),
    ({"p": "reject", "v": "DMARC1"}, "v", "unknown key", "schema"),
])
def test_refusals_name_domain_path_term_and_rule(spec, path, term, rule):
    message = refusal(dmarc_record, spec, domain=D)
    assert message.startswith("dmarc_record: %s: %s: " % (D, path)), message
    assert term in message and rule in message, message


def test_every_independent_problem_is_reported():
    spec = {"p": "rejet", "pct": 5, "rua": ["x@example.test", "mailto:ok@example.test"],
            "adkim": "q"}
    lines = refusal(dmarc_record, spec, domain=D).splitlines()
    assert [line.split(": ")[2] for line in lines] == ["p", "adkim", "pct", "rua"], lines


# ---------------------------------------------------------------- report authorizations

def test_authorizations_for_foreign_destinations_only_sorted_and_unique():
    uris = ["mailto:d@example.test", "mailto:d@sub.example.test", "mailto:x@reports.example.net",
            "mailto:y@Reports.Example.NET!10m", "mailto:z@other.test",
            "mailto:w@notexample.test"]
    assert dmarc_report_authorizations(D, uris) == [
        {"name": "example.test._report._dmarc.notexample.test", "value": "v=DMARC1"},
        {"name": "example.test._report._dmarc.other.test", "value": "v=DMARC1"},
        {"name": "example.test._report._dmarc.reports.example.net", "value": "v=DMARC1"},
    ]


@pytest.mark.parametrize("uris", [None, [], "mailto:d@example.test"])
def test_no_authorization_needed(uris):
    assert dmarc_report_authorizations(D, uris) == []


def test_parent_domain_destination_needs_a_record_without_a_public_suffix_list():
    assert dmarc_report_authorizations("sub.example.test", ["mailto:d@example.test"]) == [
        {"name": "sub.example.test._report._dmarc.example.test", "value": "v=DMARC1"}]


def test_authorization_refusals():
    message = refusal(dmarc_report_authorizations, D, ["dmarc@example.net"])
    assert message.startswith("dmarc_report_authorizations: example.test: uris: ")
    assert "'dmarc@example.net'" in message and "mailto:" in message
    assert "two labels" in refusal(dmarc_report_authorizations, "localhost", [])
