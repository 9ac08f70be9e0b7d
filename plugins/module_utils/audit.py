# -*- coding: utf-8 -*-
"""mailward audit: pure logic (no network, no Ansible) shared by the audit role's module and filters.

Everything here takes data and returns data:

* ``spf_evaluate(domain, resolve)``: RFC 7208 §4.6.4 lookup and void-lookup counting, nested
  include/redirect followed through a resolver callable; stops where receivers stop (the 11th
  DNS-querying term, the 3rd void lookup, more than 10 MX hosts) and at a deadline;
* ``parse_dmarc`` / ``parse_dkim`` / ``dkim_key_info``: strict parsers of published records;
* ``dns_checks(expected, domains, host_keys, resolve)``: published vs generated records
  (``mail_domains_records``) plus the records' own validity;
* ``dkim_lifecycle_checks(host_keys, now, ...)``: DKIM key age and early activation, from the
  dkim_keys module's lifecycle record;
* ``smtp_checks(probe, host, mx_name, ...)``: verdicts on an SMTP dialogue recorded by the
  ``smtp_probe`` module;
* ``drift_checks``: ``postconf -n`` / ``postconf -M`` of the live and the rendered configuration;
* ``aggregate`` / ``render_markdown``: the report.

A resolver callable is ``resolve(name, rtype) -> {"rcode": str, "answers": [str], "error": str}``:
``rcode`` is ``NOERROR``, ``NXDOMAIN`` or an error (``SERVFAIL``, ``REFUSED``, ``TIMEOUT``...);
``answers`` are TXT strings joined without spaces, MX as ``"10 mx.example.test."``, A/AAAA
addresses, TLSA in presentation form. A check is a dict ``{id, status, category, target,
summary, details}`` with status ``pass``, ``warn`` or ``fail``.
"""

from __future__ import absolute_import, division, print_function

import base64
import datetime
import hashlib
import ipaddress
import re
import time

from ansible_collections.mailward.mail.plugins.module_utils.dkim import RSA_MIN_BITS as DKIM_RSA_MIN_BITS
from ansible_collections.mailward.mail.plugins.module_utils.dkim import public_key_value
from ansible_collections.mailward.mail.plugins.module_utils.families import MANAGE_TYPES as TYPE_KINDS  # noqa: F401  (the audit_kinds filter's table)
from ansible_collections.mailward.mail.plugins.module_utils.families import TXT_MARKERS, bare, fqdn
from ansible_collections.mailward.mail.plugins.module_utils.records import unbracket_network

__metaclass__ = type

STATUSES = ("pass", "warn", "fail")
SPF_LOOKUP_LIMIT = 10
SPF_VOID_LIMIT = 2
SPF_MX_LIMIT = 10
# Seconds one SPF evaluation may take before the audit gives up on it (the check fails as cut short).
SPF_DEADLINE = 20.0
# DNS answers that mean "nothing there" (a void lookup, RFC 7208 §4.6.4), as opposed to errors.
_EMPTY_RCODES = ("NOERROR", "NXDOMAIN")


def check(check_id, status, summary, category=None, target=None, details=None):
    """One check result."""
    if status not in STATUSES:
        raise ValueError("status must be one of %s, not %r" % (STATUSES, status))
    return {"id": check_id, "status": status, "category": category or check_id.split(".", 1)[0],
            "target": target, "summary": summary, "details": details if details is not None else {}}


def worst(statuses):
    """The worst of some statuses (pass < warn < fail); pass for none."""
    rank = [STATUSES.index(s) for s in statuses]
    return STATUSES[max(rank)] if rank else "pass"


def _tag_marker(text, marker):
    """True when a TXT value starts with ``marker`` as a whole tag (``v=spf1`` then space or end)."""
    head = text[:len(marker)]
    rest = text[len(marker):]
    if head.lower() != marker.lower():
        return False
    return rest == "" or rest[0] in " ;\t"


# --------------------------------------------------------------------------------------------
# SPF (RFC 7208)
# --------------------------------------------------------------------------------------------

_SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_SPF_COUNTED = ("include", "a", "mx", "ptr", "exists")


def _spf_records(answers):
    return [text for text in answers if _tag_marker(text, "v=spf1")]


def _spf_target(arg, current):
    """The domain of an a/mx argument without its CIDR lengths (``a:host/24//64``)."""
    if not arg:
        return current
    return arg.split("/", 1)[0]


def _is_void(result):
    return result.get("rcode") in _EMPTY_RCODES and not result.get("answers")


def _dns_error(result):
    return result.get("rcode") not in _EMPTY_RCODES


def _describe(result):
    return result.get("rcode") + (": %s" % result["error"] if result.get("error") else "")


class _SpfStop(Exception):
    """Ends an SPF evaluation early: a receiver's permerror, or the audit's deadline."""


class _SpfWalk:
    """State of one recursive SPF evaluation.

    Every DNS question goes through ``ask``, every DNS-querying term through ``count`` and every
    void lookup through ``void``; each of them ends the walk (``_SpfStop``) where a receiver would
    stop, or when the deadline has passed. A walk therefore asks at most
    1 + limit x (1 + 2 x SPF_MX_LIMIT) questions (an mx term: its MX rrset and the A/AAAA of at
    most 10 hosts), whatever the published tree looks like.
    """

    def __init__(self, resolve, limit, void_limit, deadline, clock):
        self.resolve = resolve
        self.limit = limit
        self.void_limit = void_limit
        self.deadline = deadline
        self.clock = clock
        self.started = clock()
        self.questions = 0   # DNS questions asked (resolver calls)
        self.lookups = 0
        self.voids = 0
        self.problems = []   # permerror-class: receivers fail the check
        self.warnings = []   # could not be evaluated from here, or discouraged
        self.terms = []      # [(domain, term)] every DNS-querying term, in evaluation order
        self.records = {}    # domain -> SPF text evaluated
        self.stopped = None  # why the walk ended before the end of the records
        self.cut_short = False

    def permerror(self, text):
        """A problem that makes receivers stop with permerror: the walk stops there too."""
        text += "; evaluation stopped there, as receivers do (permerror)"
        self.problems.append(text)
        self.stopped = text
        raise _SpfStop(text)

    def ask(self, name, rtype):
        """One DNS question, unless the deadline has passed."""
        elapsed = self.clock() - self.started
        if self.deadline is not None and elapsed >= self.deadline:
            self.cut_short = True
            self.stopped = ("cut short after %.1f s (deadline %g s) and %d DNS questions, before asking %s %s"
                            % (elapsed, self.deadline, self.questions, bare(name), rtype))
            raise _SpfStop(self.stopped)
        self.questions += 1
        return self.resolve(bare(name), rtype)

    def void(self, name, rtype, why):
        self.voids += 1
        if self.voids > self.void_limit:
            self.permerror("void lookup number %d at %s %s (%s): at most %d are allowed (RFC 7208 §4.6.4)"
                           % (self.voids, bare(name), rtype, why, self.void_limit))

    def query(self, name, rtype, why):
        result = self.ask(name, rtype)
        if _dns_error(result):
            self.warnings.append("%s %s (%s): %s; receivers would get a temperror"
                                 % (bare(name), rtype, why, _describe(result)))
            return None
        if _is_void(result):
            self.void(name, rtype, why)
        return result.get("answers") or []

    def count(self, domain, term):
        self.lookups += 1
        self.terms.append((domain, term))
        if self.lookups > self.limit:
            self.permerror("DNS-querying term number %d is '%s' in the record of %s: at most %d "
                           "are allowed, nested include/redirect included (RFC 7208 §4.6.4)"
                           % (self.lookups, term, domain, self.limit))

    def fetch(self, domain, why, chain):
        """The single SPF record of ``domain`` or None (problem noted)."""
        result = self.ask(domain, "TXT")
        if _dns_error(result):
            self.warnings.append("%s TXT (%s): %s; receivers would get a temperror"
                                 % (bare(domain), why, _describe(result)))
            return None
        if _is_void(result):
            self.void(domain, "TXT", why)
        records = _spf_records(result.get("answers") or [])
        if not records:
            self.problems.append("%s has no SPF record (%s): permerror (RFC 7208 §5.2, §6.1)"
                                 % (bare(domain), why))
            return None
        if len(records) > 1:
            self.problems.append("%s has %d SPF records (%s): permerror (RFC 7208 §4.5)"
                                 % (bare(domain), len(records), why))
            return None
        if bare(domain) in chain:
            self.problems.append("%s is included again from %s: a loop (RFC 7208 §4.6.4)"
                                 % (bare(domain), " -> ".join(chain)))
            return None
        return records[0]

    def walk(self, domain, text, chain):
        domain = bare(domain)
        chain = chain + [domain]
        self.records[domain] = text
        if len(chain) > 12:  # deeper than any legal record can go (10 lookups)
            self.problems.append("include depth over 12 at %s" % domain)
            return
        terms = text.split()[1:]
        has_all = any(t.lstrip("+-~?").lower() == "all" for t in terms)
        redirect = None
        for term in terms:
            if "=" in term and ":" not in term.split("=", 1)[0]:
                name, value = term.split("=", 1)
                if name.lower() == "redirect":
                    if redirect is not None:
                        self.problems.append("%s: more than one redirect modifier (RFC 7208 §6)" % domain)
                    redirect = value
                elif name.lower() != "exp" and not re.match(r"\A[A-Za-z][A-Za-z0-9_.-]*\Z", name):
                    self.problems.append("%s: malformed modifier '%s' (RFC 7208 §12)" % (domain, term))
                continue
            mech = term.lstrip("+-~?")
            name, _, arg = mech.partition(":")
            if "/" in name:  # a/24, mx/24//64
                name, arg = name.split("/", 1)[0], ""
            name = name.lower()
            if name not in _SPF_MECHANISMS:
                self.problems.append("%s: unknown mechanism '%s': permerror (RFC 7208 §5)" % (domain, term))
                continue
            if name in _SPF_COUNTED:
                self.count(domain, term)
            if "%{" in arg:
                self.warnings.append("%s: '%s' uses a macro; its lookups depend on the message and "
                                     "were not resolved here" % (domain, term))
                continue
            if name == "include":
                if not arg:
                    self.problems.append("%s: include without a domain" % domain)
                    continue
                record = self.fetch(arg, "include from %s" % domain, chain)
                if record is not None:
                    self.walk(arg, record, chain)
            elif name == "a":
                self._addresses(_spf_target(arg, domain), "a in %s" % domain)
            elif name == "mx":
                target = _spf_target(arg, domain)
                hosts = self.query(target, "MX", "mx in %s" % domain)
                if hosts:
                    if len(hosts) > SPF_MX_LIMIT:
                        self.permerror("%s: mx:%s has %d MX hosts; at most %d address lookups are allowed "
                                       "(RFC 7208 §4.6.4)" % (domain, target, len(hosts), SPF_MX_LIMIT))
                    for mx in hosts:
                        host = mx.split()[-1]
                        if bare(host):
                            self._addresses(host, "MX host %s of %s" % (bare(host), target), count_void=False)
            elif name == "ptr":
                self.warnings.append("%s: ptr should not be used (RFC 7208 §5.5)" % domain)
            elif name == "exists":
                self.query(arg, "A", "exists in %s" % domain)
        if redirect is not None:
            if has_all:
                self.warnings.append("%s: redirect=%s is ignored because the record has all "
                                     "(RFC 7208 §6.1)" % (domain, redirect))
                return
            self.count(domain, "redirect=" + redirect)
            if "%{" in redirect:
                self.warnings.append("%s: redirect=%s uses a macro; not resolved here" % (domain, redirect))
                return
            record = self.fetch(redirect, "redirect from %s" % domain, chain)
            if record is not None:
                self.walk(redirect, record, chain)

    def _addresses(self, name, why, count_void=True):
        """A and AAAA of ``name``; a void lookup only when both are empty."""
        found, errors = [], []
        for rtype in ("A", "AAAA"):
            result = self.ask(name, rtype)
            if _dns_error(result):
                errors.append("%s %s: %s" % (bare(name), rtype, _describe(result)))
            else:
                found.extend(result.get("answers") or [])
        if errors and not found:
            self.warnings.append("%s (%s): receivers would get a temperror" % ("; ".join(errors), why))
            return None
        if not found and count_void:
            self.void(name, "A/AAAA", why)
        return found


def spf_evaluate(domain, resolve, record=None, limit=SPF_LOOKUP_LIMIT, void_limit=SPF_VOID_LIMIT,
                 deadline=SPF_DEADLINE, clock=None):
    """Count the DNS lookups an SPF evaluation of ``domain`` costs, following include/redirect.

    ``record``: the SPF text to start from (default: ask ``resolve`` for the TXT of ``domain``).
    Returns ``{lookups, voids, questions, problems, warnings, terms, records, stopped, cut_short}``:
    ``problems`` are what makes receivers return permerror (over ``limit`` DNS-querying terms or
    ``void_limit`` void lookups in all, counted recursively, more than 10 MX hosts for an mx
    term, an include/redirect target without exactly one SPF record, a loop, an unknown
    mechanism); ``warnings`` what could not be evaluated from here (DNS errors, macros) or is
    discouraged (ptr, ignored redirect). ``terms``: ``[domain, term]`` of every counted term.

    The walk stops where a receiver stops (the term over ``limit``, the void lookup over
    ``void_limit``, an mx term with more than 10 hosts: nothing after it is asked) and when
    ``deadline`` seconds (of ``clock``, default ``time.monotonic``) have passed before a
    question (``cut_short``; None: no deadline). ``stopped`` says why it stopped early, or None.
    ``questions``: the number of DNS questions asked (at most 1 + limit x 21).
    """
    walk = _SpfWalk(resolve, limit, void_limit, deadline, clock or time.monotonic)
    try:
        if record is None:
            record = walk.fetch(domain, "the domain's own record", [])
        if record is not None:
            walk.walk(domain, record, [])
    except _SpfStop:
        pass
    return {"lookups": walk.lookups, "voids": walk.voids, "questions": walk.questions,
            "problems": walk.problems, "warnings": walk.warnings, "terms": [list(t) for t in walk.terms],
            "records": walk.records, "stopped": walk.stopped, "cut_short": walk.cut_short}


# --------------------------------------------------------------------------------------------
# DMARC (RFC 9989; RFC 7489 legacy tags) and DKIM key records (RFC 6376, RFC 8463)
# --------------------------------------------------------------------------------------------

_DMARC_VALUES = {
    "p": ("none", "quarantine", "reject"), "sp": ("none", "quarantine", "reject"),
    "np": ("none", "quarantine", "reject"), "adkim": ("r", "s"), "aspf": ("r", "s"),
    "t": ("y", "n"), "psd": ("y", "n", "u"), "rf": ("afrf",),
}
_DMARC_KNOWN = ("v", "p", "sp", "np", "adkim", "aspf", "fo", "rua", "ruf", "t", "psd", "pct", "rf", "ri")
_DMARC_LEGACY = ("pct", "rf", "ri")
_MAILTO = re.compile(r"\Amailto:([^@]+)@([^!]+)(![0-9]+[kmgtKMGT]?)?\Z")


def _tag_list(text):
    """RFC 6376 §3.2 tag-list: [(name, value)], or raise ValueError."""
    out = []
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError("'%s' is not a tag=value pair" % part.strip())
        name, value = part.split("=", 1)
        name = name.strip()
        if not re.match(r"\A[A-Za-z][A-Za-z0-9_]*\Z", name):
            raise ValueError("'%s' is not a valid tag name" % name)
        out.append((name, value.strip()))
    return out


def parse_dmarc(text):
    """Parse a published DMARC record strictly.

    Returns ``{tags: {name: value}, problems: [...], warnings: [...], destinations: [domain]}``.
    Problems (the record is broken or does not do what it says): not starting with ``v=DMARC1``,
    malformed tag list, duplicate tags, missing or invalid ``p``, invalid values, a report URI
    that is not a ``mailto:`` address. Warnings: unknown tags (ignored by receivers), RFC 7489
    tags that RFC 9989 removed, fo without ruf. ``destinations``: the report domains of rua/ruf.
    """
    problems, warnings, tags, destinations = [], [], {}, []
    if not _tag_marker(text.lstrip(), "v=DMARC1") or not text.lstrip().startswith("v="):
        problems.append("does not start with v=DMARC1 (RFC 9989 §4.7)")
    try:
        pairs = _tag_list(text)
    except ValueError as error:
        return {"tags": {}, "problems": problems + [str(error)], "warnings": [], "destinations": []}
    for name, value in pairs:
        low = name.lower()
        if low in tags:
            problems.append("tag %s appears twice (RFC 9989 §4.7)" % name)
            continue
        tags[low] = value
    if pairs and pairs[0][0].lower() == "v" and pairs[0][1] != "DMARC1":
        problems.append("v=%s: must be DMARC1" % pairs[0][1])
    if "p" not in tags:
        problems.append("the p tag is missing (RFC 9989 §4.7)")
    for name, value in tags.items():
        if name not in _DMARC_KNOWN:
            warnings.append("unknown tag %s (receivers ignore it)" % name)
        elif name in _DMARC_LEGACY:
            warnings.append("tag %s was removed by RFC 9989" % name)
        if name in _DMARC_VALUES and value.lower() not in _DMARC_VALUES[name]:
            problems.append("%s=%s: must be one of %s" % (name, value, "|".join(_DMARC_VALUES[name])))
        if name == "pct" and not (value.isdigit() and 0 <= int(value) <= 100):
            problems.append("pct=%s: must be 0..100" % value)
        if name == "ri" and not value.isdigit():
            problems.append("ri=%s: must be a number of seconds" % value)
        if name == "fo":
            items = value.split(":")
            if not all(item.strip().lower() in ("0", "1", "d", "s") for item in items):
                problems.append("fo=%s: options are 0, 1, d, s joined by ':'" % value)
        if name in ("rua", "ruf"):
            for uri in value.split(","):
                uri = uri.strip()
                match = _MAILTO.match(uri)
                if not match:
                    problems.append("%s: '%s' is not a mailto: address (RFC 9989 §4.7)" % (name, uri))
                    continue
                dest = bare(match.group(2))
                if dest not in destinations:
                    destinations.append(dest)
    if "fo" in tags and "ruf" not in tags:
        warnings.append("fo has no effect without ruf")
    return {"tags": tags, "problems": problems, "warnings": warnings, "destinations": destinations}


def parse_dkim(text):
    """Tags of a DKIM key record (RFC 6376 §3.6.1): {tags, problems}."""
    problems = []
    try:
        pairs = _tag_list(text)
    except ValueError as error:
        return {"tags": {}, "problems": [str(error)]}
    tags = {}
    for name, value in pairs:
        if name in tags:
            problems.append("tag %s appears twice" % name)
        tags[name] = re.sub(r"\s+", "", value) if name == "p" else value
    if pairs and pairs[0][0] == "v" and pairs[0][1] != "DKIM1":
        problems.append("v=%s: must be DKIM1" % pairs[0][1])
    if "v" in tags and pairs[0][0] != "v":
        problems.append("v= must be the first tag (RFC 6376 §3.6.1)")
    if "p" not in tags:
        problems.append("the p tag is missing (RFC 6376 §3.6.1)")
    return {"tags": tags, "problems": problems}


def dkim_key_info(text):
    """What a published DKIM record holds: {type, bits, key (base64 DER/raw), problems}.

    RSA: ``bits`` from the SubjectPublicKeyInfo; Ed25519: the 32-byte raw key (RFC 8463).
    An empty ``p=`` is a revoked key (a problem for a selector that should sign).
    """
    parsed = parse_dkim(text)
    tags, problems = parsed["tags"], list(parsed["problems"])
    key_type = tags.get("k", "rsa").lower()
    info = {"type": key_type, "bits": None, "key": tags.get("p", ""), "problems": problems}
    if "p" not in tags:
        return info
    if not tags["p"]:
        problems.append("p= is empty: the key is revoked (RFC 6376 §3.6.1)")
        return info
    try:
        blob = base64.b64decode(tags["p"], validate=True)
    except (ValueError, TypeError):
        problems.append("p= is not base64")
        return info
    if key_type == "ed25519":
        if len(blob) != 32:
            problems.append("k=ed25519 key is %d bytes, not 32 (RFC 8463 §4.2)" % len(blob))
        info["bits"] = 256
        return info
    if key_type != "rsa":
        problems.append("k=%s: unknown key type (rsa or ed25519)" % key_type)
        return info
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=import-outside-toplevel
    try:
        key = serialization.load_der_public_key(blob)
    except (ValueError, TypeError):
        problems.append("p= is not a DER SubjectPublicKeyInfo (RFC 6376 §3.6.1)")
        return info
    if not isinstance(key, rsa.RSAPublicKey):
        problems.append("k=rsa but p= holds a %s key" % type(key).__name__)
        return info
    info["bits"] = key.key_size
    if key.key_size < DKIM_RSA_MIN_BITS:
        problems.append("RSA key of %d bits: at least %d (RFC 8301 §3.2)" % (key.key_size, DKIM_RSA_MIN_BITS))
    return info


# --------------------------------------------------------------------------------------------
# Published vs generated
# --------------------------------------------------------------------------------------------


def normalize_value(rtype, value):
    """Comparable form of one RDATA in presentation form."""
    rtype = rtype.upper()
    if rtype == "MX":
        priority, host = value.split()
        return "%d %s" % (int(priority), fqdn(host))
    if rtype in ("A", "AAAA"):
        return ipaddress.ip_address(value.strip()).compressed
    if rtype == "TLSA":
        parts = value.split()
        return "%d %d %d %s" % (int(parts[0]), int(parts[1]), int(parts[2]), "".join(parts[3:]).lower())
    return value


def compare_rrset(kind, rtype, expected_values, answers):
    """(status, summary, details) for one owner name/type: published answers vs generated values.

    TXT kinds with a marker (spf, dmarc, mta_sts, tlsrpt, dmarc_report_auth) only look at the
    strings carrying their marker (other TXT at the name is not ours); there must be exactly one
    such record and it must be the generated one (report authorizations: one starting with
    v=DMARC1 is enough). Other rrsets (MX, DKIM TXT, TLSA, A/AAAA) must equal the generated set.
    """
    marker = TXT_MARKERS.get(kind) if rtype == "TXT" else None
    if marker:
        ours = [a for a in answers if _tag_marker(a, marker)]
        details = {"expected": list(expected_values), "published": ours,
                   "other_txt": [a for a in answers if a not in ours]}
        if kind == "dmarc_report_auth":
            if ours:
                return "pass", "authorization published", details
            return "fail", "no %s record published" % marker, details
        if not ours:
            return "fail", "not published", details
        if len(ours) > 1:
            return "fail", "%d records start with %s; receivers treat that as an error" % (len(ours), marker), details
        if ours[0] != expected_values[0]:
            return "fail", "published record differs from the generated one", details
        return "pass", "published as generated", details
    want = sorted({normalize_value(rtype, v) for v in expected_values})
    got = sorted({normalize_value(rtype, v) for v in answers})
    details = {"expected": want, "published": got,
               "missing": [v for v in want if v not in got], "unexpected": [v for v in got if v not in want]}
    if not got:
        return "fail", "not published", details
    if want != got:
        return "fail", "published %s set differs (%d missing, %d unexpected)" % (
            rtype, len(details["missing"]), len(details["unexpected"])), details
    return "pass", "published as generated", details


def _check_id_for(record):
    kind = record["kind"]
    if kind == "dkim":
        return "dns.dkim.%s.%s" % (record["name"].split("._domainkey.", 1)[0], record["domain"])
    if kind in ("tlsa", "a", "aaaa"):
        return "dns.%s.%s" % (kind, record["domain"])
    return "dns.%s.%s" % (kind, record["domain"])


def _lookup(resolve, name, rtype):
    result = resolve(bare(name), rtype)
    if _dns_error(result):
        return None, _describe(result)
    return result.get("answers") or [], None


def dns_checks(expected, domains, host_keys, resolve, kinds=None, spf_deadline=SPF_DEADLINE, clock=None):
    """Every DNS check for the generated records ``expected`` (``mail_domains_records`` output).

    ``domains``: the normalized mail domains (their dkim selectors, for keys not made yet);
    ``host_keys``: ``{host: opendkim_public_keys}`` read on each mail host; ``resolve``: the
    resolver callable; ``kinds``: record kinds to check (default all). Returns a list of checks:

    * ``dns.<kind>.<domain>`` (``dns.dkim.<selector>.<domain>``, ``dns.tlsa|a|aaaa.<host>``):
      published equals generated (``compare_rrset``); report authorizations are grouped into
      ``dns.dmarc_report_auth.<domain>``.
    * ``dns.spf_limits.<domain>``: ``spf_evaluate`` of the published record (of the generated one,
      with a note, when none is published); fails on a permerror (the walk stops there, as
      receivers do) and when the walk was cut short by ``spf_deadline`` seconds of ``clock``.
    * ``dns.dmarc_syntax.<domain>``: ``parse_dmarc`` of the published record; and every external
      rua/ruf destination of the published or generated record has its authorization.
    * ``dns.dkim_key.<selector>.<domain>``: the published key parses, RSA >= 2048 bits, and it is
      the public half of the private key on every host that holds the selector.
    """
    kinds = set(kinds) if kinds is not None else None
    wanted = [r for r in expected if kinds is None or r["kind"] in kinds]
    checks = []
    groups, order = {}, []
    for record in wanted:
        key = (fqdn(record["name"]), record["type"].upper(), record["kind"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(record)
    report_auth = {}
    published_txt = {}
    for key in order:
        name, rtype, kind = key
        records = groups[key]
        answers, error = _lookup(resolve, name, rtype)
        if rtype == "TXT":
            published_txt[name] = answers or []
        if kind == "dmarc_report_auth":
            status, summary, details = ("fail", "cannot be read: %s" % error, {}) if error is not None \
                else compare_rrset(kind, rtype, [r["value"] for r in records], answers)
            report_auth.setdefault(records[0]["domain"], []).append(
                {"name": name, "status": status, "summary": summary, "source": "generated"})
            continue
        if error is not None:
            status, summary, details = "fail", "cannot be read: %s" % error, {"expected": [r["value"] for r in records]}
        else:
            status, summary, details = compare_rrset(kind, rtype, [r["value"] for r in records], answers)
        details = dict(details, name=name, type=rtype)
        checks.append(check(_check_id_for(records[0]), status, "%s %s: %s" % (name, rtype, summary),
                            target=records[0]["domain"], details=details))

    generated = {(r["kind"], bare(r["domain"])): r for r in wanted}
    for dom in domains:
        name = bare(dom["name"])
        # Selectors without a key anywhere: their record cannot be generated yet.
        if kinds is None or "dkim" in kinds:
            for sel in dom.get("dkim") or []:
                owner = "%s._domainkey.%s." % (str(sel["selector"]).lower(), name)
                if not any(fqdn(r["name"]) == owner for r in wanted):
                    checks.append(check("dns.dkim.%s.%s" % (str(sel["selector"]).lower(), name), "warn",
                                        "%s: no host holds a key for this selector yet (run playbooks/mail.yml); "
                                        "nothing to compare" % owner, target=name))
        if (kinds is None or "spf" in kinds) and ("spf", name) in generated:
            published = _spf_records(published_txt.get(name + ".", []))
            source = "published"
            record = published[0] if len(published) == 1 else None
            if record is None:
                record, source = generated[("spf", name)]["value"], "generated (none published)"
            result = spf_evaluate(name, resolve, record=record, deadline=spf_deadline, clock=clock)
            status = "fail" if result["problems"] or result["cut_short"] else ("warn" if result["warnings"] else "pass")
            summary = _spf_limits_summary(result, source)
            checks.append(check("dns.spf_limits.%s" % name, status, summary, target=name,
                                details=dict(result, evaluated=source)))
        if (kinds is None or "dmarc" in kinds) and ("dmarc", name) in generated:
            checks.append(_dmarc_syntax_check(name, published_txt.get("_dmarc.%s." % name, []),
                                              generated[("dmarc", name)]["value"]))
        if kinds is None or "dmarc_report_auth" in kinds:
            auth = _report_auth_check(name, published_txt.get("_dmarc.%s." % name, []),
                                      generated.get(("dmarc", name)), report_auth.get(name, []), resolve)
            if auth is not None:
                checks.append(auth)
    if kinds is None or "dkim" in kinds:
        checks.extend(_dkim_key_checks(wanted, host_keys, published_txt))
    return checks


def _spf_limits_summary(result, source):
    """The summary of a dns.spf_limits check: the counts, or where and why the walk stopped."""
    if result["cut_short"]:
        return "SPF evaluation of the %s record %s: the check is incomplete (%d DNS-querying terms, %d void " \
            "lookups so far)" % (source, result["stopped"], result["lookups"], result["voids"])
    if result["lookups"] > SPF_LOOKUP_LIMIT:
        terms = "more than %d DNS-querying terms (stopped at number %d)" % (SPF_LOOKUP_LIMIT, result["lookups"])
    else:
        terms = "%d DNS-querying terms (max %d)" % (result["lookups"], SPF_LOOKUP_LIMIT)
    summary = "%s, %d void lookups (max %d), nested included; %s record" % (
        terms, result["voids"], SPF_VOID_LIMIT, source)
    if result["problems"]:
        summary += ": " + result["problems"][0]
    return summary


def _dmarc_syntax_check(name, answers, generated_value):
    ours = [a for a in answers if _tag_marker(a, "v=DMARC1")]
    if len(ours) != 1:
        parsed = parse_dmarc(generated_value)
        return check("dns.dmarc_syntax.%s" % name, "fail",
                     "_dmarc.%s: %d published DMARC records (exactly one is needed); the generated one "
                     "parses with %d problems" % (name, len(ours), len(parsed["problems"])),
                     target=name, details={"published": ours, "generated": parsed})
    parsed = parse_dmarc(ours[0])
    status = "fail" if parsed["problems"] else ("warn" if parsed["warnings"] else "pass")
    summary = "_dmarc.%s: %s" % (name, "; ".join(parsed["problems"] + parsed["warnings"]) or "valid")
    return check("dns.dmarc_syntax.%s" % name, status, summary, target=name,
                 details=dict(parsed, record=ours[0]))


def _report_auth_check(name, answers, generated, from_generated, resolve):
    """Every external report destination (published or generated record) has its authorization."""
    dests = []
    sources = [a for a in answers if _tag_marker(a, "v=DMARC1")]
    if generated is not None:
        sources.append(generated["value"])
    for text in sources:
        for dest in parse_dmarc(text)["destinations"]:
            if dest != name and not dest.endswith("." + name) and dest not in dests:
                dests.append(dest)
    if not dests and not from_generated:
        return None
    results = {item["name"]: item for item in from_generated}
    for dest in dests:
        owner = "%s._report._dmarc.%s." % (name, dest)
        if owner in results:
            continue
        got, error = _lookup(resolve, owner, "TXT")
        if error is not None:
            results[owner] = {"name": owner, "status": "fail", "summary": "cannot be read: %s" % error,
                              "source": "published rua/ruf"}
        else:
            status, summary, _ = compare_rrset("dmarc_report_auth", "TXT", ["v=DMARC1"], got)
            results[owner] = {"name": owner, "status": status, "summary": summary, "source": "published rua/ruf"}
    items = [results[k] for k in sorted(results)]
    status = worst(item["status"] for item in items)
    bad = [item["name"] for item in items if item["status"] != "pass"]
    summary = ("every external report destination authorizes %s (%d)" % (name, len(items)) if not bad
               else "missing report authorization: %s" % ", ".join(bad))
    return check("dns.dmarc_report_auth.%s" % name, status, summary, target=name, details={"destinations": items})


def _dkim_key_checks(wanted, host_keys, published_txt):
    checks = []
    holders = {}
    for host, keys in sorted((host_keys or {}).items()):
        for item in keys or []:
            ident = (bare(item.get("domain", "")), str(item.get("selector", "")).lower())
            holders.setdefault(ident, []).append((host, item))
    for record in wanted:
        if record["kind"] != "dkim":
            continue
        selector = record["name"].split("._domainkey.", 1)[0]
        domain = bare(record["domain"])
        owner = fqdn(record["name"])
        check_id = "dns.dkim_key.%s.%s" % (selector, domain)
        answers = published_txt.get(owner, [])
        if len(answers) != 1:
            checks.append(check(check_id, "fail", "%s: %d TXT records published; exactly one key record is "
                                "needed to compare with the server's key" % (owner, len(answers)),
                                target=domain, details={"published": answers}))
            continue
        info = dkim_key_info(answers[0])
        if record["value"] == REVOKED_DKIM:
            # A retired selector: the record must say revoked (empty p=), and no host signs with
            # it (the revocation is what verifiers see: a key still published would keep old
            # signatures - and a leaked key's - valid).
            revoked = "p" in parse_dkim(answers[0])["tags"] and not info["key"]
            checks.append(check(check_id, "pass" if revoked else "fail", "%s: %s" % (
                owner, "revoked (empty p=): the selector is retired" if revoked else
                "the selector is retired but the published record still holds a key; it must be "
                "%r" % REVOKED_DKIM), target=domain, details={"published": answers, "state": "retired"}))
            continue
        problems = list(info["problems"])
        matches = []
        for host, item in holders.get((domain, selector), []):
            try:
                mine = public_key_value(item.get("public_key", ""), item.get("type", "rsa"))
            except (ValueError, TypeError) as error:
                problems.append("host %s: its key cannot be read (%s)" % (host, error))
                continue
            same = mine == info["key"]
            matches.append({"host": host, "matches": same})
            if not same:
                problems.append("the key in DNS is not the public half of the private key on %s" % host)
        if not matches:
            problems.append("no host reported a key for this selector")
        status = "fail" if problems else "pass"
        summary = "%s: %s" % (owner, "; ".join(problems) if problems else
                              "%s %s-bit key, the public half of the private key on %s" % (
                                  info["type"], info["bits"], ", ".join(m["host"] for m in matches)))
        checks.append(check(check_id, status, summary, target=domain,
                            details={"type": info["type"], "bits": info["bits"], "hosts": matches,
                                     "problems": problems}))
    return checks


REVOKED_DKIM = "v=DKIM1; p="
DKIM_MAX_KEY_AGE_DAYS = 180
# How long after an early activation dkim.activation.<domain>.<selector> stays a warning: the week
# in which the DMARC aggregate reports about the mail signed too early arrive (RFC 9990: daily).
DKIM_ACTIVATION_WARN_DAYS = 7


def dkim_lifecycle_checks(host_keys, now, max_age_days=DKIM_MAX_KEY_AGE_DAYS, ttl=3600):
    """Key age and activation checks of the active DKIM selectors, from the dkim_keys module's
    lifecycle record (``host_keys``: ``{host: opendkim_public_keys}``; ``now``: seconds since
    the epoch; ``ttl``: the TTL the DKIM records are published with, dns_ttl).

    * ``dkim.key_age.<domain>.<selector>``: warn when an active key is older than
      ``max_age_days`` on a host (M3AAWG: rotate at least every six months); age from
      ``created`` (generated, or the key file's mtime when first seen).
    * ``dkim.activation.<domain>.<selector>``: warn when the selector became active less than
      ``ttl`` seconds after the host first held its key (``published_since``): the dns play of
      that converge published the record no earlier, so it cannot have been visible (to the
      resolvers that had cached the name's absence, or secondaries not refreshed yet) for a TTL
      before mail was signed with it. The domain's first key (active when the domain started
      signing on the host, ``signing_since``) has nothing to switch from and passes. A warning
      for ``DKIM_ACTIVATION_WARN_DAYS`` after the activation, then it passes with the fact in
      its details. It cannot prove the opposite (a failed dns play): ``dns.dkim.*`` checks what
      is published now.

    Hosts whose keys carry no lifecycle fields (an older dkim_keys) are skipped.
    """
    now = float(now)
    by_ident = {}
    for host, keys in sorted((host_keys or {}).items()):
        for item in keys or []:
            if item.get("state") != "active" or item.get("created") is None:
                continue
            ident = (bare(item.get("domain", "")), str(item.get("selector", "")).lower())
            by_ident.setdefault(ident, []).append((host, item))
    checks = []
    for (domain, selector), holders in sorted(by_ident.items()):
        ages = [{"host": host, "days": round((now - float(item["created"])) / 86400, 1)}
                for host, item in holders]
        old = [a for a in ages if a["days"] > max_age_days]
        summary = "%s selector %s: active key %s days old on %s (rotate after %d days; docs/dkim-rotation.md)" % (
            domain, selector, max(a["days"] for a in ages), ", ".join(a["host"] for a in (old or ages)),
            max_age_days)
        checks.append(check("dkim.key_age.%s.%s" % (domain, selector), "warn" if old else "pass", summary,
                            target=domain, details={"hosts": ages, "max_age_days": max_age_days}))
        early, details = [], []
        for host, item in holders:
            active, held = item.get("active_since"), item.get("published_since")
            first = item.get("signing_since")
            if active is None or held is None:
                continue
            lead = float(active) - float(held)
            switch = first is None or float(active) > float(first)
            fact = {"host": host, "active_since": active, "published_since": held, "lead_seconds": round(lead),
                    "switch": switch}
            details.append(fact)
            if switch and lead < float(ttl):
                early.append(fact)
        if not details:
            continue
        recent = [f for f in early if now - float(f["active_since"]) < DKIM_ACTIVATION_WARN_DAYS * 86400]
        if early:
            summary = ("%s selector %s became active %s s after its key was first published on %s, less than "
                       "the record's TTL (%s s): receivers may not have seen the record before mail was signed "
                       "with it (publish as standby, wait TTL + propagation, then switch)"
                       % (domain, selector, min(f["lead_seconds"] for f in early),
                          ", ".join(f["host"] for f in early), int(float(ttl))))
            if not recent:
                summary += "; more than %d days ago" % DKIM_ACTIVATION_WARN_DAYS
        elif any(f["switch"] for f in details):
            summary = "%s selector %s: published at least a TTL (%s s) before it became active" % (
                domain, selector, int(float(ttl)))
        else:
            summary = "%s selector %s: the domain's first signing key on %s (no switch)" % (
                domain, selector, ", ".join(f["host"] for f in details))
        checks.append(check("dkim.activation.%s.%s" % (domain, selector), "warn" if recent else "pass", summary,
                            target=domain, details={"hosts": details, "ttl": float(ttl)}))
    return checks


# --------------------------------------------------------------------------------------------
# SMTP verdicts (from the smtp_probe module's recorded dialogue)
# --------------------------------------------------------------------------------------------

RELAY_PROBES = ("foreign", "percent_hack", "bang_path", "quoted_local", "source_route")


def relay_recipients(domain, mx_name, foreign="other.test", local="user"):
    """The RCPT TO addresses of each relay probe against one of our domains."""
    return {
        "foreign": "<%s@%s>" % (local, foreign),
        "percent_hack": "<%s%%%s@%s>" % (local, foreign, domain),
        "bang_path": "<%s!%s@%s>" % (foreign, local, domain),
        "quoted_local": '<"%s@%s"@%s>' % (local, foreign, domain),
        "source_route": "<@%s:%s@%s>" % (mx_name, local, foreign),
    }


def _code(reply):
    return int(reply[0]) if reply and reply[0] is not None else None


def _reply_text(reply):
    return "%s %s" % (reply[0], reply[1]) if reply else "no reply"


def _refusal_status(reply, what):
    """pass for 5xx, warn for 4xx (refused for now only), fail for 2xx/3xx, fail when missing."""
    code = _code(reply)
    if code is None:
        return "fail", "%s: no reply recorded" % what
    if 500 <= code < 600:
        return "pass", "%s refused: %s" % (what, _reply_text(reply))
    if 400 <= code < 500:
        return "warn", "%s refused only temporarily: %s" % (what, _reply_text(reply))
    return "fail", "%s ACCEPTED: %s" % (what, _reply_text(reply))


def _cert_facts(der_b64, now):
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    der = base64.b64decode(der_b64)
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    not_after = cert.not_valid_after_utc
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"dns_names": list(names), "common_names": cns, "not_after": not_after.isoformat(),
            "days_left": (not_after - now).total_seconds() / 86400.0,
            "self_signed": cert.issuer == cert.subject, "issuer": cert.issuer.rfc4514_string(),
            "subject": cert.subject.rfc4514_string(),
            "tlsa_311": "3 1 1 " + hashlib.sha256(spki).hexdigest()}


def hostname_matches(hostname, names):
    """RFC 6125 §6.4: exact match, or a wildcard as the whole left-most label matching one label."""
    host = bare(hostname)
    for name in names:
        pattern = bare(name)
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            if host.split(".", 1)[1] == pattern[2:] and host.split(".", 1)[0]:
                return True
    return False


def _networks(mynetworks):
    """ip_network objects of the IP entries of a Postfix mynetworks list ([::1]/128 style too)."""
    out = []
    for entry in mynetworks or []:
        text = unbracket_network(str(entry).strip())
        if text is None:
            continue  # unbalanced brackets: not an address Postfix would match either
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue  # a host name or a lookup table: not judged here
    return out


def probe_inside(address, mynetworks):
    """The mynetworks entry that contains ``address``, or None."""
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return None
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    for net in _networks(mynetworks):
        if ip.version == net.version and ip in net:
            return str(net)
    return None


def smtp_checks(probe, host, mx_name, require_trusted_cert=False, cert_min_days=21, tlsa=None, now=None,
                mynetworks=None):
    """Checks from one ``smtp_probe`` result for mail host ``host`` (its MX name ``mx_name``).

    ``tlsa``: the TLSA values published at ``_25._tcp.<mx_name>`` (None: not checked). Ids:
    ``smtp.connect.<port>``, ``smtp.relay.<probe>``, ``smtp.vrfy``, ``smtp.expn``,
    ``smtp.starttls.<port>``, ``smtp.auth_before_tls.<port>``, ``smtp.tls_legacy.TLSv1[_1]``,
    ``smtp.tls_modern``, ``smtp.cert_name``, ``smtp.cert_trust``, ``smtp.cert_expiry``,
    ``smtp.tlsa_match``, ``smtp.probe_position``, each followed by ``.<host>``.

    ``mynetworks``: the host's ``mail_mynetworks``. When the probe's own address (as the probe
    host sees it; NAT in between is not visible) lies inside it, relay probes prove nothing:
    ``smtp.probe_position`` warns and relay probes that were refused become warnings too.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    checks = []
    ports = probe.get("ports") or {}

    def add(name, status, summary, details=None):
        checks.append(check("smtp.%s.%s" % (name, host), status, summary, target=host, details=details))

    for port in sorted(ports, key=int):
        data = ports[port]
        connect = data.get("connect") or {}
        if not connect.get("ok"):
            if str(port) == "25" or not connect.get("refused"):
                add("connect.%s" % port, "fail", "port %s: cannot open an SMTP session: %s"
                    % (port, connect.get("error") or "unknown error"), {"connect": connect})
            else:
                add("auth_before_tls.%s" % port, "pass", "port %s is not listening (%s): nothing offered"
                    % (port, connect.get("error")), {"connect": connect})
            continue
        banner = data.get("banner")
        if _code(banner) != 220:
            add("connect.%s" % port, "fail", "port %s: no 220 greeting: %s" % (port, _reply_text(banner)),
                {"banner": banner})
            continue
        add("connect.%s" % port, "pass", "port %s: %s" % (port, _reply_text(banner)), {"banner": banner})
        ext = [e.lower() for e in data.get("extensions") or []]
        auth = [e for e in ext if e.startswith("auth")]
        add("auth_before_tls.%s" % port, "fail" if auth else "pass",
            "port %s: AUTH offered before STARTTLS (%s)" % (port, auth[0]) if auth
            else "port %s: no AUTH before STARTTLS" % port, {"ehlo": data.get("ehlo")})
        offered = "starttls" in ext
        starttls = data.get("starttls") or {}
        if not offered:
            add("starttls.%s" % port, "fail", "port %s: STARTTLS not offered" % port, {"ehlo": data.get("ehlo")})
        elif not starttls.get("ok"):
            add("starttls.%s" % port, "fail", "port %s: STARTTLS offered but the handshake failed: %s"
                % (port, starttls.get("error")), {"starttls": starttls})
        else:
            add("starttls.%s" % port, "pass", "port %s: STARTTLS, %s %s" % (
                port, starttls.get("version"), starttls.get("cipher")), {"starttls": _without_cert(starttls)})
        if str(port) != "25":
            continue
        for name in ("vrfy", "expn"):
            status, summary = _refusal_status(data.get(name), "%s postmaster" % name.upper())
            add(name, status, summary, {"reply": data.get(name)})
        relay = data.get("relay") or {}
        inside = None
        if mynetworks is not None:
            local = connect.get("local_address")
            inside = probe_inside(local, mynetworks) if local else None
            if inside:
                add("probe_position", "warn", "the probe's address %s is inside mynetworks (%s): the relay "
                    "probes prove nothing; run them from audit_probe_host outside it" % (local, inside),
                    {"local_address": local, "mynetworks": list(mynetworks)})
            else:
                add("probe_position", "pass", "the probe's address %s is outside mynetworks" % local,
                    {"local_address": local, "mynetworks": list(mynetworks)})
        for probe_name in RELAY_PROBES:
            attempts = relay.get(probe_name) or []
            if not attempts:
                add("relay.%s" % probe_name, "fail", "relay probe %s was not run" % probe_name)
                continue
            verdicts = []
            for attempt in attempts:
                mail = attempt.get("mail")
                if _code(mail) is None or not 200 <= _code(mail) < 300:
                    verdicts.append(("warn", "MAIL FROM:<> refused (%s): RCPT %s not tested"
                                     % (_reply_text(mail), attempt.get("rcpt_to"))))
                    continue
                verdicts.append(_refusal_status(attempt.get("rcpt"), "RCPT TO:%s" % attempt.get("rcpt_to")))
            if inside:
                verdicts = [("warn", text + " (probe inside mynetworks)") if verdict == "pass" else (verdict, text)
                            for verdict, text in verdicts]
            status = worst(v[0] for v in verdicts)
            shown = [v[1] for v in verdicts if v[0] == status]
            add("relay.%s" % probe_name, status, "; ".join(shown[:3]) + (" (+%d)" % (len(shown) - 3) if len(shown) > 3 else ""),
                {"attempts": attempts})
        legacy = data.get("tls_legacy") or {}
        for version in ("TLSv1", "TLSv1.1"):
            item = legacy.get(version)
            name = "tls_legacy.%s" % version.replace(".", "_")
            if not item:
                add(name, "warn" if offered else "pass", "%s not tested (STARTTLS %s)" % (
                    version, "offered" if offered else "not offered"))
            elif item.get("result") == "accepted":
                add(name, "fail", "%s handshake ACCEPTED (%s)" % (version, item.get("cipher")), item)
            elif item.get("result") == "refused":
                add(name, "pass", "%s refused by the server: %s" % (version, item.get("error")), item)
            else:
                add(name, "warn", "%s could not be tested from the probe host: %s" % (version, item.get("error")), item)
        if not starttls.get("ok") or not starttls.get("cert_der_b64"):
            continue
        facts = _cert_facts(starttls["cert_der_b64"], now)
        names = facts["dns_names"] or facts["common_names"]
        if hostname_matches(mx_name, names):
            add("cert_name", "pass", "certificate names %s match %s" % (", ".join(names), mx_name), facts)
        else:
            add("cert_name", "fail", "certificate names %s do not match %s" % (", ".join(names) or "(none)", mx_name), facts)
        verify = starttls.get("verify") or {}
        if verify.get("ok"):
            add("cert_trust", "pass", "certificate chain verifies for %s from the probe host" % mx_name, verify)
        else:
            why = verify.get("error") or "not verified"
            what = "self-signed" if facts["self_signed"] else "not trusted by the probe host"
            add("cert_trust", "fail" if require_trusted_cert else "warn", "certificate %s: %s" % (what, why),
                dict(verify, self_signed=facts["self_signed"], issuer=facts["issuer"]))
        days = facts["days_left"]
        if days < cert_min_days:
            add("cert_expiry", "fail", "certificate expires %s: %.0f days left (< %d)" % (
                facts["not_after"], days, cert_min_days), facts)
        else:
            add("cert_expiry", "pass", "certificate valid until %s (%.0f days)" % (facts["not_after"], days), facts)
        if tlsa is not None:
            values = sorted({normalize_value("TLSA", v) for v in tlsa})
            usable = [v for v in values if v.startswith("3 1 1 ")]
            if facts["tlsa_311"] in values:
                add("tlsa_match", "pass", "TLSA 3 1 1 matches the certificate served on port 25", {"published": values})
            else:
                add("tlsa_match", "fail", "no published TLSA 3 1 1 matches the certificate served on port 25",
                    {"published": values, "usable": usable, "served": facts["tlsa_311"]})
    modern = [p for p in ports.values() if (p.get("starttls") or {}).get("ok")]
    if ports and not modern:
        add("tls_modern", "fail", "no TLS 1.2+ handshake succeeded on any port")
    return checks


def _without_cert(starttls):
    return {k: v for k, v in starttls.items() if k != "cert_der_b64"}


# --------------------------------------------------------------------------------------------
# Configuration drift
# --------------------------------------------------------------------------------------------


def parse_postconf(text):
    """``postconf -n`` output -> {parameter: value} (continuation lines joined)."""
    out, last = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace() and last is not None:
            out[last] += " " + line.strip()
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        last = name.strip()
        out[last] = value.strip()
    return out


def parse_master(text):
    """``postconf -M`` output -> {'service/type': normalized entry}."""
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 8:
            out["%s/%s" % (fields[0], fields[1])] = " ".join(fields)
    return out


def _diff(live, want):
    changed = []
    for name in sorted(set(live) | set(want)):
        if live.get(name) != want.get(name):
            changed.append({"name": name, "live": live.get(name), "expected": want.get(name)})
    return changed


# Parameters that differ only because the candidate is read with ``postconf -c <temporary dir>``.
DRIFT_IGNORED = ("config_directory",)


def drift_checks(host, live_main, candidate_main, live_master=None, candidate_master=None, warnings=None):
    """``drift.main_cf.<host>`` (and ``drift.master_cf.<host>``): live vs rendered by the roles.

    ``live_main``/``candidate_main``: ``postconf -n`` of /etc/postfix and of the directory holding
    the rendered main.cf (``config_directory``, which postconf -c reports, is left out);
    ``live_master``/``candidate_master``: ``postconf -M`` likewise; ``warnings``: what postconf
    said about the candidate (a rendered parameter Postfix does not know, for instance).
    """
    checks = []
    live, want = parse_postconf(live_main), parse_postconf(candidate_main)
    for name in DRIFT_IGNORED:
        live.pop(name, None)
        want.pop(name, None)
    changed = _diff(live, want)
    details = {"differences": changed, "candidate_warnings": warnings or []}
    if changed:
        checks.append(check("drift.main_cf.%s" % host, "fail", "main.cf differs from what the roles render: %s"
                            % ", ".join(item["name"] for item in changed), target=host, details=details))
    elif warnings:
        checks.append(check("drift.main_cf.%s" % host, "warn", "main.cf matches, but postconf warned about the "
                            "rendered candidate: %s" % "; ".join(warnings), target=host, details=details))
    else:
        checks.append(check("drift.main_cf.%s" % host, "pass", "postconf -n equals what the roles render",
                            target=host, details=details))
    if live_master is not None and candidate_master is not None:
        changed = _diff(parse_master(live_master), parse_master(candidate_master))
        checks.append(check("drift.master_cf.%s" % host, "fail" if changed else "pass",
                            "master.cf services differ from what the roles render: %s"
                            % ", ".join(item["name"] for item in changed) if changed
                            else "postconf -M equals what the roles render", target=host,
                            details={"differences": changed}))
    return checks


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def aggregate(checks, meta=None):
    """The report: checks sorted by id (ids must be unique), counts, overall status, failed ids."""
    seen, problems = {}, []
    for item in checks:
        if item["status"] not in STATUSES:
            raise ValueError("check %s: unknown status %r" % (item["id"], item["status"]))
        if item["id"] in seen:
            problems.append(item["id"])
        seen[item["id"]] = item
    if problems:
        raise ValueError("duplicate check ids: %s" % ", ".join(sorted(set(problems))))
    ordered = [seen[k] for k in sorted(seen)]
    counts = {status: sum(1 for c in ordered if c["status"] == status) for status in STATUSES}
    return {"meta": meta or {}, "status": worst(c["status"] for c in ordered),
            "counts": dict(counts, total=len(ordered)),
            "failed": [c["id"] for c in ordered if c["status"] == "fail"],
            "warned": [c["id"] for c in ordered if c["status"] == "warn"],
            "checks": ordered}


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report):
    """A human-readable page of the report."""
    meta = report.get("meta") or {}
    counts = report["counts"]
    lines = ["# mailward audit: %s" % report["status"].upper(), ""]
    for key in ("generated_at", "hosts", "dns_server", "probe_host"):
        if key in meta:
            value = meta[key]
            lines.append("- %s: %s" % (key.replace("_", " "), ", ".join(value) if isinstance(value, list) else value))
    lines.append("- checks: %d (%d pass, %d warn, %d fail)" % (counts["total"], counts["pass"], counts["warn"], counts["fail"]))
    lines.append("")
    if report["failed"]:
        lines.append("## Failed")
        lines.append("")
        for item in report["checks"]:
            if item["status"] == "fail":
                lines.append("- `%s`: %s" % (item["id"], _md(item["summary"])))
        lines.append("")
    if report["warned"]:
        lines.append("## Warnings")
        lines.append("")
        for item in report["checks"]:
            if item["status"] == "warn":
                lines.append("- `%s`: %s" % (item["id"], _md(item["summary"])))
        lines.append("")
    categories = []
    for item in report["checks"]:
        if item["category"] not in categories:
            categories.append(item["category"])
    for category in categories:
        lines.append("## %s" % category)
        lines.append("")
        lines.append("| check | status | result |")
        lines.append("|---|---|---|")
        for item in report["checks"]:
            if item["category"] == category:
                lines.append("| `%s` | %s | %s |" % (item["id"], item["status"], _md(item["summary"])))
        lines.append("")
    if report.get("dmarc"):
        # The readiness tables and pictures of the aggregate reports (imported here: dmarc_reports
        # builds its checks with this module's check()).
        from ansible_collections.mailward.mail.plugins.module_utils.dmarc_reports import markdown as dmarc_markdown
        lines.extend(dmarc_markdown(report["dmarc"]))
    return "\n".join(lines)
