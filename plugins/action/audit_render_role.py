# -*- coding: utf-8 -*-
"""Action plugin: render another role's templates on the controller, as that role would, read-only.

Used by the audit's drift check: what would the postfix role write into main.cf/master.cf for
this host today? The variables follow Ansible's role precedence without running any of the
roles' tasks:

    role defaults (every role of the play) < the host's variables (inventory, facts, set_fact)
    < role vars/main.yml < vars/<os_family>.yml (which the roles load with include_vars)

Every role of the play that builds the mail host is loaded (not only postfix), because the
postfix role collects the other roles' ``*_postfix_fragment`` variables. Extra vars (-e) are
not put back on top of role vars; nothing on the controller or the host is written.
"""

from __future__ import absolute_import, division, print_function

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.template import generate_ansible_template_vars

__metaclass__ = type


class ActionModule(ActionBase):
    """Render templates of a role with the variables that role would see."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("roles_dir", "roles", "role", "templates", "os_family"))

    def _load(self, path):
        if not os.path.isfile(path):
            return {}
        data = self._loader.load_from_file(path) or {}
        if not isinstance(data, dict):
            raise AnsibleActionFail("%s: not a mapping of variables" % path)
        return data

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        roles_dir = args.get("roles_dir")
        roles = list(args.get("roles") or [])
        role = args.get("role")
        family = args.get("os_family")
        if not roles_dir or not role or not family or not args.get("templates"):
            raise AnsibleActionFail("audit_render_role needs roles_dir, roles, role, templates and os_family")
        if role not in roles:
            roles.append(role)
        defaults, role_vars, family_vars, loaded = {}, {}, {}, []
        for name in roles:
            base = os.path.join(roles_dir, name)
            if not os.path.isdir(base):
                raise AnsibleActionFail("role %s not found in %s" % (name, roles_dir))
            for layer, rel in ((defaults, "defaults/main.yml"), (role_vars, "vars/main.yml"),
                               (family_vars, "vars/%s.yml" % family)):
                path = os.path.join(base, rel)
                if os.path.isfile(path):
                    layer.update(self._load(path))
                    loaded.append(os.path.relpath(path, roles_dir))
        variables = dict(defaults)
        variables.update(task_vars)
        variables.update(role_vars)
        variables.update(family_vars)

        rendered = {}
        for name in args["templates"]:
            source = os.path.join(roles_dir, role, "templates", name)
            if not os.path.isfile(source):
                raise AnsibleActionFail("template %s not found" % source)
            with open(source, "rb") as handle:
                data = handle.read().decode("utf-8")
            template_vars = dict(variables)
            template_vars.update(generate_ansible_template_vars(name, source, None))
            # The lookups of a template (query('varnames'...) in postfix_fragments) are bound to
            # this templar, not to a copy: give it the role's variables for the time of rendering.
            try:
                with self._templar.set_temporary_context(available_variables=template_vars,
                                                         searchpath=[os.path.dirname(source)]):
                    rendered[name] = self._templar.do_template(
                        data, preserve_trailing_newlines=True, escape_backslashes=False,
                        overrides={"trim_blocks": True, "lstrip_blocks": False})
            except Exception as error:  # pylint: disable=broad-except
                raise AnsibleActionFail("rendering %s: %s: %s" % (source, type(error).__name__, error))
        result.update(changed=False, rendered=rendered, loaded=loaded)
        return result
