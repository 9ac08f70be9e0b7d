# -*- coding: utf-8 -*-
"""mailward record generators: pure functions from inventory specs to DNS record values.

Every filter either returns a correct value or raises ``MailwardError`` (the subclass
``RecordError``) whose message names the filter, the domain (when known: every filter takes an
optional ``domain=`` keyword), the spec key, the offending term and the rule with its RFC
section, e.g.::

    spf_record: example.test: include: 'include:i11.example.test': 11 DNS-querying terms ...
    (RFC 7208 §4.6.4)

A filter reports every independent problem of its input, one line each;
``RecordError.problems`` (a list of ``(path, detail)``: the spec key, e.g. ``include``, and the
text without the ``filter: domain: path:`` prefix) lets a caller such as
``mail_domains_normalize`` re-home them under its own variable path.

Values are RDATA as published: TXT values are the raw (unquoted, unsplit) string; use
``txt_strings`` for zone-file presentation or ``txt_chunks`` for the raw <=255-byte strings.

Pure Python 3.9+; ``cryptography`` is imported only by the DKIM and TLSA filters.
"""

import base64
import difflib
import hashlib
import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.mailward.mail.plugins.module_utils import dkim as _dkim
from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError

# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------

_NO_TERM = object()  # sentinel: the refusal has no single offending value to quote


class RecordError(MailwardError):
    """A refused record spec.

    ``problems``: every problem found, a list of ``(path, detail)`` where ``path`` is the spec
    key (``include``, ``rua``, ``public_key``...) or None and ``detail`` the text without the
    ``<filter>: <domain>: <path>:`` prefix. ``path``/``detail``: those of the first problem.
    The message has one line per problem. Constructed with the message first so that it
    survives pickling.
    """

    def __init__(self, message="", path=None, detail=None, problems=None):
        super().__init__(message)
        self.path = path
        self.detail = message if detail is None else detail
        self.problems = list(problems) if problems else [(path, self.detail)]


def _show(value, limit=80):
    """Quote an offending value for a one-line message, escaped and shortened to ``limit``."""
    text = value if isinstance(value, str) else repr(value)
    if not text.isprintable():  # keep one problem per line, and no lone surrogates
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return "'%s'" % text if isinstance(value, str) else text


class _Ctx:
    """One filter call: where refusals happen (filter, domain) and the problems found so far.

    ``fail`` raises at once; ``step`` runs a check and, if it fails, notes the problem and
    carries on, so one call reports every independent problem; ``finish`` raises them all.
    Created per call: no global state.
    """

    __slots__ = ("filter_name", "domain", "problems")

    def __init__(self, filter_name, domain=None):
        self.filter_name = filter_name
        self.domain = domain
        self.problems = []

    def _line(self, path, detail):
        where = self.filter_name
        if self.domain:
            where = "%s: %s" % (where, self.domain)
        return "%s: %s: %s" % (where, path, detail) if path else "%s: %s" % (where, detail)

    def fail(self, path, term, problem, rule=None):
        """Raise a RecordError for ``term`` at spec key ``path`` breaking ``rule``."""
        detail = problem if term is _NO_TERM else "%s: %s" % (_show(term), problem)
        if rule:
            detail = "%s (%s)" % (detail, rule)
        raise RecordError(self._line(path, detail), path=path, detail=detail)

    def step(self, function, *args, **kwargs):
        """Run ``function``; on RecordError note its problems and return ``default``."""
        default = kwargs.pop("default", None)
        try:
            return function(*args, **kwargs)
        except RecordError as error:
            self.problems.extend(error.problems)
            return default

    def finish(self):
        """Raise one RecordError listing every noted problem, if any."""
        if self.problems:
            path, detail = self.problems[0]
            message = "\n".join(self._line(p, d) for p, d in self.problems)
            raise RecordError(message, path=path, detail=detail, problems=self.problems)


def _check_mapping(ctx, spec, what):
    """Refuse a spec that is not a mapping."""
    if not isinstance(spec, Mapping):
        ctx.fail(None, spec, "%s must be a mapping, not %s" % (what, type(spec).__name__),
                 "mailward schema, docs/schema.md")


def suggest(key, allowed):
    """``; did you mean 'x'?`` for the allowed names closest to a mistyped key, or ''."""
    close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=3, cutoff=0.6)
    return "; did you mean %s?" % " or ".join("'%s'" % name for name in close) if close else ""


def _check_keys(ctx, spec, allowed, ignore=(), rule="mailward schema, docs/schema.md"):
    """Note every key of ``spec`` not in ``allowed`` (typos must not pass silently)."""
    for key in spec:
        if key in allowed or key in ignore:
            continue
        ctx.step(ctx.fail, str(key), key, "unknown key (allowed: %s)%s"
                 % (", ".join(allowed), suggest(key, allowed)), rule)


def _as_list(ctx, path, value, what):
    """A list of items from a list, a single string, or nothing (None, '', [])."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    ctx.fail(path, value, "must be a list of %s, not %s" % (what, type(value).__name__),
             "mailward schema, docs/schema.md")
    return []  # not reached


def _items(ctx, path, value, what, check):
    """``check`` each item of a list (or single string) value; note failures, keep results."""
    results = []
    for item in ctx.step(_as_list, ctx, path, value, what, default=[]):
        result = ctx.step(check, item)
        if result is not None:
            results.append(result)
    return results


def _unique(values, fold=str.lower):
    """``values`` without repeats (compared through ``fold``), first occurrence kept."""
    out, seen = [], set()
    for value in values:
        if fold(value) not in seen:
            seen.add(fold(value))
            out.append(value)
    return out


def _as_int(ctx, path, value, low, high, rule):
    """An int in [low, high] from an int or a string of digits (templated values are strings)."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None:
        ctx.fail(path, value, "must be an integer from %d to %d" % (low, high), rule)
    if not low <= number <= high:
        ctx.fail(path, value, "is out of range %d..%d" % (low, high), rule)
    return number


def _choice(ctx, path, value, allowed, rule):
    """A lower-cased string that must be one of ``allowed``."""
    if not isinstance(value, str) or value.lower() not in allowed:
        hint = ""
        if isinstance(value, bool):
            hint = " (YAML turned an unquoted yes/no/on/off into a boolean: quote it)"
        ctx.fail(path, value, "must be one of %s%s" % ("|".join(allowed), hint), rule)
    return value.lower()


# --------------------------------------------------------------------------------------------
# Domain names
# --------------------------------------------------------------------------------------------

_LABEL_LDH = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
_LABEL_UNDERSCORE = re.compile(r"\A[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\Z")


def name_problem(name, underscore=False, wildcard=False, trailing_dot=False):
    """Why ``name`` is not a fully qualified DNS name, or None when it is.

    LDH labels of 1-63 characters (RFC 1123 §2.1), at most 253 characters in all
    (RFC 1035 §2.3.4), at least two labels, a top label that is not all-numeric
    (RFC 3696 §2, RFC 7208 §7.1 toplabel). ``underscore`` also allows ``_`` in labels other
    than the top one (``_spf.example.com``, RFC 8552 / RFC 7208 §7.1 macro-literal);
    ``wildcard`` allows a leading ``*.`` (MTA-STS mx patterns); ``trailing_dot`` allows one
    final dot. The returned text carries its own RFC citation.
    """
    if not isinstance(name, str):
        return "must be a string, not %s" % type(name).__name__
    if not name:
        return "is empty"
    if not name.isascii():
        return ("contains non-ASCII characters; write internationalised names in their A-label "
                "(xn--) form (RFC 5890 §2.3.2.1)")
    if trailing_dot and name.endswith("."):
        name = name[:-1]
    if len(name) > 253:
        return "is %d characters long; a name has at most 253 (RFC 1035 §2.3.4)" % len(name)
    labels = name.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    pattern = _LABEL_UNDERSCORE if underscore else _LABEL_LDH
    for label in labels:
        if not label:
            return "has an empty label (RFC 1035 §2.3.4)"
        if len(label) > 63:
            return "has a label of %d characters; at most 63 (RFC 1035 §2.3.4)" % len(label)
        if not pattern.match(label):
            return ("label %s is not letters, digits and inner hyphens (RFC 1123 §2.1)"
                    % _show(label))
    if len(labels) < 2:
        return "is not a fully qualified name (it needs at least two labels)"
    top = labels[-1]
    if not _LABEL_LDH.match(top) or top.isdigit():
        return ("top-level label %s must be letters, digits and inner hyphens, not all "
                "digits (RFC 3696 §2, RFC 7208 §7.1)" % _show(top))
    return None


def _check_name(ctx, path, name, **kwargs):
    """Refuse an invalid name; return it unchanged."""
    problem = name_problem(name, **kwargs)
    if problem:
        ctx.fail(path, name, problem)
    return name


# --------------------------------------------------------------------------------------------
# Owner names of the published records (built here only; lower case is the caller's business)
# --------------------------------------------------------------------------------------------


def dkim_name(selector, domain):
    """``<selector>._domainkey.<domain>``: where a DKIM key is published (RFC 6376 §3.6.2.1)."""
    return "%s._domainkey.%s" % (selector, domain)


def dmarc_name(domain):
    """``_dmarc.<domain>``: where a DMARC policy is published (RFC 7489 §6.1, RFC 9989 §4.5)."""
    return "_dmarc." + domain


def dmarc_report_auth_name(domain, destination):
    """``<domain>._report._dmarc.<destination>``: a report destination's consent (RFC 7489 §7.1)."""
    return "%s._report._dmarc.%s" % (domain, destination)


def mta_sts_name(domain):
    """``_mta-sts.<domain>``: the MTA-STS policy indicator (RFC 8461 §3.1)."""
    return "_mta-sts." + domain


def tlsrpt_name(domain):
    """``_smtp._tls.<domain>``: the TLS-RPT record (RFC 8460 §3)."""
    return "_smtp._tls." + domain


def tlsa_name(host, port=25):
    """``_<port>._tcp.<host>``: an SMTP server's TLSA records (RFC 6698 §3, RFC 7672 §2.2.1)."""
    return "_%d._tcp.%s" % (port, host)


def owner_name_problem(name):
    """Why a derived owner name (``_`` labels, an optional trailing dot) is invalid, or None.

    A valid domain can still give a name that is too long once a prefix is added: a name has
    at most 253 characters without the trailing dot (255 octets on the wire) and labels of at
    most 63 (RFC 1035 §2.3.4); the text says so with the RFC.
    """
    return name_problem(name, underscore=True, trailing_dot=True)


# --------------------------------------------------------------------------------------------
# IP addresses and networks read from the inventory
# --------------------------------------------------------------------------------------------

_PREFIX_LENGTH = re.compile(r"\A(?:0|[1-9][0-9]{0,2})\Z")


def _ip_text_problem(text):
    """Why ``text`` cannot be an address from the inventory before it is even parsed, or None."""
    if not isinstance(text, str):
        return "must be a string, not %s" % type(text).__name__
    if not text:
        return "is empty"
    if "%" in text:
        return ("has a zone index (a '%' suffix): an address from the inventory must not carry "
                "one (RFC 4007 §11); it would be written as it is into configuration and zone "
                "files")
    if any(char.isspace() or not char.isprintable() for char in text):
        return "contains whitespace or control characters"
    if not text.isascii():
        return "contains non-ASCII characters"
    return None


_BRACKETED_NETWORK = re.compile(r"\A\[([^\[\]/]*)\](?:/([^/]*))?\Z")


def unbracket_network(raw):
    """Postfix's ``[addr]`` / ``[addr]/len`` spelling (mynetworks, postconf(5)) as ``addr`` /
    ``addr/len``; text without brackets comes back unchanged, unbalanced brackets give None."""
    if "[" not in raw and "]" not in raw:
        return raw
    match = _BRACKETED_NETWORK.match(raw)
    if not match:
        return None
    return match.group(1) + ("/" + match.group(2) if match.group(2) is not None else "")


def ip_address_strict(text):
    """An ``IPv4Address``/``IPv6Address`` from inventory text, or ValueError saying why not.

    Every address an inventory variable holds is parsed here, never with ``ipaddress``
    directly: Python's ``ip_address`` accepts an IPv6 scope id with anything in it
    (``fe80::1%<newline>...``), which would then be written into a zone fragment, unbound.conf
    or main.cf. Refused: non-strings (``ip_address`` takes integers), empty text, whitespace,
    control and non-ASCII characters, a zone index (``%``), anything that is not one address.
    The ValueError text is the reason alone (``has a zone index ...``), for the caller's message.
    """
    problem = _ip_text_problem(text)
    if problem:
        raise ValueError(problem)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("is not an IPv4 or IPv6 address") from None


def ip_network_strict(text, strict=True):
    """An ``IPv4Network``/``IPv6Network`` from ``address`` or ``address/prefix-length`` text.

    The same refusals as ``ip_address_strict``, and: a prefix length that is not a plain
    decimal number (a netmask ``/255.255.255.0``, ``/024``, an empty one), and with ``strict``
    (the default) host bits set (``192.0.2.10/24``). A bare address is its /32 or /128 network.
    No brackets: Postfix's ``[addr]/n`` is the caller's to unwrap. ValueError: the reason alone.
    """
    problem = _ip_text_problem(text)
    if problem:
        raise ValueError(problem)
    _, slash, prefix = text.partition("/")
    if slash and not _PREFIX_LENGTH.match(prefix):
        raise ValueError("the prefix length must be a decimal number without leading zeros "
                         "(no netmask)")
    try:
        return ipaddress.ip_network(text, strict=strict)
    except ValueError:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError("is not an IPv4 or IPv6 address or network") from None
        raise ValueError("has host bits set") from None


# --------------------------------------------------------------------------------------------
# SPF (RFC 7208)
# --------------------------------------------------------------------------------------------

_SPF_KEYS = ("a", "mx", "ip4", "ip6", "include", "exists", "redirect", "all")
_SPF_ALL = {"fail": "-all", "softfail": "~all", "neutral": "?all"}
_SPF_LOOKUP_LIMIT = 10
_SPF_PTR = re.compile(r"\A[+\-~?]?ptr(?:[:/]|\Z)", re.IGNORECASE)
_SPF_PTR_RULE = "RFC 7208 §5.5: ptr SHOULD NOT be published; it is slow and unreliable"
_SPF_MACRO = re.compile(r"%\{([A-Za-z])([0-9]*)([rR]?)([.\-+,/_=]*)\}")


def _spf_not_ptr(ctx, key, value):
    """Refuse a ``ptr`` mechanism smuggled into a value (RFC 7208 §5.5)."""
    if isinstance(value, str) and _SPF_PTR.match(value):
        ctx.fail(key, value, "the ptr mechanism is not allowed", _SPF_PTR_RULE)


def _spf_hostname(ctx, key, host):
    """One a/mx/include/redirect domain: no ptr, a valid name (``_`` labels allowed)."""
    _spf_not_ptr(ctx, key, host)
    return _check_name(ctx, key, host, underscore=True, trailing_dot=True)


_SPF_SELF = {"include": ("includes", "RFC 7208 §4.6.4, §5.2"),
             "redirect": ("redirects to", "RFC 7208 §4.6.4, §6.1")}


def _spf_not_self(ctx, key, name):
    """Refuse an include/redirect of the domain's own record (compared without case/final dot)."""
    own = ctx.domain.lower().rstrip(".") if isinstance(ctx.domain, str) else None
    if own and name.lower().rstrip(".") == own:
        verb, rule = _SPF_SELF[key]
        ctx.fail(key, name, "%s the domain's own record: evaluating it loops until the lookup "
                 "limit, which always ends in permerror" % verb, rule)
    return name


def _spf_host_terms(ctx, spec, key):
    """``a``/``mx``: true -> ``a``; a list of hosts -> ``a:host`` each; false/absent -> none."""
    value = spec.get(key)
    if value is None or value is False:
        return []
    if value is True:
        return [(key, key, True)]
    hosts = _items(ctx, key, value, "host names (or true)",
                   lambda host: _spf_hostname(ctx, key, host))
    return [(key, "%s:%s" % (key, host), True)
            for host in _unique(hosts, lambda host: host.lower().rstrip("."))]


def _spf_network(ctx, key, raw, version):
    """Parse one ``ip4``/``ip6`` entry into an ip_network, refusing anything ambiguous."""
    rule = "RFC 7208 §5.6"
    if not isinstance(raw, str):
        ctx.fail(key, raw, "must be an IPv%d address or CIDR network as a string" % version, rule)
    if "%" in raw:
        ctx.fail(key, raw, "has a zone index, which SPF cannot express", rule)
    try:
        net = ip_network_strict(raw)
    except ValueError:
        try:
            loose = ip_network_strict(raw, strict=False)
        except ValueError:
            ctx.fail(key, raw, "is not an IPv%d address or CIDR network" % version, rule)
        ctx.fail(key, raw, "has host bits set: write the network %s or the single address %s"
                 % (loose.compressed, raw.split("/")[0]), rule)
    if net.version != version:
        ctx.fail(key, raw, "is an IPv%d network; list it under ip%d"
                 % (net.version, net.version), rule)
    mapped = getattr(net.network_address, "ipv4_mapped", None)
    if mapped is not None:
        hint = str(mapped) if net.prefixlen >= 128 else "%s/%d" % (mapped, max(net.prefixlen - 96, 0))
        ctx.fail(key, raw, "is an IPv4-mapped IPv6 address, which SPF evaluates as IPv4 so it "
                 "never matches ip6; list %s under ip4" % hint, "RFC 7208 §5")
    if net.prefixlen == 0:
        ctx.fail(key, raw, "matches every address, the same as +all", "RFC 7208 §5.1")
    return net


#: The broadest single ip4 / ip6 network an SPF spec may authorize.
SPF_WIDEST = {4: 8, 6: 16}


def _spf_ip_text(ctx, key, raw, version, parsed):
    """One ip4/ip6 entry as written in the record: compressed, /32 and /128 without prefix.

    The parsed network is appended to ``parsed`` (as ``(raw, network)``) before the breadth
    check, so that the union check also sees networks refused as too broad.
    """
    net = _spf_network(ctx, key, raw, version)
    parsed.append((raw, net))
    if net.prefixlen < SPF_WIDEST[version]:
        ctx.fail(key, raw, "authorizes a large part of the Internet (2^%d addresses); an %s "
                 "network may not be broader than /%d" % (net.max_prefixlen - net.prefixlen, key,
                                                          SPF_WIDEST[version]),
                 "mailward schema, docs/schema.md; RFC 7208 §5.6")
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else net.compressed


def _spf_not_everything(ctx, key, parsed, version):
    """Refuse ip4 (ip6) networks that together cover every IPv4 (IPv6) address: that is +all."""
    networks = [net for _, net in parsed]
    if networks and list(ipaddress.collapse_addresses(networks)) == \
            [ipaddress.ip_network("::/0" if version == 6 else "0.0.0.0/0")]:
        ctx.fail(key, [raw for raw, _ in parsed], "together cover every IPv%d address, the "
                 "same as +all" % version, "RFC 7208 §5.1")


def _spf_ip_terms(ctx, spec, key, version):
    """``ip4``/``ip6`` terms: validated, de-duplicated (order kept), not +all in disguise."""
    parsed = []
    texts = _items(ctx, key, spec.get(key), "addresses or CIDR networks",
                   lambda raw: _spf_ip_text(ctx, key, raw, version, parsed))
    ctx.step(_spf_not_everything, ctx, key, parsed, version)
    return [(key, "%s:%s" % (key, text), False) for text in _unique(texts, str)]


def _spf_macro_problem(text):
    """Why ``text`` is not a valid ``exists`` domain-spec (RFC 7208 §7.1), or None."""
    shape, i, ends_with_macro = [], 0, False
    while i < len(text):
        char = text[i]
        if char == "%":
            match = _SPF_MACRO.match(text, i)
            if not match:
                if text[i:i + 2] in ("%%", "%_", "%-"):
                    return ("'%s' expands to a character that is not allowed in a domain name "
                            "(RFC 7208 §7.1)" % text[i:i + 2])
                return "has a '%' that does not start a valid macro (RFC 7208 §7.1)"
            letter = match.group(1).lower()
            if letter == "p":
                return "uses the %{p} macro, which does a PTR lookup (RFC 7208 §7.3, §5.5)"
            if letter in "crt":
                return "macro %%{%s} is only allowed in exp= (RFC 7208 §7.2)" % match.group(1)
            if letter not in "slodihv":
                return "unknown macro letter '%s' (RFC 7208 §7.2)" % match.group(1)
            if match.group(2) and int(match.group(2)) == 0:
                return "a macro digit transformer must be nonzero (RFC 7208 §7.3)"
            shape.append("x")
            i, ends_with_macro = match.end(), True
            continue
        if not (char.isascii() and (char.isalnum() or char in "._-")):
            return "contains %r, which is not allowed in a domain name (RFC 7208 §7.1)" % char
        shape.append(char)
        i, ends_with_macro = i + 1, False
    shaped = "".join(shape)
    if shaped.endswith("."):
        shaped = shaped[:-1]
    if not shaped:
        return "is empty"
    if len(shaped) > 253:
        return "is longer than 253 characters (RFC 1035 §2.3.4)"
    labels = shaped.split(".")
    for label in labels:
        if not label:
            return "has an empty label (RFC 1035 §2.3.4)"
        if len(label) > 63:
            return "has a label longer than 63 characters (RFC 1035 §2.3.4)"
    if not ends_with_macro:
        top = labels[-1]
        if len(labels) < 2 or not _LABEL_LDH.match(top) or top.isdigit():
            return ("must end in a macro or in '.' and a top-level label that is not all digits "
                    "(RFC 7208 §7.1 domain-end)")
    return None


def _spf_exists(ctx, name):
    """One ``exists`` domain-spec: macros allowed (RFC 7208 §7.1), %{p} not."""
    _spf_not_ptr(ctx, "exists", name)
    if not isinstance(name, str):
        ctx.fail("exists", name, "must be a string", "RFC 7208 §5.7")
    problem = _spf_macro_problem(name)
    if problem:
        ctx.fail("exists", name, problem)
    return name


def _spf_domain_terms(ctx, spec, key):
    """``include``/``exists`` terms: validated names, de-duplicated case-insensitively."""
    if key == "exists":
        check = lambda name: _spf_exists(ctx, name)  # noqa: E731
    else:
        check = lambda name: _spf_not_self(ctx, key, _spf_hostname(ctx, key, name))  # noqa: E731
    names = _items(ctx, key, spec.get(key), "domain names", check)
    return [(key, "%s:%s" % (key, name), True)
            for name in _unique(names, lambda name: name.lower().rstrip("."))]


def _spf_redirect(ctx, spec):
    """The ``redirect`` domain, or None when absent/empty."""
    value = spec.get("redirect")
    if value is None or value == "":
        return None
    return _spf_not_self(ctx, "redirect", _spf_hostname(ctx, "redirect", value))


def _spf_all(ctx, spec, redirect):
    """The final ``all`` term (``-all`` by default), or None when ``redirect`` stands instead."""
    value = spec.get("all")
    explicit = value is not None and value != ""
    if explicit and redirect:
        ctx.fail("all", value, "cannot be combined with redirect=%s: a record with an all "
                 "mechanism ignores redirect" % redirect, "RFC 7208 §5.1, §6.1")
    if not explicit:
        return None if redirect else "-all"
    folded = value.lower() if isinstance(value, str) else value
    if folded in ("pass", "+all", "+", "all"):
        ctx.fail("all", value, "would authorise every host on the Internet; use fail, softfail "
                 "or neutral", "RFC 7208 §5.1")
    if folded in ("-all", "~all", "?all", "-", "~", "?"):
        ctx.fail("all", value, "write the result name: fail (-all), softfail (~all) or "
                 "neutral (?all)", "RFC 7208 §4.6.2")
    return _SPF_ALL[_choice(ctx, "all", value, tuple(_SPF_ALL), "RFC 7208 §4.6.2, §5.1")]


def _spf_check_lookups(ctx, terms):
    """At most 10 DNS-querying terms in the record itself (RFC 7208 §4.6.4)."""
    lookups = [term for term in terms if term[2]]
    if len(lookups) > _SPF_LOOKUP_LIMIT:
        path, text = lookups[_SPF_LOOKUP_LIMIT][:2]
        ctx.fail(path, text, "%d DNS-querying terms (a, mx, include, exists, redirect) in the "
                 "record; at most %d are allowed and this is the %dth"
                 % (len(lookups), _SPF_LOOKUP_LIMIT, _SPF_LOOKUP_LIMIT + 1), "RFC 7208 §4.6.4")


def spf_record(spec, domain=None):
    """Build an SPF TXT value (RFC 7208) from a spec mapping.

    Keys: ``a``, ``mx`` (true, or a list of host names -> ``a:host``/``mx:host``), ``ip4``,
    ``ip6`` (addresses or CIDR networks; de-duplicated in order, IPv6 compressed, /32 and /128
    written bare, host bits set refused), ``include``, ``exists`` (lists; a single string is a
    list of one; ``exists`` may use SPF macros), ``redirect`` (a domain), ``all``
    (``fail`` -> ``-all`` default, ``softfail`` -> ``~all``, ``neutral`` -> ``?all``).
    Term order: a, mx, ip4, ip6, include, exists, then all or redirect.

    Refused: unknown keys, ``ptr`` anywhere, ``pass``/``+all``, /0 networks, an ip4 network
    broader than /8 or an ip6 one broader than /16 (``SPF_WIDEST``), ip4 (ip6) networks that
    together cover every IPv4 (IPv6) address, IPv4-mapped addresses under ip6, an ``include``
    or ``redirect`` of ``domain`` itself (a loop: permerror), a netmask instead of a prefix
    length, a zone index, more than 10 DNS-querying terms counted in this record (a, mx,
    include, exists, redirect), ``redirect`` with an explicit ``all``, and a record with no
    mechanism unless it is ``v=spf1 -all`` (sends no mail): ``{}`` or ``{all: fail}`` give
    ``v=spf1 -all``. Nested includes are not followed (that needs DNS).
    """
    ctx = _Ctx("spf_record", domain)
    _check_mapping(ctx, spec, "an SPF spec")
    if "ptr" in spec:
        ctx.step(ctx.fail, "ptr", spec["ptr"], "the ptr mechanism is not allowed", _SPF_PTR_RULE)
    _check_keys(ctx, spec, _SPF_KEYS, ignore=("ptr",))
    terms = (_spf_host_terms(ctx, spec, "a") + _spf_host_terms(ctx, spec, "mx")
             + _spf_ip_terms(ctx, spec, "ip4", 4) + _spf_ip_terms(ctx, spec, "ip6", 6)
             + _spf_domain_terms(ctx, spec, "include") + _spf_domain_terms(ctx, spec, "exists"))
    mechanisms = len(terms)
    redirect = ctx.step(_spf_redirect, ctx, spec)
    final = ctx.step(_spf_all, ctx, spec, redirect, default="-all")
    if redirect:
        terms.append(("redirect", "redirect=%s" % redirect, True))
    ctx.step(_spf_check_lookups, ctx, terms)  # a lower bound when some term was refused
    if not ctx.problems and not mechanisms and not redirect and final != "-all":
        ctx.fail("all", spec.get("all"), "a record with no mechanism authorises no host; only "
                 "'v=spf1 -all' (the domain sends no mail) may have none", "RFC 7208 §4.7, §5.1")
    ctx.finish()
    return " ".join(["v=spf1"] + [term[1] for term in terms] + ([final] if final else []))


# --------------------------------------------------------------------------------------------
# Report URIs (DMARC RFC 9989 / RFC 7489, TLS-RPT RFC 8460)
# --------------------------------------------------------------------------------------------

_URI_SAFE_LOCAL = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~$'()*+=&")
_HEX = frozenset("0123456789abcdefABCDEF")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_SIZE_SUFFIX = re.compile(r"!([0-9]+[kmgtKMGT]?)\Z")


def _encode_local(local):
    """Percent-encode a mailto local part; keeps unreserved characters and existing %XX escapes.

    ``,`` ``!`` and ``;`` always end up encoded (RFC 9989 §4.8: commas and exclamation points
    MUST be encoded; a semicolon would end the tag).
    """
    out, i = [], 0
    while i < len(local):
        char = local[i]
        if char in _URI_SAFE_LOCAL:
            out.append(char)
        elif char == "%" and len(local) >= i + 3 and local[i + 1] in _HEX and local[i + 2] in _HEX:
            out.append(local[i:i + 3].upper())
            i += 3
            continue
        else:
            out.extend("%%%02X" % byte for byte in char.encode("utf-8"))
        i += 1
    return "".join(out)


def _mailto(ctx, path, raw, rule, size_suffix):
    """Validate one ``mailto:`` URI; return (normalized URI, destination domain lower-cased)."""
    if not isinstance(raw, str) or not raw:
        ctx.fail(path, raw, "must be a mailto: URI string", rule)
    if _SPACE_OR_CONTROL.search(raw):
        ctx.fail(path, raw, "contains whitespace or control characters", rule)
    if raw[:7].lower() != "mailto:":
        ctx.fail(path, raw, "is not a mailto: URI", rule)
    rest, size = raw[7:], ""
    if size_suffix:
        match = _SIZE_SUFFIX.search(rest)
        if match:
            size, rest = "!" + match.group(1).lower(), rest[:match.start()]
    if "?" in rest:
        ctx.fail(path, raw, "has ?header fields, which report URIs do not use", rule)
    local, at, dest = rest.rpartition("@")
    if not at or not local:
        ctx.fail(path, raw, "needs an address local@domain after mailto:", rule)
    problem = name_problem(dest)
    if problem:
        ctx.fail(path, raw, "domain %s %s" % (_show(dest), problem), rule)
    dest = dest.lower()
    return "mailto:%s@%s%s" % (_encode_local(local), dest, size), dest


def _https_uri(ctx, path, raw, rule):
    """Validate one ``https:`` URI (TLS-RPT); refuse characters that would break the record."""
    if _SPACE_OR_CONTROL.search(raw):
        ctx.fail(path, raw, "contains whitespace or control characters", rule)
    if not raw.isascii():
        ctx.fail(path, raw, "contains non-ASCII characters; percent-encode them", "RFC 3986 §2.1")
    for char, code in ((",", "%2C"), ("!", "%21"), (";", "%3B")):
        if char in raw:
            ctx.fail(path, raw, "contains '%s'; percent-encode it as %s" % (char, code), rule)
    match = re.match(r"\A[hH][tT][tT][pP][sS]://([^/?#]*)(.*)\Z", raw)
    if not match:
        ctx.fail(path, raw, "is not an https:// URI", rule)
    authority = match.group(1)
    if "@" in authority:
        ctx.fail(path, raw, "must not carry user information", rule)
    host, _, port = authority.partition(":")
    problem = name_problem(host)
    if problem:
        ctx.fail(path, raw, "host %s %s" % (_show(host), problem), rule)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        ctx.fail(path, raw, "has an invalid port", rule)
    return "https://%s%s" % (authority.lower(), match.group(2))


def _dmarc_uris(ctx, path, value):
    """rua/ruf: a list (or one string) of mailto: URIs -> list of (uri, destination domain)."""
    rule = "RFC 9989 §4.7, §4.8; RFC 7489 §6.2"
    pairs = _items(ctx, path, value, "mailto: URIs",
                   lambda raw: _mailto(ctx, path, raw, rule, size_suffix=True))
    return _unique(pairs, lambda pair: pair[0].lower())


# --------------------------------------------------------------------------------------------
# DMARC (RFC 9989; legacy RFC 7489)
# --------------------------------------------------------------------------------------------

#: Output order of DMARC tags after ``v``: p first, then these; legacy ones only with legacy: true.
DMARC_TAG_ORDER = ("p", "sp", "np", "adkim", "aspf", "t", "psd", "pct", "rf", "ri",
                   "rua", "ruf", "fo")
_DMARC_KEYS = DMARC_TAG_ORDER + ("legacy",)
_DMARC_LEGACY = ("pct", "rf", "ri")
_DMARC_POLICIES = ("none", "quarantine", "reject")


def _dmarc_flag(ctx, key, value, allowed):
    """t / psd: y|n(|u); YAML booleans are accepted as y/n."""
    if value is True:
        return "y"
    if value is False:
        return "n"
    return _choice(ctx, key, value, allowed, "RFC 9989 §4.7")


def _dmarc_fo(ctx, value):
    """fo: 0|1|d|s joined by ':' (from a string, an int 0/1 or a list); 0 and 1 exclusive."""
    rule = "RFC 9989 §4.7, §4.8"
    if isinstance(value, bool):
        ctx.fail("fo", value, "must be 0, 1, d, s or a ':'-joined combination", rule)
    if isinstance(value, int):
        items = [str(value)]
    elif isinstance(value, str):
        items = value.split(":")
    elif isinstance(value, (list, tuple)):
        items = [str(item) if isinstance(item, int) and not isinstance(item, bool) else item
                 for item in value]
    else:
        ctx.fail("fo", value, "must be a string such as '1' or '0:d'", rule)
    out = []
    for item in items:
        if not isinstance(item, str) or item.lower() not in ("0", "1", "d", "s"):
            ctx.fail("fo", value, "option %s is not one of 0, 1, d, s" % _show(item), rule)
        if item.lower() not in out:
            out.append(item.lower())
    if "0" in out and "1" in out:
        ctx.fail("fo", value, "0 and 1 exclude each other (1 already reports whenever 0 "
                 "would)", rule)
    return ":".join(out)


def dmarc_record(spec, domain=None):
    """Build a DMARC TXT value (RFC 9989) from a spec mapping.

    Output: ``v=DMARC1; p=...`` then, when given, in this fixed order:
    sp, np, adkim, aspf, t, psd, [legacy: pct, rf, ri], rua, ruf, fo.
    Values: p/sp/np none|quarantine|reject (``p`` required); adkim/aspf r|s; t y|n and
    psd y|n|u (YAML booleans read as y/n); fo 0|1|d|s joined by ':' and only with ruf;
    rua/ruf a list (or one string) of ``mailto:`` URIs, each with ``,`` ``!`` ``;`` in the
    address percent-encoded and an optional ``!size`` suffix (``!10m``, RFC 7489 §6.2) kept.
    ``legacy: true`` allows the RFC 7489 tags pct (0..100), rf (afrf), ri (seconds > 0),
    which RFC 9989 removed and which are refused otherwise. Unknown keys are refused.
    """
    ctx = _Ctx("dmarc_record", domain)
    _check_mapping(ctx, spec, "a DMARC spec")
    _check_keys(ctx, spec, _DMARC_KEYS)
    legacy = spec.get("legacy")
    if legacy is not None and not isinstance(legacy, bool):
        ctx.step(ctx.fail, "legacy", legacy, "must be true or false",
                 "mailward schema, docs/schema.md")
    values = {}

    def put(key, function, *args):
        if spec.get(key) is None or spec.get(key) == "":
            return
        if key in _DMARC_LEGACY and legacy is not True:
            ctx.step(ctx.fail, key, spec[key], "the %s tag was removed by RFC 9989 (t=y "
                     "replaces pct=0); set legacy: true to publish RFC 7489 tags" % key,
                     "RFC 9989 Appendix C.5.2")
            return
        result = ctx.step(function, *args)
        if result is not None:
            values[key] = result

    if spec.get("p") is None:
        ctx.step(ctx.fail, "p", _NO_TERM, "the p tag is required", "RFC 7489 §6.3; RFC 9989 §4.7")
    for key in ("p", "sp", "np"):
        put(key, _choice, ctx, key, spec.get(key), _DMARC_POLICIES, "RFC 9989 §4.7")
    for key in ("adkim", "aspf"):
        put(key, _choice, ctx, key, spec.get(key), ("r", "s"), "RFC 9989 §4.7")
    put("t", _dmarc_flag, ctx, "t", spec.get("t"), ("y", "n"))
    put("psd", _dmarc_flag, ctx, "psd", spec.get("psd"), ("y", "n", "u"))
    put("pct", lambda: str(_as_int(ctx, "pct", spec["pct"], 0, 100, "RFC 7489 §6.3")))
    put("rf", _choice, ctx, "rf", spec.get("rf"), ("afrf",), "RFC 7489 §6.3")
    put("ri", lambda: str(_as_int(ctx, "ri", spec["ri"], 1, 4294967295, "RFC 7489 §6.3")))
    for key in ("rua", "ruf"):
        uris = _dmarc_uris(ctx, key, spec.get(key))
        if uris:
            values[key] = ",".join(uri for uri, _ in uris)
    if spec.get("fo") is not None and spec.get("fo") != "" and not spec.get("ruf"):
        ctx.step(ctx.fail, "fo", spec["fo"], "fo only has an effect together with ruf",
                 "RFC 9989 §4.7")
    elif spec.get("ruf"):
        put("fo", _dmarc_fo, ctx, spec.get("fo"))
    ctx.finish()
    tags = [("v", "DMARC1")] + [(key, values[key]) for key in DMARC_TAG_ORDER if key in values]
    names = [name for name, _ in tags]
    if len(set(names)) != len(names):  # guard: cannot happen from a mapping
        ctx.fail(None, names, "duplicate tags", "RFC 9989 §4.8")
    return "; ".join("%s=%s" % tag for tag in tags)


def dmarc_report_authorizations(domain, uris):
    """Records a report destination must publish to accept ``domain``'s DMARC reports.

    ``uris``: the rua and ruf URIs (a list, one string, or None). For every ``mailto:``
    destination outside ``domain`` returns ``{name: '<domain>._report._dmarc.<dest>',
    value: 'v=DMARC1'}`` (RFC 7489 §7.1; RFC 9989 keeps the check), de-duplicated and sorted
    by name, names without trailing dot. Without a public suffix list, a destination is the
    same organisation only when it equals ``domain`` or ends with ``'.' + domain``; so reports
    of ``sub.example.com`` to ``example.com`` do get a (harmless) authorization record.
    """
    ctx = _Ctx("dmarc_report_authorizations", domain if isinstance(domain, str) else None)
    _check_name(ctx, "domain", domain, trailing_dot=True)
    own = domain.lower().rstrip(".")
    names = set()
    for _, dest in _dmarc_uris(ctx, "uris", uris):
        if dest != own and not dest.endswith("." + own):
            names.add(dmarc_report_auth_name(own, dest))
    ctx.finish()
    return [{"name": name, "value": "v=DMARC1"} for name in sorted(names)]


# --------------------------------------------------------------------------------------------
# DKIM (RFC 6376, RFC 8301, RFC 8463)
# --------------------------------------------------------------------------------------------

_DKIM_RSA_MIN, _DKIM_RSA_MAX = _dkim.RSA_MIN_BITS, _dkim.RSA_MAX_BITS


def _pem_bytes(ctx, path, data):
    """PEM input as bytes; refuse non-text and private keys (never echoing key material)."""
    if isinstance(data, str):
        if not data.isascii():
            ctx.fail(path, _NO_TERM, "is not PEM text (non-ASCII characters)", "RFC 7468 §2")
        data = data.encode("ascii")
    if not isinstance(data, bytes):
        ctx.fail(path, _NO_TERM, "must be PEM text, not %s" % type(data).__name__, "RFC 7468 §2")
    if b"PRIVATE KEY" in data:
        ctx.fail(path, _NO_TERM, "is a PRIVATE key; pass the public key (a private key must "
                 "never be published)", "RFC 6376 §3.6.1")
    return data


def _load_public_key(ctx, path, data, rule):
    """Load a PEM SubjectPublicKeyInfo public key or refuse it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    blob = _pem_bytes(ctx, path, data)
    try:
        return serialization.load_pem_public_key(blob)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        ctx.fail(path, _NO_TERM, "is not a PEM public key (-----BEGIN PUBLIC KEY-----)", rule)
    return None  # not reached


def dkim_record(public_key, key_type="rsa", domain=None, selector=None):
    """Build a DKIM key TXT value from a PEM public key.

    rsa: ``v=DKIM1; k=rsa; p=<base64 of the SubjectPublicKeyInfo DER>`` (RFC 6376 §3.6.1),
    2048..4096 bits (RFC 8301 §3.2). ed25519: ``v=DKIM1; k=ed25519; p=<base64 of the raw
    32-byte key>`` from a PEM Ed25519 SubjectPublicKeyInfo (RFC 8463 §4.2). An empty or None
    key gives the revocation record ``v=DKIM1; p=``. Refused: key type other than ``key_type``,
    RSA outside 2048..4096 bits, private keys, anything that is not a PEM public key. Messages
    never include key material. ``selector`` only labels messages.
    """
    where = domain
    if selector:
        where = "%s selector %s" % (domain or "?", selector)
    ctx = _Ctx("dkim_record", where)
    wanted = _choice(ctx, "key_type", key_type, ("rsa", "ed25519"), "RFC 6376 §3.6.1; RFC 8463 §4.2")
    if public_key is None or (isinstance(public_key, (str, bytes)) and not public_key.strip()):
        return "v=DKIM1; p="
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = _load_public_key(ctx, "public_key", public_key, "RFC 6376 §3.6.1")
    if isinstance(key, rsa.RSAPublicKey):
        actual = "rsa"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        actual = "ed25519"
    else:
        ctx.fail("public_key", _NO_TERM, "is a %s key; DKIM keys are rsa or ed25519"
                 % type(key).__name__.replace("PublicKey", "").lstrip("_"),
                 "RFC 6376 §3.6.1; RFC 8463 §4.2")
    if actual != wanted:
        ctx.fail("public_key", _NO_TERM, "is an %s key but key_type is %s" % (actual, wanted),
                 "RFC 6376 §3.6.1 k=")
    if actual == "rsa":
        if not _DKIM_RSA_MIN <= key.key_size <= _DKIM_RSA_MAX:
            ctx.fail("public_key", _NO_TERM, "is a %d-bit RSA key; use %d to %d bits"
                     % (key.key_size, _DKIM_RSA_MIN, _DKIM_RSA_MAX), "RFC 8301 §3.2")
    return "v=DKIM1; k=%s; p=%s" % (actual, _dkim.public_key_value(key, actual))


# --------------------------------------------------------------------------------------------
# TXT presentation (RFC 1035 §3.3, §3.3.14, §5.1)
# --------------------------------------------------------------------------------------------

_TXT_STRING_MAX = 255


def txt_chunks(value, domain=None):
    """Split a TXT value into raw character-strings of at most 255 bytes of UTF-8 each.

    Never splits inside a multi-byte character; ``''.join(chunks) == value`` exactly. An empty
    value gives ``['']`` (a TXT record has at least one string, RFC 1035 §3.3.14). This is what
    nsupdate / dnspython take; receivers concatenate the strings without spaces (RFC 7208 §3.3).
    """
    ctx = _Ctx("txt_chunks", domain)
    if not isinstance(value, str):
        ctx.fail(None, value, "a TXT value must be a string, not %s" % type(value).__name__,
                 "RFC 1035 §3.3.14")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        ctx.fail(None, value, "is not encodable as UTF-8 (it has a lone surrogate)",
                 "RFC 1035 §3.3.14")
    chunks, start = [], 0
    while start < len(data):
        end = min(start + _TXT_STRING_MAX, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # inside a UTF-8 sequence
            end -= 1
        chunks.append(data[start:end].decode("utf-8"))
        start = end
    return chunks or [""]


def _txt_escape(chunk):
    """Zone-file escaping: ``"`` and ``\\`` backslash-escaped, control characters as \\DDD."""
    out = []
    for char in chunk:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append("\\%03d" % ord(char))
        else:
            out.append(char)
    return "".join(out)


def txt_strings(value, domain=None):
    """Zone-file presentation of a TXT value: space-separated quoted strings.

    Each string holds at most 255 bytes of UTF-8 (split as ``txt_chunks``, never inside a
    character); ``"`` and ``\\`` are written ``\\"`` and ``\\\\``, control characters as
    ``\\DDD`` (RFC 1035 §5.1) so the result stays on one line. Non-ASCII text is left as UTF-8.
    """
    chunks = txt_chunks(value, domain=domain)
    return " ".join('"%s"' % _txt_escape(chunk) for chunk in chunks)


# --------------------------------------------------------------------------------------------
# MTA-STS (RFC 8461) and TLS-RPT (RFC 8460)
# --------------------------------------------------------------------------------------------

_STS_ID = re.compile(r"\A[A-Za-z0-9]{1,32}\Z")
_STS_MODES = ("enforce", "testing", "none")
_STS_MAX_AGE = 31557600


def mta_sts_record(policy_id, domain=None):
    """``_mta-sts`` TXT value ``v=STSv1; id=<id>``; id is 1-32 letters/digits (RFC 8461 §3.1)."""
    ctx = _Ctx("mta_sts_record", domain)
    if isinstance(policy_id, int) and not isinstance(policy_id, bool):
        policy_id = str(policy_id)
    if not isinstance(policy_id, str) or not _STS_ID.match(policy_id):
        ctx.fail("id", policy_id, "must be 1 to 32 letters and digits", "RFC 8461 §3.1")
    return "v=STSv1; id=%s" % policy_id


def _sts_pattern(ctx, item):
    """One MX pattern from a name or a ``{host: ...}`` mapping; ``*.`` allowed first."""
    host = item.get("host") if isinstance(item, Mapping) else item
    problem = name_problem(host, wildcard=True)
    if problem:
        ctx.fail("mx", host, problem, "RFC 8461 §3.2, §4.1")
    return host.lower()


def mta_sts_policy(mode, mx_list, max_age, domain=None):
    """The MTA-STS policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt.

    ``version: STSv1``, ``mode: enforce|testing|none``, one ``mx:`` line per pattern (host
    names or ``{host: ...}`` mappings; ``*.example.com`` allowed; at least one unless mode is
    none), ``max_age: 0..31557600``. Every line, the last included, ends with CRLF as RFC 8461
    §3.2 requires.
    """
    ctx = _Ctx("mta_sts_policy", domain)
    mode = ctx.step(_choice, ctx, "mode", mode, _STS_MODES, "RFC 8461 §3.2")
    patterns = _unique(_items(ctx, "mx", mx_list, "MX host names or patterns",
                              lambda item: _sts_pattern(ctx, item)))
    if not patterns and mode != "none" and not ctx.problems:
        ctx.step(ctx.fail, "mx", mx_list, "mode %s needs at least one mx pattern" % mode,
                 "RFC 8461 §3.2")
    age = ctx.step(_as_int, ctx, "max_age", max_age, 0, _STS_MAX_AGE, "RFC 8461 §3.2")
    ctx.finish()
    lines = ["version: STSv1", "mode: %s" % mode] + ["mx: %s" % p for p in patterns]
    lines.append("max_age: %d" % age)
    return "\r\n".join(lines) + "\r\n"


def mta_sts_policy_id(policy_text, domain=None):
    """A stable policy id: the first 20 hex digits of SHA-256 of the policy text.

    It changes if and only if the policy text changes (barring a SHA-256 collision), and it
    satisfies RFC 8461 §3.1 (1-32 alphanumerics).
    """
    ctx = _Ctx("mta_sts_policy_id", domain)
    if not isinstance(policy_text, str) or not policy_text:
        ctx.fail(None, policy_text, "the policy text must be a non-empty string", "RFC 8461 §3.2")
    return hashlib.sha256(policy_text.encode("utf-8")).hexdigest()[:20]


def tlsrpt_record(rua_list, domain=None):
    """``_smtp._tls`` TXT value ``v=TLSRPTv1; rua=<uri>,<uri>`` (RFC 8460 §3).

    URIs: ``mailto:`` (address percent-encoded like DMARC's) or ``https:`` (``,`` ``!`` ``;``
    must already be percent-encoded); a single string is a list of one; at least one;
    de-duplicated in order.
    """
    ctx = _Ctx("tlsrpt_record", domain)
    rule = "RFC 8460 §3"

    def check(raw):
        if isinstance(raw, str) and raw[:7].lower() == "mailto:":
            return _mailto(ctx, "rua", raw, rule, size_suffix=False)[0]
        if isinstance(raw, str) and raw[:6].lower() == "https:":
            return _https_uri(ctx, "rua", raw, rule)
        ctx.fail("rua", raw, "only mailto: and https: URIs are allowed", rule)
        return None  # not reached

    uris = _unique(_items(ctx, "rua", rua_list, "mailto: or https: URIs", check), str)
    if not uris and not ctx.problems:
        ctx.fail("rua", rua_list, "at least one reporting URI is required", rule)
    ctx.finish()
    return "v=TLSRPTv1; rua=%s" % ",".join(uris)


# --------------------------------------------------------------------------------------------
# TLSA (RFC 6698, RFC 7672)
# --------------------------------------------------------------------------------------------


def _tlsa_data(ctx, cert_pem, usage, selector):
    """The bytes a TLSA record matches: certificate DER (selector 0) or its SPKI DER (1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    blob = _pem_bytes(ctx, "cert_pem", cert_pem)
    if b"-----BEGIN CERTIFICATE-----" not in blob:
        if selector == 1 and b"-----BEGIN PUBLIC KEY-----" in blob:
            key = _load_public_key(ctx, "cert_pem", blob, "RFC 6698 §2.1.2")
            return key.public_bytes(serialization.Encoding.DER,
                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        ctx.fail("cert_pem", _NO_TERM, "is not a PEM certificate (a PEM public key is accepted "
                 "with selector 1)", "RFC 6698 §2.1.2")
    try:
        certs = x509.load_pem_x509_certificates(blob)
    except ValueError:
        ctx.fail("cert_pem", _NO_TERM, "is not a valid PEM certificate", "RFC 6698 §2.1.2")
    if len(certs) > 1 and usage not in (1, 3):
        ctx.fail("cert_pem", _NO_TERM, "holds %d certificates; with usage %d pass the one "
                 "trust-anchor certificate" % (len(certs), usage), "RFC 6698 §2.1.1")
    cert = certs[0]  # the end-entity certificate comes first in a chain file
    if selector == 0:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def tlsa_record(cert_pem, usage=3, selector=1, matching=1, domain=None):
    """TLSA RDATA ``<usage> <selector> <matching> <hex>`` (RFC 6698 §2.1, §2.2).

    usage 0..3 (RFC 7672 §3.1: SMTP uses 3 DANE-EE and 2 DANE-TA), selector 0 = full
    certificate DER, 1 = SubjectPublicKeyInfo DER, matching 0 = the data itself, 1 = SHA-256,
    2 = SHA-512; hex in lower case. ``cert_pem``: a PEM certificate (the first of a chain is
    used for usage 1 and 3; usage 0 and 2 need exactly one), or a PEM public key with
    selector 1, so the next key can be published before the certificate exists.
    """
    ctx = _Ctx("tlsa_record", domain)
    usage = _as_int(ctx, "usage", usage, 0, 3, "RFC 6698 §2.1.1")
    selector = _as_int(ctx, "selector", selector, 0, 1, "RFC 6698 §2.1.2")
    matching = _as_int(ctx, "matching", matching, 0, 2, "RFC 6698 §2.1.3")
    data = _tlsa_data(ctx, cert_pem, usage, selector)
    if matching == 1:
        data = hashlib.sha256(data).digest()
    elif matching == 2:
        data = hashlib.sha512(data).digest()
    return "%d %d %d %s" % (usage, selector, matching, data.hex())
