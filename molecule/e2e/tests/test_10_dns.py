"""The DNS the other checks stand on: ns serves the records mailward generated and published.

The zones on ns were created with SOA/NS/glue only; every record below must have arrived as a
TSIG-signed RFC 2136 update (named logs each one), i.e. from the dns role, not by hand.
"""

import dns.resolver
import pytest

from conftest import IP, explain, journal

EXPECTED = [
    # (name, type, expected value or prefix, who published it)
    ("example.test", "MX", "10 mx.example.test.", "site.yml"),
    ("mx.example.test", "A", "10.89.200.25", "site.yml"),
    ("example.test", "TXT", "v=spf1 mx -all", "site.yml"),
    ("_dmarc.example.test", "TXT", "v=DMARC1; p=reject; adkim=s; aspf=s", "site.yml"),
    ("mw2026r._domainkey.example.test", "TXT", "v=DKIM1; k=rsa; p=", "site.yml"),
    ("partner-strict.example", "TXT", "v=spf1 ip4:10.89.200.31 -all", "prepare.yml"),
    ("partner-strict.example", "MX", "10 mail.partner-strict.example.", "prepare.yml"),
    ("mail.partner-strict.example", "A", "10.89.200.31", "prepare.yml"),
    ("_dmarc.partner-strict.example", "TXT", "v=DMARC1; p=reject", "prepare.yml"),
    ("e2e2026._domainkey.partner-strict.example", "TXT", "v=DKIM1; k=rsa; p=", "prepare.yml"),
    ("partner-soft.example", "TXT", "v=spf1 ip4:10.89.200.31 ~all", "prepare.yml"),
    ("partner-nospf.example", "MX", "10 mail.partner-nospf.example.", "prepare.yml"),
    ("mail.partner-nospf.example", "A", "10.89.200.32", "prepare.yml"),
]


def resolver():
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [IP["ns"]]
    res.lifetime = 5
    return res


def answer(name, rtype):
    try:
        rrset = resolver().resolve(name, rtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    if rtype == "TXT":
        return [b"".join(r.strings).decode() for r in rrset]
    return [r.to_text() for r in rrset]


@pytest.mark.parametrize("name,rtype,value,origin", EXPECTED, ids=["%s %s" % e[:2] for e in EXPECTED])
def test_record_published_by_the_dns_role(hosts, name, rtype, value, origin):
    got = answer(name, rtype)
    matching = [v for v in got if v == value or (value.endswith("p=") and v.startswith(value))]
    updates = journal(hosts.ns, None, unit="named", grep="updating zone .*adding an RR at '%s' %s" % (name, rtype))
    assert len(matching) == 1, explain("%s %s at ns: %r, expected %r (published by %s)" % (name, rtype, got, value, origin),
                                       ("named updates", journal(hosts.ns, None, unit="named", grep="updating zone")))
    assert "signer \"mailward-e2e\" approved" in journal(hosts.ns, None, unit="named") and updates, explain(
        "%s %s was not added by a TSIG-signed update (the dns role)" % (name, rtype), ("named updates", updates))


def test_partner_nospf_has_no_spf():
    """The envelope domain of check 3: MX and A exist (reject_unknown_sender_domain), SPF does not."""
    txt = answer("partner-nospf.example", "TXT")
    assert not [t for t in txt if t.startswith("v=spf1")], txt
