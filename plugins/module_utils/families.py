# -*- coding: utf-8 -*-
"""The record families mailward publishes, and DNS name spelling: one table for every user.

The dns role (dns_manage_types, the dns_publish action, the dns_nsupdate module) and the audit
(audit_dns_types, which TXT strings are "ours") read the same table, so a family added here is
published and audited alike. Pure Python, no imports: modules run it on managed hosts too.
"""

# dns_manage_types names -> the ``kind`` values of mail_domains_records.
MANAGE_TYPES = {
    "MX": ("mx",),
    "SPF": ("spf",),
    "DKIM": ("dkim",),
    "DMARC": ("dmarc",),
    "DMARC_REPORT": ("dmarc_report_auth",),
    "MTA_STS": ("mta_sts",),
    "TLSRPT": ("tlsrpt",),
    "TLSA": ("tlsa",),
    "ADDRESS": ("a", "aaaa"),
}
KIND_TO_TYPE = {kind: name for name, kinds in MANAGE_TYPES.items() for kind in kinds}

# The first tag of a TXT value that marks it as one of ours in an rrset shared with other TXT
# strings at the same name (an apex holds SPF next to site verifications). DKIM has none: the
# TXT rrset at <selector>._domainkey.<domain> is ours as a whole (owns_whole_rrset).
TXT_MARKERS = {"spf": "v=spf1", "dmarc": "v=DMARC1", "dmarc_report_auth": "v=DMARC1",
               "mta_sts": "v=STSv1", "tlsrpt": "v=TLSRPTv1"}


def fqdn(name):
    """Lower case, with one trailing dot."""
    name = str(name).strip().lower()
    return name if name.endswith(".") else name + "."


def bare(name):
    """Lower case, without trailing dot."""
    return str(name).strip().lower().rstrip(".")


def txt_tag(value):
    """The first tag of a TXT value (``v=spf1``, ``v=dmarc1``...), lower case; bytes stay bytes."""
    if isinstance(value, bytes):
        text, seps = value.strip().lower(), (b";", b" ", b"\t")
    else:
        text, seps = str(value).strip().lower(), (";", " ", "\t")
    for sep in seps:
        text = text.split(sep, 1)[0]
    return text


def owns_whole_rrset(labels, rtype):
    """Whether mailward owns every value of the rrset at a name (``labels``: its labels).

    Every type but TXT, and TXT at a DKIM key name (``_domainkey``); elsewhere a TXT rrset is
    shared and only the strings with our tags (``txt_tag`` of a wanted value) are ours.
    """
    if str(rtype).upper() != "TXT":
        return True
    wanted = b"_domainkey" if labels and isinstance(next(iter(labels)), bytes) else "_domainkey"
    return wanted in labels
