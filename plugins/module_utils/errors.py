# -*- coding: utf-8 -*-
"""The one error type of mailward's pure logic (plugins/module_utils).

Every refusal of bad input (a record spec, an inventory value, a merge conflict) is a
``MailwardError`` whose message names host, domain, variable and rule. On the controller it is
an ``AnsibleFilterError``, so a filter that lets it through gives Ansible's plain "filter
failed" report with our message, and tests may catch either name. Modules run these files on a
managed host, where only ``ansible.module_utils`` is shipped: there it is a ``ValueError``.
"""

try:
    from ansible.errors import AnsibleFilterError as _Base
except ImportError:  # a module on a managed host: no controller code there
    _Base = ValueError


class MailwardError(_Base):
    """Bad input, refused with a message naming where it is and what rule it breaks."""
