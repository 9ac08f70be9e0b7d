# -*- coding: utf-8 -*-
"""Filters that shape inventory data for the roles: the logic is module_utils/roles.py."""

from ansible_collections.mailward.mail.plugins.module_utils.roles import dkim_key_list, milter_port, milter_socket_for_postfix


class FilterModule:
    """mailward role helpers."""

    def filters(self):
        return {
            "dkim_key_list": dkim_key_list,
            "milter_socket_for_postfix": milter_socket_for_postfix,
            "milter_port": milter_port,
        }
