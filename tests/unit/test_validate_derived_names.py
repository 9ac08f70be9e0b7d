"""Names derived from a valid domain must be valid too (RFC 1035 §2.3.4: at most 253 octets).

A 253-octet domain is valid, but _dmarc.<domain> is not; the zone backend wrote invalid lines and
nsupdate died with a traceback. mail_domains_normalize refuses every derived name that is too
long, naming the variable that produces it.
"""
import pytest

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records
from ansible_collections.mailward.mail.plugins.module_utils.records import name_problem
from mw_testlib import refusal

HOST, MX = "mail1", "mx.example.test"
RFC = "a name has at most 253 (RFC 1035 §2.3.4)"


def long_name(length, suffix="example.test"):
    """A valid name of exactly ``length`` characters ending in ``suffix``."""
    labels, left = [], length - len(suffix)
    while left > 0:
        size = min(63, left - 1)
        if left - (size + 1) == 1:  # never leave room for an empty label only
            size -= 1
        labels.append("a" * size)
        left -= size + 1
    name = ".".join(labels + [suffix])
    assert len(name) == length and name_problem(name) is None, (len(name), name_problem(name))
    return name


def problems(domains, mail_hostname=MX):
    return refusal(mail_domains_normalize, domains, HOST, mail_hostname).splitlines()


def lines_for(lines, path):
    return [line for line in lines if line.split(": ")[2] == path]


def test_the_253_octet_domain_of_the_review():
    name = long_name(253)
    lines = problems([{"name": name, "dkim": []}])
    assert len(lines) == 1, lines
    assert lines[0].startswith("host mail1: mail_domains[0] (aaaa"), lines
    assert ": dmarc: the DMARC record name '_dmarc.aaaa" in lines[0], lines
    assert "is 260 characters long; " + RFC in lines[0], lines


def test_the_longest_domain_whose_dmarc_name_fits_passes():
    assert mail_domains_normalize([{"name": long_name(246), "dkim": []}], HOST, MX)
    lines = problems([{"name": long_name(247), "dkim": []}])
    assert len(lines) == 1 and "is 254 characters long" in lines[0], lines


def test_dkim_name_names_the_selector():
    name = long_name(240)
    lines = problems([{"name": name, "dkim": [{"selector": "s1"}, {"selector": "longer-selector"}]}])
    assert [line.split(": ")[2] for line in lines] == ["dkim[0].selector", "dkim[1].selector"], lines
    assert "'s1._domainkey.aaaa" in lines[0] and "is 254 characters long" in lines[0], lines


def test_default_selector_is_checked_too():
    lines = problems([{"name": long_name(235)}])
    assert lines_for(lines, "dkim[0].selector"), lines
    assert "'mailward._domainkey." in lines[0], lines


def test_report_authorization_names_the_report_uri():
    name = long_name(230)
    lines = problems([{"name": name, "dkim": [], "dmarc": {
        "p": "reject", "rua": ["mailto:d@" + name, "mailto:d@reports.example.net"],
        "ruf": ["mailto:f@reports.example.net"]}}])
    assert [line.split(": ")[2] for line in lines] == ["dmarc.rua[1]", "dmarc.ruf[0]"], lines
    assert ": dmarc.rua[1]: 'mailto:d@reports.example.net': the report authorization name " \
        "'aaaa" in lines[0], lines
    assert "is 265 characters long; " + RFC in lines[0], lines


def test_report_uri_given_as_one_string():
    lines = problems([{"name": long_name(230), "dkim": [],
                       "dmarc": {"p": "none", "rua": "mailto:d@reports.example.net"}}])
    assert [line.split(": ")[2] for line in lines] == ["dmarc.rua"], lines


@pytest.mark.parametrize("key, value, owner", [
    ("mta_sts", {"mode": "testing"}, "_mta-sts."),
    ("tlsrpt", {"rua": ["mailto:t@example.test"]}, "_smtp._tls."),
])
def test_mta_sts_and_tlsrpt_names(key, value, owner):
    name = long_name(245)  # _dmarc. (+7) fits, _mta-sts. (+9) and _smtp._tls. (+11) do not
    lines = problems([{"name": name, "dkim": [], key: value}])
    assert [line.split(": ")[2] for line in lines] == [key], lines
    assert "'%saaaa" % owner in lines[0] and RFC in lines[0], lines


def test_tlsa_name_names_the_mx_host():
    host = long_name(245, "mx.example.test")
    domain = {"name": "example.test", "mx": [{"host": "mx1.example.test"}, {"host": host}]}
    assert mail_domains_normalize([domain], HOST, MX)  # no TLSA, no _25._tcp name
    lines = problems([dict(domain, tlsa=True)])
    assert [line.split(": ")[2] for line in lines] == ["mx[1].host"], lines
    assert "'_25._tcp.aaaa" in lines[0] and "is 254 characters long" in lines[0], lines


def test_tlsa_name_of_the_default_mx_names_mail_hostname():
    lines = problems([{"name": "example.test", "tlsa": True}],
                     mail_hostname=long_name(250, "mx.example.test"))
    assert [line.split(": ")[1:3] for line in lines] == [["mail_domains[0] (example.test)",
                                                          "mail_hostname"]], lines


def test_records_refuse_an_owner_name_that_is_too_long_whatever_the_input():
    domain = mail_domains_normalize([{"name": "example.test", "dkim": []}], HOST, MX)[0]
    domain["name"] = long_name(250)  # not through normalize: the records must still refuse it
    message = refusal(mail_domains_records, [domain])
    assert "_dmarc.aaaa" in message and RFC in message, message
