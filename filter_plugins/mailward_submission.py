# -*- coding: utf-8 -*-
"""The submission role's filter: the logic is module_utils/submission.py."""

from ansible_collections.mailward.mail.plugins.module_utils.submission import submission_users_lines


class FilterModule:
    """submission role filters."""

    def filters(self):
        return {"submission_users_lines": submission_users_lines}
