# -*- coding: utf-8 -*-
"""mailward inventory filters: validate/normalize ``mail_domains`` and derive its DNS records.

``mail_domains_normalize`` is the single validator of the ``mail_domains`` schema
(docs/schema.md); ``mail_domains_records`` is the single source of the records the dns role
publishes and the audit checks, so the two cannot drift. Both reuse the record generators of
``records.py`` beside it.
"""

import ipaddress
import re
from collections.abc import Mapping

from ansible_collections.mailward.mail.plugins.module_utils import dkim as _dkim
from ansible_collections.mailward.mail.plugins.module_utils import records as _records
from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError

_DOMAIN_KEYS = ("name", "mx", "spf", "dkim", "dmarc", "mta_sts", "tlsrpt", "tlsa")
_MX_KEYS = ("host", "priority")
_DKIM_KEYS = ("selector", "type", "bits", "hosts", "state")
# DKIM selector lifecycle (docs/dkim-rotation.md): active publishes and signs; standby publishes
# and does not sign (pre-published before a switch, or kept after one for mail in flight);
# retired publishes the revocation record (empty p=), does not sign, and its private key is
# removed after opendkim_retired_key_days. A selector left out of the inventory is unpublished.
DKIM_STATES = ("active", "standby", "retired")
_STS_KEYS = ("mode", "max_age", "id")
_TLSRPT_KEYS = ("rua",)
_MX_HOST_KEYS = ("name", "ipv4", "ipv6", "cert_pem")

DEFAULT_MX_PRIORITY = 10
DEFAULT_SPF = {"mx": True, "all": "fail"}
DEFAULT_RSA_BITS = _dkim.RSA_DEFAULT_BITS
DEFAULT_DKIM = ({"selector": "mailward", "type": "rsa", "bits": DEFAULT_RSA_BITS, "state": "active"},)
DEFAULT_DMARC = {"p": "none"}
DEFAULT_MTA_STS_MAX_AGE = 604800
_SCHEMA = "docs/schema.md"


class _Problems:
    """Collects problem lines ``<prefix>: <path>: <what is wrong>`` for one raise at the end."""

    def __init__(self):
        self.lines = []

    def add(self, prefix, path, detail):
        """Record one problem."""
        self.lines.append("%s: %s: %s" % (prefix, path, detail) if path else
                          "%s: %s" % (prefix, detail))

    def add_refusal(self, prefix, base, error):
        """Record every problem of a record filter's refusal under variable path ``base``."""
        for sub, detail in getattr(error, "problems", None) or [(None, str(error))]:
            self.add(prefix, "%s.%s" % (base, sub) if sub else base, detail)

    def raise_if_any(self):
        """Raise one MailwardError listing every problem, one per line."""
        if self.lines:
            raise MailwardError("\n".join(self.lines))


def _show(value):
    """Quote a value for a problem line (shortened)."""
    return _records._show(value)  # pylint: disable=protected-access


def _unknown_keys(problems, prefix, base, item, allowed):
    """Report every key of ``item`` not in ``allowed``; True when there was none."""
    clean = True
    for key in item:
        if key in allowed:
            continue
        path = "%s.%s" % (base, key) if base else str(key)
        problems.add(prefix, path, "unknown key (allowed: %s)%s"
                     % (", ".join(allowed), _records.suggest(key, allowed)))
        clean = False
    return clean


def _int_in(value, low, high):
    """An int in [low, high] from an int or a digit string, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if low <= number <= high else None


def _address(raw, version):
    """(address, None) for an IPv``version`` address from the inventory, else (None, reason)."""
    try:
        address = _records.ip_address_strict(raw)
    except ValueError as error:
        return None, str(error)
    if address.version != version:
        return None, "is not an IPv%d address" % version
    return address, None


def _forwarder_problem(raw):
    """Why ``raw`` is not a resolver_forwarders entry (an address, optionally @port), or None."""
    address, at, port = raw.partition("@") if isinstance(raw, str) else (raw, "", "")
    try:
        _records.ip_address_strict(address)
    except ValueError as error:
        return "%s (an IPv4 or IPv6 address, optionally @port: 192.0.2.53 or 2001:db8::53@5353; " \
            "not a name, which would need the resolver it configures)" % error
    if at and not (re.match(r"\A[1-9][0-9]{0,4}\Z", port) and int(port) < 65536):
        return "port %s is not a number 1..65535" % _show(port)
    return None


def _plain(value):
    """Deep copy of mappings/lists into dict/list; strings kept as they are (unsafe stays unsafe)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# The host's own variables (mail_domains_normalize(host_vars=...))
# --------------------------------------------------------------------------------------------

_MYNETWORKS_RULE = "Postfix mynetworks, postconf(5)"
#: The broadest networks mail_mynetworks takes without mail_mynetworks_allow_broad.
MYNETWORKS_WIDEST = {4: 8, 6: 32}
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def _mynetworks_network(raw):
    """(ip_network, None) for one Postfix mynetworks entry, else (None, reason).

    IPv4 ``a.b.c.d`` or ``a.b.c.d/n``; IPv6 only in brackets, ``[addr]`` or ``[addr]/n``
    (postconf(5)); parsed by ``ip_network_strict`` (no host bits, no zone index).
    """
    if not isinstance(raw, str):
        return None, "must be a string such as 192.0.2.0/24 or [2001:db8::]/32, not %s" \
            % type(raw).__name__
    if not raw:
        return None, "is empty"
    if "%" not in raw:  # a zone index is named as such by ip_network_strict below
        if re.search(r"[\s,]", raw):
            return None, "contains white space or a comma: write one network per list item"
        if not re.match(r"\A[0-9A-Fa-f:./\[\]]+\Z", raw):
            return None, "is not an IPv4 or IPv6 address or network (host names, /file/name " \
                "and type:table lookups are not accepted here: list the networks)"
    text = raw
    if "[" in raw or "]" in raw:
        text = _records.unbracket_network(raw)
        if text is None:
            return None, "brackets do not match: write an IPv6 network as [addr] or [addr]/n " \
                "(%s)" % _MYNETWORKS_RULE
    elif ":" in raw:
        return None, "an IPv6 network must be written in brackets, [addr] or [addr]/n (%s)" \
            % _MYNETWORKS_RULE
    try:
        network = _records.ip_network_strict(text)
    except ValueError as error:
        problem = str(error)
        if problem == "has host bits set":
            loose = _records.ip_network_strict(text, strict=False)
            meant = loose.compressed if text == raw else "[%s]/%d" % (loose.network_address,
                                                                      loose.prefixlen)
            problem = "has host bits set: write the network %s" % meant
        return None, problem
    if network.version == 4 and text != raw:
        return None, "is an IPv4 network in brackets: write it without them (%s)" \
            % _MYNETWORKS_RULE
    return network, None


def _mynetworks_problem(raw, allow_broad):
    """Why ``raw`` may not be a mail_mynetworks entry, or None."""
    network, problem = _mynetworks_network(raw)
    if problem:
        return problem
    effect = ("every client in it may relay through this host without authentication, gets "
              "its mail DKIM-signed and is not judged by OpenDMARC")
    # An IPv6 network that reaches into ::ffff:0:0/96 is also judged as the IPv4 it maps.
    mapped = max(network.prefixlen - 96, 0) if network.version == 6 \
        and network.overlaps(_IPV4_MAPPED) else None
    for what, prefix in (("every address", network.prefixlen), ("every IPv4 address", mapped)):
        if prefix == 0:
            return "matches %s: an open relay (%s); refused even with " \
                "mail_mynetworks_allow_broad" % (what, effect)
    if allow_broad is True:
        return None
    for version, prefix in ((network.version, network.prefixlen), (4, mapped)):
        if prefix is not None and prefix < MYNETWORKS_WIDEST[version]:
            return "is broader than /%d: %s; set mail_mynetworks_allow_broad: true if that " \
                "is really meant" % (MYNETWORKS_WIDEST[version], effect)
    return None


def _check_mynetworks(problems, prefix, value, allow_broad):
    """mail_mynetworks: a list of strict networks, none /0, none too broad without the opt-in."""
    if not isinstance(value, (list, tuple)):
        problems.add(prefix, "mail_mynetworks", "must be a list of networks such as "
                     "[\"127.0.0.0/8\", \"[::1]/128\"], not %s %s"
                     % (type(value).__name__, _show(value)))
        return
    for position, raw in enumerate(value):
        problem = _mynetworks_problem(raw, allow_broad)
        if problem:
            problems.add(prefix, "mail_mynetworks[%d]" % position, "%s: %s" % (_show(raw), problem))


def _check_public_address(problems, prefix, var, value, version):
    """mail_public_ipv4 / mail_public_ipv6: unset (None, ''), or one address of that version."""
    if value is None or value == "":
        return
    address, problem = _address(value, version)
    if address is not None and version == 6 and address.ipv4_mapped is not None:
        problem = "is an IPv4-mapped address; put %s in mail_public_ipv4" % address.ipv4_mapped
    if problem:
        problems.add(prefix, var, "%s: %s" % (_show(value), problem))


def _check_forwarders(problems, prefix, value):
    """resolver_forwarders: a list of addresses, each optionally @port."""
    if not isinstance(value, (list, tuple)):
        problems.add(prefix, "resolver_forwarders", "must be a list of IP addresses, not %s"
                     % type(value).__name__)
        return
    for position, raw in enumerate(value):
        problem = _forwarder_problem(raw)
        if problem:
            problems.add(prefix, "resolver_forwarders[%d]" % position, "%s: %s"
                         % (_show(raw), problem))


_SUBMISSION_KEYS = ("name", "password", "senders")
#: Characters a login or sender may not hold: ':' separates the fields of Dovecot's passwd-file,
#: ',' the logins of Postfix's sender map; quotes and backslashes would need quoting there.
_ADDRESS_FORBIDDEN = {":": "the field separator of Dovecot's passwd-file",
                      ",": "the login separator of Postfix's sender map",
                      '"': "a quote (quoted local parts are not supported)",
                      "\\": "a backslash (quoted local parts are not supported)"}


def _login_address_problem(address):
    """Why ``address`` cannot be a submission login or sender (``local@domain``), or None.

    No white space or control characters (a newline would start a new entry in the users file
    or the sender map), none of ``: , " \\``, exactly one ``@``, a non-empty local part and a
    domain that passes ``name_problem`` as mail_domains names do (case is folded by the role).
    """
    if not isinstance(address, str):
        return "must be a string (local@domain), not %s" % type(address).__name__
    if not address:
        return "is empty"
    if any(char.isspace() or not char.isprintable() for char in address):
        return "contains white space or control characters (each would start a new entry in " \
            "the users file or the sender map)"
    for char, why in _ADDRESS_FORBIDDEN.items():
        if char in address:
            return "contains '%s', %s" % (char, why)
    if address.count("@") != 1:
        return "must be one address local@domain (exactly one '@')"
    local, _, domain = address.partition("@")
    if not local:
        return "has an empty local part"
    problem = _records.name_problem(domain)
    if problem:
        return "domain %s %s" % (_show(domain), problem)
    return None


def _password_problem(password):
    """Why ``password`` is not a usable password, or None; never quotes the value."""
    if password is None:
        return "is required: a non-empty string (keep it in Ansible Vault)"
    if type(password).__name__ in ("AnsibleVaultEncryptedUnicode", "EncryptedString"):
        try:  # a vaulted value: checked when the secret is there to decrypt it
            password = str(password)
        except Exception:  # pylint: disable=broad-except
            return None
    if not isinstance(password, str):
        return "must be a string, not %s" % type(password).__name__
    if not password:
        return "must not be empty"
    return None


def _check_submission_users(problems, prefix, value):
    """submission_users: a list of {name, password, senders}; logins unique case-insensitively."""
    if not isinstance(value, (list, tuple)):
        problems.add(prefix, "submission_users", "must be a list of {name, password, senders}, "
                     "not %s" % type(value).__name__)
        return
    seen = {}
    for position, item in enumerate(value):
        base = "submission_users[%d]" % position
        if not isinstance(item, Mapping):  # never quoted: it may hold a password
            problems.add(prefix, base, "must be a mapping {name, password, senders}, not %s"
                         % type(item).__name__)
            continue
        _unknown_keys(problems, prefix, base, item, _SUBMISSION_KEYS)
        name = item.get("name")
        problem = "is required: the login, local@domain" if name is None \
            else _login_address_problem(name)
        if problem:
            problems.add(prefix, base + ".name", "%s: %s" % (_show(name), problem)
                         if name is not None else problem)
        elif name.lower() in seen:
            problems.add(prefix, base + ".name", "%s: duplicate of submission_users[%d] (logins "
                         "are compared case-insensitively)" % (_show(name), seen[name.lower()]))
        else:
            seen[name.lower()] = position
        problem = _password_problem(item.get("password"))
        if problem:
            problems.add(prefix, base + ".password", problem)
        if "senders" not in item:
            continue
        senders = item["senders"]
        if not isinstance(senders, (list, tuple)):
            problems.add(prefix, base + ".senders", "must be a list of addresses local@domain, "
                         "not %s" % type(senders).__name__)
            continue
        for index, sender in enumerate(senders):
            problem = _login_address_problem(sender)
            if problem:
                problems.add(prefix, "%s.senders[%d]" % (base, index), "%s: %s"
                             % (_show(sender), problem))


def _check_host_vars(problems, host, host_vars):
    """Every problem of the host-level variables in ``host_vars`` (absent keys: not checked)."""
    prefix = "host %s" % host
    if not isinstance(host_vars, Mapping):
        problems.add(prefix, None, "host_vars must be a mapping of variable names to values, "
                     "not %s" % type(host_vars).__name__)
        return
    allow_broad = host_vars.get("mail_mynetworks_allow_broad", False)
    if not isinstance(allow_broad, bool):
        problems.add(prefix, "mail_mynetworks_allow_broad", "%s: must be true or false"
                     % _show(allow_broad))
        allow_broad = False
    if "mail_mynetworks" in host_vars:
        _check_mynetworks(problems, prefix, host_vars["mail_mynetworks"], allow_broad)
    for var, version in (("mail_public_ipv4", 4), ("mail_public_ipv6", 6)):
        if var in host_vars:
            _check_public_address(problems, prefix, var, host_vars[var], version)
    if "resolver_forwarders" in host_vars:
        _check_forwarders(problems, prefix, host_vars["resolver_forwarders"])
    if "submission_users" in host_vars:
        _check_submission_users(problems, prefix, host_vars["submission_users"])


# --------------------------------------------------------------------------------------------
# mail_domains_normalize
# --------------------------------------------------------------------------------------------


def _derived_name_ok(problems, prefix, path, what, owner, value=None):
    """Record a problem when the derived record name ``owner`` is not a valid name.

    ``path``: the variable that produces the name; ``value``: its value, quoted first if given.
    """
    problem = _records.owner_name_problem(owner)
    if problem:
        detail = "the %s name %s %s" % (what, _show(owner), problem)
        problems.add(prefix, path, "%s: %s" % (_show(value), detail) if value is not None
                     else detail)
    return problem is None


def _check_domain_name(problems, prefix, name, index, seen):
    """``name``: required, a lower-case FQDN without trailing dot, unique case-insensitively."""
    if name is None:
        problems.add(prefix, "name", "is required")
        return False
    problem = _records.name_problem(name)
    if problem:
        problems.add(prefix, "name", "%s: %s" % (_show(name), problem))
        return False
    ok = True
    if name != name.lower():
        problems.add(prefix, "name", "%s: must be lower case (schema, %s)" % (_show(name), _SCHEMA))
        ok = False
    folded = name.lower()
    if folded in seen:
        problems.add(prefix, "name", "%s: duplicate of mail_domains[%d] (names are compared "
                     "case-insensitively)" % (_show(name), seen[folded]))
        ok = False
    else:
        seen[folded] = index
    return ok


def _normalize_mx(problems, prefix, value, mail_hostname):
    """mx: list of {host, priority}; default [{host: mail_hostname, priority: 10}]."""
    if value is None:  # an invalid mail_hostname is reported once, at host level
        return ([{"host": mail_hostname, "priority": DEFAULT_MX_PRIORITY}],
                mail_hostname is not None)
    if not isinstance(value, (list, tuple)) or not value:
        problems.add(prefix, "mx", "must be a non-empty list of {host, priority} (omit it for "
                     "the default %s)" % mail_hostname)
        return [], False
    out, seen, ok = [], set(), True
    for position, item in enumerate(value):
        base = "mx[%d]" % position
        if not isinstance(item, Mapping):
            problems.add(prefix, base, "must be a mapping {host, priority}, not %s"
                         % type(item).__name__)
            ok = False
            continue
        ok = _unknown_keys(problems, prefix, base, item, _MX_KEYS) and ok
        host = item.get("host")
        problem = _records.name_problem(host) if host is not None else "is required"
        if problem:
            problems.add(prefix, base + ".host", "%s: %s" % (_show(host), problem)
                         if host is not None else problem)
            ok = False
        elif host.lower() in seen:
            problems.add(prefix, base + ".host", "%s: listed twice" % _show(host))
            ok = False
        else:
            seen.add(host.lower())
        priority = _int_in(item.get("priority", DEFAULT_MX_PRIORITY), 0, 65535)
        if priority is None:
            problems.add(prefix, base + ".priority", "%s: must be an integer 0..65535 "
                         "(RFC 1035 §3.3.9)" % _show(item.get("priority")))
            ok = False
        out.append({"host": host, "priority": priority})
    return out, ok


def _normalize_dkim(problems, prefix, value, name=None, host=None):
    """dkim: list of {selector, type, bits, hosts, state}; default one 2048-bit rsa selector
    'mailward', active.

    ``name``: the (valid) domain, to check each ``<selector>._domainkey.<name>``; None: not.
    ``host``: the inventory host; when it holds any of the selectors (no ``hosts`` list, or it
    is in the list) at least one of those must be active, or the domain's mail would leave it
    unsigned. None: not checked.
    """
    if value is None:
        value = DEFAULT_DKIM
    if not isinstance(value, (list, tuple)):
        problems.add(prefix, "dkim", "must be a list of {selector, type, bits}")
        return []
    out, seen = [], {}
    for position, item in enumerate(value):
        base = "dkim[%d]" % position
        if not isinstance(item, Mapping):
            problems.add(prefix, base, "must be a mapping {selector, type, bits}")
            continue
        _unknown_keys(problems, prefix, base, item, _DKIM_KEYS)
        selector = item.get("selector")
        if not isinstance(selector, str) or not _records._LABEL_LDH.match(selector) \
                or len(selector) > 63:  # pylint: disable=protected-access
            problems.add(prefix, base + ".selector", "%s: must be one DNS label: letters, "
                         "digits, inner hyphens, at most 63 (RFC 6376 §3.1, RFC 1123 §2.1)"
                         % _show(selector))
        elif selector.lower() in seen:
            problems.add(prefix, base + ".selector", "%s: duplicate of dkim[%d]"
                         % (_show(selector), seen[selector.lower()]))
        else:
            seen[selector.lower()] = position
            if name:
                _derived_name_ok(problems, prefix, base + ".selector", "DKIM key",
                                 _records.dkim_name(selector.lower(), name), selector)
        key_type = item.get("type", "rsa")
        if not isinstance(key_type, str) or key_type.lower() not in ("rsa", "ed25519"):
            problems.add(prefix, base + ".type", "%s: must be rsa or ed25519 (RFC 6376 §3.6.1, "
                         "RFC 8463)" % _show(key_type))
            key_type = None
        else:
            key_type = key_type.lower()
        entry = {"selector": selector, "type": key_type}
        if key_type == "ed25519" and "bits" in item:
            problems.add(prefix, base + ".bits", "%s: not allowed for ed25519 (the key size is "
                         "fixed, RFC 8463)" % _show(item["bits"]))
        elif key_type == "rsa":
            bits = _int_in(item.get("bits", DEFAULT_RSA_BITS), _dkim.RSA_MIN_BITS, _dkim.RSA_MAX_BITS)
            if bits is None:
                problems.add(prefix, base + ".bits", "%s: must be an integer %d..%d (RFC 8301 §3.2)"
                             % (_show(item.get("bits")), _dkim.RSA_MIN_BITS, _dkim.RSA_MAX_BITS))
            entry["bits"] = bits
        hosts = item.get("hosts")
        if hosts is not None:
            if isinstance(hosts, str):
                hosts = [hosts]
            if not isinstance(hosts, (list, tuple)) or not hosts \
                    or not all(isinstance(h, str) and h for h in hosts):
                problems.add(prefix, base + ".hosts", "%s: must be a non-empty list of inventory "
                             "host names (the hosts that hold and sign with this selector)" % _show(hosts))
            else:
                entry["hosts"] = list(hosts)
        state = item.get("state", "active")
        if not isinstance(state, str) or state.lower() not in DKIM_STATES:
            problems.add(prefix, base + ".state", "%s: must be active (published, signs), standby "
                         "(published, does not sign) or retired (revoked: published with an empty "
                         "p=, does not sign); docs/dkim-rotation.md" % _show(state))
            state = None
        else:
            state = state.lower()
        entry["state"] = state
        out.append(entry)
    if host is not None:
        _check_one_active(problems, prefix, host, out)
    return out


def _check_one_active(problems, prefix, host, selectors):
    """The selectors ``host`` holds include an active one (when it holds any)."""
    held = [sel for sel in selectors
            if not sel.get("hosts") or host in sel["hosts"]]
    if not held or any(sel["state"] in ("active", None) for sel in held):
        return
    problems.add(prefix, "dkim", "no selector held by host %s is active (%s): its mail for this "
                 "domain would leave unsigned; set state: active on one of them (a rotation "
                 "switches the new selector to active and the old one to standby in the same "
                 "edit, docs/dkim-rotation.md)"
                 % (host, ", ".join("%s: %s" % (sel["selector"], sel["state"]) for sel in held)))


def _call(problems, prefix, base, function, *args, **kwargs):
    """Run a record filter; on refusal record it under ``base`` and return None."""
    try:
        return function(*args, **kwargs)
    except MailwardError as error:
        problems.add_refusal(prefix, base, error)
        return None


def _normalize_spf(problems, prefix, name, value):
    """spf: the given spec (replacing the default entirely) with all: fail filled in."""
    if value is None:
        spec = dict(DEFAULT_SPF)
    elif not isinstance(value, Mapping):
        problems.add(prefix, "spf", "must be a mapping (schema, %s)" % _SCHEMA)
        return None
    else:
        spec = _plain(value)
        if not spec.get("redirect") and spec.get("all") in (None, ""):
            spec["all"] = "fail"
    _call(problems, prefix, "spf", _records.spf_record, spec, domain=name)
    return spec


def _normalize_dmarc(problems, prefix, name, value, name_ok):
    """dmarc: the given spec or {p: none}; proves the record and report authorizations."""
    if value is None:
        return dict(DEFAULT_DMARC)
    if not isinstance(value, Mapping):
        problems.add(prefix, "dmarc", "must be a mapping (schema, %s)" % _SCHEMA)
        return None
    spec = _plain(value)
    record = _call(problems, prefix, "dmarc", _records.dmarc_record, spec, domain=name)
    if record is not None and name_ok:
        uris = _report_uris(spec)
        if _call(problems, prefix, "dmarc", _records.dmarc_report_authorizations, name,
                 uris) is not None:
            _check_report_auth_names(problems, prefix, name, spec)
    return spec


def _check_report_auth_names(problems, prefix, name, dmarc):
    """Each rua/ruf destination outside the domain: ``<name>._report._dmarc.<dest>`` fits."""
    for key in ("rua", "ruf"):
        value = dmarc.get(key)
        items = [(key, value)] if isinstance(value, str) else \
            [("%s[%d]" % (key, i), uri) for i, uri in enumerate(value or [])]
        for path, uri in items:
            for auth in _records.dmarc_report_authorizations(name, [uri]):
                _derived_name_ok(problems, prefix, "dmarc." + path, "report authorization",
                                 auth["name"], uri)


def _report_uris(dmarc):
    """rua + ruf of a DMARC spec as one list."""
    uris = []
    for key in ("rua", "ruf"):
        value = dmarc.get(key)
        if isinstance(value, str) and value:
            uris.append(value)
        elif isinstance(value, (list, tuple)):
            uris.extend(value)
    return uris


def _normalize_mta_sts(problems, prefix, name, value, mx, mx_ok):
    """mta_sts: None, or {mode, max_age (default 604800), id (default: from the policy)}."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        problems.add(prefix, "mta_sts", "must be a mapping {mode, max_age, id} or absent")
        return None
    _unknown_keys(problems, prefix, "mta_sts", value, _STS_KEYS)
    if value.get("mode") is None:
        problems.add(prefix, "mta_sts.mode", "is required: enforce, testing or none "
                     "(RFC 8461 §3.2)")
        return None
    out = {"mode": value["mode"], "max_age": value.get("max_age", DEFAULT_MTA_STS_MAX_AGE)}
    if not mx_ok:
        return out
    policy = _call(problems, prefix, "mta_sts", _records.mta_sts_policy, value["mode"],
                   [entry["host"] for entry in mx], out["max_age"], domain=name)
    if policy is None:
        return out
    out["mode"] = out["mode"].lower()
    out["max_age"] = _int_in(out["max_age"], 0, 31557600)
    policy_id = value.get("id")
    if policy_id is None:
        policy_id = _records.mta_sts_policy_id(policy, domain=name)
    elif isinstance(policy_id, int) and not isinstance(policy_id, bool):
        policy_id = str(policy_id)
    _call(problems, prefix, "mta_sts", _records.mta_sts_record, policy_id, domain=name)
    out["id"] = policy_id
    return out


def _normalize_tlsrpt(problems, prefix, name, value):
    """tlsrpt: None, or {rua: [uris]} (a single string becomes a list)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        problems.add(prefix, "tlsrpt", "must be a mapping {rua: [...]} or absent")
        return None
    _unknown_keys(problems, prefix, "tlsrpt", value, _TLSRPT_KEYS)
    rua = value.get("rua")
    _call(problems, prefix, "tlsrpt", _records.tlsrpt_record, rua, domain=name)
    return {"rua": [rua] if isinstance(rua, str) else _plain(rua)}


def _normalize_domain(problems, host, index, item, mail_hostname, seen):
    """Validate one mail_domains item and return its normalized copy (None if not a mapping)."""
    if not isinstance(item, Mapping):
        problems.add("host %s: mail_domains[%d] (?)" % (host, index), None,
                     "must be a mapping with at least name, not %s" % type(item).__name__)
        return None
    name = item.get("name")
    label = _show(name)[1:-1] if isinstance(name, str) and name else "?"
    prefix = "host %s: mail_domains[%d] (%s)" % (host, index, label)
    _unknown_keys(problems, prefix, None, item, _DOMAIN_KEYS)
    name_ok = _check_domain_name(problems, prefix, name, index, seen)
    mx, mx_ok = _normalize_mx(problems, prefix, item.get("mx"), mail_hostname)
    tlsa = item.get("tlsa")
    if tlsa is None:
        tlsa = False
    elif not isinstance(tlsa, bool):
        problems.add(prefix, "tlsa", "%s: must be true or false" % _show(tlsa))
    own = name.lower() if name_ok else None
    out = {
        "name": name,
        "mx": mx,
        "spf": _normalize_spf(problems, prefix, name, item.get("spf")),
        "dkim": _normalize_dkim(problems, prefix, item.get("dkim"), own, host),
        "dmarc": _normalize_dmarc(problems, prefix, name, item.get("dmarc"), name_ok),
        "mta_sts": _normalize_mta_sts(problems, prefix, name, item.get("mta_sts"), mx, mx_ok),
        "tlsrpt": _normalize_tlsrpt(problems, prefix, name, item.get("tlsrpt")),
        "tlsa": tlsa,
    }
    _check_derived_names(problems, prefix, own, out, item.get("mx") is not None and mx_ok)
    return out


def _check_derived_names(problems, prefix, own, dom, mx_given):
    """The owner names of the domain's records fit in a name (RFC 1035 §2.3.4).

    DKIM and report authorization names are checked where their variable is read; here the
    DMARC, MTA-STS and TLS-RPT names (from the domain name, ``own``; None: invalid, skipped)
    and, with ``tlsa: true``, ``_25._tcp.<mx host>`` (path ``mx[i].host``, or
    ``mail_hostname`` when mx is the default).
    """
    if own:
        _derived_name_ok(problems, prefix, "dmarc", "DMARC record", _records.dmarc_name(own))
        if dom["mta_sts"] is not None:
            _derived_name_ok(problems, prefix, "mta_sts", "MTA-STS record",
                             _records.mta_sts_name(own))
        if dom["tlsrpt"] is not None:
            _derived_name_ok(problems, prefix, "tlsrpt", "TLS-RPT record",
                             _records.tlsrpt_name(own))
    if dom["tlsa"] is True:
        for position, mx in enumerate(dom["mx"]):
            if mx["host"] is not None:
                path = "mx[%d].host" % position if mx_given else "mail_hostname"
                _derived_name_ok(problems, prefix, path, "TLSA record",
                                 _records.tlsa_name(mx["host"].lower()), mx["host"])


def mail_domains_normalize(mail_domains, host, mail_hostname, host_vars=None):
    """Validate ``mail_domains`` (docs/schema.md) and return a normalized copy.

    ``host``: the inventory host name (for messages); ``mail_hostname``: that host's FQDN
    (at least one dot), the default MX. Every item comes back with every key, in this order:
    ``name``; ``mx`` (default ``[{host: mail_hostname, priority: 10}]``, priority default 10);
    ``spf`` (default ``{mx: true, all: fail}``; a given spf replaces the default entirely and
    gets ``all: fail`` unless it has ``all`` or ``redirect``); ``dkim`` (default
    ``[{selector: mailward, type: rsa, bits: 2048}]``; type default rsa; rsa bits default
    2048; ed25519 has no bits; state default active, and a host holding any selector of a
    domain must hold an active one); ``dmarc`` (default ``{p: none}``); ``mta_sts`` (None, or
    ``{mode, max_age (default 604800), id (default mta_sts_policy_id of the policy)}``);
    ``tlsrpt`` (None or ``{rua: [..]}``); ``tlsa`` (default false). A key set to null counts as
    absent. The result normalizes to itself.

    Every record is generated once (spf_record, dmarc_record, dmarc_report_authorizations,
    mta_sts_policy, mta_sts_record, tlsrpt_record) to prove it can be, and every owner name
    derived from the item (``_dmarc.``, ``<selector>._domainkey.``, report authorizations,
    ``_mta-sts.``, ``_smtp._tls.``, ``_25._tcp.<mx>`` with tlsa) is checked to fit in a name
    (RFC 1035 §2.3.4), reported under the variable that produces it. ALL problems are
    collected and raised as one MailwardError, one line each:
    ``host <host>: mail_domains[<index>] (<domain>): <variable path>: <what is wrong>``
    (host-level ones: ``host <host>: mail_hostname: ...``).

    ``host_vars``: optional mapping of the host's own variables, checked in the same pass so
    that one error lists every problem of the host (roles/validate passes each with its
    default; a key that is absent is not checked):
    ``mail_mynetworks`` (a list; each entry IPv4 ``a.b.c.d[/n]`` or IPv6 ``[addr][/n]``, host
    bits clear, never /0, nothing broader than /8 or /32 unless
    ``mail_mynetworks_allow_broad`` is true), ``mail_mynetworks_allow_broad`` (a boolean),
    ``mail_public_ipv4`` / ``mail_public_ipv6`` (unset, or one address of that version),
    ``resolver_forwarders`` (a list of addresses, optionally ``@port``), ``submission_users``
    (a list of ``{name, password, senders}``: name and each sender ``local@domain`` with no
    white space, control characters, ``: , " \\``, the domain a valid name; a non-empty
    password, never quoted in a message; logins unique case-insensitively). Every address goes
    through ``ip_address_strict`` / ``ip_network_strict``: no zone index, no white space.
    """
    problems = _Problems()
    host = str(host)
    problem = _records.name_problem(mail_hostname)
    if problem:
        problems.add("host %s" % host, "mail_hostname", "%s: %s" % (_show(mail_hostname), problem))
        mail_hostname = None
    if host_vars is not None:
        _check_host_vars(problems, host, host_vars)
    if mail_domains is None:
        mail_domains = []
    if not isinstance(mail_domains, (list, tuple)):
        problems.add("host %s" % host, "mail_domains", "must be a list, not %s"
                     % type(mail_domains).__name__)
        problems.raise_if_any()
    seen, out = {}, []
    for index, item in enumerate(mail_domains):
        out.append(_normalize_domain(problems, host, index, item, mail_hostname, seen))
    problems.raise_if_any()
    return out


# --------------------------------------------------------------------------------------------
# mail_domains_records
# --------------------------------------------------------------------------------------------


def _index_public_keys(problems, public_keys):
    """{(domain, selector): item} from opendkim_public_keys; conflicting duplicates reported.

    Extra keys (the opendkim role also sets bits and path) are ignored: this is a fact from a
    role, not user input.
    """
    index = {}
    if public_keys is None:
        return index
    if not isinstance(public_keys, (list, tuple)):
        problems.add("public_keys", None, "must be a list of {domain, selector, type, public_key}")
        return index
    for position, item in enumerate(public_keys):
        prefix = "public_keys[%d]" % position
        if not isinstance(item, Mapping) or not isinstance(item.get("domain"), str) \
                or not isinstance(item.get("selector"), str):
            problems.add(prefix, None, "must be a mapping with string domain and selector")
            continue
        key = (item["domain"].lower().rstrip("."), item["selector"].lower())
        if key in index and index[key].get("public_key") != item.get("public_key"):
            problems.add(prefix, None, "a different key for %s selector %s is already listed"
                         % key)
            continue
        index[key] = item
    return index


def _owner_ok(problems, prefix, path, owner):
    """True when ``owner`` is a valid name; else the problem is recorded (a guard: the names of
    normalized domains were checked by mail_domains_normalize)."""
    problem = _records.owner_name_problem(owner)
    if problem:
        problems.add(prefix, path, "the record name %s %s" % (_show(owner), problem))
    return problem is None


def _record(kind, domain, name, rtype, value):
    """One record dict (see mail_domains_records)."""
    return {"name": name, "type": rtype, "value": value, "kind": kind, "domain": domain}


def _domain_records(problems, prefix, dom, keys):
    """The records of one normalized domain (TLSA/A/AAAA excluded)."""
    name = dom["name"].lower()
    apex = name + "."
    out = [_record("mx", name, apex, "MX", "%d %s." % (int(mx["priority"]),
                                                       mx["host"].lower().rstrip(".")))
           for mx in dom["mx"]]

    def add(kind, owner, base, function, *args, **kwargs):
        value = _call(problems, prefix, base, function, *args, **kwargs)
        if value is not None and _owner_ok(problems, prefix, base, owner):
            out.append(_record(kind, name, owner, "TXT", value))

    add("spf", apex, "spf", _records.spf_record, dom["spf"], domain=name)
    for position, sel in enumerate(dom["dkim"]):
        owner = _records.dkim_name(sel["selector"].lower(), apex)
        if sel.get("state") == "retired":
            # Revoked (RFC 6376 §3.6.1: an empty p=): needs no key, and stays published (the
            # private key may be gone) until the selector leaves the inventory.
            add("dkim", owner, "dkim[%d]" % position, _records.dkim_record, None,
                key_type=sel["type"], domain=name, selector=sel["selector"])
            continue
        item = keys.get((name, sel["selector"].lower()))
        if item is None:
            continue
        if item.get("type") not in (None, sel["type"]):
            problems.add(prefix, "dkim[%d].type" % position, "inventory says %s but the "
                         "published key is listed as %s" % (sel["type"], item.get("type")))
            continue
        if not item.get("public_key"):
            continue  # a host that reports no key for an unretired selector: nothing to publish
        add("dkim", owner, "dkim[%d]" % position,
            _records.dkim_record, item.get("public_key"), key_type=sel["type"], domain=name,
            selector=sel["selector"])
    add("dmarc", _records.dmarc_name(apex), "dmarc", _records.dmarc_record, dom["dmarc"],
        domain=name)
    auths = _call(problems, prefix, "dmarc", _records.dmarc_report_authorizations, name,
                  _report_uris(dom["dmarc"])) or []
    out.extend(_record("dmarc_report_auth", name, auth["name"] + ".", "TXT", auth["value"])
               for auth in auths if _owner_ok(problems, prefix, "dmarc", auth["name"]))
    if dom["mta_sts"]:
        add("mta_sts", _records.mta_sts_name(apex), "mta_sts", _records.mta_sts_record,
            dom["mta_sts"].get("id"), domain=name)
    if dom["tlsrpt"]:
        add("tlsrpt", _records.tlsrpt_name(apex), "tlsrpt", _records.tlsrpt_record,
            dom["tlsrpt"].get("rua"), domain=name)
    return out


def _host_records(problems, position, item, tlsa_hosts):
    """A/AAAA (and TLSA when a tlsa: true domain uses it as MX) for one mx_hosts item."""
    prefix = "mx_hosts[%d]" % position
    if not isinstance(item, Mapping) or _records.name_problem(item.get("name")):
        problems.add(prefix, "name", "must be a mapping with a valid host name")
        return []
    _unknown_keys(problems, prefix, None, item, _MX_HOST_KEYS)
    host = item["name"].lower()
    out = []
    for key, rtype, version in (("ipv4", "A", 4), ("ipv6", "AAAA", 6)):
        for raw in ([item[key]] if isinstance(item.get(key), str) else item.get(key) or []):
            address, problem = _address(raw, version)
            if problem:
                problems.add(prefix, key, "%s: %s" % (_show(raw), problem))
                continue
            out.append(_record(rtype.lower(), host, host + ".", rtype, address.compressed))
    if host in tlsa_hosts and item.get("cert_pem"):
        value = _call(problems, prefix, "cert_pem", _records.tlsa_record, item["cert_pem"],
                      domain=host)
        owner = _records.tlsa_name(host + ".")
        if value is not None and _owner_ok(problems, prefix, "name", owner):
            out.append(_record("tlsa", host, owner, "TLSA", value))
    return out


def mail_domains_records(mail_domains, public_keys=None, mx_hosts=None):
    """Every DNS record implied by normalized ``mail_domains``: what is published and audited.

    ``mail_domains``: the output of ``mail_domains_normalize``.
    ``public_keys``: ``opendkim_public_keys``, a list of ``{domain, selector, type, public_key}``
    (other keys ignored; gathered from several hosts, one selector may appear more than once
    only with the same key); a DKIM record is emitted for each configured active or standby
    selector that has a key here (other such selectors are skipped) and for every retired
    selector (the revocation record ``v=DKIM1; p=``, key or not); keys of unconfigured selectors
    are ignored.
    ``mx_hosts``: optional list of ``{name, ipv4, ipv6, cert_pem}`` for the MX hosts this
    inventory runs (e.g. ``{name: mail_hostname, ipv4: mail_public_ipv4, ...}``): gives A/AAAA
    at ``name`` and, when a ``tlsa: true`` domain uses it as MX and ``cert_pem`` is set, a
    TLSA 3 1 1 at ``_25._tcp.<name>.``.

    Returns a flat list of dicts, in this order per domain, then per mx host::

        {name:   owner, fully qualified, lower case, WITH trailing dot ('_dmarc.example.test.'),
         type:   'MX' | 'TXT' | 'A' | 'AAAA' | 'TLSA',
         value:  RDATA in presentation form, TXT raw and unquoted (split it with txt_chunks /
                 quote it with txt_strings), MX '10 mx.example.test.',
         kind:   'mx' | 'spf' | 'dkim' | 'dmarc' | 'dmarc_report_auth' | 'mta_sts' | 'tlsrpt'
                 | 'a' | 'aaaa' | 'tlsa',
         domain: the mail domain (or mx host) the record belongs to}

    No ``ttl`` key (the dns role chooses). Identical records are emitted once. A
    ``dmarc_report_auth`` record lives in the report destination's zone, which may not be
    ours. Problems are collected and raised as one MailwardError, one line each.
    """
    problems = _Problems()
    keys = _index_public_keys(problems, public_keys)
    records, tlsa_hosts = [], set()
    for index, dom in enumerate(mail_domains or []):
        missing = [key for key in _DOMAIN_KEYS if not isinstance(dom, Mapping) or key not in dom]
        if missing:
            problems.add("mail_domains[%d]" % index, None, "is not normalized (missing %s): "
                         "pass the output of mail_domains_normalize" % ", ".join(missing))
            continue
        prefix = "mail_domains[%d] (%s)" % (index, _show(dom["name"])[1:-1])
        records.extend(_domain_records(problems, prefix, dom, keys))
        if dom["tlsa"]:
            tlsa_hosts.update(mx["host"].lower() for mx in dom["mx"])
    if mx_hosts is not None and not isinstance(mx_hosts, (list, tuple)):
        problems.add("mx_hosts", None, "must be a list of {name, ipv4, ipv6, cert_pem}")
        mx_hosts = []
    for position, item in enumerate(mx_hosts or []):
        records.extend(_host_records(problems, position, item, tlsa_hosts))
    problems.raise_if_any()
    unique, seen = [], set()
    for record in records:
        identity = (record["name"], record["type"], record["value"])
        if identity not in seen:
            seen.add(identity)
            unique.append(record)
    return unique
