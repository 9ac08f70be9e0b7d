# -*- coding: utf-8 -*-
"""Action plugin: every record of the play's mail domains, published in one step.

Runs on the controller, once per play (the task is ``run_once`` and delegated to localhost):

1. reads, for every host of the play, ``mail_domains_normalized`` (or normalizes
   ``mail_domains`` with ``mail_domains_normalize``), ``opendkim_public_keys``,
   ``mail_hostname``, ``mail_public_ipv4/6`` and ``dns_tlsa_cert_pem``;
2. merges them (``dns_merge_hosts``: fails on conflicting descriptions, naming both hosts, and
   on a DKIM key a host reports for a selector it does not hold, per ``dkim_key_list``);
3. generates the records with ``mail_domains_records`` (the one source of what is published)
   and keeps the managed families (``dns_manage_types``);
4. hands everything to ONE module call: ``dns_files`` (zone fragments + MTA-STS policies) or
   ``dns_nsupdate`` (one RFC 2136 update per zone that differs), with what pruning may touch:
   the domains of this play (its mail domains and MX host names) plus ``prune_domains``, the
   managed families, and the names of configured DKIM selectors whose key is not known.

Why an action plugin: the data of a thousand domains passed through Jinja set_fact/module
arguments is turned into text and parsed back at every step (seconds per step); here it stays
Python objects, and each module gets it as one JSON document. The record logic is imported
from the collection's module_utils, the one home of the filters too, so nothing is computed twice.
"""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.mailward.mail.plugins.module_utils import dns_plan as plan
from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records
from ansible_collections.mailward.mail.plugins.module_utils.families import KIND_TO_TYPE, bare, fqdn
from ansible_collections.mailward.mail.plugins.module_utils.records import dkim_name, mta_sts_policy, name_problem
from ansible_collections.mailward.mail.plugins.module_utils.records import txt_chunks, txt_strings
from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list

HOST_VARS = ("mail_domains_normalized", "mail_domains", "mail_hostname", "opendkim_public_keys",
             "mail_public_ipv4", "mail_public_ipv6", "dns_tlsa_cert_pem")

ARGUMENT_SPEC = dict(
    backend=dict(type="str", required=True, choices=["zonefile", "nsupdate"]),
    manage_types=dict(type="list", elements="str", required=True, choices=sorted(plan.MANAGE_TYPES)),
    ttl=dict(type="int", required=True),
    header=dict(type="str", default=""),
    zonefile_dir=dict(type="path"),
    mta_sts_policy_dir=dict(type="str", default=""),
    server=dict(type="str", default=""),
    port=dict(type="int", default=53),
    zone=dict(type="raw", default="auto"),
    read=dict(type="str", default="axfr", choices=["axfr", "query"]),
    timeout=dict(type="float", default=10),
    workers=dict(type="int", default=4),
    cache=dict(type="str", default=""),
    key_name=dict(type="str", default=""),
    key_secret=dict(type="str", default="", no_log=True),
    key_algorithm=dict(type="str", default="hmac-sha256"),
    prune=dict(type="bool", default=True),
    prune_domains=dict(type="list", elements="str", default=[]),
    registry=dict(type="str", default="_mailward"),
)

MANIFEST = ".mailward-dns-files.json"


def prune_settings(merged, prune_domains):
    """(scope, keep) of pruning for the merged hosts' data and ``dns_prune_domains``.

    scope: the play's mail domains and MX host names, and the removed domains the user names;
    keep: (name, TXT) of every configured DKIM selector (one without a known key in this run is
    not a removed one). A removed domain that is still a domain of the play is refused.
    """
    ours = {bare(d["name"]) for d in merged["domains"]} | {bare(h["name"]) for h in merged["mx_hosts"]}
    problems, removed = [], []
    for name in prune_domains:
        problem = name_problem(str(name).rstrip("."))
        if problem:
            problems.append("dns_prune_domains: %r %s" % (name, problem))
        elif bare(name) in ours:
            problems.append("dns_prune_domains: %s is still a mail domain or mail_hostname of this play; "
                            "remove it from mail_domains/the inventory or from dns_prune_domains" % bare(name))
        else:
            removed.append(bare(name))
    if problems:
        raise AnsibleError("\n".join(problems))
    keep = [(fqdn(dkim_name(str(sel["selector"]).lower(), bare(d["name"]))), "TXT")
            for d in merged["domains"] for sel in d.get("dkim") or []]
    return sorted(ours | set(removed)), removed, keep


class ActionModule(ActionBase):
    """Publish the DNS records of the play's mail domains."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def _host_data(self, task_vars):
        """{host: {var: value}} for every host of the play, values templated."""
        hostvars = task_vars["hostvars"]
        hosts = list(task_vars.get("ansible_play_hosts") or [task_vars["inventory_hostname"]])
        data = {}
        for host in hosts:
            host_vars = hostvars[host]
            values = {}
            for var in HOST_VARS:
                try:
                    values[var] = host_vars.get(var)
                except AnsibleError as exc:
                    raise AnsibleError("host %s: %s: %s" % (host, var, to_native(exc)))
            if values["mail_domains_normalized"] is None:
                values["mail_domains_normalized"] = mail_domains_normalize(values["mail_domains"] or [], host,
                                                              values["mail_hostname"] or host)
            data[host] = values
        return hosts, data

    def _module(self, name, args, task_vars):
        result = self._execute_module(module_name=name, module_args=args, task_vars=task_vars)
        result.pop("invocation", None)
        return result

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            hosts, data = self._host_data(task_vars)
            merged = plan.dns_merge_hosts(hosts, data, dkim_key_list)
            records = mail_domains_records(merged["domains"], public_keys=merged["public_keys"],
                                           mx_hosts=merged["mx_hosts"])
            records = plan.dns_select(records, args["manage_types"])
            scope, removed, keep = prune_settings(merged, args["prune_domains"])
            policies, policy_owners = {}, {}
            if args["mta_sts_policy_dir"] and "MTA_STS" in args["manage_types"]:
                for domain in merged["domains"]:
                    if domain.get("mta_sts"):
                        policies[domain["name"] + ".mta-sts.txt"] = mta_sts_policy(
                            domain["mta_sts"]["mode"], [mx["host"] for mx in domain["mx"]],
                            domain["mta_sts"]["max_age"], domain=domain["name"])
                        policy_owners[domain["name"] + ".mta-sts.txt"] = {"domains": [domain["name"]],
                                                                          "families": ["MTA_STS"]}
        except AnsibleError as exc:  # AnsibleFilterError included: the filters' messages name host/domain
            result.update(failed=True, msg=to_native(exc))
            return result

        names = [d["name"] for d in merged["domains"]]
        result.update(changed=False, notes=list(merged["notes"]), records=len(records), domains=len(names),
                      diff=[])
        steps = []
        # What every dns_files call may prune (files in its directory's manifest only).
        files_prune = {"manifest": MANIFEST, "prune": args["prune"], "prune_scope": scope,
                       "prune_families": list(args["manage_types"])}
        if args["backend"] == "zonefile":
            texts = [txt_strings(r["value"]) if r["type"] == "TXT" else None for r in records]
            placed = plan.dns_zone_records(records, names, args["ttl"], texts=texts, guess=True)["records"]
            files = plan.dns_zone_fragments(placed, args["header"], names)
            owners = {}
            for record in placed:
                meta = owners.setdefault("%s.zone" % record["zone"], {"domains": set(), "families": set()})
                meta["domains"].add(record["domain"])
                meta["families"].add(KIND_TO_TYPE[record["kind"]])
            owners = {f: {k: sorted(v) for k, v in meta.items()} for f, meta in owners.items()}
            result["zones"] = len(files)
            steps.append(("mailward.mail.dns_files", dict(files_prune, path=args["zonefile_dir"], files=files,
                                                          owners=owners)))
        else:
            chunks = [txt_chunks(r["value"]) if r["type"] == "TXT" else None for r in records]
            try:
                zones = plan.dns_zones(names, args["zone"])
            except AnsibleError as exc:
                result.update(failed=True, msg=to_native(exc))
                return result
            # The zones that held a removed domain's records are read too, to prune them; a record
            # still generated that lives there (a DMARC report authorization) is placed there, so
            # that it is kept, not taken for one that is gone.
            extra_zones = sorted({plan.zone_of_removed(d, set(zones), args["zone"]) for d in removed} - set(zones))
            placed = plan.dns_zone_records(records, list(zones) + extra_zones, args["ttl"], chunks=chunks)
            if placed["outside"]:
                result["notes"].append(
                    "not in any zone this play updates, publish them where those zones are served: %s"
                    % ", ".join("%s %s %s" % (r["name"], r["type"], r["value"]) for r in placed["outside"]))
            result["outside"] = [r["name"] for r in placed["outside"]]
            steps.append(("mailward.mail.dns_nsupdate", {
                "records_json": json.dumps([dict({k: r[k] for k in ("zone", "name", "type", "value", "ttl", "strings",
                                                                    "domain") if k in r},
                                                 family=KIND_TO_TYPE[r["kind"]]) for r in placed["records"]]),
                "server": args["server"], "port": args["port"], "read": args["read"],
                "timeout": args["timeout"], "workers": args["workers"], "cache": args["cache"],
                "key_name": args["key_name"], "key_secret": args["key_secret"],
                "key_algorithm": args["key_algorithm"], "registry": args["registry"],
                "registry_ttl": args["ttl"], "prune": args["prune"], "prune_scope": scope,
                "prune_families": list(args["manage_types"]), "prune_keep": ["%s %s" % k for k in keep],
                "zones": extra_zones}))
        # Policies: written, and pruned, only when MTA_STS is managed (an empty set still prunes:
        # MTA-STS turned off for every domain).
        if args["mta_sts_policy_dir"] and "MTA_STS" in args["manage_types"]:
            if args["backend"] == "zonefile" and os.path.abspath(args["mta_sts_policy_dir"]) == \
                    os.path.abspath(args["zonefile_dir"]):
                steps[0][1]["files"].update(policies)
                steps[0][1]["owners"].update(policy_owners)
            else:
                steps.append(("mailward.mail.dns_files", dict(files_prune, path=args["mta_sts_policy_dir"],
                                                              files=policies, owners=policy_owners)))

        for name, module_args in steps:
            out = self._module(name, module_args, task_vars)
            if out.get("diff"):
                result["diff"].extend(out["diff"] if isinstance(out["diff"], list) else [out["diff"]])
            result["changed"] = result["changed"] or bool(out.get("changed"))
            if out.get("warnings"):
                result.setdefault("warnings", []).extend(out["warnings"])
            for key in ("changes", "zones", "zones_read", "updated_zones", "pruned"):
                if key in out:
                    result[key] = out[key]
            result.setdefault("written", []).extend(os.path.join(module_args.get("path", ""), f)
                                                    for f in out.get("written", []))
            result.setdefault("removed", []).extend(os.path.join(module_args.get("path", ""), f)
                                                    for f in out.get("removed", []))
            if out.get("failed"):
                result.update(failed=True, msg="%s: %s" % (name, out.get("msg", "failed")))
                return result
        return result
