"""txt_chunks / txt_strings: 255-byte boundary, UTF-8 boundaries, escaping, round trips."""
import dns.rdata
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mailward.mail.plugins.module_utils.records import txt_chunks, txt_strings
from mw_testlib import parse_txt_presentation, refusal


def dnspython_strings(presentation):
    """The character-strings dnspython reads from zone-file TXT RDATA."""
    return list(dns.rdata.from_text("IN", "TXT", presentation).strings)


@pytest.mark.parametrize("size, expected", [
    (0, [0]), (1, [1]), (254, [254]), (255, [255]), (256, [255, 1]), (510, [255, 255]),
    (511, [255, 255, 1]),
])
def test_ascii_boundary(size, expected):
    chunks = txt_chunks("x" * size)
    assert [len(chunk.encode()) for chunk in chunks] == expected
    assert "".join(chunks) == "x" * size


@pytest.mark.parametrize("value, expected", [
    ("a" * 253 + "é", ["a" * 253 + "é"]),          # 2-byte char ends exactly at byte 255
    ("a" * 254 + "é", ["a" * 254, "é"]),           # would straddle bytes 255/256
    ("a" * 252 + "€", ["a" * 252 + "€"]),          # 3 bytes ending at 255
    ("a" * 253 + "€", ["a" * 253, "€"]),           # straddles
    ("a" * 254 + "€", ["a" * 254, "€"]),
    ("a" * 251 + "😀", ["a" * 251 + "😀"]),        # 4 bytes ending at 255
    ("a" * 252 + "😀", ["a" * 252, "😀"]),
    ("a" * 254 + "😀", ["a" * 254, "😀"]),
    ("é" * 128, ["é" * 127, "é"]),                 # 254 bytes, then the 128th char
])
def test_multibyte_characters_are_never_split(value, expected):
    assert txt_chunks(value) == expected


def test_empty_value_is_one_empty_string():
    assert txt_chunks("") == [""]
    assert txt_strings("") == '""'
    assert dnspython_strings(txt_strings("")) == [b""]


def test_escaping():
    assert txt_strings('say "hi" \\ now') == '"say \\"hi\\" \\\\ now"'
    assert txt_strings("a\nb\tc\x7f") == '"a\\010b\\009c\\127"'
    assert txt_strings("v=spf1 -all") == '"v=spf1 -all"'


def test_escapes_do_not_count_towards_the_255_bytes():
    value = '"' * 300
    assert txt_chunks(value) == ['"' * 255, '"' * 45]
    assert txt_strings(value) == '"%s" "%s"' % ('\\"' * 255, '\\"' * 45)


def test_long_dkim_like_value_splits_into_quoted_strings():
    value = "v=DKIM1; k=rsa; p=" + "A" * 392
    presentation = txt_strings(value)
    assert presentation == '"%s" "%s"' % (value[:255], value[255:])
    assert b"".join(dnspython_strings(presentation)) == value.encode()


@pytest.mark.parametrize("bad", [None, 5, ["a"], b"bytes", "\ud800"])
def test_non_text_refused(bad):
    message = refusal(txt_chunks, bad, domain="example.test")
    assert message.startswith("txt_chunks: example.test: ") and "RFC 1035 §3.3.14" in message
    assert refusal(txt_strings, bad).startswith("txt_chunks: ")


def check_round_trip(value):
    chunks = txt_chunks(value)
    raw = [chunk.encode("utf-8") for chunk in chunks]
    assert "".join(chunks) == value
    assert all(len(item) <= 255 for item in raw)
    assert all(chunks) or chunks == [""]
    for item, following in zip(chunks, chunks[1:]):  # greedy: the next char did not fit
        assert len(item.encode()) + len(following[0].encode()) > 255
    presentation = txt_strings(value)
    assert "\n" not in presentation and "\r" not in presentation
    assert parse_txt_presentation(presentation) == raw
    assert dnspython_strings(presentation) == raw
    assert b"".join(dnspython_strings(presentation)).decode("utf-8") == value


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=1200))
def test_round_trip_arbitrary_text(value):
    check_round_trip(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "é", "€", "😀", '"', "\\", " ", ";", "\x00"]),
               min_size=120, max_size=900))
def test_round_trip_multibyte_and_escape_heavy_text(value):
    check_round_trip(value)


def test_own_parser_agrees_with_dnspython_on_a_known_value():
    presentation = '"a\\"b" "\\\\c\\065"'
    assert parse_txt_presentation(presentation) == dnspython_strings(presentation) == \
        [b'a"b', b"\\cA"]
