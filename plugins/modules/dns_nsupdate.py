#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: converge DNS rrsets with RFC 2136 updates, one message per zone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dns_nsupdate
short_description: Publish a full list of records with RFC 2136 + TSIG, changing only what differs
description:
  - Takes every record that should exist (all zones at once), reads what the primary server
    holds now (one AXFR per zone, or one query per name and type), compares, and sends one
    signed UPDATE message per zone that has differences. Zones without differences cost one read.
  - Only the rrsets named by the records are looked at. In a TXT rrset that is not under
    C(_domainkey), only the strings whose first tag (C(v=spf1), C(v=DMARC1), C(v=STSv1),
    C(v=TLSRPTv1)...) matches a wanted record belong to us; other TXT strings at the same name
    (site verifications...) are left alone. Other rrsets (MX, TLSA, DKIM TXT) are owned whole.
  - TXT values are compared as the concatenation of their strings, so a record split
    differently by someone else is not rewritten.
  - After an update the zone is read again; a server that accepted the update but ignored part
    of it (BIND does so silently for data next to a CNAME) is reported as an error.
  - With O(cache), a zone is only read when its SOA serial differs from the one at which it was
    last found matching, or when the wanted records changed. The serials of all zones are asked
    with queries pipelined over one TCP connection, so a re-run with nothing to change costs one
    small query per zone, not one transfer.
  - Pruning. With O(registry), each zone holds a TXT rrset at C(<registry>.<zone>) (C(_mailward))
    listing what this module published there - one value per rrset part, such as
    C(v=mailward1 f=DKIM d=example.test n=s1._domainkey.example.test. t=TXT g=v=dkim1) (family,
    domain, owner, type, TXT tag). It is rewritten in the same UPDATE message as the records,
    with the registry as read as the message's prerequisite, so both change together or not at all.
  - A registered rrset part that is no longer wanted is deleted when O(prune) is true, its
    domain is in O(prune_scope), its family in O(prune_families) and its name and type not in
    O(prune_keep) - for TXT only the strings with its tag (a foreign TXT at the same name, a
    DKIM name included, stays), for other types its whole rrset. Anything not registered is
    never deleted; on the first run against records of a version without registry, the wanted
    records are registered (adopted) and nothing else is.
  - Runs where dnspython is installed (the controller). The dns role calls it through its
    C(dns_publish) action plugin.
options:
  records_json:
    description: The same list as O(records), as a JSON text (cheaper to pass for thousands of records). Exactly one of the two is required.
    type: str
  records:
    description:
      - Every wanted record. C(name) absolute (trailing dot optional), C(type), C(value) the RDATA
        in presentation form (TXT unquoted and unsplit), C(ttl), C(zone) the zone it belongs to.
      - C(strings) optionally gives the TXT character-strings (each at most 255 bytes); without
        it the value is split every 255 bytes (never inside a UTF-8 character).
      - With O(registry), C(family) (a dns_manage_types name, or C(kind) a mail_domains_records
        kind) and C(domain) (the mail domain or MX host it belongs to) say under what it is registered.
      - Exactly one of O(records) and O(records_json) is required.
    type: list
    elements: dict
  server:
    description: Primary name server (address or host name) that accepts updates.
    type: str
    required: true
  port:
    description: Port of O(server).
    type: int
    default: 53
  key_name:
    description: TSIG key name. Empty sends unsigned messages.
    type: str
    default: ""
  key_secret:
    description: TSIG secret (base64); required when O(key_name) is set.
    type: str
    default: ""
  key_algorithm:
    description: TSIG algorithm.
    type: str
    default: hmac-sha256
    choices: [hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512]
  read:
    description: How the current state is read; C(axfr) needs allow-transfer for the key.
    type: str
    default: axfr
    choices: [axfr, query]
  timeout:
    description: Seconds per network operation.
    type: float
    default: 10
  workers:
    description: Zones transferred or updated in parallel (BIND allows 10 transfers out at once).
    type: int
    default: 4
  cache:
    description:
      - JSON file on the controller remembering, per server and zone, the SOA serial at which the zone
        last matched and a digest of the wanted records. Empty reads every zone on every run.
      - "It trusts the serial: a zone edited by hand without a serial change is not read again until
        the serial or the wanted records change."
    type: path
    default: ""
  registry:
    description: Owner name, relative to each zone, of the registry TXT rrset. Empty - no registry, no pruning.
    type: str
    default: _mailward
  registry_ttl:
    description: TTL of the registry rrset.
    type: int
    default: 3600
  prune:
    description: Delete registered records that are no longer wanted (see the description).
    type: bool
    default: true
  prune_scope:
    description: Mail domains (and MX host names) whose registered records may be deleted.
    type: list
    elements: str
    default: []
  prune_families:
    description: Record families (dns_manage_types names, such as C(DKIM), C(MTA_STS)) whose registered records may be deleted.
    type: list
    elements: str
    default: []
  prune_keep:
    description: "C(<name> <TYPE>) items never deleted even when registered and not wanted (a DKIM selector whose key is unknown)."
    type: list
    elements: str
    default: []
  zones:
    description: Zones read (and pruned) even though no wanted record is in them (a removed domain's zone).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the zones and reports what would change; sends no UPDATE and does not write O(cache).
  diff_mode:
    support: full
    details: One diff per zone, removed and added records in zone file form.
  platform:
    platforms: posix
requirements:
  - dnspython
seealso:
  - plugin: mailward.mail.mail_domains_records
    plugin_type: filter
  - name: RFC 2136 (DNS UPDATE)
    link: https://www.rfc-editor.org/rfc/rfc2136
    description: The update protocol.
author: mailward
"""

EXAMPLES = r"""
- name: Publish
  mailward.mail.dns_nsupdate:
    server: 192.0.2.53
    key_name: mailward
    key_secret: "{{ vault_tsig_secret }}"
    records:
      - {zone: example.test, name: example.test., type: MX, value: 10 mx.example.test., ttl: 3600}
      - {zone: example.test, name: _dmarc.example.test., type: TXT, value: "v=DMARC1; p=none", ttl: 3600}
    cache: "{{ playbook_dir }}/../build/dns-nsupdate-cache.json"
  delegate_to: localhost
  run_once: true
  no_log: true
"""

RETURN = r"""
changes:
  description: One item per rrset that differs.
  type: list
  elements: dict
  returned: always
  contains:
    zone:
      description: The zone, without trailing dot.
      type: str
    name:
      description: Owner name, absolute.
      type: str
    type:
      description: Record type.
      type: str
    delete:
      description: RDATA removed (presentation form).
      type: list
      elements: str
    add:
      description: RDATA added (presentation form).
      type: list
      elements: str
  sample:
    - {zone: example.test, name: example.test., type: MX, delete: [], add: ["10 mx.example.test."]}
zones:
  description: Number of zones with wanted records.
  type: int
  returned: always
  sample: 3
zones_read:
  description: How many of them had to be read (the others matched the cache).
  type: int
  returned: always
  sample: 1
pruned:
  description: Registry entries whose records were (or, in check mode, would be) deleted.
  type: list
  elements: dict
  returned: always
  sample:
    - {zone: example.test, family: DKIM, domain: example.test, name: s1._domainkey.example.test., type: TXT, tag: v=dkim1}
updated_zones:
  description: Zones that got an UPDATE message (or would, in check mode), without trailing dot.
  type: list
  elements: str
  returned: always
  sample: [example.test]
"""

import functools
import hashlib
import json
import os
import socket
import struct
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.mailward.mail.plugins.module_utils.dns_plan import (REGISTRY_TAG, registry_entry, registry_parse,
                                                                            registry_plan, registry_text)
from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError
from ansible_collections.mailward.mail.plugins.module_utils.families import fqdn as _fqdn
from ansible_collections.mailward.mail.plugins.module_utils.families import owns_whole_rrset, txt_tag
from ansible_collections.mailward.mail.plugins.module_utils.records import txt_chunks

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.tsig
    import dns.update
    import dns.xfr
    from dns.rdtypes.ANY.TXT import TXT

    HAS_DNSPYTHON = True
    DNSPYTHON_ERROR = None
except ImportError:  # pragma: no cover - reported by main()
    HAS_DNSPYTHON = False
    DNSPYTHON_ERROR = traceback.format_exc()


class PlanError(Exception):
    """A wanted record or the server's state makes a safe update impossible."""


# ------------------------------------------------------------------------------------------
# Pure logic (unit-tested without a server)
# ------------------------------------------------------------------------------------------


def chunk_txt(value):
    """A TXT value as <=255-byte strings (bytes), split as the records' own txt_chunks splits it."""
    try:
        return [chunk.encode("utf-8") for chunk in txt_chunks(value)]
    except MailwardError as exc:
        raise PlanError(str(exc))


@functools.lru_cache(maxsize=None)
def absolute(name):
    """A dns.name.Name from a text name, always absolute and lower case."""
    return dns.name.from_text(_fqdn(name))


def make_rdata(record):
    """The rdata object of one wanted record."""
    rdtype = dns.rdatatype.from_text(record["type"])
    if rdtype == dns.rdatatype.TXT:
        strings = record.get("strings")
        if strings:
            chunks = [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in strings]
            if b"".join(chunks) != record["value"].encode("utf-8"):
                raise PlanError("%s TXT: strings do not join to the value" % record["name"])
        else:
            chunks = chunk_txt(record["value"])
        if any(len(c) > 255 for c in chunks):
            raise PlanError("%s TXT: a character-string is longer than 255 bytes" % record["name"])
        return TXT(dns.rdataclass.IN, rdtype, chunks)
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, record["value"], origin=dns.name.root,
                                    relativize=False)
    except dns.exception.DNSException as exc:
        raise PlanError("%s %s %r: not valid RDATA: %s" % (record["name"], record["type"], record["value"], exc))


def rdata_key(rdata):
    """What decides equality: the joined strings for TXT, the canonical wire form otherwise."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings)
    return rdata.to_digestable(dns.name.root)


def owned_whole(name, rdtype):
    """Whether we own every rdata of this rrset (else only TXT strings with our tags)."""
    return owns_whole_rrset(name.labels, dns.rdatatype.to_text(rdtype))


@functools.lru_cache(maxsize=None)
def _rdtype(text):
    return dns.rdatatype.from_text(text)


def group_records(records):
    """Group the wanted records by zone, then (owner text, type), without parsing the values.

    Returns {zone Name: {(owner with trailing dot, rdtype): (ttl, [record])}}.
    """
    zones = {}
    for record in records:
        for key in ("zone", "name", "type", "value"):
            if record.get(key) is None or (key != "value" and record.get(key) == ""):
                raise PlanError("record %r: %s is missing" % (record, key))
        zone = _fqdn(record["zone"])
        name = _fqdn(record["name"])
        if name != zone and not name.endswith("." + zone):
            raise PlanError("%s is not inside zone %s" % (name, zone))
        try:
            rdtype = _rdtype(record["type"])
        except dns.exception.DNSException:
            raise PlanError("%s: unknown record type %r" % (name, record["type"]))
        ttl = int(record.get("ttl") or 3600)
        rrsets = zones.setdefault(zone, {})
        key = (name, rdtype)
        if key in rrsets:
            if rrsets[key][0] != ttl:
                raise PlanError("%s %s: records with different TTLs (%d, %d); one rrset has one TTL"
                                % (name, record["type"], rrsets[key][0], ttl))
            rrsets[key][1].append(record)
        else:
            rrsets[key] = (ttl, [record])
    return {absolute(zone): rrsets for zone, rrsets in zones.items()}


def build_rrsets(rrsets):
    """{(owner text, rdtype): (ttl, [record])} -> {(Name, rdtype): (ttl, [rdata])}, duplicates dropped."""
    out = {}
    for key, (ttl, records) in rrsets.items():
        rdatas, seen = [], set()
        for record in records:
            rdata = make_rdata(record)
            if rdata_key(rdata) not in seen:
                seen.add(rdata_key(rdata))
                rdatas.append(rdata)
        out[(absolute(key[0]), key[1])] = (ttl, rdatas)
    return out


def group_wanted(records):
    """{zone: {(name, rdtype): (ttl, [rdata])}} of the wanted records."""
    return {zone: build_rrsets(rrsets) for zone, rrsets in group_records(records).items()}


def diff_rrset(name, rdtype, ttl, wanted, current):
    """Compare one wanted rrset with the current one.

    ``current`` is a dns.rdataset.Rdataset or None. Returns (delete, add): lists of rdata,
    both empty when nothing differs.
    """
    existing = list(current) if current is not None else []
    if owned_whole(name, rdtype):
        ours = existing
    else:
        tags = {txt_tag(rdata_key(r)) for r in wanted}
        ours = [r for r in existing if txt_tag(rdata_key(r)) in tags]
    have = {rdata_key(r): r for r in ours}
    want = {rdata_key(r): r for r in wanted}
    ttl_differs = current is not None and len(existing) > 0 and current.ttl != ttl
    if set(have) == set(want) and not ttl_differs:
        return [], []
    if ttl_differs:
        # An rrset has one TTL: re-add everything of ours with the new one.
        return ours, list(wanted)
    delete = [r for k, r in have.items() if k not in want]
    add = [r for k, r in want.items() if k not in have]
    return delete, add


def plan_zone(wanted_rrsets, current):
    """All differences of one zone.

    ``wanted_rrsets``: {(name, rdtype): (ttl, [rdata])}; ``current``: {(name, rdtype): rdataset}
    holding at least the wanted keys that exist, and (name, CNAME) where a CNAME exists.
    Returns a sorted list of (name, rdtype, ttl, delete, add).
    """
    changes = []
    for (name, rdtype) in sorted(wanted_rrsets, key=lambda k: (k[0].to_text(), k[1])):
        ttl, wanted = wanted_rrsets[(name, rdtype)]
        if (name, dns.rdatatype.CNAME) in current:
            raise PlanError("%s has a CNAME; a %s record cannot be added next to it (remove the CNAME "
                            "or stop managing this record type)" % (name, dns.rdatatype.to_text(rdtype)))
        delete, add = diff_rrset(name, rdtype, ttl, wanted, current.get((name, rdtype)))
        if delete or add:
            changes.append((name, rdtype, ttl, delete, add))
    return changes


class Ownership:
    """The registry settings of a run: where it lives in each zone and what may be pruned.

    ``label``: owner of the registry TXT rrset, relative to the zone (``_mailward``);
    ``ttl``: its TTL; ``prune``, ``scope``, ``families``, ``keep``: as ``registry_plan`` takes them.
    """

    def __init__(self, label="_mailward", ttl=3600, prune=True, scope=(), families=(), keep=()):
        self.label = label
        self.ttl = int(ttl)
        self.prune = bool(prune)
        self.scope = sorted({str(d).lower().rstrip(".") for d in scope})
        self.families = sorted(set(families))
        self.keep = sorted({(_fqdn(n), str(t).upper()) for n, t in keep})

    def name(self, zone):
        return dns.name.from_text(self.label, origin=zone)

    def digest_text(self):
        """What, besides the wanted records, decides a zone's plan (part of the cache digest)."""
        return json.dumps([self.label, self.ttl, self.prune, self.scope, self.families, self.keep])


_REGISTRY_TAG = REGISTRY_TAG.encode()


def registered(zone, current, own):
    """(registry rdataset or None, [its rdata that are ours], [entries parsed from them])."""
    rdataset = current.get((own.name(zone), dns.rdatatype.TXT))
    ours = [r for r in rdataset or [] if txt_tag(rdata_key(r)) == _REGISTRY_TAG]
    entries = [registry_parse(rdata_key(r).decode("utf-8", "replace")) for r in ours]
    return rdataset, ours, [e for e in entries if e]


def plan_registry(zone, records, current, own):
    """Prune what the registry lists and is no longer wanted; rewrite the registry.

    ``records``: the zone's wanted records (dicts with ``family``/``kind`` and ``domain``);
    ``current``: as for ``plan_zone``, holding the registry rrset and every registered
    (name, type) that exists. A pruned TXT entry deletes only the strings with its tag (a
    foreign TXT at the same name stays, at a DKIM name too); any other type its whole rrset.
    Returns (changes like plan_zone's, [pruned entries], registry rdataset as read or None).
    """
    name = own.name(zone)
    rdataset, ours, entries = registered(zone, current, own)
    try:
        wanted = [registry_entry(r) for r in records]
    except MailwardError as exc:
        raise PlanError(str(exc))
    if any(absolute(e["name"]) == name for e in wanted):
        raise PlanError("zone %s: %s is the registry of the records mailward publishes; no record may "
                        "be published there" % (zone, name))
    keep, pruned = registry_plan(entries, wanted, own.prune, own.scope, own.families, own.keep)
    changes = []
    for entry in pruned:
        owner, rdtype = absolute(entry["name"]), _rdtype(entry["type"])
        existing = current.get((owner, rdtype))
        if not existing:
            continue
        if rdtype == dns.rdatatype.TXT:
            delete = [r for r in existing if txt_tag(rdata_key(r)).decode("utf-8", "replace") == entry["tag"]]
        else:
            delete = list(existing)
        if delete:
            changes.append((owner, rdtype, existing.ttl, delete, []))
    want = {}
    for entry in keep:
        rdata = TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunk_txt(registry_text(entry)))
        want.setdefault(rdata_key(rdata), rdata)
    have = {rdata_key(r): r for r in ours}
    if ours and rdataset.ttl != own.ttl and want:
        delete, add = ours, list(want.values())
    else:
        delete = [r for k, r in have.items() if k not in want]
        add = [r for k, r in want.items() if k not in have]
    if delete or add:
        changes.append((name, dns.rdatatype.TXT, own.ttl, delete, add))
    return changes, pruned, rdataset


def merge_changes(*plans):
    """One change per (name, type): deletions and additions of several plans joined, sorted."""
    merged = {}
    for plan in plans:
        for name, rdtype, ttl, delete, add in plan:
            if (name, rdtype) not in merged:
                merged[(name, rdtype)] = (name, rdtype, ttl, list(delete), list(add))
                continue
            _, _, first_ttl, deletes, adds = merged[(name, rdtype)]
            seen = {rdata_key(r) for r in deletes}
            deletes.extend(r for r in delete if rdata_key(r) not in seen)
            seen = {rdata_key(r) for r in adds}
            adds.extend(r for r in add if rdata_key(r) not in seen)
            merged[(name, rdtype)] = (name, rdtype, ttl if add else first_ttl, deletes, adds)
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0].to_text(), k[1]))]


def plan_all(zone, rrsets, wanted_rrsets, current, own):
    """plan_zone, plus the registry (when ``own``): (changes, pruned entries, registry as read)."""
    changes = plan_zone(wanted_rrsets, current)
    if own is None:
        return changes, [], None
    records = [r for _, recs in rrsets.values() for r in recs]
    extra, pruned, rdataset = plan_registry(zone, records, current, own)
    return merge_changes(changes, extra), pruned, rdataset


def present(name, ttl, rdata):
    """One zone-file line."""
    return "%s %d IN %s %s" % (name.to_text(), ttl, dns.rdatatype.to_text(rdata.rdtype), rdata.to_text())


# ------------------------------------------------------------------------------------------
# Serial cache: a zone whose SOA serial is the one at which we last found it matching, and
# whose wanted records are the same as then, needs no read.
# ------------------------------------------------------------------------------------------

CACHE_FORMAT = 1


def zone_digest(rrsets, extra=""):
    """A stable digest of what we want in one zone: names, types, TTLs and values as given (with
    the family and domain each is registered under), and ``extra`` (the pruning settings)."""
    lines = []
    for (name, rdtype), (ttl, records) in rrsets.items():
        values = sorted("%s %s %s" % (r["value"], r.get("family") or r.get("kind") or "", r.get("domain") or "")
                        for r in records)
        lines.append("%s %d %d %s" % (name, rdtype, ttl, "|".join(values)))
    lines.sort()
    if extra:
        lines.append(extra)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def load_cache(path, server_id):
    """{zone text: [serial, digest]} verified earlier for this server, or {}."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    if data.get("format") != CACHE_FORMAT:
        return {}
    return data.get("servers", {}).get(server_id, {})


def save_cache(path, server_id, zones):
    """Replace this server's entries atomically (other servers' entries are kept)."""
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("format") != CACHE_FORMAT:
            raise ValueError
    except (OSError, ValueError):
        data = {"format": CACHE_FORMAT, "servers": {}}
    data["servers"][server_id] = zones
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dns-nsupdate-cache.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------
# Network
# ------------------------------------------------------------------------------------------


def _recv_exact(handle, size):
    data = handle.read(size)
    if len(data) != size:
        raise EOFError("connection closed by the server")
    return data


def _skip_name(wire, pos):
    """Position after a (possibly compressed) name in a DNS message."""
    while True:
        length = wire[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def _soa_answer(wire):
    """(id, serial) of a plain authoritative NOERROR answer holding one SOA, else None."""
    ident, flags, qdcount, ancount = struct.unpack("!HHHH", wire[:8])
    if flags & 0x000F or not flags & 0x0400 or qdcount != 1 or ancount < 1:
        return None
    pos = _skip_name(wire, 12) + 4
    for _ in range(ancount):
        pos = _skip_name(wire, pos)
        rtype, _, _, rdlength = struct.unpack("!HHIH", wire[pos:pos + 10])
        pos += 10
        if rtype == 5:  # a CNAME: let dnspython explain
            return None
        if rtype == 6:
            rdata = _skip_name(wire, _skip_name(wire, pos))
            return ident, struct.unpack("!I", wire[rdata:rdata + 4])[0]
        pos += rdlength
    return None


class Server:
    """Where to read from and send to, with the TSIG key."""

    def __init__(self, address, port, timeout, key_name, key_secret, key_algorithm):
        self.address = address
        self.port = port
        self.timeout = timeout
        self.key = None
        if key_name:
            self.key = dns.tsig.Key(dns.name.from_text(key_name), key_secret, key_algorithm)

    def _tsig(self):
        if not self.key:
            return {}
        return {"keyring": {self.key.name: self.key}, "keyname": self.key.name, "keyalgorithm": self.key.algorithm}

    def query_many(self, questions, window=100):
        """Answer [(name, rdtype)] with non-recursive queries pipelined over one TCP connection.

        Returns the responses in the same order. Falls back to one query at a time if the
        server does not keep the connection open.
        """
        responses = [None] * len(questions)
        try:
            with socket.create_connection((self.address, self.port), timeout=self.timeout) as sock:
                handle = sock.makefile("rb")
                for start in range(0, len(questions), window):
                    pending, wire = {}, bytearray()
                    for offset, (name, rdtype) in enumerate(questions[start:start + window]):
                        query = dns.message.make_query(name, rdtype)
                        query.flags &= ~dns.flags.RD
                        query.id = offset
                        data = query.to_wire()
                        wire += len(data).to_bytes(2, "big") + data
                        pending[offset] = query
                    sock.sendall(wire)
                    while pending:
                        size = int.from_bytes(_recv_exact(handle, 2), "big")
                        response = dns.message.from_wire(_recv_exact(handle, size))
                        query = pending.pop(response.id, None)
                        if query is None or not query.is_response(response):
                            raise EOFError("unexpected response")
                        responses[start + response.id] = response
        except (OSError, EOFError, dns.exception.DNSException):
            pass
        for index, response in enumerate(responses):
            if response is None:
                name, rdtype = questions[index]
                query = dns.message.make_query(name, rdtype)
                query.flags &= ~dns.flags.RD
                responses[index] = dns.query.udp_with_fallback(query, self.address, timeout=self.timeout,
                                                               port=self.port)[0]
        return responses

    def check_answer(self, zone, name, rdtype, response):
        """Refuse an error or a non-authoritative answer (wrong server, zone not served)."""
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise PlanError("zone %s: query %s %s answered %s" % (zone, name, dns.rdatatype.to_text(rdtype),
                                                                  dns.rcode.to_text(rcode)))
        if not response.flags & dns.flags.AA:
            raise PlanError("zone %s: %s is not authoritative for %s (is the zone served there?)"
                            % (zone, self.address, name))

    def serials(self, zones, window=200):
        """{zone: SOA serial, or a PlanError}: queries pipelined over one TCP connection, parsed
        without dnspython (a thousand zones cost a fraction of a second). Anything unexpected
        falls back to one dnspython query for that zone."""
        out = {}
        try:
            with socket.create_connection((self.address, self.port), timeout=self.timeout) as sock:
                handle = sock.makefile("rb")
                for start in range(0, len(zones), window):
                    batch = zones[start:start + window]
                    wire = bytearray()
                    for offset, zone in enumerate(batch):
                        query = struct.pack("!HHHHHH", offset, 0, 1, 0, 0, 0) + zone.to_wire() + b"\x00\x06\x00\x01"
                        wire += struct.pack("!H", len(query)) + query
                    sock.sendall(wire)
                    for _ in batch:
                        size = struct.unpack("!H", _recv_exact(handle, 2))[0]
                        answer = _soa_answer(_recv_exact(handle, size))
                        if answer is not None and answer[0] < len(batch):
                            out[batch[answer[0]]] = answer[1]
        except (OSError, EOFError, struct.error, IndexError):
            pass
        for zone in zones:
            serial = out.get(zone)
            if isinstance(serial, int) and not isinstance(serial, bool):
                continue
            try:
                out[zone] = self._serial_slow(zone)
            except PlanError as exc:
                out[zone] = exc
            except (dns.exception.DNSException, OSError) as exc:
                out[zone] = PlanError("zone %s: SOA query: %s: %s" % (zone, type(exc).__name__, exc))
        return out

    def _serial_slow(self, zone):
        (response,) = self.query_many([(zone, dns.rdatatype.SOA)])
        self.check_answer(zone, zone, dns.rdatatype.SOA, response)
        rrset = response.get_rrset(response.answer, zone, dns.rdataclass.IN, dns.rdatatype.SOA)
        if rrset is None:
            raise PlanError("zone %s: %s has no SOA for it (not a zone apex? set dns_nsupdate_zone)"
                            % (zone, self.address))
        return rrset[0].serial

    def read_axfr(self, zone):
        """(serial, {(name, rdtype): rdataset}) of the whole zone."""
        current, serial = {}, None
        try:
            for message in dns.query.xfr(self.address, zone, port=self.port, relativize=False,
                                         lifetime=self.timeout, timeout=self.timeout, **self._tsig()):
                for rrset in message.answer:
                    if rrset.rdtype == dns.rdatatype.SOA and rrset.name == zone:
                        serial = rrset[0].serial
                    key = (rrset.name, rrset.rdtype)
                    if key in current:
                        current[key].union_update(rrset)
                    else:
                        current[key] = rrset
        except (dns.exception.FormError, dns.xfr.TransferError) as exc:
            raise PlanError("zone %s: AXFR from %s failed: %s; it needs allow-transfer for the TSIG key "
                            "(or read per name: dns_nsupdate_read: query); BIND serves at most "
                            "transfers-out (10) at once: keep workers below" % (zone, self.address, exc))
        return serial, current

    def read_query(self, zones_wanted, extra=None):
        """{zone: (serial, current)} for the wanted rrsets and ``extra[zone]`` (name, rdtype)
        keys (and CNAMEs at their names), pipelined."""
        questions, owners = [], []
        for zone, wanted_rrsets in zones_wanted.items():
            questions.append((zone, dns.rdatatype.SOA))
            owners.append(zone)
            for (name, rdtype) in list(wanted_rrsets) + list((extra or {}).get(zone, [])):
                questions.append((name, rdtype))
                owners.append(zone)
        out = {zone: [None, {}] for zone in zones_wanted}
        errors = {}
        for (name, rdtype), zone, response in zip(questions, owners, self.query_many(questions)):
            try:
                self.check_answer(zone, name, rdtype, response)
            except PlanError as exc:
                errors.setdefault(zone, exc)
                continue
            for rrset in response.answer:
                if rrset.name != name:
                    continue
                if rdtype == dns.rdatatype.SOA and rrset.rdtype == rdtype:
                    out[zone][0] = rrset[0].serial
                elif rrset.rdtype in (rdtype, dns.rdatatype.CNAME):
                    out[zone][1][(rrset.name, rrset.rdtype)] = rrset
        return {zone: errors.get(zone) or tuple(value) for zone, value in out.items()}

    def send(self, zone, changes, registry=None):
        """One UPDATE message with every change of the zone.

        ``registry``: (its name, the registry rdataset as read or None): a prerequisite (RFC 2136
        section 2.4) that it is still exactly that, so two runs at once cannot lose each other's
        entries: the server applies all of the message or none of it.
        """
        update = dns.update.UpdateMessage(zone, **self._tsig())
        if registry is not None:
            name, rdataset = registry
            if rdataset:
                update.present(name, *list(rdataset))
            else:
                update.absent(name, dns.rdatatype.TXT)
        for name, _, _, delete, _ in changes:
            for rdata in delete:
                update.delete(name, rdata)
        # Addresses first: BIND refuses an MX whose in-zone target has no address yet.
        first = (dns.rdatatype.A, dns.rdatatype.AAAA)
        for name, rdtype, ttl, _, add in sorted(changes, key=lambda c: c[1] not in first):
            for rdata in add:
                update.add(name, ttl, rdata)
        response = dns.query.tcp(update, self.address, timeout=self.timeout, port=self.port)
        rcode = response.rcode()
        if registry is not None and rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET):
            raise PlanError("zone %s: the registry %s changed since it was read (another run at the same "
                            "time?); nothing was changed, run again" % (zone, registry[0]))
        if rcode != dns.rcode.NOERROR:
            raise PlanError("zone %s: UPDATE refused by %s: %s (is the server primary for the zone, and does "
                            "allow-update/update-policy grant the key? BIND also refuses an MX whose in-zone "
                            "target has no A/AAAA; see the server log)" % (zone, self.address, dns.rcode.to_text(rcode)))


def read_zones(server, read, zones_wanted, workers, own=None):
    """{zone: (serial, current) or PlanError}.

    With ``read == "query"`` and a registry (``own``), the registry is asked with the wanted
    rrsets, then every (name, type) it lists that was not asked yet.
    """
    if not zones_wanted:
        return {}
    if read == "query":
        if own is None:
            return server.read_query(zones_wanted)
        states = server.read_query(zones_wanted, {z: [(own.name(z), dns.rdatatype.TXT)] for z in zones_wanted})
        more = {}
        for zone, state in states.items():
            if isinstance(state, PlanError):
                continue
            for entry in registered(zone, state[1], own)[2]:
                try:
                    key = (absolute(entry["name"]), _rdtype(entry["type"]))
                except dns.exception.DNSException:
                    continue
                if key not in zones_wanted[zone] and key != (own.name(zone), dns.rdatatype.TXT) \
                        and key not in more.get(zone, []):
                    more.setdefault(zone, []).append(key)
        if more:
            for zone, state in server.read_query({z: {} for z in more}, more).items():
                if isinstance(states[zone], PlanError):
                    continue
                if isinstance(state, PlanError):
                    states[zone] = state
                else:
                    states[zone][1].update(state[1])
        return states

    def one(zone):
        try:
            return zone, server.read_axfr(zone)
        except PlanError as exc:
            return zone, exc
        except (dns.exception.DNSException, OSError) as exc:
            return zone, PlanError("zone %s: %s: %s" % (zone, type(exc).__name__, exc))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(one, list(zones_wanted)))


def converge(server, wanted, read, workers, check_mode, cache, own=None):
    """Read, compare, update and verify every zone that the cache cannot vouch for.

    ``wanted``: the output of group_records (values still unparsed); a zone may map to no
    records (a zone of a removed domain, only pruned). ``own``: an Ownership (the registry and
    what may be pruned), or None for no registry and no pruning.

    Returns (changes {zone: [...]}, errors [text], verified {zone text: [serial, digest]}, read count,
    pruned {zone: [entry]}).
    """
    errors, changes, verified, pruned = [], {}, {}, {}
    zones = sorted(wanted, key=lambda z: z.to_text())
    extra = own.digest_text() if own is not None else ""
    digests = {zone: zone_digest(wanted[zone], extra) for zone in zones}
    todo = {}
    for zone, serial in server.serials(zones).items():
        if isinstance(serial, PlanError):
            errors.append(str(serial))
        elif cache.get(zone.to_text()) == [serial, digests[zone]]:
            verified[zone.to_text()] = [serial, digests[zone]]
        else:
            try:
                todo[zone] = build_rrsets(wanted[zone])
            except PlanError as exc:
                errors.append(str(exc))
    to_send = {}
    for zone, state in read_zones(server, read, todo, workers, own).items():
        try:
            if isinstance(state, PlanError):
                raise state
            serial, current = state
            plan, gone, registry = plan_all(zone, wanted[zone], todo[zone], current, own)
        except PlanError as exc:
            errors.append(str(exc))
            continue
        if gone:
            pruned[zone] = gone
        if plan:
            changes[zone] = plan
            to_send[zone] = (plan, None if own is None else (own.name(zone), registry))
        elif serial is not None:
            verified[zone.to_text()] = [serial, digests[zone]]
    if check_mode or not to_send:
        return changes, errors, verified, len(todo), pruned

    def send(zone):
        try:
            server.send(zone, *to_send[zone])
            return zone, None
        except PlanError as exc:
            return zone, str(exc)
        except (dns.exception.DNSException, OSError) as exc:
            return zone, "zone %s: UPDATE: %s: %s" % (zone, type(exc).__name__, exc)

    sent = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for zone, error in pool.map(send, list(to_send)):
            if error:
                errors.append(error)
            else:
                sent.append(zone)
    # Read back what was sent: a server may accept an update and ignore part of it.
    for zone, state in read_zones(server, read, {z: todo[z] for z in sent}, workers, own).items():
        try:
            if isinstance(state, PlanError):
                raise state
            serial, current = state
            left = plan_all(zone, wanted[zone], todo[zone], current, own)[0]
        except PlanError as exc:
            errors.append(str(exc))
            continue
        # A pruned record is no longer in the registry, so the plan cannot see it: look for it.
        for name, rdtype, _, delete, add in to_send[zone][0]:
            kept = {rdata_key(r) for r in add}
            there = {rdata_key(r) for r in current.get((name, rdtype)) or []}
            if any(rdata_key(r) in there and rdata_key(r) not in kept for r in delete):
                left.append((name, rdtype, 0, [], []))
        if left:
            errors.append("zone %s: after the update the server still differs at %s; it ignored part of "
                          "the update (see its log)" % (zone, ", ".join(sorted({c[0].to_text() for c in left}))))
        elif serial is not None:
            verified[zone.to_text()] = [serial, digests[zone]]
    return changes, errors, verified, len(todo), pruned


def ownership(params):
    """The Ownership of the module's options, or None when ``registry`` is empty."""
    label = params["registry"]
    if not label:
        return None
    if label.endswith(".") or dns.name.from_text(label, origin=None).is_absolute():
        raise PlanError("registry %r: must be a name relative to each zone (like _mailward)" % label)
    keep = []
    for item in params["prune_keep"]:
        parts = item.split()
        if len(parts) != 2:
            raise PlanError("prune_keep %r: must be '<name> <TYPE>'" % item)
        keep.append(parts)
    return Ownership(label, params["registry_ttl"], params["prune"], params["prune_scope"],
                     params["prune_families"], keep)


def resolve(server):
    """An address for the server name (dnspython sends to addresses only)."""
    try:
        return socket.getaddrinfo(server, None, 0, socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as exc:
        raise PlanError("server %s: cannot resolve: %s" % (server, exc))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            records=dict(type="list", elements="dict"),
            records_json=dict(type="str"),
            server=dict(type="str", required=True),
            port=dict(type="int", default=53),
            key_name=dict(type="str", default=""),
            key_secret=dict(type="str", default="", no_log=True),
            key_algorithm=dict(type="str", default="hmac-sha256",
                               choices=["hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]),
            read=dict(type="str", default="axfr", choices=["axfr", "query"]),
            timeout=dict(type="float", default=10),
            workers=dict(type="int", default=4),
            cache=dict(type="path", default=""),
            registry=dict(type="str", default="_mailward"),
            registry_ttl=dict(type="int", default=3600),
            prune=dict(type="bool", default=True),
            prune_scope=dict(type="list", elements="str", default=[]),
            prune_families=dict(type="list", elements="str", default=[]),
            prune_keep=dict(type="list", elements="str", default=[]),
            zones=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
        required_one_of=[("records", "records_json")],
        mutually_exclusive=[("records", "records_json")],
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_ERROR)
    params = module.params
    # Do not echo thousands of records back in the result.
    invocation = {"module_args": dict((k, v) for k, v in params.items() if k not in ("records", "records_json", "key_secret"))}
    if params["key_name"] and not params["key_secret"]:
        module.fail_json(msg="key_name %s is set but key_secret is empty" % params["key_name"], invocation=invocation)
    try:
        records = params["records"] if params["records"] is not None else json.loads(params["records_json"])
        wanted = group_records(records)
        for zone in params["zones"]:
            wanted.setdefault(absolute(zone), {})
        own = ownership(params)
        address = resolve(params["server"])
    except (PlanError, ValueError, dns.exception.DNSException) as exc:
        module.fail_json(msg=str(exc), invocation=invocation)
    server = Server(address, params["port"], params["timeout"], params["key_name"],
                    params["key_secret"], params["key_algorithm"])
    server_id = "%s#%d" % (address, params["port"])
    cache = load_cache(params["cache"], server_id)

    changes_by_zone, errors, verified, read_count, pruned = converge(
        server, wanted, params["read"], params["workers"], module.check_mode, cache, own)

    changes, diffs = [], []
    for zone in sorted(changes_by_zone, key=lambda z: z.to_text()):
        before, after = [], []
        for name, rdtype, ttl, delete, add in changes_by_zone[zone]:
            changes.append({
                "zone": zone.to_text(omit_final_dot=True),
                "name": name.to_text(),
                "type": dns.rdatatype.to_text(rdtype),
                "delete": [r.to_text() for r in delete],
                "add": [r.to_text() for r in add],
            })
            before.extend(present(name, ttl, r) + "\n" for r in delete)
            after.extend(present(name, ttl, r) + "\n" for r in add)
        diffs.append({"before_header": "%s (removed)" % zone, "after_header": "%s (added)" % zone,
                      "before": "".join(before), "after": "".join(after)})
    if not module.check_mode:
        # Keep what other inventories verified on this server; replace this run's zones.
        ours = set(z.to_text() for z in wanted)
        entries = dict((zone, value) for zone, value in cache.items() if zone not in ours)
        entries.update(verified)
        try:
            save_cache(params["cache"], server_id, entries)
        except OSError as exc:
            module.warn("cannot write the cache %s: %s" % (params["cache"], exc))

    result = dict(changed=bool(changes), changes=changes, zones=len(wanted), zones_read=read_count,
                  updated_zones=sorted(z.to_text(omit_final_dot=True) for z in changes_by_zone), diff=diffs,
                  pruned=[dict(e, zone=z.to_text(omit_final_dot=True))
                          for z in sorted(pruned, key=lambda z: z.to_text()) for e in pruned[z]],
                  invocation=invocation)
    if errors:
        module.fail_json(msg="; ".join(sorted(errors)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
