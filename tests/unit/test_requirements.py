"""The declared dependencies agree with the code and with each other.

- requirements.txt (the controller's runtime) covers every third-party import of plugins/ and
  filter_plugins/, and holds no development tool; requirements-dev.txt holds the tools;
  requirements.lock pins every package of both at the same version.
- collections/requirements.yml declares every collection the roles and playbooks call by FQCN
  (requirements-test.yml adds what molecule and the demo use), each module or plugin exists in
  the copy the tests run with, and no lower bound is below the release that added it.
- galaxy.yml's dependencies are the ranges of collections/requirements.yml.
- execution-environment.yml (ansible-builder v3) points at those files and pins ansible-core as
  requirements.txt does.
scripts/minimal-env.sh (make minimal-env) proves that these files alone run the playbooks.
"""

import ast
import glob
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.compat.version import LooseVersion

ROOT = Path(__file__).resolve().parents[2]
COPIES = Path(str(importlib.metadata.distribution("ansible").locate_file("ansible_collections")))

# Imported by module_utils/fromcheck.py only, which runs on the mail host as the submission
# milter (the submission role installs pymilter there), never on the controller.
TARGET_ONLY_IMPORTS = {"Milter"}
# Python import name -> the distribution requirements.txt names.
IMPORT_TO_DIST = {"dns": "dnspython", "cryptography": "cryptography", "passlib": "passlib"}
# Optional runtime imports: import name -> (distribution, the requirements file that pins it). The
# module importing it fails with missing_required_lib naming that file when it is absent.
OPTIONAL_IMPORTS = {"parsedmarc": ("parsedmarc", "requirements-dmarc.txt")}
DEV_TOOLS = {"ansible", "ansible-lint", "molecule", "molecule-plugins", "pytest", "pytest-testinfra",
             "yamllint", "hypothesis", "dkimpy", "matplotlib", "ansible-builder"}


def pins(path):
    """{normalized name: version} of a pip requirements file (follows -r)."""
    found = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found.update(pins(Path(path).parent / line[3:].strip()))
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        assert match, "%s: %r is not an exact pin (name==version)" % (path, raw)
        found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return found


def collection_ranges(path):
    return {item["name"]: item["version"] for item in yaml.safe_load((ROOT / path).read_text())["collections"]}


def lower_bound(spec):
    bounds = [part[2:] for part in spec.split(",") if part.startswith(">=")]
    assert len(bounds) == 1, "%r: one lower bound (>=) expected" % spec
    return bounds[0]


def test_requirement_files_are_pinned_and_locked():
    lock = pins(ROOT / "requirements.lock")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for dist, version in pins(ROOT / name).items():
            assert lock.get(dist) == version, "%s pins %s==%s, requirements.lock %s" % (name, dist, version, lock.get(dist))


def test_runtime_and_dev_are_split():
    runtime = pins(ROOT / "requirements.txt")
    dev_only = set(pins(ROOT / "requirements-dev.txt")) - set(runtime)
    assert "ansible-core" in runtime
    assert not DEV_TOOLS & set(runtime), "development tools in requirements.txt: %s" % (DEV_TOOLS & set(runtime))
    assert DEV_TOOLS <= dev_only, "missing from requirements-dev.txt: %s" % (DEV_TOOLS - dev_only)


def third_party_imports():
    """{top-level module: [files]} imported by the collection's Python code."""
    found = {}
    for path in sorted(glob.glob(str(ROOT / "plugins/**/*.py"), recursive=True) + glob.glob(str(ROOT / "filter_plugins/*.py"))):
        if "/plugins/filter/" in path:  # the link to filter_plugins/
            continue
        for node in ast.walk(ast.parse(Path(path).read_text(), path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("__future__", "ansible", "ansible_collections"):
                    continue
                found.setdefault(top, []).append(Path(path).relative_to(ROOT).as_posix())
    return found


def test_requirements_txt_covers_the_plugins_imports():
    imports = third_party_imports()
    runtime = pins(ROOT / "requirements.txt")
    assert {"dns", "cryptography", "passlib"} <= set(imports), imports  # the scan sees them
    for module, files in imports.items():
        if module in TARGET_ONLY_IMPORTS:
            continue
        if module in OPTIONAL_IMPORTS:
            dist, where = OPTIONAL_IMPORTS[module]
            assert dist in pins(ROOT / where) and dist not in runtime, "%s: pinned in %s only" % (dist, where)
            continue
        assert module in IMPORT_TO_DIST, "%s (imported by %s): which distribution? add it to requirements.txt" % (module, files)
        assert IMPORT_TO_DIST[module] in runtime, "%s (imported by %s) is not in requirements.txt" % (IMPORT_TO_DIST[module], files)


def fqcns(paths):
    """{collection: {plugin names}} of the non-builtin, non-mailward FQCNs in these YAML files:
    task keys (modules) and names in strings (lookups, filters, connections)."""
    found = {}
    pattern = re.compile(r"\b([a-z0-9_]+\.[a-z0-9_]+)\.([a-z0-9_]+)\b")
    for path in paths:
        text = Path(path).read_text()
        for match in pattern.finditer(text):
            collection, plugin = match.groups()
            if collection.split(".")[0] not in ("community", "ansible", "containers") or collection == "ansible.builtin":
                continue
            found.setdefault(collection, set()).add(plugin)
    return found


def yaml_files(*patterns):
    return [p for pattern in patterns for p in glob.glob(str(ROOT / pattern), recursive=True)]


def plugin_exists(collection, plugin):
    base = COPIES.joinpath(*collection.split("."))
    if list(base.glob("plugins/*/%s.py" % plugin)):
        return True
    runtime = yaml.safe_load((base / "meta/runtime.yml").read_text()) or {}
    return any(plugin in (routing or {}) for routing in (runtime.get("plugin_routing") or {}).values())


def version_added(collection, plugin):
    for path in COPIES.joinpath(*collection.split(".")).glob("plugins/*/%s.py" % plugin):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOCUMENTATION" for t in node.targets):
                doc = yaml.safe_load(node.value.value)
                return str(doc.get("version_added", "")) or None
    return None


RUNTIME_FILES = ["roles/**/*.yml", "playbooks/*.yml", "site.yml"]
TEST_FILES = ["molecule/**/*.yml", "scripts/*.yml"]


@pytest.mark.parametrize("files,requirement_files", [
    (RUNTIME_FILES, ["collections/requirements.yml"]),
    (TEST_FILES, ["collections/requirements.yml", "collections/requirements-test.yml"]),
])
def test_every_fqcn_is_declared_and_exists(files, requirement_files):
    declared = {}
    for name in requirement_files:
        declared.update(collection_ranges(name))
    used = fqcns(yaml_files(*files))
    assert used, "no FQCN found: the scan is broken"
    for collection, plugins in sorted(used.items()):
        assert collection in declared, "%s (%s) is used but not in %s" % (collection, sorted(plugins), requirement_files)
        for plugin in sorted(plugins):
            assert plugin_exists(collection, plugin), "%s.%s does not exist in the copy at %s" % (collection, plugin, COPIES)
            added = version_added(collection, plugin)
            if added:
                bound = lower_bound(declared[collection])
                assert LooseVersion(added) <= LooseVersion(bound), (
                    "%s.%s is new in %s, but the lower bound is %s" % (collection, plugin, added, bound))


def test_runtime_requirements_are_what_the_roles_use():
    """Nothing declared for the run that the roles and playbooks do not call."""
    assert set(collection_ranges("collections/requirements.yml")) == set(fqcns(yaml_files(*RUNTIME_FILES)))


def test_the_copies_the_tests_use_are_in_range():
    for name in ("collections/requirements.yml", "collections/requirements-test.yml"):
        for collection, spec in collection_ranges(name).items():
            manifest = yaml.safe_load(COPIES.joinpath(*collection.split("."), "MANIFEST.json").read_text())
            version = LooseVersion(manifest["collection_info"]["version"])
            for part in spec.split(","):
                op, bound = re.fullmatch(r"(>=|<)(\S+)", part).groups()
                ok = version >= LooseVersion(bound) if op == ">=" else version < LooseVersion(bound)
                assert ok, "%s %s is outside %s (%s)" % (collection, version, spec, name)


def test_galaxy_dependencies_are_the_requirements_ranges():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert galaxy["dependencies"] == collection_ranges("collections/requirements.yml")


def test_execution_environment_points_at_the_declared_files():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert deps["galaxy"] == "collections/requirements.yml"
    assert deps["python"] == "requirements.txt"
    assert deps["system"] == "bindep.txt"
    for key in ("galaxy", "python", "system"):
        assert (ROOT / deps[key]).is_file(), deps[key]
    assert deps["ansible_core"]["package_pip"] == "ansible-core==" + pins(ROOT / "requirements.txt")["ansible-core"]
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    tarball = "%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"])
    sources = [entry["src"] for entry in ee["additional_build_files"]]
    assert any(Path(tarball).match(Path(src).name) for src in sources), (tarball, sources)


def test_execution_environment_is_valid_for_ansible_builder():
    """ansible-builder's own schema validation of the file."""
    from ansible_builder.user_definition import UserDefinition

    definition = UserDefinition(str(ROOT / "execution-environment.yml"))
    definition.validate()
    assert definition.version == 3
