"""Helpers for bench/converge.py: inventories, the podman call counter, output parsing, the plot.

Everything here is pure (text in, data out) except ``write_*`` and ``plot``, so the parsing can be
checked on a saved log without containers:

    .venv/bin/python -c "from bench import lib_converge as l; \
        print(l.parse_recap(open('build/bench/converge/logs/baseline-1.log').read()))"
"""

import os
import re
import statistics

import yaml

# ---------------------------------------------------------------------------------------------
# Inventory
# ---------------------------------------------------------------------------------------------

DOMAIN_SUFFIX = "bench.test"
SELECTOR = "mwbench"


def domain_name(host_number, number):
    """The name of synthetic domain ``number`` of host ``host_number`` (both from 1)."""
    return "d%04d.h%d.%s" % (number, host_number, DOMAIN_SUFFIX)


def mail_domain(name):
    """One mail_domains item: SPF, one RSA-2048 DKIM selector, a DMARC policy."""
    return {
        "name": name,
        "spf": {"mx": True, "all": "fail"},
        "dkim": [{"selector": SELECTOR, "type": "rsa", "bits": 2048}],
        "dmarc": {"p": "reject", "adkim": "s", "aspf": "s"},
    }


# Options of every SSH connection of the ssh levers (throwaway containers: no host key checks).
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def inventory(containers, domains_per_host, zonefile_dir, ssh=None, first=1, gateway=None):
    """The inventory (as a dict) shaped like inventory/demo: group ``mail``, podman connection.

    ``containers`` are container names; host N (from 1) is ``mxN.bench.test`` and gets
    ``domains_per_host`` domains of its own (one DKIM selector each), so no two hosts share a
    domain or a selector. No submission users; records go to ``zonefile_dir``.

    ``ssh`` ({"key": private key path, "hosts": {container: IP}}) switches to the ssh connection:
    same inventory hostnames (so the same facts, zone fragments and keys), ``ansible_host`` = the
    container's IP, user root, that key, no host key checks.

    ``first``: the number of the first host (``--domain-counts`` gives each count a host of its
    own, e.g. an inventory of mailward-bench-mx2 alone is mx2 with the domains of h2).

    ``gateway``: the bench network's gateway, where podman's resolver listens (Unbound's forwarder).
    """
    hosts = {}
    for number, name in enumerate(containers, start=first):
        hosts[name] = {
            "mail_hostname": "mx%d.%s" % (number, DOMAIN_SUFFIX),
            "mail_domains": [mail_domain(domain_name(number, index))
                             for index in range(1, domains_per_host + 1)],
        }
        if ssh:
            hosts[name]["ansible_host"] = ssh["hosts"][name]
    # "podman", not the FQCN: Ansible routes it to containers.podman.podman, and the opt-in
    # Mitogen strategy (the mitogen lever) can take it over, which it does not for the FQCN.
    connection = {"ansible_connection": "podman"}
    if ssh:
        # Mitogen's SSH transport ignores StrictHostKeyChecking in the common args and
        # enforces host keys unless ansible_host_key_checking says otherwise (the containers'
        # keys are new on every run, like the /dev/null known_hosts above says).
        connection = {"ansible_connection": "ssh", "ansible_user": "root",
                      "ansible_ssh_private_key_file": ssh["key"],
                      "ansible_ssh_common_args": SSH_COMMON_ARGS,
                      "ansible_host_key_checking": False}
    return {"all": {"children": {"mail": {
        "hosts": hosts,
        "vars": dict(connection, **{
            "ansible_python_interpreter": "/usr/bin/python3",
            "mail_mynetworks": ["127.0.0.0/8", "[::1]/128"],
            "submission_users": [],
            "dns_backend": "zonefile",
            "dns_zonefile_dir": zonefile_dir,
            # The resolver role's Unbound forwards to podman's resolver on the bench network's
            # gateway (no root servers from the bench); .test has no DNSSEC chain.
            "resolver_forwarders": [gateway] if gateway else [],
            "resolver_dnssec": False,
        }),
    }}}}


def write_inventory(directory, containers, domains_per_host, zonefile_dir, ssh=None, first=1, gateway=None):
    """Write ``directory``/hosts.yml and return the directory (the ``-i`` argument)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "hosts.yml"), "w") as handle:
        handle.write("---\n# Written by bench/converge.py; removed and rewritten on every run.\n")
        yaml.safe_dump(inventory(containers, domains_per_host, zonefile_dir, ssh=ssh, first=first, gateway=gateway),
                       handle,
                       default_flow_style=False, sort_keys=False)
    return directory


# ---------------------------------------------------------------------------------------------
# The podman call counter
# ---------------------------------------------------------------------------------------------

WRAPPER = """#!/bin/bash
# Written by bench/converge.py: counts and times every podman call of the podman connection plugin
# (ANSIBLE_PODMAN_EXECUTABLE points here), then behaves exactly like podman.
start=$EPOCHREALTIME
%(podman)s "$@"
rc=$?
args="$*"
args=${args//$'\\n'/ }
args=${args//$'\\t'/ }
printf '%%s\\t%%s\\t%%s\\t%%s\\n' "$start" "$EPOCHREALTIME" "$rc" "${args:0:400}" \\
  >>"${MAILWARD_BENCH_PODMAN_LOG:-/dev/null}"
exit $rc
"""


def write_wrapper(path, podman):
    """Write the counting wrapper for the real ``podman`` binary at ``path`` (mode 0755)."""
    with open(path, "w") as handle:
        handle.write(WRAPPER % {"podman": podman})
    os.chmod(path, 0o755)
    return path


# The ssh and sftp executables of the ssh connection (ANSIBLE_SSH_EXECUTABLE,
# ANSIBLE_SFTP_EXECUTABLE). Same log format; the logged "arguments" are the tool and the last
# argument only (the remote command for ssh, the host for sftp, whose commands come on stdin):
# the -o options in front are long and the same for every call.
SSH_WRAPPER = """#!/bin/bash
# Written by bench/converge.py: counts and times every %(tool)s call of the ssh connection plugin
# (ANSIBLE_%(TOOL)s_EXECUTABLE points here), then behaves exactly like %(tool)s.
start=$EPOCHREALTIME
%(binary)s "$@"
rc=$?
last="${@: -1}"
case " $* " in *" -O "*) last="-O control" ;; esac
last=${last//$'\n'/ }
last=${last//$'\t'/ }
printf '%%s\t%%s\t%%s\t%%s\n' "$start" "$EPOCHREALTIME" "$rc" "%(tool)s ${last:0:400}" \
  >>"${MAILWARD_BENCH_SSH_LOG:-/dev/null}"
exit $rc
"""


def write_ssh_wrapper(path, tool, binary):
    """Write the counting wrapper for ``tool`` (ssh or sftp) = ``binary`` at ``path``."""
    with open(path, "w") as handle:
        handle.write(SSH_WRAPPER % {"tool": tool, "TOOL": tool.upper(), "binary": binary})
    os.chmod(path, 0o755)
    return path


_MODULE = re.compile(r"AnsiballZ_(\w+)\.py")


def classify(args):
    """What one podman call did: mount, cp, or exec:<module|mkdir|chmod|rm|home|other>."""
    words = args.split(" ", 1)
    command = words[0]
    if command != "exec":
        return command
    # The order matters: chmod and rm name the AnsiballZ file too.
    if "/bin/sh -c chmod " in args:
        return "exec:chmod"
    if "/bin/sh -c rm -f -r " in args:
        return "exec:rm"
    if "mkdir" in args:
        return "exec:mkdir"
    if _MODULE.search(args):
        return "exec:module"
    if "echo ~" in args:
        return "exec:home"
    return "exec:other"


def classify_ssh(args):
    """What one logged ssh/sftp call did: sftp (a file transfer), control (ssh -O), or
    ssh:<module|mkdir|chmod|rm|home|other>. With pipelining the module comes on stdin, so the
    command only says python (the module name is then unknown)."""
    tool, _, command = args.partition(" ")
    if tool == "sftp":
        return "sftp"
    if command.startswith("-O "):
        return "control"
    if "python" in command:
        return "ssh:module"
    if "chmod " in command:
        return "ssh:chmod"
    if "rm -f -r " in command:
        return "ssh:rm"
    if "mkdir" in command:
        return "ssh:mkdir"
    if "echo ~" in command:
        return "ssh:home"
    return "ssh:other"


def union_seconds(intervals):
    """Seconds covered by at least one of the (start, end) intervals."""
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def parse_podman_log(text, classify_call=classify):
    """Counts and durations of the podman calls logged by the wrapper.

    Returns calls (all), by_kind (count per ``classify`` kind), modules (count per module name),
    seconds_sum (sum of call durations), seconds_busy (time with at least one call running),
    and the median duration of each kind (``median_ms``). ``parse_ssh_log`` is the same for the
    ssh/sftp wrappers (module names are "(pipelined)" when the command does not name them).
    """
    by_kind, modules, durations, intervals = {}, {}, {}, []
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) != 4:
            continue
        start, end = float(parts[0]), float(parts[1])
        kind = classify_call(parts[3])
        by_kind[kind] = by_kind.get(kind, 0) + 1
        durations.setdefault(kind, []).append(end - start)
        intervals.append((start, end))
        if kind.endswith(":module"):
            module = _MODULE.search(parts[3])
            name = module.group(1) if module else "(pipelined)"
            modules[name] = modules.get(name, 0) + 1
    return {
        "calls": len(intervals),
        "by_kind": dict(sorted(by_kind.items())),
        "modules": dict(sorted(modules.items(), key=lambda item: -item[1])),
        "seconds_sum": round(sum(end - start for start, end in intervals), 3),
        "seconds_busy": round(union_seconds(intervals), 3),
        "median_ms": {kind: round(1000 * statistics.median(values), 1)
                      for kind, values in sorted(durations.items())},
    }


def parse_ssh_log(text):
    """``parse_podman_log`` for the log of the ssh/sftp wrappers (see ``classify_ssh``)."""
    return parse_podman_log(text, classify_call=classify_ssh)


# ---------------------------------------------------------------------------------------------
# ansible-playbook output
# ---------------------------------------------------------------------------------------------

_TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \**$")


def parse_changed(text):
    """Names of the tasks (and handlers) that reported ``changed`` for some host, in run order."""
    names, current = [], None
    for line in text.splitlines():
        header = _TASK_HEADER.match(line)
        if header:
            current = header.group(1)
        elif line.startswith("changed: [") and current and current not in names:
            names.append(current)
    return names

_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                    r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)")
_RECAP_KEYS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
_PROFILE = re.compile(r"^(.*?) -+ (\d+\.\d+)s\s*$")


def parse_recap(text):
    """The PLAY RECAP: {host: {ok, changed, unreachable, failed, skipped, rescued, ignored}}.

    Ansible counts a changed task in ``ok`` too, so the tasks a host ran are ok + skipped
    (+ failed); a looped task counts once.
    """
    hosts = {}
    in_recap = False
    for line in text.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap:
            match = _RECAP.match(line)
            if match:
                hosts[match.group(1)] = dict(zip(_RECAP_KEYS, map(int, match.groups()[1:])))
            elif hosts and not line.strip():
                in_recap = False
    return hosts


def recap_totals(hosts):
    """Sums over the hosts of a parsed recap, plus ``tasks`` = ok + skipped + failed."""
    totals = {key: sum(host[key] for host in hosts.values()) for key in _RECAP_KEYS}
    totals["tasks"] = totals["ok"] + totals["skipped"] + totals["failed"]
    return totals


def parse_profile(text):
    """The profile_tasks summary after the recap: [(task name, seconds)], slowest first."""
    tail = text[text.rfind("PLAY RECAP"):] if "PLAY RECAP" in text else text
    tasks = []
    for line in tail.splitlines():
        match = _PROFILE.match(line)
        if match and not line.startswith("="):
            tasks.append((match.group(1).strip(), float(match.group(2))))
    return sorted(tasks, key=lambda item: -item[1])


# ---------------------------------------------------------------------------------------------
# The plot
# ---------------------------------------------------------------------------------------------

def plot(result, path):
    """Three panels (re-run vs domains, re-run vs hosts, lever ratios) as a PNG at ``path``.

    Returns the path, or None when matplotlib is missing.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return None
    figure, axes = pyplot.subplots(1, 3, figsize=(15, 4.5))
    scaling = result["scaling"]
    for axis, key, label in ((axes[0], "domains", "domains (1 host)"),
                             (axes[1], "hosts", "hosts (1 domain each)")):
        points = scaling[key]
        if not points:  # --levers other than all, or the other count series: not measured
            why = ("--domain-counts" if result.get("domain_counts") else "--host-counts"
                   if result.get("host_counts") else "--levers %s"
                   % ",".join(result.get("levers_selected", [])))
            axis.text(0.5, 0.5, "%s: not measured\n(%s)" % (label, why),
                      ha="center", va="center", transform=axis.transAxes)
            axis.set_axis_off()
            continue
        xs = [point["count"] for point in points]
        ys = [point["median_s"] for point in points]
        axis.plot(xs, ys, marker="o")
        calls = [point.get("podman_calls") for point in points]
        for x, y, count in zip(xs, ys, calls):
            text = "%.1f s" % y if count is None else "%.1f s\n%d podman calls" % (y, count)
            axis.annotate(text, (x, y), textcoords="offset points", xytext=(4, 6))
        if key == "domains" and len(xs) > 1 and max(xs) / max(min(xs), 1) >= 50:
            axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("idempotent re-run, median wall s")
        axis.set_ylim(bottom=0, top=1.25 * max(ys))  # room for the labels of the top point
        axis.grid(True, alpha=0.3)
    levers = result["levers"]
    if levers:
        plot_levers(axes[2], levers)
    else:  # --levers none
        axes[2].text(0.5, 0.5, "levers: none measured\n(--levers none)", ha="center",
                     va="center", transform=axes[2].transAxes)
        axes[2].set_axis_off()
    figure.suptitle("mailward convergence benchmark (%s mode, first converge %.0f s)"
                    % (result["mode"], result["first_converge"]["seconds"]))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def plot_levers(axis, levers):
    """Horizontal bars: each lever's ratio to the re-run it modifies."""
    names = [lever["name"] for lever in levers]
    ratios = [lever["ratio"] for lever in levers]
    axis.barh(names, ratios)
    axis.axvline(1.0, color="black", linewidth=0.8)
    for index, ratio in enumerate(ratios):
        axis.annotate("%.2f" % ratio, (ratio, index), textcoords="offset points", xytext=(4, -3))
    axis.set_xlabel("re-run time / baseline re-run (lower is faster)")
    axis.invert_yaxis()
