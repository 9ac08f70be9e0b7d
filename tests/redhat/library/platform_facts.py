#!/usr/bin/python
"""Test-only module: pretend the host is of another platform by returning its facts."""

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: platform_facts
short_description: Return the given os_family/distribution facts (render tests only)
options:
  facts:
    description: Facts to return as ansible_facts.
    type: dict
    required: true
"""


def main():
    module = AnsibleModule(argument_spec={"facts": {"type": "dict", "required": True}},
                           supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=module.params["facts"])


if __name__ == "__main__":
    main()
