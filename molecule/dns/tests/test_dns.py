"""What the dns role published, checked against what the filters generate (molecule dns scenario).

The expected records are computed here, independently of the role, by the same filter functions
(mail_domains_normalize + mail_domains_records) from the same input: the scenario's
molecule.yml and the keys prepare.yml made. The name server is asked from the controller with
dnspython (AXFR with the TSIG key, and plain queries); named-checkzone runs inside the ns
container through testinfra's podman backend. The last tests edit the zone by hand and re-run
the converge playbook: the stale SPF record must be replaced, a foreign TXT left alone; and with
changed inventory variables (a selector removed, MTA-STS off, a domain removed) what the role
published earlier is pruned from BIND and the directories, foreign records and files kept.
"""

import json
import os
import re
import subprocess

import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.zone
import pytest
import yaml

# The collection by package name: pytest.ini (repository root) puts collections/ on sys.path.
from ansible_collections.mailward.mail.plugins.module_utils.dns_plan import registry_entry, registry_parse
from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records
from ansible_collections.mailward.mail.plugins.module_utils.records import dkim_record, mta_sts_policy, mta_sts_policy_id

testinfra_hosts = ["podman://mailward-dns-ns"]

NS = "mailward-dns-ns"
NETWORK = "mailward-molecule-dns"
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
SCENARIO = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
ZONES = ("example.test", "partner.test")
TTL = 3600  # dns_ttl default
# What prepare.yml puts in each zone before the role runs.
BASELINE = {("example.test.", "SOA"), ("example.test.", "NS"), ("ns.example.test.", "A"),
            ("partner.test.", "SOA"), ("partner.test.", "NS")}
LOOKUP = re.compile(r"lookup\('ansible\.builtin\.file', '([^']+)'\)")


def _file_from_lookup(text):
    """Read the file a `lookup('ansible.builtin.file', '<path>')` in molecule.yml points to."""
    path = LOOKUP.search(text).group(1).replace("${MOLECULE_EPHEMERAL_DIRECTORY}", EPHEMERAL)
    with open(path, encoding="utf-8") as handle:
        return handle.read().rstrip("\n")


@pytest.fixture(scope="module")
def inventory():
    """The scenario's inventory section of molecule.yml."""
    with open(os.path.join(SCENARIO, "molecule.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["provisioner"]["inventory"]


def _generate(inventory, mail_domains=None, public_keys=None):
    """Every record the filters generate for the scenario's input (or these overrides)."""
    group = inventory["group_vars"]["mail"]
    mail_domains = group["mail_domains"] if mail_domains is None else mail_domains
    public_keys = group["opendkim_public_keys"] if public_keys is None else public_keys
    hosts = inventory["hosts"]["all"]["children"]["mail"]["hosts"]
    domains, mx_hosts = {}, []
    for host in hosts:
        hvars = inventory["host_vars"][host]
        for dom in mail_domains_normalize(mail_domains, host, hvars["mail_hostname"]):
            domains.setdefault(dom["name"], dom)
        entry = {"name": hvars["mail_hostname"], "ipv4": hvars.get("mail_public_ipv4"),
                 "ipv6": hvars.get("mail_public_ipv6")}
        if hvars.get("dns_tlsa_cert_pem"):
            entry["cert_pem"] = _file_from_lookup(hvars["dns_tlsa_cert_pem"])
        mx_hosts.append({k: v for k, v in entry.items() if v})
    keys = [dict(item, public_key=_file_from_lookup(item["public_key"])) for item in public_keys]
    return mail_domains_records(list(domains.values()), public_keys=keys, mx_hosts=mx_hosts)


@pytest.fixture(scope="module")
def expected(inventory):
    """Every record the filters generate for the scenario's input, as the role should publish it."""
    records = _generate(inventory)
    assert {r["kind"] for r in records} >= {"mx", "spf", "dkim", "dmarc", "dmarc_report_auth", "mta_sts",
                                            "tlsrpt", "a", "aaaa", "tlsa"}, "the scenario must cover every kind"
    return records


@pytest.fixture(scope="module")
def server():
    """The ns container's address on the scenario network (the controller reaches it directly)."""
    out = subprocess.run(["podman", "container", "inspect", NS], check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


@pytest.fixture(scope="module")
def tsig():
    with open(os.path.join(EPHEMERAL, "tsig.secret"), encoding="utf-8") as handle:
        return dns.tsig.Key("mailward-test", handle.read().strip(), "hmac-sha256")


def _key(rdata):
    """Comparable form: joined strings for TXT, canonical wire form otherwise."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode()
    return rdata.to_digestable(dns.name.root)


def _expected_set(records):
    """{(owner, type): {comparable value}} of generated records."""
    out = {}
    for rec in records:
        rdtype = dns.rdatatype.from_text(rec["type"])
        if rdtype == dns.rdatatype.TXT:
            value = rec["value"]
        else:
            value = dns.rdata.from_text(dns.rdataclass.IN, rdtype, rec["value"], origin=dns.name.root,
                                        relativize=False).to_digestable(dns.name.root)
        out.setdefault((rec["name"], rec["type"]), set()).add(value)
    return out


def _axfr(server, tsig, zone):
    """{(owner, type): (ttl, rdataset)} of the whole zone as the server holds it."""
    xfr = dns.zone.from_xfr(dns.query.xfr(server, zone, keyring={tsig.name: tsig}, keyname=tsig.name,
                                          keyalgorithm=tsig.algorithm, relativize=False, lifetime=10),
                            relativize=False)
    out = {}
    for name, rdataset in xfr.iterate_rdatasets():
        out[(name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))] = rdataset
    return out


def _registry_name(zone):
    return "_mailward.%s." % zone


def _served(server, tsig):
    """Every rrset of both zones, baseline records and the registries left out."""
    served = {}
    for zone in ZONES:
        served.update({k: v for k, v in _axfr(server, tsig, zone).items()
                       if k not in BASELINE and k != (_registry_name(zone), "TXT")})
    return served


def _registries(server, tsig):
    """{zone: [entries]} of the registries (TXT at _mailward.<zone>), and the foreign strings there."""
    out, foreign = {}, []
    for zone in ZONES:
        rdataset = _axfr(server, tsig, zone).get((_registry_name(zone), "TXT"))
        for rdata in rdataset or []:
            entry = registry_parse(_key(rdata))
            if entry is None:
                foreign.append(_key(rdata))
            else:
                out.setdefault(zone, []).append(entry)
    return {zone: sorted(entries, key=lambda e: (e["name"], e["type"], e["tag"])) for zone, entries in out.items()}, \
        foreign


def _zone_of(name):
    """The scenario's zone holding a record name."""
    return next(zone for zone in ZONES if name == zone + "." or name.endswith("." + zone + "."))


def _expected_registries(records):
    """{zone: [entries]} the registries must hold for these generated records."""
    out = {}
    for record in records:
        entry = registry_entry(record)
        if entry not in out.setdefault(_zone_of(record["name"]), []):
            out[_zone_of(record["name"])].append(entry)
    return {zone: sorted(entries, key=lambda e: (e["name"], e["type"], e["tag"])) for zone, entries in out.items()}


def test_named_runs(host):
    assert host.service("named").is_running


def test_server_holds_exactly_the_generated_records(server, tsig, expected):
    want = _expected_set(expected)
    served = _served(server, tsig)
    got = {key: {_key(r) for r in rdataset} for key, rdataset in served.items()}
    missing = {k: v - got.get(k, set()) for k, v in want.items() if v - got.get(k, set())}
    extra = {k: v - want.get(k, set()) for k, v in got.items() if v - want.get(k, set())}
    assert not missing, "generated but not served: %s" % missing
    assert not extra, "served but not generated: %s" % extra
    wrong_ttl = {k: r.ttl for k, r in served.items() if r.ttl != TTL}
    assert not wrong_ttl, "TTL is not %d: %s" % (TTL, wrong_ttl)


def test_each_zone_registers_exactly_what_was_published(server, tsig, expected):
    """The ownership registry (_mailward.<zone> TXT) lists every generated record of the zone,
    with its family, domain and TXT tag, and nothing else."""
    registries, foreign = _registries(server, tsig)
    assert registries == _expected_registries(expected)
    assert foreign == []


def test_plain_queries_answer_every_record(server, expected):
    """What a resolver sees: one query per name and type, answered authoritatively."""
    for (name, rtype), values in _expected_set(expected).items():
        query = dns.message.make_query(name, rtype)
        response = dns.query.udp_with_fallback(query, server, timeout=5)[0]
        assert response.flags & dns.flags.AA, "%s %s: not authoritative" % (name, rtype)
        answer = response.find_rrset(response.answer, dns.name.from_text(name), dns.rdataclass.IN,
                                     dns.rdatatype.from_text(rtype))
        assert {_key(r) for r in answer} == values, "%s %s" % (name, rtype)


def test_rsa_dkim_key_is_split_and_joins_back_exactly(server, expected, inventory):
    item = next(k for k in inventory["group_vars"]["mail"]["opendkim_public_keys"] if k["selector"] == "mw2026r")
    value = dkim_record(_file_from_lookup(item["public_key"]), "rsa")
    assert any(r["value"] == value for r in expected)
    response = dns.query.udp_with_fallback(dns.message.make_query("mw2026r._domainkey.example.test.", "TXT"),
                                           server, timeout=5)[0]
    (rdata,) = response.answer[0]
    assert len(rdata.strings) == 2, rdata.strings
    assert all(len(s) <= 255 for s in rdata.strings)
    assert b"".join(rdata.strings).decode() == value


def _fragments():
    directory = os.path.join(EPHEMERAL, "zonefiles")
    return {name[:-len(".zone")]: open(os.path.join(directory, name), encoding="utf-8").read()
            for name in sorted(os.listdir(directory)) if name.endswith(".zone")}


def test_zone_fragments_hold_exactly_the_generated_records(expected):
    fragments = _fragments()
    assert set(fragments) == set(ZONES)
    got = {}
    for zone, text in fragments.items():
        assert "Ansible managed" in text.splitlines()[1] or "Managed by" in text
        parsed = dns.zone.from_text(text, origin=zone + ".", relativize=False, check_origin=False)
        for name, rdataset in parsed.iterate_rdatasets():
            assert rdataset.ttl == TTL
            got.setdefault((name.to_text(), dns.rdatatype.to_text(rdataset.rdtype)), set()).update(
                _key(r) for r in rdataset)
    assert got == _expected_set(expected)


def test_named_checkzone_accepts_the_fragments(host):
    """Each fragment $INCLUDEd under an SOA/NS header passes BIND's strictest zone checks."""
    for zone, text in _fragments().items():
        host.run("mkdir -p /tmp/fragments")
        subprocess.run(["podman", "exec", "-i", NS, "sh", "-c", "cat > /tmp/fragments/%s.zone" % zone],
                       input=text, text=True, check=True)
        wrapper = ("$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
                   "@ IN NS ns.example.test.\n%s$INCLUDE /tmp/fragments/%s.zone\n"
                   % ("ns IN A 192.0.2.53\n" if zone == "example.test" else "", zone))
        subprocess.run(["podman", "exec", "-i", NS, "sh", "-c", "cat > /tmp/fragments/%s.db" % zone],
                       input=wrapper, text=True, check=True)
        cmd = host.run("named-checkzone -k fail -m fail -M fail -n fail -S fail -i full %s /tmp/fragments/%s.db",
                       zone, zone)
        assert cmd.rc == 0, "%s\n%s" % (cmd.stdout, cmd.stderr)
        assert "OK" in cmd.stdout


def test_mta_sts_policy_file_matches_the_txt_id(expected, inventory):
    dom = next(d for d in inventory["group_vars"]["mail"]["mail_domains"] if d["name"] == "example.test")
    policy = mta_sts_policy(dom["mta_sts"]["mode"], [m["host"] for m in dom["mx"]], dom["mta_sts"]["max_age"])
    with open(os.path.join(EPHEMERAL, "policies", "example.test.mta-sts.txt"), encoding="utf-8", newline="") as fh:
        assert fh.read() == policy
    sts = next(r for r in expected if r["kind"] == "mta_sts")
    assert sts["value"] == "v=STSv1; id=%s" % mta_sts_policy_id(policy)


def _converge(*extra):
    """Run the scenario's converge playbook as molecule does; return (changed count of mx1, output)."""
    inventory_dir = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    run = subprocess.run(["ansible-playbook", "--inventory", inventory_dir, os.path.join(SCENARIO, "converge.yml"),
                          *extra], capture_output=True, text=True, env=dict(os.environ), check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    recap = re.search(r"^mx1\.example\.test\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)
    assert recap, "no PLAY RECAP line for mx1.example.test in:\n" + run.stdout[-4000:]
    return int(recap.group(1)), run.stdout


def _apex_txt(server):
    response = dns.query.udp_with_fallback(dns.message.make_query("example.test.", "TXT"), server, timeout=5)[0]
    return {_key(r) for rrset in response.answer for r in rrset}


def _nsupdate_by_hand(commands, zone="example.test"):
    """Edit a zone inside the ns container with BIND's nsupdate and the TSIG key."""
    with open(os.path.join(EPHEMERAL, "tsig.secret"), encoding="utf-8") as handle:
        secret = handle.read().strip()
    script = "server 127.0.0.1\nzone %s\n%s\nsend\n" % (zone, "\n".join(commands))
    run = subprocess.run(["podman", "exec", "-i", NS, "nsupdate", "-y", "hmac-sha256:mailward-test:" + secret],
                         input=script, text=True, capture_output=True, check=False)
    assert run.returncode == 0, run.stderr


def test_a_stale_spf_set_by_hand_is_replaced_and_other_txt_kept(server, expected):
    """Negative check of the diff logic: a hand-made SPF value goes, a foreign TXT stays.

    Leaves the zone as it found it (pytest may order this test before the others).
    """
    spf = next(r["value"] for r in expected if r["kind"] == "spf" and r["name"] == "example.test.")
    _nsupdate_by_hand(['update delete example.test. TXT "%s"' % spf,
                       'update add example.test. 600 TXT "v=spf1 a -all"',
                       'update add example.test. 600 TXT "mailward-test-keep=1"'])
    try:
        assert _apex_txt(server) == {"v=spf1 a -all", "mailward-test-keep=1"}

        changed, out = _converge("--check", "--diff")
        assert changed == 1, out[-3000:]
        assert "v=spf1 a -all" in out, "the check run should show what it would remove"
        assert _apex_txt(server) == {"v=spf1 a -all", "mailward-test-keep=1"}, "check mode changed the zone"

        changed, out = _converge()
        assert changed == 1, out[-3000:]
        assert _apex_txt(server) == {spf, "mailward-test-keep=1"}

        changed, out = _converge()
        assert changed == 0, out[-3000:]
    finally:
        _nsupdate_by_hand(['update delete example.test. TXT "mailward-test-keep=1"'])


def _txt(server, name):
    response = dns.query.udp_with_fallback(dns.message.make_query(name, "TXT"), server, timeout=5)[0]
    return {_key(r) for rrset in response.answer for r in rrset}


def _listing(directory):
    return sorted(os.listdir(os.path.join(EPHEMERAL, directory)))


def test_removed_selector_mta_sts_off_and_removed_domain_are_pruned_foreign_records_and_files_kept(
        server, tsig, inventory, expected, tmp_path):
    """Issue 17, item 2: converge with changed inventory variables (-e): example.test loses
    selector mw2026e and MTA-STS and sends its DMARC reports home, partner.test leaves the
    inventory (dns_prune_domains names it). What the role published for them goes from BIND
    (nsupdate) and from the fragment/policy directories (zonefile); foreign TXT at the same
    names and foreign files stay. Check mode first, then for real, then idempotent; finally the
    scenario's own inventory puts everything back (the zone is left as found).
    """
    group = inventory["group_vars"]["mail"]
    example = dict(next(d for d in group["mail_domains"] if d["name"] == "example.test"))
    example["dkim"] = [s for s in example["dkim"] if s["selector"] != "mw2026e"]
    example.pop("mta_sts")
    example["dmarc"] = dict(example["dmarc"], rua=["mailto:dmarc-reports@example.test"])
    # molecule substitutes ${MOLECULE_EPHEMERAL_DIRECTORY} in molecule.yml, not in -e files.
    keys = [dict(k, public_key=k["public_key"].replace("${MOLECULE_EPHEMERAL_DIRECTORY}", EPHEMERAL))
            for k in group["opendkim_public_keys"] if k["selector"] == "mw2026r"]
    overrides = tmp_path / "removed.json"
    overrides.write_text(json.dumps({"mail_domains": [example], "opendkim_public_keys": keys,
                                     "dns_prune_domains": ["partner.test"]}))
    after = _generate(inventory, [example], keys)
    assert {(r["name"], r["type"]) for r in after} < {(r["name"], r["type"]) for r in expected}

    dkim_e, sts = "mw2026e._domainkey.example.test.", "_mta-sts.example.test."
    dkim_e_value = next(r["value"] for r in expected if r["name"] == dkim_e)
    _nsupdate_by_hand(['update add %s 600 TXT "mailward-test-keep=dkim"' % dkim_e,
                       'update add %s 600 TXT "mailward-test-keep=sts"' % sts])
    _nsupdate_by_hand(['update add partner.test. 600 TXT "mailward-test-keep=partner"'], zone="partner.test")
    for directory in ("zonefiles", "policies"):
        with open(os.path.join(EPHEMERAL, directory, "foreign.zone"), "w", encoding="utf-8") as handle:
            handle.write("; not written by mailward\n")
    zonefiles, policies = _listing("zonefiles"), _listing("policies")
    assert "partner.test.zone" in zonefiles and "example.test.mta-sts.txt" in policies
    before = _served(server, tsig)
    try:
        changed, out = _converge("--check", "--diff", "-e", "@%s" % overrides)
        assert changed >= 1, out[-3000:]
        assert dkim_e_value in out, "the check run should show the DKIM record it would delete"
        assert "partner.test.zone" in out and "example.test.mta-sts.txt" in out, out[-3000:]
        assert _served(server, tsig) == before, "check mode changed the zones"
        assert (_listing("zonefiles"), _listing("policies")) == (zonefiles, policies), "check mode removed files"

        changed, out = _converge("-e", "@%s" % overrides)
        assert changed >= 1, out[-3000:]
        got = {k: {_key(r) for r in v} for k, v in _served(server, tsig).items()}
        foreign = {(dkim_e, "TXT"): {"mailward-test-keep=dkim"}, (sts, "TXT"): {"mailward-test-keep=sts"},
                   ("partner.test.", "TXT"): {"mailward-test-keep=partner"}}
        want = _expected_set(after)
        want.update(foreign)
        assert got == want, "served after pruning"
        registries, stray = _registries(server, tsig)
        assert registries == _expected_registries(after) and "partner.test" not in registries
        assert stray == []
        assert _txt(server, dkim_e) == {"mailward-test-keep=dkim"}
        assert _listing("zonefiles") == sorted(set(zonefiles) - {"partner.test.zone"})
        assert _listing("policies") == sorted(set(policies) - {"example.test.mta-sts.txt"})
        assert "foreign.zone" in _listing("zonefiles") and "foreign.zone" in _listing("policies")
        fragments = _fragments()
        assert set(fragments) == {"example.test", "foreign"}
        assert dkim_e not in fragments["example.test"] and sts not in fragments["example.test"]

        changed, out = _converge("-e", "@%s" % overrides)
        assert changed == 0, out[-3000:]
    finally:
        changed, out = _converge()
        assert changed >= 1, out[-3000:]
        _nsupdate_by_hand(['update delete %s TXT "mailward-test-keep=sts"' % sts])
        _nsupdate_by_hand(['update delete partner.test. TXT "mailward-test-keep=partner"'], zone="partner.test")
        for directory in ("zonefiles", "policies"):
            os.unlink(os.path.join(EPHEMERAL, directory, "foreign.zone"))
    # The scenario's inventory again: everything back, the foreign DKIM-name TXT gone with it
    # (a published DKIM name is owned whole), nothing left over.
    assert {k: {_key(r) for r in v} for k, v in _served(server, tsig).items()} == _expected_set(expected)
    assert _registries(server, tsig)[0] == _expected_registries(expected)
    assert (_listing("zonefiles"), _listing("policies")) == (
        sorted(set(zonefiles) - {"foreign.zone"}), sorted(set(policies) - {"foreign.zone"}))
