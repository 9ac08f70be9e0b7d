# -*- coding: utf-8 -*-
"""The record generators as filters (mailward.mail.spf_record, ...): the logic is module_utils/records.py."""

from ansible_collections.mailward.mail.plugins.module_utils.records import (dkim_record, dmarc_record, dmarc_report_authorizations, mta_sts_policy,
                         mta_sts_policy_id, mta_sts_record, spf_record, tlsa_record, tlsrpt_record,
                         txt_chunks, txt_strings)


class FilterModule:
    """Ansible entry point: the record generators as Jinja2 filters."""

    def filters(self):
        """Map filter names to functions."""
        return {
            "spf_record": spf_record,
            "dmarc_record": dmarc_record,
            "dmarc_report_authorizations": dmarc_report_authorizations,
            "dkim_record": dkim_record,
            "txt_strings": txt_strings,
            "txt_chunks": txt_chunks,
            "mta_sts_record": mta_sts_record,
            "mta_sts_policy": mta_sts_policy,
            "mta_sts_policy_id": mta_sts_policy_id,
            "tlsrpt_record": tlsrpt_record,
            "tlsa_record": tlsa_record,
        }
