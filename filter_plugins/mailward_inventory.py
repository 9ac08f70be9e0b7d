# -*- coding: utf-8 -*-
"""The inventory filters (mailward.mail.mail_domains_normalize, ...): the logic is module_utils/inventory.py."""

from ansible_collections.mailward.mail.plugins.module_utils.inventory import mail_domains_normalize, mail_domains_records


class FilterModule:
    """Ansible entry point: the inventory filters."""

    def filters(self):
        """Map filter names to functions."""
        return {
            "mail_domains_normalize": mail_domains_normalize,
            "mail_domains_records": mail_domains_records,
        }
