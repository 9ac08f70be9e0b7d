#!/usr/bin/env bash
# The declared dependencies are enough: a virtualenv holding only ansible-core and the
# controller's Python requirements (requirements.txt, versions from requirements.lock), the
# collections of collections/requirements.yml (names and ranges as written there) and
# mailward.mail built by `ansible-galaxy collection build` and installed from its tarball, runs
#   1. ansible-playbook --syntax-check of mailward.mail.site (the installed collection's playbook)
#      and of the repository's site.yml,
#   2. the RedHat render playbook (tests/redhat/render.yml, EL 9 and EL 10), whose output must be
#      byte-identical to what the development .venv renders;
# and `ansible-builder create` turns execution-environment.yml into a build context.
#
# Offline: Galaxy is not reachable here, so each collection of the requirements file is
# installed from the copy that the `ansible` package in .venv carries (an installed collection
# directory, with its MANIFEST.json), through a generated requirements file whose entries are
# `type: dir` with the original version range: ansible-galaxy refuses a copy outside the range.
# A collection the requirements file leaves out is not installed, so a play that needs it fails.
#
# The venv is cached under build/minimal-env/, keyed by requirements.txt, requirements.lock and
# the Python version; the collections are installed afresh on every run (a second or two).
# Environment: MINIMAL_ENV_REQUIREMENTS=<file> checks another collections requirements file and
# MINIMAL_ENV_WORK=<dir> puts the collections, logs and renders there instead of
# build/minimal-env/run (tests/playbooks/test_minimal_env.py sees the check fail without
# community.general that way).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=$root/.venv/bin
requirements=${MINIMAL_ENV_REQUIREMENTS:-collections/requirements.yml}
base=$root/build/minimal-env
work=$(realpath -m "${MINIMAL_ENV_WORK:-$base/run}")
say() { echo "minimal-env: $*"; }
fail() { echo "minimal-env: FAILED: $*" >&2; exit 1; }

[[ -x $dev/python ]] || fail "no .venv (run make setup first)"
mkdir -p "$base" "$work"

# --- 1. The venv: ansible-core + requirements.txt, nothing else -------------------------------
key=$( { cat requirements.txt requirements.lock; python3 -VV; } | sha256sum | cut -c1-16)
venv=$base/venv-$key
if [[ ! -f $venv/.complete ]]; then
  say "creating $venv (ansible-core + requirements.txt, versions from requirements.lock)"
  rm -rf "$base"/venv-*
  python3 -m venv "$venv"
  # The same pip configuration (index, find-links) as scripts/setup.sh; -c: the locked versions
  # of the transitive packages (Jinja2, PyYAML, cffi, ...) too.
  { "$venv/bin/pip" install -q --upgrade pip && "$venv/bin/pip" install -q -r requirements.txt -c requirements.lock; } \
    >"$base/pip.log" 2>&1 || { cat "$base/pip.log"; fail "pip could not install requirements.txt"; }
  "$venv/bin/python" -c 'import ansible, dns, cryptography, passlib' || fail "the venv is incomplete"
  touch "$venv/.complete"
fi
# Only what requirements.txt asks for (and what that pulls in): no ansible package, no
# collections on sys.path, none of the development tools.
"$venv/bin/python" -I - <<'EOF' || fail "the minimal venv holds more than ansible-core and requirements.txt"
import importlib.util, sys
extra = [m for m in ("ansible_collections", "molecule", "ansiblelint", "pytest", "hypothesis", "dkim", "yamllint")
         if importlib.util.find_spec(m)]
if extra:
    sys.exit("unexpected in the minimal venv: %s" % ", ".join(extra))
EOF
bin=$venv/bin
say "ansible-core $("$bin/python" -c 'import ansible.release; print(ansible.release.__version__)'), $("$bin/python" -V)"

# Ansible in the minimal venv sees only build/minimal-env/collections (and, for a playbook, its
# adjacent collections/ directory: site.yml's is the repository's link to itself).
collections=$work/collections
export ANSIBLE_CONFIG=$root/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$collections \
       ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
rm -rf "$collections" "$work/renders" "$work/dist"
mkdir -p "$collections"

# --- 2. The collections of the requirements file, offline, ranges enforced ----------------------
copies=$("$dev/python" -I -c 'from importlib.metadata import distribution; print(distribution("ansible").locate_file("ansible_collections"))') \
  || fail "no ansible_collections in .venv (the ansible package of requirements-dev.txt)"
"$bin/python" - "$requirements" "$copies" "$work/requirements-local.yml" <<'EOF' || fail "cannot map $requirements to local copies"
import os, sys, yaml
src, copies, out = sys.argv[1:]
entries = []
for item in yaml.safe_load(open(src))["collections"]:
    item = {"name": item} if isinstance(item, str) else item
    namespace, name = item["name"].split(".")
    path = os.path.join(copies, namespace, name)
    if not os.path.isfile(os.path.join(path, "MANIFEST.json")):
        sys.exit("%s: %s has no local copy at %s" % (src, item["name"], path))
    entries.append({"name": path, "type": "dir", "version": str(item.get("version", "*"))})
    print("minimal-env: %s %s from %s" % (item["name"], item.get("version", "*"), path))
yaml.safe_dump({"collections": entries}, open(out, "w"), sort_keys=False)
EOF
"$bin/ansible-galaxy" collection install --offline -r "$work/requirements-local.yml" -p "$collections" >"$work/galaxy.log" 2>&1 \
  || { cat "$work/galaxy.log"; fail "ansible-galaxy could not install $requirements"; }

# --- 3. mailward.mail, built and installed from its tarball ------------------------------------
"$bin/ansible-galaxy" collection build --output-path "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; fail "ansible-galaxy collection build"; }
tarball=$(ls "$work"/dist/mailward-mail-*.tar.gz)
# --no-deps: only the requirements file brings other collections (its check is the point here);
# galaxy.yml's dependencies are resolved in step 5.
"$bin/ansible-galaxy" collection install --offline --no-deps -p "$collections" "$tarball" >>"$work/galaxy.log" 2>&1 \
  || { cat "$work/galaxy.log"; fail "ansible-galaxy could not install $tarball"; }
installed=$collections/ansible_collections/mailward/mail
say "installed $("$bin/ansible-galaxy" collection list -p "$collections" 2>/dev/null | awk '/^[a-z_]+\.[a-z_]+ /{printf "%s %s  ", $1, $2}')"

# The installed copy is whole: no broken symlink, every symlink stays inside it, the filter
# plugins once (plugins/filter is the link to filter_plugins/), module_utils and roles present.
broken=$(find "$installed" -xtype l)
[[ -z $broken ]] || fail "broken symlinks in the installed collection: $broken"
while IFS= read -r link; do
  target=$(realpath "$link")
  [[ $target == "$installed"/* ]] || fail "$link points outside the collection: $target"
done < <(find "$installed" -type l)
[[ -L $installed/plugins/filter && $(realpath "$installed/plugins/filter") == "$installed/filter_plugins" ]] \
  || fail "plugins/filter is not the link to filter_plugins/ in the installed collection"
for f in filter_plugins/*.py plugins/modules/*.py plugins/action/*.py plugins/module_utils/*.py; do
  count=$(find "$installed" -type f -name "$(basename "$f")" -path "*/$(dirname "$f")/*" | wc -l)
  [[ $count == 1 ]] || fail "$f: $count copies in the installed collection (want 1)"
  cmp -s "$f" "$installed/$f" || fail "$f differs in the installed collection"
done
for role in roles/*/; do
  [[ -d $installed/$role/tasks ]] || fail "$role is missing from the installed collection"
done
for junk in tests molecule collections .venv bench; do
  [[ ! -e $installed/$junk ]] || fail "the built collection contains $junk/"
done

# --- 4. Syntax checks and the render --------------------------------------------------------
"$bin/ansible-playbook" --syntax-check -i localhost, mailward.mail.site >"$work/syntax-collection.log" 2>&1 \
  || { cat "$work/syntax-collection.log"; fail "--syntax-check mailward.mail.site"; }
say "ansible-playbook --syntax-check mailward.mail.site: ok"
"$bin/ansible-playbook" --syntax-check -i localhost, site.yml >"$work/syntax-site.log" 2>&1 \
  || { cat "$work/syntax-site.log"; fail "--syntax-check site.yml"; }
say "ansible-playbook --syntax-check site.yml: ok"

# tests/redhat/conftest.py's own render command (one home for the Postfix version per EL major),
# with this venv's ansible-playbook and Python; the same command with .venv's is the reference.
PYTHONPATH=tests/redhat "$dev/python" - "$bin" "$work/renders" >"$work/render-commands.sh" <<'EOF'
import json, shlex, sys
import conftest
minimal_bin, out = sys.argv[1:]
for major in sorted(conftest.EL_POSTFIX):
    for who, bindir in (("minimal", minimal_bin), ("reference", str(conftest.BIN))):
        argv = conftest.render_command("%s/%s-el%s" % (out, who, major), major)
        argv[0] = bindir + "/ansible-playbook"
        extra = json.loads(argv[-1])
        extra["ansible_python_interpreter"] = bindir + "/python"
        argv[-1] = json.dumps(extra)
        if who == "reference":  # .venv's Ansible with its own collections, as make pytest runs it
            argv = ["env", "-u", "ANSIBLE_COLLECTIONS_PATH", "-u", "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] + argv
        print("%s > %s 2>&1 & pids+=($!)" % (" ".join(map(shlex.quote, argv)),
                                             shlex.quote("%s/%s-el%s.log" % (out, who, major))))
print('status=0; for pid in "${pids[@]}"; do wait "$pid" || status=1; done; exit $status')
EOF
mkdir -p "$work/renders"
if ! ANSIBLE_LIBRARY=$root/tests/redhat/library bash "$work/render-commands.sh"; then
  tail -n 30 "$work"/renders/*.log
  fail "the render playbook (tests/redhat/render.yml) failed"
fi
for dir in "$work"/renders/minimal-el*/; do
  major=${dir%/}; major=${major##*-el}
  files=$(find "$dir" -type f | wc -l)
  ((files >= 10)) || fail "EL $major: only $files files rendered"
  diff -r "$dir" "$work/renders/reference-el$major" >/dev/null \
    || { diff -r "$dir" "$work/renders/reference-el$major" | head -40; fail "EL $major: the minimal venv renders differently"; }
  say "render EL $major: $files files, identical to .venv's"
done

# --- 5. galaxy.yml's dependencies are met by what the requirements file installed --------------
"$bin/ansible-galaxy" collection install --offline --force -p "$collections" "$tarball" >>"$work/galaxy.log" 2>&1 \
  || { cat "$work/galaxy.log"; fail "mailward.mail's dependencies (galaxy.yml) are not met by $requirements"; }
say "galaxy.yml's dependencies resolve against the installed collections"

# --- 6. The execution environment's build context -----------------------------------------
# execution-environment.yml takes the tarball from build/collection/.
rm -rf build/collection build/ee-context
mkdir -p build/collection
cp "$tarball" build/collection/
"$dev/ansible-builder" create -f execution-environment.yml -c build/ee-context >"$work/ee.log" 2>&1 \
  || { cat "$work/ee.log"; fail "ansible-builder create"; }
for f in Containerfile _build/requirements.yml _build/requirements.txt _build/bindep.txt "_build/collections/$(basename "$tarball")"; do
  [[ -s build/ee-context/$f ]] || fail "ansible-builder create made no build/ee-context/$f"
done
cmp -s collections/requirements.yml build/ee-context/_build/requirements.yml || fail "the EE context's galaxy requirements differ"
cmp -s requirements.txt build/ee-context/_build/requirements.txt || fail "the EE context's Python requirements differ"
say "ansible-builder create: build/ee-context (Containerfile, requirements, bindep, $(basename "$tarball"))"
say "ok"
