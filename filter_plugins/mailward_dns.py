# -*- coding: utf-8 -*-
"""The dns role's filters: the logic is module_utils/dns_plan.py."""

from ansible_collections.mailward.mail.plugins.module_utils.dns_plan import dns_merge_hosts, dns_select, dns_zone_fragments, dns_zone_records, dns_zones
from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list


def dns_merge_hosts_filter(hosts, hostvars):
    """dns_merge_hosts with the hosts' DKIM selectors as dkim_key_list assigns them."""
    return dns_merge_hosts(hosts, hostvars, dkim_key_list)


class FilterModule:
    """dns role filters."""

    def filters(self):
        return {
            "dns_merge_hosts": dns_merge_hosts_filter,
            "dns_select": dns_select,
            "dns_zones": dns_zones,
            "dns_zone_records": dns_zone_records,
            "dns_zone_fragments": dns_zone_fragments,
        }
