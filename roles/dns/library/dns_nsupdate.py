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
  - Supports check mode and diff mode. Runs where dnspython is installed (the controller).
options:
  records:
    description:
      - Every wanted record. C(name) absolute (trailing dot optional), C(type), C(value) the RDATA
        in presentation form (TXT unquoted and unsplit), C(ttl), C(zone) the zone it belongs to.
      - C(strings) optionally gives the TXT character-strings (each at most 255 bytes); without
        it the value is split every 255 bytes (never inside a UTF-8 character).
    type: list
    elements: dict
    required: true
  server:
    description: Primary name server (address or host name) that accepts updates.
    type: str
    required: true
  port:
    description: Its port.
    type: int
    default: 53
  key_name:
    description: TSIG key name. Empty sends unsigned messages.
    type: str
    default: ""
  key_secret:
    description: TSIG secret (base64).
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
    description: Zones processed in parallel.
    type: int
    default: 8
author: mailward
"""

EXAMPLES = r"""
- name: Publish
  dns_nsupdate:
    server: 192.0.2.53
    key_name: mailward
    key_secret: "{{ vault_tsig_secret }}"
    records:
      - {zone: example.test, name: example.test., type: MX, value: 10 mx.example.test., ttl: 3600}
  delegate_to: localhost
  run_once: true
  no_log: true
"""

RETURN = r"""
changes:
  description: One item per rrset that differs, with zone, name, type, delete and add (presentation form).
  type: list
  returned: always
zones:
  description: Number of zones read.
  type: int
  returned: always
updated_zones:
  description: Zones that got an UPDATE message (or would, in check mode).
  type: list
  returned: always
"""

import socket
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

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
    """Split a TXT value into <=255-byte strings, never inside a UTF-8 character."""
    data = value.encode("utf-8")
    chunks, start = [], 0
    while start < len(data):
        end = min(start + 255, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        chunks.append(data[start:end])
        start = end
    return chunks or [b""]


def absolute(name):
    """A dns.name.Name from a text name, always absolute and lower case."""
    text = name if name.endswith(".") else name + "."
    return dns.name.from_text(text.lower())


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


def txt_tag(data):
    """The first tag of a TXT value (``v=spf1``, ``v=dmarc1``...), lower case."""
    text = data.strip().lower()
    for sep in (b";", b" ", b"\t"):
        text = text.split(sep, 1)[0]
    return text


def owned_whole(name, rdtype):
    """Whether we own every rdata of this rrset (else only TXT strings with our tags)."""
    if rdtype != dns.rdatatype.TXT:
        return True
    return b"_domainkey" in name.labels


def group_wanted(records):
    """Group the wanted records by zone, then (name, type): {zone: {(name, type): (ttl, [rdata])}}."""
    zones = {}
    for record in records:
        for key in ("zone", "name", "type", "value"):
            if record.get(key) is None or (key != "value" and record.get(key) == ""):
                raise PlanError("record %r: %s is missing" % (record, key))
        zone = absolute(record["zone"])
        name = absolute(record["name"])
        if not name.is_subdomain(zone):
            raise PlanError("%s is not inside zone %s" % (name, zone))
        rdata = make_rdata(record)
        ttl = int(record.get("ttl") or 3600)
        rrsets = zones.setdefault(zone, {})
        key = (name, rdata.rdtype)
        if key in rrsets:
            old_ttl, rdatas = rrsets[key]
            if old_ttl != ttl:
                raise PlanError("%s %s: records with different TTLs (%d, %d); one rrset has one TTL"
                                % (name, record["type"], old_ttl, ttl))
            if all(rdata_key(r) != rdata_key(rdata) for r in rdatas):
                rdatas.append(rdata)
        else:
            rrsets[key] = (ttl, [rdata])
    return zones


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


def present(name, ttl, rdata):
    """One zone-file line."""
    return "%s %d IN %s %s" % (name.to_text(), ttl, dns.rdatatype.to_text(rdata.rdtype), rdata.to_text())


# ------------------------------------------------------------------------------------------
# Network
# ------------------------------------------------------------------------------------------


class Server:
    """Where to read from and send to, with the TSIG key."""

    def __init__(self, address, port, timeout, key_name, key_secret, key_algorithm):
        self.address = address
        self.port = port
        self.timeout = timeout
        self.key = None
        if key_name:
            self.key = dns.tsig.Key(dns.name.from_text(key_name), key_secret, key_algorithm)

    def read_axfr(self, zone):
        """Every rrset of the zone: {(name, rdtype): rdataset}."""
        current = {}
        keyring = {self.key.name: self.key} if self.key else None
        try:
            for message in dns.query.xfr(self.address, zone, port=self.port, keyring=keyring,
                                         keyname=self.key.name if self.key else None,
                                         keyalgorithm=self.key.algorithm if self.key else dns.tsig.default_algorithm,
                                         relativize=False, lifetime=self.timeout, timeout=self.timeout):
                for rrset in message.answer:
                    key = (rrset.name, rrset.rdtype)
                    if key in current:
                        current[key].union_update(rrset)
                    else:
                        current[key] = rrset
        except dns.exception.FormError as exc:
            raise PlanError("zone %s: AXFR from %s failed (%s); allow-transfer for the TSIG key is needed, "
                            "or read per name with dns_nsupdate_read: query" % (zone, self.address, exc))
        except dns.xfr.TransferError as exc:
            raise PlanError("zone %s: AXFR from %s refused: %s; allow-transfer for the TSIG key is needed "
                            "(or set dns_nsupdate_read: query)" % (zone, self.address, exc))
        return current

    def read_query(self, zone, wanted_rrsets):
        """The wanted rrsets (and CNAMEs at their names) by direct, non-recursive queries."""
        current = {}
        for (name, rdtype) in wanted_rrsets:
            query = dns.message.make_query(name, rdtype)
            query.flags &= ~dns.flags.RD
            if self.key:
                query.use_tsig({self.key.name: self.key}, keyname=self.key.name, algorithm=self.key.algorithm)
            response, _ = dns.query.udp_with_fallback(query, self.address, timeout=self.timeout, port=self.port)
            rcode = response.rcode()
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                raise PlanError("zone %s: query %s %s answered %s" % (zone, name, dns.rdatatype.to_text(rdtype),
                                                                      dns.rcode.to_text(rcode)))
            if not response.flags & dns.flags.AA:
                raise PlanError("zone %s: %s is not authoritative for %s" % (zone, self.address, name))
            for rrset in response.answer:
                if rrset.name == name and rrset.rdtype in (rdtype, dns.rdatatype.CNAME):
                    current[(rrset.name, rrset.rdtype)] = rrset
        return current

    def send(self, zone, changes):
        """One UPDATE message with every change of the zone."""
        update = dns.update.UpdateMessage(zone, keyring=self.key and {self.key.name: self.key},
                                          keyname=self.key.name if self.key else None,
                                          keyalgorithm=self.key.algorithm if self.key else dns.tsig.default_algorithm)
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
        if rcode != dns.rcode.NOERROR:
            raise PlanError("zone %s: UPDATE refused by %s: %s (is the server primary for the zone, and does "
                            "allow-update/update-policy grant the key? BIND also refuses an MX whose in-zone target has no A/AAAA; see the server log)" % (zone, self.address, dns.rcode.to_text(rcode)))


def process_zone(server, zone, wanted_rrsets, read, check_mode):
    """Read, compare and (unless check mode) update one zone. Returns (zone, changes, error)."""
    try:
        if read == "axfr":
            current = server.read_axfr(zone)
        else:
            current = server.read_query(zone, wanted_rrsets)
        changes = plan_zone(wanted_rrsets, current)
        if changes and not check_mode:
            server.send(zone, changes)
        return zone, changes, None
    except PlanError as exc:
        return zone, [], str(exc)
    except (dns.exception.DNSException, OSError) as exc:
        return zone, [], "zone %s: %s: %s" % (zone, type(exc).__name__, exc)


def resolve(server):
    """An address for the server name (dnspython sends to addresses only)."""
    try:
        return socket.getaddrinfo(server, None, 0, socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as exc:
        raise PlanError("server %s: cannot resolve: %s" % (server, exc))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            records=dict(type="list", elements="dict", required=True),
            server=dict(type="str", required=True),
            port=dict(type="int", default=53),
            key_name=dict(type="str", default=""),
            key_secret=dict(type="str", default="", no_log=True),
            key_algorithm=dict(type="str", default="hmac-sha256",
                               choices=["hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]),
            read=dict(type="str", default="axfr", choices=["axfr", "query"]),
            timeout=dict(type="float", default=10),
            workers=dict(type="int", default=8),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_ERROR)
    params = module.params
    if params["key_name"] and not params["key_secret"]:
        module.fail_json(msg="key_name %s is set but key_secret is empty" % params["key_name"])
    try:
        wanted = group_wanted(params["records"])
        address = resolve(params["server"])
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    server = Server(address, params["port"], params["timeout"], params["key_name"],
                    params["key_secret"], params["key_algorithm"])

    zones = sorted(wanted, key=lambda z: z.to_text())
    with ThreadPoolExecutor(max_workers=max(1, params["workers"])) as pool:
        results = list(pool.map(lambda z: process_zone(server, z, wanted[z], params["read"], module.check_mode),
                                zones))

    changes, updated, errors, diffs = [], [], [], []
    for zone, zone_changes, error in results:
        if error:
            errors.append(error)
            continue
        if not zone_changes:
            continue
        updated.append(zone.to_text(omit_final_dot=True))
        before, after = [], []
        for name, rdtype, ttl, delete, add in zone_changes:
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

    result = dict(changed=bool(updated), changes=changes, zones=len(zones), updated_zones=updated,
                  diff=diffs)
    if errors:
        module.fail_json(msg="; ".join(errors), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
