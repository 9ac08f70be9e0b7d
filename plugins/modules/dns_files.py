#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: write many small text files in one call, only those whose content differs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dns_files
short_description: Write a set of text files into one directory, changing only those that differ
description:
  - One call for any number of files (zone fragments, MTA-STS policies), so that a thousand
    domains do not mean a thousand template tasks. Each file is compared with what is on disk
    and replaced atomically only when its content (or mode) differs. Files not listed are left alone.
options:
  path:
    description: The directory; created (with parents) when missing.
    type: path
    required: true
  files:
    description: File name (no directory part) to content (a string).
    type: dict
    required: true
  mode:
    description: Mode of the files written, in octal.
    type: str
    default: "0644"
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
seealso:
  - plugin: mailward.mail.dns_zone_fragments
    plugin_type: filter
author: mailward
"""

EXAMPLES = r"""
- name: Write the zone fragments
  mailward.mail.dns_files:
    path: /srv/dns
    files:
      example.test.zone: "example.test. 3600 IN MX 10 mx.example.test.\n"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
written:
  description: The files that were (or, in check mode, would be) written.
  type: list
  elements: str
  returned: always
  sample: [example.test.zone]
unchanged:
  description: How many files already had the right content and mode.
  type: int
  returned: always
  sample: 12
path:
  description: The directory.
  type: str
  returned: always
  sample: /srv/dns
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            files=dict(type="dict", required=True),
            mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    directory = module.params["path"]
    mode = int(module.params["mode"], 8)
    written, diffs, unchanged = [], [], 0
    for name in sorted(module.params["files"]):
        if not name or os.sep in name or name in (".", ".."):
            module.fail_json(msg="file name %r: must be a plain file name" % name)
        content = module.params["files"][name]
        if not isinstance(content, str):
            module.fail_json(msg="%s: content must be a string" % name)
        data = content.encode("utf-8")
        target = os.path.join(directory, name)
        try:
            with open(target, "rb") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current == data and (os.stat(target).st_mode & 0o7777) == mode:
            unchanged += 1
            continue
        written.append(name)
        if module._diff:
            diffs.append({"before_header": target, "after_header": target,
                          "before": current.decode("utf-8", "replace") if current is not None else "",
                          "after": content})
        if module.check_mode:
            continue
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".%s." % name, dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            module.fail_json(msg="%s: %s" % (target, exc))
    module.exit_json(changed=bool(written), written=written, unchanged=unchanged, path=directory, diff=diffs)


if __name__ == "__main__":
    main()
