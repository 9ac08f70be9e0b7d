"""One source for the documentation Ansible users read (ansible-doc), issue 16 item 5.

Roles: every variable of roles/<role>/defaults/main.yml is an option of the role's main entry
point in meta/argument_specs.yml, and the other way round (except the shared host variables the
validate role documents). The rule for the default:

* a literal default (no Jinja) is written as ``default:`` with the same value;
* a templated default (evaluated per host) has NO ``default:`` key - the validate role runs
  validate_argument_spec on these specs, which would check the unrendered template string against
  ``type``/``choices`` and refuse every host that leaves the variable unset - and the last item of
  its description is ``Default (evaluated per host): <the expression>`` (white space collapsed).

Modules and filters: ``ansible-doc --json`` parses the documentation of every module of
plugins/modules and every filter of the FilterModule classes, with examples and return values; a
module's documented options agree with its argument_spec, a filter's with its function's parameters.
"""

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFIX = "mailward.mail."
TEMPLATED = "Default (evaluated per host): "
# Host variables shared by several roles (docs/schema.md): documented by the validate role, which
# checks them, with no role default.
SHARED_HOST_VARIABLES = {"mail_hostname", "mail_mynetworks", "mail_public_ipv4", "mail_public_ipv6", "mail_domains"}

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTER_FILES = sorted(p.stem for p in (ROOT / "filter_plugins").glob("*.py") if p.stem != "__init__")


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def defaults_of(role):
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return (load(path) or {}) if path.is_file() else {}


def specs_of(role):
    return load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]


def main_options(role):
    return specs_of(role)["main"].get("options") or {}


def is_templated(value):
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(is_templated(v) for v in value)
    if isinstance(value, dict):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    return False


def templated_line(value):
    """The description item a templated default must end with."""
    shown = value if isinstance(value, str) else json.dumps(value)
    return TEMPLATED + " ".join(shown.split())


def same(a, b):
    """Equal, and of the same JSON type (true is not 1, "3" is not 3)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def descriptions(spec):
    text = spec.get("description")
    return text if isinstance(text, list) else [text]


def spec_problems(role, defaults, options):
    """Every disagreement between a role's defaults and its main entry point's options."""
    problems = []
    for name in sorted(set(defaults) - set(options)):
        problems.append("%s: %s is in defaults/main.yml but not in meta/argument_specs.yml" % (role, name))
    for name in sorted(set(options) - set(defaults) - SHARED_HOST_VARIABLES):
        problems.append("%s: option %s has no default in defaults/main.yml" % (role, name))
    for name in sorted(set(options) & set(defaults)):
        spec, value = options[name], defaults[name]
        if is_templated(value):
            if "default" in spec:
                problems.append("%s: %s: a templated default must not be a default: key (validate_argument_spec would "
                                "check the unrendered string), got default: %r" % (role, name, spec["default"]))
            if descriptions(spec)[-1] != templated_line(value):
                problems.append("%s: %s: the description must end with %r" % (role, name, templated_line(value)))
        elif "default" not in spec:
            problems.append("%s: %s: default: %r missing in meta/argument_specs.yml" % (role, name, value))
        elif not same(spec["default"], value):
            problems.append("%s: %s: argument_specs default %r, defaults/main.yml %r" % (role, name, spec["default"], value))
    for name in sorted(set(options) - set(defaults)):
        if "default" in options[name]:
            problems.append("%s: %s: default: in argument_specs but no value in defaults/main.yml" % (role, name))
    return problems


def undocumented(options, path):
    """Options (and sub-options) without type or description."""
    missing = []
    for name, spec in (options or {}).items():
        for key in ("type", "description"):
            if not spec.get(key):
                missing.append("%s%s: no %s" % (path, name, key))
        missing.extend(undocumented(spec.get("options"), "%s%s." % (path, name)))
    return missing


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role):
    assert spec_problems(role, defaults_of(role), main_options(role)) == []


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_type_and_description(role):
    missing = []
    for entry, spec in specs_of(role).items():
        assert spec.get("short_description"), "%s: entry point %s has no short_description" % (role, entry)
        missing.extend(undocumented(spec.get("options"), "%s/%s: " % (role, entry)))
    assert missing == []


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_change_nothing_the_validate_role_refuses(role):
    """roles/validate checks host variables with validate_argument_spec, which fills in default:
    values before checking type and choices: with nothing set, a role's spec must accept its own defaults."""
    result = ArgumentSpecValidator(main_options(role)).validate({}, validate_role_argument_spec=True)
    assert result.error_messages == []


def test_the_rule_catches_wrong_specs():
    """The checks above fail on a deliberately wrong spec (seen red), one problem per kind of mistake."""
    defaults = {"x_port": 25, "x_flag": True, "x_name": "{{ inventory_hostname }}", "x_gone": []}
    options = {
        "x_port": {"type": "int", "default": "25", "description": "A port."},          # "25" is not 25
        "x_flag": {"type": "bool", "default": 1, "description": "A flag."},           # 1 is not true
        "x_name": {"type": "str", "default": "{{ inventory_hostname }}", "description": "A name."},
        "x_extra": {"type": "str", "default": "", "description": "Not in defaults."},
    }
    problems = spec_problems("x", defaults, options)
    assert any("x_port: argument_specs default '25'" in p for p in problems)
    assert any("x_flag: argument_specs default 1" in p for p in problems)
    assert any("x_name: a templated default must not be a default: key" in p for p in problems)
    assert any("x_name: the description must end with" in p for p in problems)
    assert any("x_gone is in defaults/main.yml but not in meta/argument_specs.yml" in p for p in problems)
    assert any("option x_extra has no default in defaults/main.yml" in p for p in problems)
    assert len(problems) == 7, problems
    fixed = {
        "x_port": {"type": "int", "default": 25, "description": "A port."},
        "x_flag": {"type": "bool", "default": True, "description": "A flag."},
        "x_name": {"type": "str", "description": ["A name.", TEMPLATED + "{{ inventory_hostname }}"]},
        "x_gone": {"type": "list", "default": [], "description": "Gone."},
    }
    assert spec_problems("x", defaults, fixed) == []
    # A templated string as default: is what the validate role would refuse.
    wrong = {"x_kind": {"type": "str", "choices": ["hash", "lmdb"], "default": "{{ 'lmdb' if x else 'hash' }}"}}
    assert ArgumentSpecValidator(wrong).validate({}, validate_role_argument_spec=True).error_messages


def ansible_doc(kind, names):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(BIN / "ansible-doc"), "--json", "-t", kind, *[PREFIX + n for n in names]],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # A plugin whose documentation does not parse is left out of the JSON with a warning on stderr.
    assert "could not parse" not in proc.stderr.lower() and "duplicate" not in proc.stderr.lower(), proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted(PREFIX + n for n in names), proc.stderr
    return docs


def test_ansible_doc_lists_every_role_option():
    docs = ansible_doc("role", ROLES)
    for role in ROLES:
        doc = docs[PREFIX + role]["entry_points"]["main"]
        assert sorted(doc.get("options") or {}) == sorted(main_options(role)), role
        for name, value in defaults_of(role).items():
            if not is_templated(value):
                assert same(doc["options"][name].get("default"), value), (role, name)


def argument_spec_of(module):
    """The module's AnsibleModule(argument_spec=dict(...)) as literals (non-literal values are left out)."""
    tree = ast.parse((ROOT / "plugins" / "modules" / ("%s.py" % module)).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AnsibleModule":
            spec_node = next(k.value for k in node.keywords if k.arg == "argument_spec")
            spec = {}
            for option in spec_node.keywords:
                attrs = {}
                for attr in option.value.keywords:
                    try:
                        attrs[attr.arg] = ast.literal_eval(attr.value)
                    except ValueError:
                        attrs[attr.arg] = NotImplemented
                spec[option.arg] = attrs
            return spec
    raise AssertionError("%s: no AnsibleModule(argument_spec=...) call" % module)


def test_every_module_has_documentation_examples_and_return_values_that_match_its_code():
    docs = ansible_doc("module", MODULES)
    problems = []
    for module in MODULES:
        entry = docs[PREFIX + module]
        doc = entry["doc"]
        for key in ("short_description", "description", "author"):
            if not doc.get(key):
                problems.append("%s: no %s" % (module, key))
        if not (entry.get("examples") or "").strip():
            problems.append("%s: no EXAMPLES" % module)
        if not entry.get("return"):
            problems.append("%s: no RETURN" % module)
        if PREFIX + module not in (entry.get("examples") or ""):
            problems.append("%s: EXAMPLES do not call it by its FQCN" % module)
        code = argument_spec_of(module)
        documented = doc.get("options") or {}
        if sorted(code) != sorted(documented):
            problems.append("%s: options documented %s, argument_spec %s" % (module, sorted(documented), sorted(code)))
            continue
        for name, attrs in code.items():
            option = documented[name]
            expected = {"type": attrs.get("type", "str"), "required": attrs.get("required", False),
                        "choices": attrs.get("choices"), "elements": attrs.get("elements")}
            if attrs.get("default", None) is not NotImplemented:
                expected["default"] = attrs.get("default")
            for key, value in expected.items():
                if not same(option.get(key, False if key == "required" else None), value):
                    problems.append("%s: %s: %s documented %r, argument_spec %r"
                                    % (module, name, key, option.get(key), value))
    assert problems == []


def filters():
    """Filter name -> function, from the FilterModule classes of filter_plugins/*.py."""
    found = {}
    for stem in FILTER_FILES:
        plugin = importlib.import_module("ansible_collections.mailward.mail.plugins.filter.%s" % stem)
        found.update(plugin.FilterModule().filters())
    return found


def test_every_filter_has_documentation_examples_and_return_values_that_match_its_function():
    functions = filters()
    assert len(functions) > 30
    docs = ansible_doc("filter", sorted(functions))
    problems = []
    for name, function in sorted(functions.items()):
        entry = docs[PREFIX + name]
        doc = entry["doc"]
        if doc.get("name") != name:
            problems.append("%s: documented as %r" % (name, doc.get("name")))
        if not doc.get("short_description") or not doc.get("description"):
            problems.append("%s: no short_description/description" % name)
        if PREFIX + name not in (entry.get("examples") or ""):
            problems.append("%s: no EXAMPLES calling it by its FQCN" % name)
        if "_value" not in (entry.get("return") or {}):
            problems.append("%s: no RETURN _value" % name)
        params = list(inspect.signature(function).parameters)
        documented = doc.get("options") or {}
        if sorted(documented) != sorted(["_input"] + params[1:]):
            problems.append("%s: options documented %s, parameters %s" % (name, sorted(documented), params))
        for option in documented.values():
            if not option.get("description") or not option.get("type"):
                problems.append("%s: an option without description or type" % name)
        positional = [p.strip() for p in str(doc.get("positional", "")).split(",") if p.strip()]
        if positional[:1] != ["_input"] or positional[1:] != params[1:len(positional)]:
            problems.append("%s: positional %s, parameters %s" % (name, positional, params))
    assert problems == []
