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
    and replaced atomically only when its content (or mode) differs.
  - With O(manifest), the module lists in that file of the directory every file it wrote, with
    the domains and record families each holds. A file listed there and not in O(files) now is
    removed (pruned) when O(prune) is true, all its domains are in O(prune_scope) and all its
    families in O(prune_families); otherwise it stays listed. A file the manifest does not list
    (a foreign file, a file of a version without manifest) is never removed. Without
    O(manifest), files not listed are left alone.
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
  manifest:
    description:
      - Name of the manifest file inside O(path) (the dns role uses C(.mailward-dns-files.json)).
        Empty - no manifest and no pruning.
      - A manifest that cannot be read as one fails the task before anything is removed.
    type: str
    default: ""
  owners:
    description:
      - File name to C({domains, families}) - the mail domains (or MX host names) and the
        record families (dns_manage_types names) whose records the file holds. Recorded in the manifest.
    type: dict
    default: {}
  prune:
    description: Remove files of the manifest that are no longer in O(files) (see the description).
    type: bool
    default: true
  prune_scope:
    description: Domains whose files may be removed.
    type: list
    elements: str
    default: []
  prune_families:
    description: Record families whose files may be removed.
    type: list
    elements: str
    default: []
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
removed:
  description: Files of the manifest that were (or, in check mode, would be) removed.
  type: list
  elements: str
  returned: always
  sample: [old.example.zone]
manifest_changed:
  description: Whether the manifest was (or would be) rewritten.
  type: bool
  returned: always
  sample: false
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

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mailward.mail.plugins.module_utils.dns_plan import MANIFEST_FORMAT, manifest_plan


def _plain(name):
    return bool(name) and os.sep not in name and name not in (".", "..")


def _write(module, directory, name, data, mode):
    """Replace one file atomically."""
    target = os.path.join(directory, name)
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


def read_manifest(path):
    """{file: {domains, families}} of the manifest at ``path``; {} when there is none.

    Raises ValueError for a manifest that cannot be trusted (never guess what is ours)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("files"), dict):
        raise ValueError("not a manifest of format %d" % MANIFEST_FORMAT)
    files = data["files"]
    if not all(_plain(k) and isinstance(v, dict) for k, v in files.items()):
        raise ValueError("a file entry is not a plain file name with its domains and families")
    return files


def manifest_text(files):
    return json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1, sort_keys=True) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            files=dict(type="dict", required=True),
            mode=dict(type="str", default="0644"),
            manifest=dict(type="str", default=""),
            owners=dict(type="dict", default={}),
            prune=dict(type="bool", default=True),
            prune_scope=dict(type="list", elements="str", default=[]),
            prune_families=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    directory = params["path"]
    mode = int(params["mode"], 8)
    manifest = params["manifest"]
    if manifest and (not _plain(manifest) or manifest in params["files"]):
        module.fail_json(msg="manifest %r: must be a plain file name that is not one of files" % manifest)
    written, diffs, unchanged = [], [], 0
    for name in sorted(params["files"]):
        if not _plain(name):
            module.fail_json(msg="file name %r: must be a plain file name" % name)
        content = params["files"][name]
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
        if not module.check_mode:
            _write(module, directory, name, data, mode)

    # Pruning: only files an earlier run listed in the manifest (a foreign file never is).
    removed, manifest_changed = [], False
    if manifest:
        path = os.path.join(directory, manifest)
        try:
            old = read_manifest(path)
        except (OSError, ValueError) as exc:
            module.fail_json(msg="%s: %s; nothing was pruned. Fix or remove it (the next run then lists only "
                                 "the files it writes, and never removes the others)" % (path, exc),
                             written=written, removed=[], unchanged=unchanged, path=directory)
        owners = dict((name, params["owners"].get(name) or {}) for name in params["files"])
        new, remove = manifest_plan(old, owners, params["prune"], params["prune_scope"], params["prune_families"])
        for name in remove:
            target = os.path.join(directory, name)
            if not os.path.lexists(target):
                continue
            removed.append(name)
            if module._diff:
                try:
                    with open(target, "rb") as handle:
                        before = handle.read().decode("utf-8", "replace")
                except OSError:
                    before = ""
                diffs.append({"before_header": target, "after_header": "%s (removed)" % target,
                              "before": before, "after": ""})
            if not module.check_mode:
                try:
                    os.unlink(target)
                except OSError as exc:
                    module.fail_json(msg="%s: %s" % (target, exc))
        text = manifest_text(new).encode("utf-8")
        try:
            with open(path, "rb") as handle:
                manifest_changed = handle.read() != text
        except FileNotFoundError:
            manifest_changed = bool(new)
        if manifest_changed and not module.check_mode:
            _write(module, directory, manifest, text, 0o644)
    module.exit_json(changed=bool(written or removed or manifest_changed), written=written, removed=removed,
                     manifest_changed=manifest_changed, unchanged=unchanged, path=directory, diff=diffs)


if __name__ == "__main__":
    main()
