# -*- coding: utf-8 -*-
"""dns role helpers: pure functions that merge the mail hosts' data and arrange records.

Used by the dns_publish action plugin and the audit, and available as filters
(filter_plugins/mailward_dns.py). Unit tests: tests/unit/test_dns_plan.py.

The records themselves come from ``mail_domains_records`` (module_utils/inventory.py);
nothing here computes a record value. These helpers only decide which records to publish
(``dns_manage_types``), in which zone each one goes, and how a zone fragment is laid out.
"""

from collections.abc import Mapping

from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError
from ansible_collections.mailward.mail.plugins.module_utils.families import KIND_TO_TYPE, MANAGE_TYPES, fqdn as _fqdn  # noqa: F401  (MANAGE_TYPES: the dns_publish action's choices)
from ansible_collections.mailward.mail.plugins.module_utils.families import bare as _bare
from ansible_collections.mailward.mail.plugins.module_utils.families import txt_tag



def _pem(text):
    """A PEM text compared without surrounding white space or CRLF differences."""
    return "\n".join(line.strip() for line in str(text or "").strip().splitlines())


def _host_value(hostvars, host, name, default=None):
    """hostvars[host][name], or default when undefined or None."""
    value = hostvars[host].get(name) if hasattr(hostvars[host], "get") else None
    return default if value is None else value


def _not_held(normalized, ident):
    """Why (domain, selector) is not one of a host's keys, for the refusal message."""
    domain = next((d for d in normalized if str(d["name"]).lower() == ident[0]), None)
    if domain is None:
        return "a domain not in this host's mail_domains"
    sel = next((s for s in domain.get("dkim") or [] if str(s["selector"]).lower() == ident[1]), None)
    if sel is None:
        return "a selector not in this host's mail_domains"
    return "a selector held only by %s" % ", ".join(str(h) for h in sel.get("hosts") or [])


def dns_merge_hosts(hosts, hostvars, key_list):
    """Union of the play's mail hosts: domains, DKIM public keys and MX host addresses.

    ``hosts``: the play's hosts (``ansible_play_hosts``); ``hostvars``: Ansible's hostvars or a
    plain mapping host -> variables (the dns_publish action passes one). Read
    per host: ``mail_domains_normalized`` (required), ``opendkim_public_keys``,
    ``mail_hostname`` (default the inventory name), ``mail_public_ipv4``, ``mail_public_ipv6``
    and ``dns_tlsa_cert_pem``.

    ``key_list``: the ``dkim_key_list`` filter (filter_plugins/mailward_roles.py), the one place
    that says which selectors a host holds; the opendkim role makes and reads exactly those keys.
    A host's ``opendkim_public_keys`` are taken only for the (domain, selector) pairs
    ``key_list(<its mail_domains_normalized>, "", host)`` gives it: a key reported for a selector
    assigned to other hosts only, or for a domain the host does not serve, is refused (an error
    naming host, domain and selector), whether or not its owner is in the play (``--limit``).

    Returns ``{domains, public_keys, mx_hosts, notes}``: domains de-duplicated by name (first
    host's order), keys de-duplicated by (domain, selector), ``mx_hosts`` for
    ``mail_domains_records(mx_hosts=)``, ``notes``: what will not be published and why.

    Raises one MailwardError listing every conflict, one per line, each naming both hosts:
    a domain described differently, different public keys for one domain and selector, or
    different addresses/certificates for one MX host name; and every key a host must not have.
    """
    problems, notes = [], []
    domains, domain_owner = [], {}
    keys, key_owner = [], {}
    mx_hosts, mx_owner = [], {}
    for host in hosts:
        normalized = _host_value(hostvars, host, "mail_domains_normalized")
        if normalized is None:
            raise MailwardError("host %s: mail_domains_normalized is not set; run the validate role "
                                     "first (playbooks/dns.yml does)" % host)
        for domain in normalized:
            name = domain["name"]
            if name not in domain_owner:
                domain_owner[name] = (host, domain)
                domains.append(domain)
            elif domain_owner[name][1] != domain:
                other, theirs = domain_owner[name]
                differ = sorted(k for k in set(domain) | set(theirs) if domain.get(k) != theirs.get(k))
                problems.append("domain %s: hosts %s and %s describe it differently (%s); a domain "
                                "served by several hosts must have the same mail_domains item on each "
                                "(set mx explicitly)" % (name, other, host, ", ".join(differ)))
        held = {(str(k["domain"]).lower(), str(k["selector"]).lower()) for k in key_list(normalized, "", host)}
        for item in _host_value(hostvars, host, "opendkim_public_keys", []):
            ident = (str(item.get("domain", "")).lower(), str(item.get("selector", "")).lower())
            if ident not in held:
                problems.append("host %s: reports a DKIM public key for domain %s selector %s, %s; refused: a "
                                "host may only report keys for the selectors it holds (a selector with hosts: "
                                "belongs to those inventory hosts only). Check the inventory and that host "
                                "(a foreign or stale private key, or a hand-set opendkim_public_keys)"
                                % (host, ident[0], ident[1], _not_held(normalized, ident)))
                continue
            if ident not in key_owner:
                key_owner[ident] = (host, item)
                keys.append(item)
            elif _pem(key_owner[ident][1].get("public_key")) != _pem(item.get("public_key")) \
                    or key_owner[ident][1].get("type") != item.get("type"):
                problems.append("domain %s selector %s: hosts %s and %s have different DKIM public keys; "
                                "every host signing for a domain must use the same key per selector "
                                "(copy the private key, or give each host its own selector)"
                                % (ident[0], ident[1], key_owner[ident][0], host))
        mx_name = str(_host_value(hostvars, host, "mail_hostname", host)).lower().rstrip(".")
        entry = {"name": mx_name}
        for var, key in (("mail_public_ipv4", "ipv4"), ("mail_public_ipv6", "ipv6"),
                         ("dns_tlsa_cert_pem", "cert_pem")):
            value = _host_value(hostvars, host, var, "")
            if value:
                entry[key] = value
        if mx_name not in mx_owner:
            mx_owner[mx_name] = (host, entry)
            mx_hosts.append(entry)
        elif mx_owner[mx_name][1] != entry:
            differ = sorted(k for k in set(entry) | set(mx_owner[mx_name][1])
                            if entry.get(k) != mx_owner[mx_name][1].get(k))
            problems.append("mx host %s: hosts %s and %s both use it as mail_hostname with different %s"
                            % (mx_name, mx_owner[mx_name][0], host, ", ".join(differ)))
    if problems:
        raise MailwardError("\n".join(problems))

    for domain in domains:
        for sel in domain.get("dkim") or []:
            if (domain["name"].lower(), str(sel["selector"]).lower()) not in key_owner:
                notes.append("DKIM %s selector %s: no public key known (the key is made by the opendkim "
                             "role, playbooks/mail.yml); its record is not published"
                             % (domain["name"], sel["selector"]))
        if domain.get("tlsa"):
            for mx in domain.get("mx") or []:
                host = str(mx["host"]).lower().rstrip(".")
                if host not in mx_owner:
                    notes.append("TLSA %s (MX of %s): not a host of this play; its TLSA record is not published"
                                 % (host, domain["name"]))
                elif not mx_owner[host][1].get("cert_pem"):
                    notes.append("TLSA %s (MX of %s): no certificate known (set dns_tlsa_cert_pem on host %s); "
                                 "its TLSA record is not published" % (host, domain["name"], mx_owner[host][0]))
    return {"domains": domains, "public_keys": keys, "mx_hosts": mx_hosts, "notes": notes}


def dns_select(records, manage_types):
    """The records whose kind is managed (``dns_manage_types``), order kept."""
    unknown = [t for t in manage_types if t not in MANAGE_TYPES]
    if unknown:
        raise MailwardError("dns_manage_types: unknown %s (allowed: %s)"
                                 % (", ".join(unknown), ", ".join(MANAGE_TYPES)))
    kinds = {kind for t in manage_types for kind in MANAGE_TYPES[t]}
    out = []
    for record in records:
        kind = record.get("kind")
        if kind not in KIND_TO_TYPE:
            raise MailwardError("record %s %s: unknown kind %r; the dns role does not know this "
                                     "record family yet" % (record.get("name"), record.get("type"), kind))
        if kind in kinds:
            out.append(record)
    return out


def zone_of(name, zones):
    """The longest zone (trailing dot) that contains ``name``, or None.

    ``zones``: names with trailing dot; a set is fastest (each suffix of the name is looked up).
    """
    if not isinstance(zones, (set, frozenset, dict)):
        zones = set(zones)
    name = _fqdn(name)
    while name:
        if name in zones:
            return name
        name = name.split(".", 1)[1] if "." in name[:-1] else ""
    return None


def guess_zone(record):
    """A zone for a record outside every known zone (zone fragments only).

    DMARC report authorizations go to the report destination's domain; anything else to the
    parent of the owner name (an MX host's domain).
    """
    name = _fqdn(record["name"])
    marker = "._report._dmarc."
    if marker in name:
        return name.split(marker, 1)[1]
    for prefix in ("_25._tcp.",):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.split(".", 1)[1] if name.count(".") > 2 else name


def dns_zones(domains, mapping="auto"):
    """The zones to update: each domain's own name, or ``mapping[domain]`` (dns_nsupdate_zone).

    Returns names with trailing dot, sorted, de-duplicated. A mapped zone must contain the domain.
    """
    if mapping in (None, "", "auto"):
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise MailwardError("dns_nsupdate_zone: must be 'auto' or a mapping domain -> zone")
    zones = set()
    for domain in domains:
        name = domain["name"] if isinstance(domain, Mapping) else domain
        zone = _fqdn(mapping.get(name, name))
        if zone_of(name, [zone]) is None:
            raise MailwardError("dns_nsupdate_zone: %s is mapped to zone %s, which does not contain it"
                                     % (name, zone))
        zones.add(zone)
    for zone in mapping.values():
        zones.add(_fqdn(zone))
    return sorted(zones)


def dns_zone_records(records, zones, ttl, chunks=None, texts=None, guess=False):
    """Attach ``zone``, ``ttl`` and, for TXT, ``strings`` and ``text`` to each record.

    ``zones``: zone names; each record goes to the longest one containing it. ``chunks`` and
    ``texts``: lists parallel to ``records`` (``records | map(attribute='value') |
    map('txt_chunks')`` and ``map('txt_strings')``), used for TXT records only. ``guess``: place
    records outside every zone with ``guess_zone`` (zone fragments) instead of leaving them out.
    Returns ``{records: [...], outside: [...]}``.
    """
    zones = {_fqdn(z) for z in zones}
    for extra, what in ((chunks, "chunks"), (texts, "texts")):
        if extra is not None and len(extra) != len(records):
            raise MailwardError("dns_zone_records: %s must be parallel to records" % what)
    out, outside = [], []
    for index, record in enumerate(records):
        item = dict(record)
        item["ttl"] = int(record.get("ttl") or ttl)
        if record["type"] == "TXT":
            if chunks is not None:
                item["strings"] = list(chunks[index])
            if texts is not None:
                item["text"] = texts[index]
        zone = zone_of(record["name"], zones)
        if zone is None and guess:
            zone = guess_zone(record)
        if zone is None:
            outside.append(item)
            continue
        item["zone"] = zone.rstrip(".")
        out.append(item)
    return {"records": out, "outside": outside}


def dns_zone_fragments(records, header, domains=()):
    """Zone fragment files: ``{"<zone>.zone": text}``, one per zone, records in the given order.

    ``records``: ``dns_zone_records(..., texts=..., guess=True).records`` (TXT records carry their
    zone-file ``text``, made by ``txt_strings``); ``header``: comment lines (``ansible_managed``)
    put first in every file. ``domains``: the mail domains; a zone that is none of them gets a
    note that someone else publishes it. Owner names are absolute: a fragment works at any $ORIGIN.
    """
    ours = {str(d["name"] if isinstance(d, Mapping) else d).lower().rstrip(".") for d in domains}
    grouped = {}
    for record in records:
        grouped.setdefault(record["zone"], []).append(record)
    files = {}
    for zone in sorted(grouped):
        lines = [line.rstrip() for line in header.rstrip("\n").splitlines()]
        lines.append("; Records for zone %s. Paste them into the zone or $INCLUDE this file;" % zone)
        lines.append("; owner names are fully qualified, so $ORIGIN does not matter.")
        if zone not in ours:
            lines.append("; %s is not one of this inventory's mail domains: these records must be" % zone)
            lines.append("; published by whoever runs that zone (DMARC report authorizations, MX hosts).")
        items = grouped[zone]
        width = max(len(r["name"]) for r in items)
        for record in items:
            if record["type"] == "TXT":
                if "text" not in record:
                    raise MailwardError("dns_zone_fragments: TXT %s has no text (pass texts= to "
                                             "dns_zone_records)" % record["name"])
                text = record["text"]
            else:
                text = record["value"]
            lines.append("%-*s %6d IN %-5s %s" % (width, record["name"], int(record["ttl"]), record["type"], text))
        files["%s.zone" % zone] = "\n".join(lines) + "\n"
    return files


# ------------------------------------------------------------------------------------------
# Pruning: what the role published earlier, so that it can remove what it no longer generates
# and nothing else. nsupdate keeps the list IN DNS (a TXT rrset per zone, the "registry",
# updated in the same RFC 2136 message as the records); zonefile keeps a manifest file in each
# directory it writes. Both are lists of entries; the pure decisions live here.
# ------------------------------------------------------------------------------------------

REGISTRY_TAG = "v=mailward1"
_ENTRY_FIELDS = {"f": "family", "d": "domain", "n": "name", "t": "type", "g": "tag"}


def registry_entry(record):
    """The ownership entry of one published record: ``{family, domain, name, type, tag}``.

    ``family``: the dns_manage_types name (from ``family``, else the record's ``kind``);
    ``domain``: the mail domain (or MX host) the record belongs to; ``tag``: for TXT, the first
    tag of the value (``v=spf1``, ``v=dkim1``...), the part of a shared TXT rrset that is ours;
    empty for other types, whose rrset is ours whole.
    """
    family = record.get("family") or KIND_TO_TYPE.get(record.get("kind"))
    if family not in MANAGE_TYPES:
        raise MailwardError("record %s %s: unknown family/kind (%r, %r)" % (
            record.get("name"), record.get("type"), record.get("family"), record.get("kind")))
    rtype = str(record["type"]).upper()
    return {"family": family, "domain": _bare(record.get("domain") or record["name"]),
            "name": _fqdn(record["name"]), "type": rtype,
            "tag": txt_tag(record["value"]) if rtype == "TXT" else ""}


def entry_key(entry):
    """What identifies an entry: (owner, type, TXT tag)."""
    return (entry["name"], entry["type"], entry["tag"])


def registry_text(entry):
    """One registry TXT value: ``v=mailward1 f=SPF d=example.test n=example.test. t=TXT g=v=spf1``.

    Names and tags hold no white space (host names; ``txt_tag`` stops at a blank), so fields are
    separated by blanks and each is split at its first ``=``.
    """
    fields = [REGISTRY_TAG, "f=" + entry["family"], "d=" + entry["domain"], "n=" + entry["name"],
              "t=" + entry["type"]]
    if entry["tag"]:
        fields.append("g=" + entry["tag"])
    return " ".join(fields)


def registry_parse(text):
    """The entry of a registry value, or None for a value that is not one (foreign, damaged):
    such a value is never a reason to delete anything."""
    parts = str(text).split()
    if not parts or parts[0].lower() != REGISTRY_TAG:
        return None
    fields = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or key not in _ENTRY_FIELDS or _ENTRY_FIELDS[key] in fields:
            return None
        fields[_ENTRY_FIELDS[key]] = value
    if not all(fields.get(k) for k in ("family", "domain", "name", "type")):
        return None
    return {"family": fields["family"], "domain": _bare(fields["domain"]), "name": _fqdn(fields["name"]),
            "type": fields["type"].upper(), "tag": fields.get("tag", "").lower()}


def registry_plan(registered, wanted, prune=True, scope=(), families=(), keep=()):
    """Decide what stays registered and what is removed.

    ``registered``: the entries published earlier (read back from the registry / manifest);
    ``wanted``: the entries of what is published now. An entry registered earlier and not
    wanted now is removed (returned in ``pruned``) only when all of these hold:

    - ``prune`` is true;
    - its family is in ``families`` (``dns_manage_types``: a family the role does not manage is
      never touched);
    - its domain is in ``scope`` (the mail domains and MX hosts of this play, plus
      ``dns_prune_domains``): a domain outside the play (``--limit``, another inventory sharing
      the zone) is not a domain removed from the inventory;
    - its (name, type) is not in ``keep`` (a configured DKIM selector whose key is not known in
      this run is not a removed selector).

    Every other registered entry stays registered (it is still ours, to be pruned later).
    Returns ``(entries, pruned)``: both sorted by (name, type, tag); ``entries`` is the new
    registry (wanted first-wins by key, then the kept ones).
    """
    scope = {_bare(d) for d in scope}
    families = set(families)
    keep = {(_fqdn(name), str(rtype).upper()) for name, rtype in keep}
    entries = {}
    for entry in wanted:
        entries.setdefault(entry_key(entry), entry)
    pruned = {}
    for entry in registered:
        key = entry_key(entry)
        if key in entries or key in pruned:
            continue
        if prune and entry["family"] in families and entry["domain"] in scope \
                and (entry["name"], entry["type"]) not in keep:
            pruned[key] = entry
        else:
            entries[key] = entry
    return ([entries[k] for k in sorted(entries)], [pruned[k] for k in sorted(pruned)])


MANIFEST_FORMAT = 1


def manifest_plan(manifest, owners, prune=True, scope=(), families=()):
    """Which files of a directory the zonefile backend removes, and its new manifest.

    ``manifest``: ``{file: {domains: [...], families: [...]}}`` as written by an earlier run
    (files the role wrote); ``owners``: the same for every file written now. A file of the
    manifest that is not written now is removed when ``prune`` is true, every one of its
    domains is in ``scope`` and every one of its families in ``families`` (same reasons as
    ``registry_plan``); otherwise it stays in the manifest. A file that is in no manifest is
    never removed (foreign files; files of a version without manifest).

    Returns ``(new manifest, [file to remove])``, the list sorted.
    """
    scope = {_bare(d) for d in scope}
    families = set(families)
    new = {name: {"domains": sorted({_bare(d) for d in meta.get("domains", [])}),
                  "families": sorted(set(meta.get("families", [])))} for name, meta in owners.items()}
    remove = []
    for name in sorted(manifest):
        if name in new:
            continue
        meta = manifest[name]
        domains, fams = set(meta.get("domains") or []), set(meta.get("families") or [])
        if prune and domains <= scope and fams <= families:
            remove.append(name)
        else:
            new[name] = {"domains": sorted(domains), "families": sorted(fams)}
    return new, remove


def zone_of_removed(domain, zones, mapping="auto"):
    """The zone that held a removed domain's records (``dns_prune_domains``, nsupdate): its
    ``dns_nsupdate_zone`` mapping, else the longest zone of the play containing it, else itself."""
    if isinstance(mapping, Mapping) and domain in mapping:
        return _fqdn(mapping[domain])
    return zone_of(domain, zones) or _fqdn(domain)
