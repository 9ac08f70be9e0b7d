#!/usr/bin/env python3
"""Benchmark: how long site.yml takes to converge mail hosts, and what a re-run costs.

Starts its own podman network (mailward-bench) and containers (mailward-bench-mx1..N) from the
base image, writes a temporary inventory shaped like inventory/demo under the output directory, and
runs ``ansible-playbook -i <inventory> site.yml`` for real. It measures, in one run:

  first converge   wall time of the first converge of one MX from the base image
  baseline         the idempotent re-run (1 host, 1 domain); the recap must say changed=0
  domains          re-run with 1 / 100 / 1000 domains on one host (one untimed converge with
                   that count first, so the keys exist; then the timed re-runs)
  hosts            re-run with 1 / 4 / 8 hosts, one domain each (extra hosts start from a snapshot
                   of mx1 taken after its first converge, to spare the package downloads)
  levers           ANSIBLE_PIPELINING=1, ANSIBLE_GATHERING=explicit, a persistent fact cache
                   (jsonfile) with smart gathering, and forks=1 on the largest host count; each as
                   a ratio against the re-run it modifies, interleaved with it in the same rounds
  ssh levers       the baseline re-run over SSH instead of podman exec (openssh-server installed
                   in mx1, a throwaway ed25519 key, ControlMaster/ControlPersist), with the
                   pipelining of ansible.cfg and without it (ANSIBLE_PIPELINING=0)

Every timed re-run is repeated (--reps, default 2 in full mode) and the median is reported.
Besides wall time it records the PLAY RECAP (tasks run, changed), the profile_tasks summary, and
every podman call the connection plugin makes: ANSIBLE_PODMAN_EXECUTABLE points at a small bash
wrapper that logs start, end and arguments of each call and then runs the real podman. Those are
the connection round trips (podman exec per remote command, podman mount per task and host).
The ssh levers count the same way through wrappers for ssh and sftp (ANSIBLE_SSH_EXECUTABLE,
ANSIBLE_SFTP_EXECUTABLE): one ssh process per remote command, one sftp per file transfer.

ansible-playbook runs from a copy of the playbooks and roles taken at the start
(<out>/converge/tree), so edits to the working tree during the benchmark don't show up as changes.

Prints a table and writes <out>/converge.json, <out>/converge.png (with matplotlib) and the logs
and inventories under <out>/converge/. Containers, network and snapshot image are removed at the
end, also on error or Ctrl-C. This is a benchmark, not a test: nothing fails on time.

Usage: .venv/bin/python bench/converge.py [--quick] [--out build/bench] [--reps N]
                                         [--levers all|none|LEVER,...]
                                         [--domain-counts 1,1000 | --host-counts 1,4,8]
(--levers other than all: first converge, baseline and those levers only, no domain/host scaling;
--domain-counts C1,C2 --levers none: first converge, then only the re-run of one MX per domain
count, each count on a host of its own, interleaved; --host-counts H1,H2 --levers none: first
converge, then only the re-run of inventories of H1, H2, ... hosts (one domain each, the extra
hosts from the snapshot), in rotating order, with the podman calls of every run; with either,
--levers ssh (over SSH) or mitogen (opt-in Mitogen strategy) adds the same re-runs with that lever)
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import lib_converge as lib  # bench/, the script's own directory, is sys.path[0]

PREFIX = "mailward-bench"
NETWORK = PREFIX
SNAPSHOT = "localhost/%s-snapshot:latest" % PREFIX
DEFAULT_IMAGE = "localhost/mailward-debian12:latest"

# The levers measured against the baseline re-run of one host; "ssh" names both ssh levers.
LEVERS = ["pipelining", "gathering-explicit", "fact-cache", "ssh", "ssh-no-pipelining",
          "mitogen", "mitogen-ssh"]
SSH_LEVERS = ("ssh", "ssh-no-pipelining", "mitogen-ssh")  # the ones that run over SSH
# Opt-in (requirements-mitogen.txt): the mitogen_linear strategy; "mitogen" over the podman
# connection, "mitogen-ssh" over SSH. `--levers all` leaves them out when Mitogen is not installed.
MITOGEN_LEVERS = ("mitogen", "mitogen-ssh")
# Levers that --domain-counts/--host-counts can add beside each podman re-run.
SERIES_LEVERS = SSH_LEVERS + ("mitogen",)
# The same names as Runner.lever_env and Runner.run see them ("ssh-no-pipelining" -> "ssh_no_pipelining").
SSH_LEVER_KEYS = tuple(lever.replace("-", "_") for lever in SSH_LEVERS)


def mitogen_strategy_plugins():
    """The directory of Mitogen's strategy plugins in .venv, or None when it is not installed."""
    try:
        import ansible_mitogen  # noqa: F401 (only where it is)
    except ImportError:
        return None
    return os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy")

# What ansible-playbook reads from the repository: copied to <out>/converge/tree at the start and
# run from there, so edits made to the working tree while the benchmark runs (it takes minutes)
# don't land in the middle of a series of re-runs and show up as changes.
# The collection mailward.mail as site.yml finds it: collections/ holds the link back to the copy's
# root, so the links are copied as links (symlinks=True), never followed.
TREE = ["ansible.cfg", "site.yml", "galaxy.yml", "meta", "playbooks", "roles", "filter_plugins", "plugins",
        "templates", "collections"]

MODES = {
    "full": {"domains": [1, 100, 1000], "hosts": [1, 4, 8], "reps": 2},
    "quick": {"domains": [1, 100], "hosts": [1, 2], "reps": 1},
}


class BenchError(RuntimeError):
    """Something the benchmark needs did not work (not a slow result: those are just figures)."""


def log(message):
    """One progress line on stderr, with the time of day."""
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def podman(*args, check=True, capture=True):
    """Run the real podman (never the counting wrapper) and return its stdout."""
    completed = subprocess.run(["podman"] + list(args), capture_output=capture, text=True,
                               check=False)
    if check and completed.returncode != 0:
        raise BenchError("podman %s: %s" % (" ".join(args), (completed.stderr or "").strip()))
    return (completed.stdout or "").strip()


class Lab:
    """The benchmark's podman network and containers; ``close`` removes all of them."""

    def __init__(self, image):
        self.image = image
        self.containers = []
        self.snapshot = None

    @staticmethod
    def name(number):
        """Container name of host ``number`` (from 1)."""
        return "%s-mx%d" % (PREFIX, number)

    def open(self):
        """Remove leftovers of an interrupted earlier run, then create the network."""
        for name in podman("ps", "-a", "--format", "{{.Names}}").split():
            if name.startswith(PREFIX + "-"):
                log("removing leftover container %s" % name)
                podman("rm", "-f", "-t", "0", name, check=False)
        if subprocess.run(["podman", "network", "exists", NETWORK], check=False).returncode == 0:
            podman("network", "rm", "-f", NETWORK, check=False)
        podman("network", "create", NETWORK)

    @staticmethod
    def gateway():
        """The bench network's gateway: podman's resolver (aardvark-dns) listens there."""
        return json.loads(podman("network", "inspect", NETWORK))[0]["subnets"][0]["gateway"]

    def start(self, number, image=None):
        """Start host ``number`` (systemd as PID 1) and wait until systemd is up."""
        name = self.name(number)
        hostname = "mx%d.%s" % (number, lib.DOMAIN_SUFFIX)
        podman("run", "-d", "--systemd=always", "--name", name, "--hostname", hostname,
               "--network", NETWORK, "--network-alias", hostname, image or self.image,
               "/sbin/init")
        self.containers.append(name)
        for _ in range(60):
            state = podman("exec", name, "systemctl", "is-system-running", check=False)
            if state in ("running", "degraded"):
                return name
            time.sleep(1)
        raise BenchError("systemd did not come up in %s" % name)

    def ensure(self, count):
        """Hosts 1..count running; hosts after the first start from the snapshot."""
        for number in range(len(self.containers) + 1, count + 1):
            self.start(number, image=self.snapshot)
        return self.containers[:count]

    def take_snapshot(self):
        """Commit mx1 (converged) as the image the extra hosts start from."""
        podman("commit", "--quiet", self.containers[0], SNAPSHOT)
        self.snapshot = SNAPSHOT

    def exec_latency(self, count=20):
        """Median seconds of a bare ``podman exec <mx1> /bin/true`` (one round trip, no Python)."""
        samples = []
        for _ in range(count):
            start = time.monotonic()
            podman("exec", self.containers[0], "/bin/true")
            samples.append(time.monotonic() - start)
        return statistics.median(samples)

    def ip(self, name):
        """The address of container ``name`` on the bench network."""
        address = podman("inspect", "--format",
                         '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % NETWORK, name)
        if not address:
            raise BenchError("no address of %s on network %s" % (name, NETWORK))
        return address

    def enable_ssh(self, name, public_key):
        """Install and start openssh-server in ``name``, authorize ``public_key`` for root.

        Returns the container's IP on the bench network. Not part of what site.yml manages, so it
        happens outside the timed runs (and after the snapshot: the extra hosts never get it).
        """
        install = ["exec", "-e", "DEBIAN_FRONTEND=noninteractive", name, "apt-get", "install",
                   "-y", "-q", "--no-install-recommends", "openssh-server"]
        started = time.monotonic()
        if subprocess.run(["podman"] + install, capture_output=True, check=False).returncode:
            podman("exec", name, "apt-get", "update", "-q")
            podman(*install)
        podman("exec", name, "systemctl", "enable", "--now", "ssh")
        podman("exec", name, "install", "-d", "-m", "0700", "/root/.ssh")
        completed = subprocess.run(
            ["podman", "exec", "-i", name, "sh", "-c",
             "cat > /root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys"],
            input=public_key, capture_output=True, text=True, check=False)
        if completed.returncode:
            raise BenchError("authorized_keys in %s: %s" % (name, completed.stderr.strip()))
        log("openssh-server in %s: %.0f s" % (name, time.monotonic() - started))
        return self.ip(name)

    def close(self):
        """Remove the containers, the network and the snapshot image (errors are only shown)."""
        for name in reversed(self.containers):
            podman("rm", "-f", "-t", "0", name, check=False)
        self.containers = []
        podman("network", "rm", "-f", NETWORK, check=False)
        if self.snapshot:
            podman("rmi", "-f", self.snapshot, check=False)
            self.snapshot = None


def tree_digest(root):
    """SHA-256 over the paths and contents of the TREE entries under ``root``."""
    digest = hashlib.sha256()
    for entry in TREE:
        top = os.path.join(root, entry)
        paths = [top] if os.path.isfile(top) else sorted(
            os.path.join(directory, name) for directory, _, names in os.walk(top)
            for name in names)
        for path in paths:
            if "__pycache__" in path:
                continue
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(handle.read() + b"\0")
    return digest.hexdigest()


def freeze_tree(destination):
    """Copy the TREE entries of the repository to ``destination``; returns its digest."""
    os.makedirs(destination)
    for entry in TREE:
        source = os.path.join(ROOT, entry)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(destination, entry), symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        elif os.path.isfile(source):
            shutil.copy2(source, os.path.join(destination, entry))
    return tree_digest(destination)


class Runner:
    """Runs site.yml against an inventory and records wall time, recap, profile and podman calls."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.logs = os.path.join(workdir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        real = shutil.which("podman")
        if not real:
            raise BenchError("podman is not in PATH")
        self.wrapper = lib.write_wrapper(os.path.join(workdir, "podman-counting"), real)
        self.zonefile_dir = os.path.join(workdir, "dns")
        self.facts_dir = os.path.join(workdir, "facts")
        self.counter = {}
        self.tree = os.path.join(workdir, "tree")
        # Set once the bench network exists (Unbound's forwarder in every inventory).
        self.gateway = None
        self.tree_digest = freeze_tree(self.tree)
        self.ssh = None  # {"key": private key, "hosts": {container: IP}} once enable_ssh ran
        self.ssh_dir = os.path.join(workdir, "ssh")
        self.ssh_wrappers = {}

    def enable_ssh(self, lab, containers):
        """Key pair under <workdir>/ssh, sshd in ``containers``, counting ssh/sftp wrappers."""
        os.makedirs(os.path.join(self.ssh_dir, "cp"), exist_ok=True)
        key = os.path.join(self.ssh_dir, "id_ed25519")
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            "mailward-bench throwaway", "-f", key], check=True)
        with open(key + ".pub") as handle:
            public = handle.read()
        hosts = {name: lab.enable_ssh(name, public) for name in containers}
        for tool in ("ssh", "sftp"):
            real = shutil.which(tool)
            if not real:
                raise BenchError("%s is not in PATH" % tool)
            self.ssh_wrappers[tool] = lib.write_ssh_wrapper(
                os.path.join(self.ssh_dir, "%s-counting" % tool), tool, real)
        self.ssh = {"key": key, "hosts": hosts}
        for name, address in hosts.items():  # sshd is up and takes the key
            for attempt in range(20):
                done = subprocess.run(self.ssh_command(address, "-o", "ControlPath=none")
                                      + ["true"], capture_output=True, text=True, check=False)
                if done.returncode == 0:
                    break
                time.sleep(1)
            else:
                raise BenchError("ssh root@%s (%s): %s" % (address, name, done.stderr.strip()))
        return hosts

    def ssh_command(self, address, *options):
        """The plain ssh command line to root@``address`` with the bench key (no wrapper)."""
        return (["ssh", "-i", self.ssh["key"], "-o", "BatchMode=yes"]
                + lib.SSH_COMMON_ARGS.split() + list(options) + ["root@" + address])

    def ssh_latency(self, address, count=20):
        """Median seconds of ``ssh root@ip /bin/true``: over a master connection (what each
        remote command of a run costs) and on a fresh connection (once per run and host)."""
        control = ["-o", "ControlPath=%s" % os.path.join(self.ssh_dir, "cp", "latency")]
        fresh, mux = [], []
        for _ in range(5):
            start = time.monotonic()
            subprocess.run(self.ssh_command(address, "-o", "ControlPath=none") + ["/bin/true"],
                           capture_output=True, check=True)
            fresh.append(time.monotonic() - start)
        subprocess.run(self.ssh_command(address, "-o", "ControlMaster=auto", "-o",
                                        "ControlPersist=60s", *control) + ["/bin/true"],
                       capture_output=True, check=True)
        for _ in range(count):
            start = time.monotonic()
            subprocess.run(self.ssh_command(address, *control) + ["/bin/true"],
                           capture_output=True, check=True)
            mux.append(time.monotonic() - start)
        subprocess.run(self.ssh_command(address, *control, "-O", "exit"), capture_output=True,
                       check=False)
        return statistics.median(mux), statistics.median(fresh)

    def close_masters(self):
        """End the ControlPersist masters a run left, so the next run starts a fresh connection
        (as a production run after more than 60 s idle does) and nothing outlives the bench."""
        directory = os.path.join(self.ssh_dir, "cp")
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            subprocess.run(["ssh", "-o", "ControlPath=%s" % os.path.join(directory, name),
                            "-O", "exit", "mailward-bench-master"], capture_output=True,
                           check=False)

    def inventory(self, containers, domains, ssh=False, first=1):
        """Write the inventory for ``containers`` with ``domains`` domains per host (``ssh``:
        the same hosts reached over SSH, see ``lib.inventory``; ``first``: number of the first
        host, when the inventory does not start at mx1)."""
        directory = os.path.join(self.workdir, "inventory-%dh-%dd%s%s"
                                 % (len(containers), domains,
                                    "-mx%d" % first if first != 1 else "", "-ssh" if ssh else ""))
        return lib.write_inventory(directory, containers, domains, self.zonefile_dir,
                                   ssh=self.ssh if ssh else None, first=first, gateway=self.gateway)

    def lever_env(self, lever):
        """Environment changes of a lever (None: the baseline)."""
        return {
            None: {},
            "pipelining": {"ANSIBLE_PIPELINING": "1"},
            "gathering_explicit": {"ANSIBLE_GATHERING": "explicit"},
            "fact_cache": {"ANSIBLE_GATHERING": "smart", "ANSIBLE_CACHE_PLUGIN": "jsonfile",
                           "ANSIBLE_CACHE_PLUGIN_CONNECTION": self.facts_dir,
                           "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400"},
            "forks_1": {"ANSIBLE_FORKS": "1"},
            # ansible's default ssh_args, made explicit; the control sockets under the output dir
            "ssh": dict(self.ssh_env(), ANSIBLE_PIPELINING="1"),
            "ssh_no_pipelining": dict(self.ssh_env(), ANSIBLE_PIPELINING="0"),
            "mitogen": self.mitogen_env(),
            "mitogen_ssh": dict(self.ssh_env(), **self.mitogen_env()),
        }[lever]

    @staticmethod
    def mitogen_env():
        """The opt-in Mitogen strategy (the inventory names the connection "podman" or "ssh",
        which Mitogen takes over; ``run`` puts the counting wrapper first in PATH as "podman")."""
        plugins = mitogen_strategy_plugins()
        if plugins is None:
            return {}
        return {"ANSIBLE_STRATEGY": "mitogen_linear", "ANSIBLE_STRATEGY_PLUGINS": plugins}

    def ssh_env(self):
        """Environment of both ssh levers (wrappers, ControlMaster, control socket directory)."""
        return {"ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=60s",
                "ANSIBLE_SSH_EXECUTABLE": self.ssh_wrappers.get("ssh", "ssh"),
                "ANSIBLE_SFTP_EXECUTABLE": self.ssh_wrappers.get("sftp", "sftp"),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(self.ssh_dir, "cp")}

    def run(self, label, inventory, lever=None, expect_idempotent=True):
        """One ``ansible-playbook -i inventory site.yml``; returns its figures."""
        self.counter[label] = self.counter.get(label, 0) + 1
        stem = os.path.join(self.logs, "%s-%d" % (label, self.counter[label]))
        env = dict(os.environ)
        env.update({
            "PATH": os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", ""),
            "CONTAINERS_CONF": os.path.join(ROOT, "containers", "containers.conf"),
            "ANSIBLE_CONFIG": os.path.join(self.tree, "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PODMAN_EXECUTABLE": self.wrapper,
            "MAILWARD_BENCH_PODMAN_LOG": stem + ".podman.tsv",
            "MAILWARD_BENCH_SSH_LOG": stem + ".ssh.tsv",
            "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
        })
        env.update(self.lever_env(lever))
        command = ["ansible-playbook", "-i", inventory, "site.yml"]
        if lever == "mitogen":
            # Mitogen's podman transport runs "podman" from PATH (ANSIBLE_PODMAN_EXECUTABLE and
            # mitogen_podman_path are not passed on in 0.3.x): a directory whose "podman" is the
            # counting wrapper (which runs the real binary by its full path) goes first in PATH.
            bindir = os.path.join(os.path.dirname(self.wrapper), "mitogen-bin")
            os.makedirs(bindir, exist_ok=True)
            if not os.path.lexists(os.path.join(bindir, "podman")):
                os.symlink(self.wrapper, os.path.join(bindir, "podman"))
            env["PATH"] = bindir + os.pathsep + env["PATH"]
        shown = ["%s=%s" % item for item in self.lever_env(lever).items()
                 if not item[0].endswith(("CONNECTION", "EXECUTABLE", "_DIR", "PLUGINS"))]
        log("run %-28s %s" % (os.path.basename(stem), " ".join(shown)))
        load_before = os.getloadavg()[0]  # the machine is shared: a noise indicator
        with open(stem + ".log", "w") as output:
            start = time.monotonic()
            completed = subprocess.run(command, cwd=self.tree, env=env, stdout=output,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       check=False)
            seconds = time.monotonic() - start
        if lever in SSH_LEVER_KEYS:
            self.close_masters()
        with open(stem + ".log") as handle:
            text = handle.read()
        if completed.returncode != 0:
            raise BenchError("ansible-playbook failed (rc %d), see %s"
                             % (completed.returncode, stem + ".log"))
        calls = {"calls": 0}
        if os.path.exists(stem + ".podman.tsv"):
            with open(stem + ".podman.tsv") as handle:
                calls = lib.parse_podman_log(handle.read())
        ssh_calls = {"calls": 0}
        if os.path.exists(stem + ".ssh.tsv"):
            with open(stem + ".ssh.tsv") as handle:
                ssh_calls = lib.parse_ssh_log(handle.read())
        totals = lib.recap_totals(lib.parse_recap(text))
        figures = {"label": label, "lever": lever, "seconds": round(seconds, 2),
                   "loadavg_1m_before": round(load_before, 2),
                   "recap": totals, "podman": calls, "ssh": ssh_calls,
                   "changed_tasks": lib.parse_changed(text),
                   "profile": lib.parse_profile(text)[:15],
                   "log": os.path.relpath(stem + ".log", ROOT)}
        log("    %.1f s  tasks=%d changed=%d podman calls=%d ssh/sftp calls=%d"
            % (seconds, totals["tasks"], totals["changed"], calls["calls"], ssh_calls["calls"]))
        if expect_idempotent and totals["changed"]:
            log("    NOT idempotent: changed=%d (see %s): %s" % (
                totals["changed"], stem + ".log", "; ".join(figures["changed_tasks"])))
        return figures


def summarize(name, runs, **extra):
    """Median/min/max of timed re-runs of one configuration, with the counts of the first."""
    seconds = [run["seconds"] for run in runs]
    first = runs[0]
    ssh_kinds = first.get("ssh", {}).get("by_kind", {})
    over_ssh = first.get("ssh", {}).get("calls", 0) > 0
    summary = {
        "name": name,
        "reps": len(runs),
        "median_s": round(statistics.median(seconds), 2),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "seconds": seconds,
        "loadavg_1m_before": [run.get("loadavg_1m_before") for run in runs],
        "changed_max": max(run["recap"]["changed"] for run in runs),
        "changed_tasks": sorted({name for run in runs for name in run.get("changed_tasks", [])}),
        "tasks": first["recap"]["tasks"],
        "podman_calls": first["podman"]["calls"],
        "podman_exec": sum(count for kind, count in first["podman"].get("by_kind", {}).items()
                           if kind.startswith("exec")),
        "module_runs": first["podman"].get("by_kind", {}).get("exec:module", 0),
        "podman_busy_s": first["podman"].get("seconds_busy", 0.0),
        "podman_median_ms": first["podman"].get("median_ms", {}),
        "ssh_calls": first.get("ssh", {}).get("calls", 0),
        "ssh_exec": sum(count for kind, count in ssh_kinds.items() if kind.startswith("ssh:")),
        "ssh_sftp": ssh_kinds.get("sftp", 0),
        "ssh_by_kind": ssh_kinds,
        "ssh_busy_s": first.get("ssh", {}).get("seconds_busy", 0.0),
        "ssh_median_ms": first.get("ssh", {}).get("median_ms", {}),
        "modules": first["podman"].get("modules", {}),
        "podman_by_kind": first["podman"].get("by_kind", {}),
        "profile_top": first["profile"][:10],
        "logs": [run["log"] for run in runs],
    }
    # Connection-neutral figures for the table: round trips (podman calls, or ssh+sftp calls
    # without the ssh -O control calls), remote commands, module runs, busy time.
    if over_ssh:
        summary.update(connection="ssh", round_trips=summary["ssh_exec"] + summary["ssh_sftp"],
                       remote_commands=summary["ssh_exec"],
                       module_runs=ssh_kinds.get("ssh:module", 0),
                       connection_busy_s=summary["ssh_busy_s"],
                       modules=first["ssh"].get("modules", {}))
    else:
        summary.update(connection="podman", round_trips=summary["podman_calls"],
                       remote_commands=summary["podman_exec"],
                       connection_busy_s=summary["podman_busy_s"])
    summary.update(extra)
    return summary


def interleaved(runner, inventory, labels, reps, ssh_inventory=None):
    """``reps`` rounds of one re-run per (label, lever), in the same order each round (the ssh
    levers use ``ssh_inventory``: the same hosts over SSH)."""
    runs = {label: [] for label, _ in labels}
    for _ in range(reps):
        for label, lever in labels:
            chosen = ssh_inventory if lever in SSH_LEVER_KEYS else inventory
            runs[label].append(runner.run(label, chosen, lever=lever))
    return runs


def pipelining_supported():
    """has_pipelining of the podman connection plugin (None when it can't be imported)."""
    try:
        from ansible_collections.containers.podman.plugins.connection.podman import Connection
    except ImportError:
        return None
    return bool(Connection.has_pipelining)


def series_runs(runner, groups, reps, rotate=False):
    """``reps`` rounds over ``groups``: one group per count, a list of (label, inventory, lever)
    runs (its podman re-run, then its ssh re-runs). ``rotate``: round r starts with group
    r mod len(groups) (1h 4h 8h, 4h 8h 1h, ...), so no count always runs first or last in a
    round; otherwise every round keeps the given order."""
    runs = {label: [] for group in groups for label, _, _ in group}
    for index in range(reps):
        shift = index % len(groups) if rotate else 0
        for group in groups[shift:] + groups[:shift]:
            for label, inventory, lever in group:
                runs[label].append(runner.run(label, inventory, lever=lever))
    return runs


def series_report(result, runs, counts, unit, series_levers, extra):
    """Summaries of the re-runs of a count series (``unit`` "d": domains, "h": hosts).

    Labels are rerun-<N><unit>[-<ssh lever>]. Each gets a ratio against the same kind of re-run
    of the first count (also in ``result["ratios"]``), the podman re-runs a point in
    ``result["scaling"]`` (median, ratio, connection round trips of one run and their ratio), the
    ssh re-runs a lever entry against the podman re-run of their count. ``extra(count)``: the
    fields summarize adds (hosts, domains, prepare_s).
    """
    key = {"d": "domains", "h": "hosts"}[unit]
    result.setdefault("runs", {})
    first_point = None
    for count in counts:
        for suffix in [""] + ["-" + lever for lever in series_levers]:
            label = "rerun-%d%s%s" % (count, unit, suffix)
            summary = summarize(label, runs[label], **extra(count))
            summary["podman_calls_per_rep"] = [run["podman"]["calls"] for run in runs[label]]
            summary["ssh_calls_per_rep"] = [run["ssh"]["calls"] for run in runs[label]]
            reference = "rerun-%d%s%s" % (counts[0], unit, suffix)
            if label != reference:
                summary["ratio"] = round(summary["median_s"]
                                         / result["runs"][reference]["median_s"], 3)
                result["ratios"]["%s_over_%s" % (label.replace("-", "_"),
                                                 reference.replace("-", "_"))] = summary["ratio"]
            result["runs"][label] = summary
            if suffix:
                continue
            point = {"count": count, "median_s": summary["median_s"], "run": label,
                     "podman_calls": summary["podman_calls"],
                     "podman_calls_per_rep": summary["podman_calls_per_rep"]}
            if unit == "h":
                point["podman_calls_per_host"] = round(summary["podman_calls"] / count, 1)
            if "ratio" in summary:
                point["ratio"] = summary["ratio"]
                point["podman_calls_ratio"] = round(
                    summary["podman_calls"] / max(first_point["podman_calls"], 1), 3)
            first_point = first_point or point
            result["scaling"][key].append(point)
    for count in counts:
        for lever in series_levers:
            lever_label, podman_label = ("rerun-%d%s-%s" % (count, unit, lever),
                                         "rerun-%d%s" % (count, unit))
            ratio = round(result["runs"][lever_label]["median_s"]
                          / result["runs"][podman_label]["median_s"], 3)
            result["levers"].append({"name": lever_label, "ratio": ratio, "against": podman_label,
                                     "note": "same re-run, %s" % (
                                         "over SSH (%s)" % lever if lever in SSH_LEVERS
                                         else "podman connection, Mitogen strategy")})


def enable_series_ssh(runner, lab, containers, result, levers):
    """sshd in ``containers`` (after the snapshot) and the bare ssh round trips to the first,
    when one of ``levers`` runs over SSH."""
    if not any(lever in SSH_LEVERS for lever in levers):
        return
    hosts = runner.enable_ssh(lab, containers)
    mux, fresh = runner.ssh_latency(hosts[containers[0]])
    result["ssh_true_median_ms"] = round(1000 * mux, 1)
    result["ssh_fresh_true_median_ms"] = round(1000 * fresh, 1)


def series_group(runner, label, hosts, domains, levers, first=1):
    """One count of a series: (label, inventory, lever) of its podman re-run, then the same
    re-run with each of ``levers`` (over SSH for the ssh ones)."""
    group = [(label, runner.inventory(hosts, domains, first=first), None)]
    for lever in levers:
        group.append(("%s-%s" % (label, lever),
                      runner.inventory(hosts, domains, ssh=lever in SSH_LEVERS, first=first),
                      lever.replace("-", "_")))
    return group


def first_converge(runner, mx1, domains, label):
    """The timed first converge of mx1 alone with ``domains`` domains (result["first_converge"])."""
    first = runner.run(label, runner.inventory([mx1], domains), expect_idempotent=False)
    return {"seconds": first["seconds"], "recap": first["recap"], "hosts": 1,
            "domains": domains, "podman_calls": first["podman"]["calls"],
            "profile_top": first["profile"][:10], "log": first["log"]}


def prepare_entry(run, note):
    """What result["prepare"] keeps of an untimed-for-the-ratio converge."""
    return {"seconds": run["seconds"], "recap": run["recap"],
            "podman_calls": run["podman"]["calls"], "profile_top": run["profile"][:10],
            "log": run["log"], "note": note}


def domain_counts(args, lab, runner, result, reps):
    """``--domain-counts``: the idempotent re-run of one MX against its number of domains.

    Each count gets a host of its own (count i on mailward-bench-mxi, domains of hi), so the
    re-runs of the counts can alternate without one undoing the other (switching one host from
    1000 domains to 1 rewrites its tables: not a re-run). mx1 has the first count and is the
    first converge (timed); the other hosts start from a snapshot of it and get one converge with
    their count (timed as prepare_s: mostly the key generation). Then ``reps`` rounds of one
    re-run per count, in the order given; with ``--levers`` from SERIES_LEVERS (ssh,
    ssh-no-pipelining, mitogen-ssh, mitogen) the same re-run with that lever follows each podman
    one in the round. Other levers are not combined with it.
    """
    counts = args.domain_counts
    result["domain_counts"] = counts
    result["levers_selected"] = args.levers
    lab.open()
    runner.gateway = lab.gateway()
    mx1 = lab.start(1)
    result["first_converge"] = first_converge(runner, mx1, counts[0], "first-%dd" % counts[0])
    prepare = {counts[0]: None}
    if len(counts) > 1:
        lab.take_snapshot()
        containers = lab.ensure(len(counts))
        for number, count in enumerate(counts[1:], start=2):
            run = runner.run("prepare-%dd" % count,
                             runner.inventory([containers[number - 1]], count, first=number),
                             expect_idempotent=False)
            prepare[count] = run["seconds"]
            result.setdefault("prepare", {})["%dd" % count] = prepare_entry(
                run, "mx%d's first converge with %d domains, mostly key generation"
                % (number, count))
    containers = lab.containers[:len(counts)]
    result["podman_exec_true_median_ms"] = round(1000 * lab.exec_latency(), 1)
    enable_series_ssh(runner, lab, containers, result, args.levers)
    groups = [series_group(runner, "rerun-%dd" % count, [containers[number - 1]], count,
                           args.levers, first=number)
              for number, count in enumerate(counts, start=1)]
    runs = series_runs(runner, groups, reps)
    series_report(result, runs, counts, "d", args.levers, lambda count: dict(
        hosts=1, domains=count, **({"prepare_s": prepare[count]} if prepare[count] else {})))


def host_range(first, last):
    """"mx2" or "mx2-mx4": the hosts ``first``..``last``."""
    return "mx%d" % first if first == last else "mx%d-mx%d" % (first, last)


def host_counts(args, lab, runner, result, reps):
    """``--host-counts``: the idempotent re-run of site.yml against the number of hosts.

    mx1 gets the timed first converge (one domain) and is committed as the snapshot; the hosts
    up to the largest count start from it. The inventory of count H is mx1..mxH, one domain each
    (d0001.hN: no two hosts share a domain, so the zone fragments of a smaller inventory are a
    subset of a larger one's and alternating never rewrites them). Each inventory with more than
    one host gets one converge first (prepare_s: the new hosts' first converge from the
    snapshot; the one-host inventory is the first converge's). Then ``reps`` rounds of one re-run
    per count in rotating order (1h 4h 8h, 4h 8h 1h, ...); ``--levers`` from SERIES_LEVERS add
    the same re-run with that lever right after each podman one. The podman
    calls of every run are kept: how the connection round trips grow with the hosts.
    """
    counts = args.host_counts
    result["host_counts"] = counts
    result["levers_selected"] = args.levers
    lab.open()
    runner.gateway = lab.gateway()
    mx1 = lab.start(1)
    result["first_converge"] = first_converge(runner, mx1, 1, "first-1h")
    largest = max(counts)
    prepare = {1: None}
    if largest > 1:
        lab.take_snapshot()
        log("starting %d more hosts from the snapshot" % (largest - 1))
        lab.ensure(largest)
        converged = 1  # hosts mx1..mx<converged> have had their first converge
        for count in sorted(count for count in counts if count > 1):
            run = runner.run("prepare-%dh" % count, runner.inventory(lab.containers[:count], 1),
                             expect_idempotent=False)
            prepare[count] = run["seconds"]
            result.setdefault("prepare", {})["%dh" % count] = prepare_entry(
                run, "first converge of %s from the snapshot, beside the re-run of %s"
                % (host_range(converged + 1, count), host_range(1, converged)))
            converged = count
    result["podman_exec_true_median_ms"] = round(1000 * lab.exec_latency(), 1)
    enable_series_ssh(runner, lab, lab.containers[:largest], result, args.levers)
    groups = [series_group(runner, "rerun-%dh" % count, lab.containers[:count], 1, args.levers)
              for count in counts]
    runs = series_runs(runner, groups, reps, rotate=True)
    series_report(result, runs, counts, "h", args.levers, lambda count: dict(
        hosts=count, domains=1, **({"prepare_s": prepare[count]} if prepare.get(count) else {})))


def benchmark(args, lab, runner, result):
    """All measurements, in order; fills ``result`` as it goes (so a failure keeps the figures)."""
    mode = MODES[args.mode]
    reps = args.reps or mode["reps"]
    result["reps"] = reps
    if args.domain_counts:
        domain_counts(args, lab, runner, result, reps)
        return
    if args.host_counts:
        host_counts(args, lab, runner, result, reps)
        return
    levers = args.levers
    result["levers_selected"] = levers
    scaling = args.levers_all  # domain and host scaling only with --levers all
    lab.open()
    runner.gateway = lab.gateway()
    mx1 = lab.start(1)

    # 1. First converge of one MX from the base image, then the baseline re-run and its levers.
    inventory = runner.inventory([mx1], 1)
    first = runner.run("first", inventory, expect_idempotent=False)
    result["first_converge"] = {"seconds": first["seconds"], "recap": first["recap"],
                                "podman_calls": first["podman"]["calls"],
                                "profile_top": first["profile"][:10], "log": first["log"]}
    if scaling and max(mode["hosts"]) > 1:
        lab.take_snapshot()
    result["podman_exec_true_median_ms"] = round(1000 * lab.exec_latency(), 1)

    ssh_inventory = None
    if any(lever in SSH_LEVERS for lever in levers):
        address = runner.enable_ssh(lab, [mx1])[mx1]
        mux, fresh = runner.ssh_latency(address)
        result["ssh_true_median_ms"] = round(1000 * mux, 1)
        result["ssh_fresh_true_median_ms"] = round(1000 * fresh, 1)
        ssh_inventory = runner.inventory([mx1], 1, ssh=True)
    if "fact-cache" in levers:
        runner.run("fact-cache-warmup", inventory, lever="fact_cache")
    labels = [("baseline", None)] + [(label, label.replace("-", "_")) for label in levers]
    runs = interleaved(runner, inventory, labels, reps, ssh_inventory=ssh_inventory)
    baseline = summarize("baseline", runs["baseline"], hosts=1, domains=1)
    result["baseline"] = baseline
    result["runs"] = {"baseline": baseline}
    notes = {
        "pipelining": "podman connection plugin has_pipelining=%s: ANSIBLE_PIPELINING is %s"
                      % (pipelining_supported(), "ignored" if not pipelining_supported()
                         else "honoured"),
        "gathering-explicit": "playbooks/mail.yml says gather_facts: true, which 'explicit' "
                              "still honours",
        "fact-cache": "jsonfile fact cache + gathering=smart: the setup task is skipped while "
                      "the cached facts are younger than 86400 s",
        "ssh": "ssh to root@<container IP>, ControlPersist=60s, ANSIBLE_PIPELINING=1 "
               "(ansible.cfg's setting)",
        "ssh-no-pipelining": "ssh as the ssh lever but ANSIBLE_PIPELINING=0",
        "mitogen": "opt-in Mitogen (mitogen_linear strategy) over the podman connection: one "
                   "long-lived interpreter per host instead of ~5 podman calls per task",
        "mitogen-ssh": "opt-in Mitogen (mitogen_linear strategy) over SSH",
    }
    for label, lever in labels[1:]:
        summary = summarize(label, runs[label], hosts=1, domains=1)
        summary["ratio"] = round(summary["median_s"] / baseline["median_s"], 3)
        summary["note"] = notes[label]
        result["runs"][label] = summary
        result["levers"].append({"name": label, "ratio": summary["ratio"],
                                 "against": "baseline", "note": notes[label]})
    if "ssh" in levers and "ssh-no-pipelining" in levers:
        result["ratios"]["ssh_over_ssh_no_pipelining"] = round(
            result["runs"]["ssh"]["median_s"] / result["runs"]["ssh-no-pipelining"]["median_s"],
            3)
    if not scaling:
        return

    # 2. Domains on one host: converge once with the count (keys), then time the re-runs.
    result["scaling"]["domains"].append({"count": 1, "median_s": baseline["median_s"],
                                         "run": "baseline"})
    for count in mode["domains"][1:]:
        inventory = runner.inventory([mx1], count)
        prepare = runner.run("prepare-%dd" % count, inventory, expect_idempotent=False)
        runs = interleaved(runner, inventory, [("rerun-%dd" % count, None)], reps)
        summary = summarize("rerun-%dd" % count, runs["rerun-%dd" % count], hosts=1,
                            domains=count, prepare_s=prepare["seconds"])
        summary["ratio"] = round(summary["median_s"] / baseline["median_s"], 3)
        result["runs"][summary["name"]] = summary
        result["scaling"]["domains"].append({"count": count, "median_s": summary["median_s"],
                                             "run": summary["name"],
                                             "ratio": summary["ratio"]})

    # 3. Hosts, one domain each (mx1 goes back to one domain); forks=1 on the largest count.
    result["scaling"]["hosts"].append({"count": 1, "median_s": baseline["median_s"],
                                       "run": "baseline"})
    largest = max(mode["hosts"])
    for count in mode["hosts"][1:]:
        containers = lab.ensure(count)
        inventory = runner.inventory(containers, 1)
        prepare = runner.run("prepare-%dh" % count, inventory, expect_idempotent=False)
        labels = [("rerun-%dh" % count, None)]
        if count == largest:
            labels.append(("forks-1-%dh" % count, "forks_1"))
        runs = interleaved(runner, inventory, labels, reps)
        summary = summarize("rerun-%dh" % count, runs["rerun-%dh" % count], hosts=count,
                            domains=1, prepare_s=prepare["seconds"])
        summary["ratio"] = round(summary["median_s"] / baseline["median_s"], 3)
        result["runs"][summary["name"]] = summary
        result["scaling"]["hosts"].append({"count": count, "median_s": summary["median_s"],
                                           "run": summary["name"], "ratio": summary["ratio"]})
        if count == largest:
            label = "forks-1-%dh" % count
            forks = summarize(label, runs[label], hosts=count, domains=1)
            forks["ratio"] = round(forks["median_s"] / summary["median_s"], 3)
            forks["note"] = "forks=1 instead of ansible.cfg's forks=16, against rerun-%dh" % count
            result["runs"][label] = forks
            result["levers"].append({"name": label, "ratio": forks["ratio"],
                                     "against": summary["name"], "note": forks["note"]})

    scaling = result["scaling"]
    result["ratios"].update({
        "rerun_%dd_over_1d" % scaling["domains"][-1]["count"]:
            round(scaling["domains"][-1]["median_s"] / baseline["median_s"], 3),
        "rerun_%dh_over_1h" % scaling["hosts"][-1]["count"]:
            round(scaling["hosts"][-1]["median_s"] / baseline["median_s"], 3),
    })


def series_table(result):
    """Lines for the --domain-counts / --host-counts series: per count the median re-run, its
    ratio, and the podman calls (connection round trips) of every repetition."""
    lines = []
    for key, flag in (("domains", "domain_counts"), ("hosts", "host_counts")):
        points = result["scaling"][key] if result.get(flag) else []
        if not points:
            continue
        header = ("%7s %8s %6s  %-18s %9s %11s" % (key, "median", "ratio", "podman calls/rep",
                                                       "per host", "calls ratio"))
        lines += ["", "re-run vs %s (podman; one %s each):" % (
            key, "domain" if key == "hosts" else "host"), header, "-" * len(header)]
        for point in points:
            lines.append("%7d %7.1fs %6.2f  %-18s %9s %11.2f" % (
                point["count"], point["median_s"], point.get("ratio", 1.0),
                ", ".join(str(calls) for calls in point["podman_calls_per_rep"]),
                "%.1f" % point["podman_calls_per_host"] if "podman_calls_per_host" in point
                else "-", point.get("podman_calls_ratio", 1.0)))
    return lines


def table(result):
    """The printed report."""
    lines = []
    first = result.get("first_converge")
    if first:
        lines.append("first converge, 1 host from the base image: %.1f s  (tasks=%d changed=%d "
                     "podman calls=%d)" % (first["seconds"], first["recap"]["tasks"],
                                           first["recap"]["changed"], first["podman_calls"]))
    if "podman_exec_true_median_ms" in result:
        lines.append("bare round trip, podman exec mx1 /bin/true: %.0f ms (median of 20)"
                     % result["podman_exec_true_median_ms"])
    if "ssh_true_median_ms" in result:
        lines.append("bare round trip, ssh root@mx1 /bin/true: %.0f ms over the master connection "
                     "(median of 20), %.0f ms on a fresh connection (median of 5)"
                     % (result["ssh_true_median_ms"], result["ssh_fresh_true_median_ms"]))
    header = ("%-20s %-6s %5s %5s %4s %8s %7s %7s %6s %4s %5s %6s %6s %7s %6s"
              % ("re-run", "conn", "hosts", "doms", "reps", "median", "min", "max", "ratio",
                 "chg", "tasks", "trips", "execs", "modules", "conn%"))
    lines += ["", header, "-" * len(header)]
    changed = []
    for summary in result.get("runs", {}).values():
        busy = 100.0 * summary.get("connection_busy_s", summary["podman_busy_s"]) / max(
            summary["seconds"][0], 0.001)
        lines.append("%-20s %-6s %5d %5d %4d %7.1fs %6.1fs %6.1fs %6s %4d %5d %6d %6d %7d %5.0f%%"
                     % (summary["name"], summary.get("connection", "podman"), summary["hosts"],
                        summary["domains"], summary["reps"], summary["median_s"],
                        summary["min_s"], summary["max_s"],
                        "%.2f" % summary["ratio"] if "ratio" in summary else "1.00",
                        summary["changed_max"], summary["tasks"],
                        summary.get("round_trips", summary["podman_calls"]),
                        summary.get("remote_commands", summary["podman_exec"]),
                        summary["module_runs"], busy))
        if summary.get("changed_tasks"):
            changed.append("%s changed: %s" % (summary["name"],
                                               "; ".join(summary["changed_tasks"])))
    lines += changed
    if result.get("ratios"):
        lines.append("")
        for name, value in result["ratios"].items():
            lines.append("%-28s %.2f" % (name, value))
    for lever in result.get("levers", []):
        lines.append("lever %-22s %.2f x %s  (%s)" % (lever["name"], lever["ratio"],
                                                     lever["against"], lever["note"]))
    baseline = result.get("baseline")
    if baseline:
        lines.append("")
        lines.append("slowest tasks of the baseline re-run (profile_tasks, first repetition):")
        for name, seconds in baseline["profile_top"]:
            lines.append("  %6.2f s  %s" % (seconds, name))
        lines.append("median ms per podman call kind (baseline): %s"
                     % ", ".join("%s=%.0f" % item for item in baseline["podman_median_ms"].items()))
    lines += series_table(result)
    if result.get("domain_counts") or result.get("host_counts"):
        for name, summary in result.get("runs", {}).items():
            lines.append("")
            lines.append("slowest tasks of %s (profile_tasks, first repetition):" % name)
            for task, seconds in summary["profile_top"]:
                lines.append("  %6.2f s  %s" % (seconds, task))
            lines.append("calls by kind (first rep): %s" % ", ".join(
                "%s=%d" % item for item in (summary["ssh_by_kind"]
                                            if summary.get("connection") == "ssh"
                                            else summary.get("podman_by_kind", {})).items()))
        for name, prepare in result.get("prepare", {}).items():
            lines.append("untimed-for-the-ratio converge with %s (%s): %.1f s "
                         "(tasks=%d changed=%d podman calls=%d)"
                         % (name, prepare.get("note", "key generation"), prepare["seconds"],
                            prepare["recap"]["tasks"], prepare["recap"]["changed"],
                            prepare["podman_calls"]))
    for name in SSH_LEVERS:
        summary = result.get("runs", {}).get(name)
        if summary:
            lines.append("%s calls by kind (first rep): %s; median ms: %s" % (
                name, ", ".join("%s=%d" % item for item in summary["ssh_by_kind"].items()),
                ", ".join("%s=%.0f" % item for item in summary["ssh_median_ms"].items())))
    lines.append("")
    lines.append("ratio: median / baseline re-run (levers: / the re-run they modify); chg: most "
                 "changed= of the reps; tasks: recap ok+skipped+failed over all hosts; trips: "
                 "connection round trips (podman exec+mount, or ssh+sftp processes); execs: "
                 "remote commands (podman exec, or ssh); modules: module executions; conn%: share "
                 "of wall time with a podman (or ssh/sftp) call running (first rep)")
    return "\n".join(lines)


def parse_counts(parser, option, text, example):
    """The distinct positive integers of a comma-separated ``option`` value ([] when empty)."""
    try:
        counts = [int(count) for count in text.split(",") if count.strip()]
    except ValueError:
        parser.error("%s: comma-separated integers, e.g. %s" % (option, example))
    if any(count < 1 for count in counts) or len(set(counts)) != len(counts):
        parser.error("%s: distinct counts of at least 1" % option)
    return counts


def interrupt(signum, frame):
    """Signal handler: turn SIGTERM/SIGHUP into KeyboardInterrupt."""
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    """Parse arguments, run the benchmark inside the lab, always clean up, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1/100 domains, 1/2 hosts, one repetition "
                             "(24 min on a busy 2-core box)")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench"),
                        help="output directory (default build/bench)")
    parser.add_argument("--reps", type=int, default=0,
                        help="repetitions of each timed re-run (default: 2 full, 1 quick)")
    parser.add_argument("--image", default=os.environ.get("MAILWARD_IMAGE", DEFAULT_IMAGE))
    parser.add_argument("--levers", default="all",
                        help="comma-separated levers next to the baseline re-run, from %s "
                             "(ssh: ssh and ssh-no-pipelining; mitogen, mitogen-ssh: opt-in, make mitogen); anything but 'all' skips the domain and "
                             "host scaling (default all); 'none': no lever (with --domain-counts "
                             "or --host-counts)"
                             % ", ".join(LEVERS))
    parser.add_argument("--domain-counts", default="",
                        help="comma-separated domain counts, e.g. 1,1000: only the first converge "
                             "and the re-run of one MX per count, interleaved (each count on a "
                             "host of its own); levers: none, or ssh, ssh-no-pipelining, mitogen-ssh "
                             "(over SSH), mitogen (podman + Mitogen) to add the same re-runs with "
                             "that lever")
    parser.add_argument("--host-counts", default="",
                        help="comma-separated host counts, e.g. 1,4,8: only the first converge "
                             "and the re-run of inventories of that many hosts (one domain each), "
                             "in rotating order, with the podman calls of each run; levers: none, "
                             "or ssh, ssh-no-pipelining, mitogen-ssh (over SSH), mitogen (podman + Mitogen) to add "
                             "the same re-runs with that lever")
    args = parser.parse_args()
    args.mode = "quick" if args.quick else "full"
    args.levers_all = args.levers == "all"
    args.domain_counts = parse_counts(parser, "--domain-counts", args.domain_counts, "1,1000")
    args.host_counts = parse_counts(parser, "--host-counts", args.host_counts, "1,4,8")
    if args.domain_counts and args.host_counts:
        parser.error("--domain-counts and --host-counts are separate modes: give one of them "
                     "(run the benchmark twice, with different --out, for both)")
    series = "--domain-counts" if args.domain_counts else "--host-counts"
    if args.levers.strip() == "none":
        args.levers, args.levers_all = "", False
    selected = []
    for name in (LEVERS if args.levers_all else [n for n in args.levers.split(",") if n.strip()]):
        names = (("ssh", "ssh-no-pipelining") if name.strip() == "ssh" and not args.levers_all
                 else [name.strip()])
        for lever in names:
            if lever not in LEVERS:
                parser.error("unknown lever %r (known: %s)" % (lever, ", ".join(LEVERS)))
            if lever not in selected:
                selected.append(lever)
    if args.levers_all and mitogen_strategy_plugins() is None:
        log("Mitogen is not installed (opt-in: make mitogen): the mitogen levers are left out")
        selected = [lever for lever in selected if lever not in MITOGEN_LEVERS]
    if any(lever in MITOGEN_LEVERS for lever in selected) and mitogen_strategy_plugins() is None:
        parser.error("the mitogen levers need Mitogen in .venv: make mitogen "
                     "(pip install -r requirements-mitogen.txt)")
    args.levers = selected
    if args.domain_counts or args.host_counts:
        if args.levers_all:
            parser.error("%s goes with --levers none (or %s)" % (series, ", ".join(SERIES_LEVERS)))
        if any(lever not in SERIES_LEVERS for lever in selected):
            parser.error("%s combines only with %s" % (series, ", ".join(SERIES_LEVERS)))
    elif not args.levers_all and not selected:
        parser.error("--levers none needs --domain-counts or --host-counts")

    os.environ["CONTAINERS_CONF"] = os.path.join(ROOT, "containers", "containers.conf")
    out = os.path.abspath(args.out)
    workdir = os.path.join(out, "converge")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    if subprocess.run(["podman", "image", "exists", args.image], check=False).returncode != 0:
        sys.exit("converge.py: image %s is missing (scripts/build-image.sh builds it)" % args.image)

    started = time.monotonic()
    result = {
        "mode": args.mode,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image": args.image,
        "levers": [],
        "ratios": {},
        "scaling": {"domains": [], "hosts": []},
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    # SIGTERM (and SIGHUP) take the same way out as Ctrl-C: the finally below cleans up.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)
    lab = Lab(args.image)
    status = 0
    try:
        runner = Runner(workdir)
        result["tree_digest"] = runner.tree_digest
        benchmark(args, lab, runner, result)
    except (BenchError, subprocess.CalledProcessError) as error:
        log("error: %s" % error)
        result["error"] = str(error)
        status = 1
    except KeyboardInterrupt:
        log("interrupted")
        result["error"] = "interrupted"
        status = 130
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            log("cleaning up %s containers, network and snapshot" % PREFIX)
            lab.close()
    result["duration_s"] = round(time.monotonic() - started, 1)
    # The runs used the copy taken at the start; say so when the working tree moved meanwhile.
    result["tree_changed_during_run"] = (
        "tree_digest" in result and tree_digest(ROOT) != result["tree_digest"])
    path = os.path.join(out, "converge.json")
    with open(path, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print(table(result))
    print("\nbenchmark duration: %.0f s (%s mode)" % (result["duration_s"], args.mode))
    if result["tree_changed_during_run"]:
        print("note: %s changed in the working tree during the benchmark; every run used the "
              "copy taken at the start (%s)" % (", ".join(TREE), os.path.relpath(
                  os.path.join(workdir, "tree"), os.getcwd())))
    print("written: %s" % os.path.relpath(path, os.getcwd()))
    if status == 0:
        png = lib.plot(result, os.path.join(out, "converge.png"))
        print("written: %s" % os.path.relpath(png, os.getcwd()) if png
              else "no plot: matplotlib is not installed")
    return status


if __name__ == "__main__":
    sys.exit(main())
