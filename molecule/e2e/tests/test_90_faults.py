"""Check 9: faults, with nothing lost. Runs last (it stops and restarts things on purpose).

Mail goes through sender-ok's real Postfix: a 4xx from mx leaves the message in sender-ok's
queue, where it is retried. "Nothing lost" is counted on both sides: 2xx from mx means the
message is in mx's queue (REFERENCE.md), so every message is either delivered on mx or still
in sender-ok's queue, and is delivered exactly once in the end.
"""

import json
import os
import re
import shutil
import subprocess
import time

import dns.resolver
import pytest
import yaml

from conftest import (IP, NAMES, by_message_id, explain, journal, message, message_ids, mx_log,
                      queue, queued_with, read_mailbox, sendmail, smtp, send_steps, wait_delivered,
                      wait_for, HELO)

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
# 9c's injector runs until the test tells it to stop (after mx's restart); this caps it.
BURST_MAX = int(os.environ.get("E2E_BURST_MAX", "3000"))
# Deliveries on mx before the restart: the flow has visibly started.
BURST_FLOWING = 20
CHROOT_RESOLV_CONF = "/var/spool/postfix/etc/resolv.conf"


def sender_queue_for(hosts, needle):
    """sender-ok's queue entries for a message containing ``needle``."""
    return queued_with(hosts.ok, needle)


def deferred_with_4xx(hosts, needle):
    """sender-ok's entries for ``needle`` that mx answered with a 4xx (delay_reason)."""
    found = []
    for entry in sender_queue_for(hosts, needle):
        reasons = [r.get("delay_reason", "") for r in entry.get("recipients", [])]
        if any(re.search(r"said: 4\d\d ", reason) for reason in reasons):
            found.append((entry, reasons))
    return found


def flush_until_delivered(hosts, user, mid, timeout=90):
    """Flush sender-ok's queue until <mid> is in /var/mail/<user> on mx (polling)."""
    def probe():
        hosts.ok.run("postqueue -f")
        return by_message_id(read_mailbox(hosts.mx, user), mid)
    found, _ = wait_for(probe, timeout=timeout, interval=2)
    return found or []


def ns_answers():
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [IP["ns"]]
    res.lifetime = 2
    try:
        return bool(res.resolve("partner-strict.example", "TXT"))
    except Exception:  # noqa: BLE001  (any failure means "not yet")
        return False


# ------------------------------------------------------------------------------------------
# 9a: the name server is down
# ------------------------------------------------------------------------------------------


def test_9a_dns_down_defers_then_delivers_once(hosts, run_id):
    since = time.time()
    mid = "f9a-%s@partner-strict.example" % run_id
    cached = "mail.partner-strict.example"
    assert hosts.mx.run("getent ahostsv4 %s", cached).rc == 0
    hosts.ns.run("systemctl stop named")
    try:
        # mx's Unbound still answers what it has cached (an outage of the upstream resolver
        # costs nothing for names in the cache) ...
        lookup = hosts.mx.run("getent ahostsv4 %s", cached)
        assert lookup.rc == 0 and IP["ok"] in lookup.stdout, explain("mx's cache did not answer %s" % cached, lookup)
        # ... so empty it: from here on every lookup of mx has to reach ns, which is down.
        flushed = hosts.mx.run("unbound-control flush_zone .")
        assert flushed.rc == 0, flushed.stderr
        # policyd-spf keeps answers for their TTL too (policyd_spf_dns_cache_size): a reload ends
        # the idle policy processes (their smtpd exits and closes the connection), and the next
        # session's process starts with an empty cache. The documented way to forget them.
        hosts.mx.run("postfix reload")
        gone, _ = wait_for(lambda: hosts.mx.run("pgrep -x policyd-spf").rc != 0, timeout=30, interval=0.5)
        assert gone, hosts.mx.run("ps -eo pid,etimes,args").stdout
        sendmail(hosts.ok, "bob@partner-strict.example", "fault@example.test",
                 message(mid, "bob@partner-strict.example", "fault@example.test"))
        deferred, seconds = wait_for(lambda: deferred_with_4xx(hosts, mid), timeout=60, interval=1)
        log = mx_log(hosts, since)
        assert deferred, explain("sender-ok did not get a 4xx from mx while ns was down",
                                 ("sender-ok queue", hosts.ok.run("mailq").stdout), ("mx log", log))
        # policyd-spf itself deferred on the DNS error (TempError_Defer), it did not accept unchecked.
        assert re.search(r"policyd-spf\[\d+\]: .*(defer_if_permit|DEFER|451).*SPF Temporary Error", log, re.I), \
            explain("policyd-spf did not defer on the temporary error", ("mx log", log))
        assert re.search(r"NOQUEUE: reject: RCPT from unknown\[%s\]: 4\d\d " % re.escape(IP["ok"]), log), \
            explain(("mx log", log))
        # The reply above comes from the first deferring restriction, reject_unknown_sender_domain
        # (it cannot look the sender domain up either). With a sender in a domain mx is final
        # destination for, that check does not apply and the 4xx on the wire is policyd-spf's own.
        probe = smtp("ok", hosts, [["EHLO", HELO["ok"]], ["MAIL", "<postmaster@example.test>"],
                                   ["RCPT", "<fault@example.test>"], ["QUIT"]])
        code, text = probe.reply("RCPT")
        assert code is not None and 400 <= code < 500 and "SPF Temporary Error" in text, \
            explain(probe, ("mx log", mx_log(hosts, since)))
        assert "Received-SPF: Pass" not in log and not by_message_id(read_mailbox(hosts.mx, "fault"), mid)
    finally:
        hosts.ns.run("systemctl start named")
    up, _ = wait_for(ns_answers, timeout=30)
    assert up, journal(hosts.ns, since, unit="named")
    # Unbound backs off from a forwarder that timed out (infra cache) and keeps the SERVFAILs of
    # the outage for a few seconds: start afresh rather than wait.
    for command in ("flush_infra all", "flush_zone .", "flush_bogus"):
        hosts.mx.run("unbound-control %s", command)
    found = flush_until_delivered(hosts, "fault", mid)
    assert len(found) == 1, explain("copies delivered: %d" % len(found), ("mx log", mx_log(hosts, since)),
                                    ("sender-ok queue", hosts.ok.run("mailq").stdout))
    assert not sender_queue_for(hosts, mid), hosts.ok.run("mailq").stdout
    print("9a: sender-ok deferred with %s after %.1fs; direct probe: %s %s" % (deferred[0][1], seconds, code, text))


# ------------------------------------------------------------------------------------------
# 9b: a milter is down
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["opendkim", "opendmarc"])
def test_9b_milter_down_tempfails_then_delivers_once(hosts, run_id, service):
    since = time.time()
    mid = "f9b-%s-%s@partner-strict.example" % (service, run_id)
    hosts.mx.run("systemctl stop %s", service)
    try:
        sendmail(hosts.ok, "bob@partner-strict.example", "fault@example.test",
                 message(mid, "bob@partner-strict.example", "fault@example.test"))
        deferred, _ = wait_for(lambda: deferred_with_4xx(hosts, mid), timeout=60, interval=1)
        log = mx_log(hosts, since)
        assert deferred, explain("sender-ok did not get a 4xx while %s was down" % service,
                                 ("sender-ok queue", hosts.ok.run("mailq").stdout), ("mx log", log))
        reasons = deferred[0][1]
        assert any("451 4.7.1" in r for r in reasons), explain(reasons, ("mx log", log))
        assert re.search(r"milter-reject: \w+ from unknown\[%s\]: 451 4\.7\.1 " % re.escape(IP["ok"]), log), \
            explain(("mx log", log))
        assert not by_message_id(read_mailbox(hosts.mx, "fault"), mid)
    finally:
        hosts.mx.run("systemctl start %s", service)
    found = flush_until_delivered(hosts, "fault", mid)
    assert len(found) == 1, explain("copies delivered: %d" % len(found), ("mx log", mx_log(hosts, since)),
                                    ("sender-ok queue", hosts.ok.run("mailq").stdout))
    assert not sender_queue_for(hosts, mid)


# ------------------------------------------------------------------------------------------
# 9c: postfix restarts in the middle of a burst
# ------------------------------------------------------------------------------------------


def test_9c_restart_during_burst_loses_and_duplicates_nothing(hosts, run_id):
    since = time.time()
    tag = "burst-%s-" % run_id
    subprocess.run(["podman", "cp", os.path.join(HERE, "burst.py"), "%s:/usr/local/bin/e2e-burst" % NAMES["ok"]],
                   check=True)
    out, stop = "/tmp/e2e-burst-%s.json" % run_id, "/tmp/e2e-burst-%s.stop" % run_id
    started = hosts.ok.run("setsid nohup python3 /usr/local/bin/e2e-burst %s %s %s %s >/tmp/e2e-burst.log 2>&1 &",
                           str(BURST_MAX), run_id, out, stop)
    assert started.rc == 0, started.stderr
    # Restart once the flow has visibly started (some messages delivered), not before.
    flowing, _ = wait_for(lambda: len(message_ids(hosts.mx, "burst", tag)) >= BURST_FLOWING, timeout=120,
                          interval=0.2)
    at_restart = len(message_ids(hosts.mx, "burst", tag))
    # mailward's ExecStop (roles/postfix/files/mailward-postfix-drain) lets the transactions in
    # flight finish; the stock `postfix stop` would kill smtpd between queueing and its 250.
    restart_started = time.monotonic()
    restart = hosts.mx.run("systemctl restart postfix")
    restart_seconds = time.monotonic() - restart_started
    assert restart.rc == 0, restart.stderr
    # The injector only ends on the stop file (or BURST_MAX): still running now means the whole
    # restart fell inside the burst, however fast this machine delivers.
    still_injecting = hosts.ok.run("test -e %s", out).rc != 0
    assert flowing and still_injecting, explain(
        "the restart did not happen during the burst (%d delivered at restart, injector %s)"
        % (at_restart, "running" if still_injecting else "already finished: raise E2E_BURST_MAX"),
        ("injector log", hosts.ok.run("cat /tmp/e2e-burst.log").stdout))
    # Keep injecting while mx comes back, then stop.
    time.sleep(1)
    hosts.ok.run("touch %s", stop)
    done, _ = wait_for(lambda: hosts.ok.run("test -s %s", out).rc == 0, timeout=180, interval=0.5)
    assert done, hosts.ok.run("cat /tmp/e2e-burst.log").stdout
    injected = json.loads(hosts.ok.check_output("cat %s", out))
    total = len(injected["accepted"])
    assert not injected["refused"] and injected["stopped_by"] == "file" and total > at_restart, explain(
        "injector: %d accepted, stopped by %s, %d delivered at restart"
        % (total, injected["stopped_by"], at_restart), ("refused", injected["refused"][:5]))

    def settled():
        # Both queues are flushed: a delivery on mx that the restart cut (qmgr could no longer
        # reach local(8) or the defer service) waits in mx's deferred queue for the backoff
        # (minimal_backoff_time, 300 s), longer than this wait. Queued is not lost; a message in
        # no queue and no mailbox still fails below.
        hosts.ok.run("postqueue -f")
        hosts.mx.run("postqueue -f")
        return not queued_with_tag(hosts, tag) and len(message_ids(hosts.mx, "burst", tag)) >= total
    ok, seconds = wait_for(settled, timeout=240, interval=2)
    ids = message_ids(hosts.mx, "burst", tag)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    missing = sorted(set(injected["accepted"]) - set(ids))
    # Both sides, from the logs: every sender-ok delivery to mx got a 250 "queued as" once per message.
    ok_log = journal(hosts.ok, since, ids=("postfix/smtp",), grep="to=<burst@example.test>")
    sent = re.findall(r"status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", ok_log)
    deferred = re.findall(r"status=deferred", ok_log)
    mx_delivered = journal(hosts.mx, since, ids=("postfix/local",), grep="to=<burst@example.test>.*status=sent")
    summary = ("%d injected, %d delivered (%d unique), %d duplicates, %d missing; sender-ok: %d sent with 250, "
               "%d deferral log lines; restart at %d delivered, took %.1fs; settled in %.0fs"
               % (total, len(ids), len(set(ids)), len(duplicates), len(missing), len(sent), len(deferred),
                  at_restart, restart_seconds, seconds))
    # Where a duplicate came from: two queue IDs on mx = received twice (sender-ok never saw the
    # 250); one queue ID delivered twice = a delivery cut after writing the mailbox.
    dup_trail = "\n".join(journal(hosts.mx, since, ids=("postfix/cleanup", "postfix/local"), grep=re.escape(d))
                          + journal(hosts.ok, since, ids=("postfix/cleanup",), grep=re.escape(d))
                          for d in duplicates[:3])
    print("9c:", summary)
    assert ok and not duplicates and not missing and len(ids) == total, explain(
        summary, ("duplicates", duplicates[:10]), ("log lines of the first duplicates", dup_trail),
        ("missing", missing[:10]),
        ("sender-ok queue", hosts.ok.run("mailq").stdout[-3000:]),
        ("mx queue", hosts.mx.run("mailq").stdout[-3000:]),
        ("mx log (restart)", mx_log(hosts, since, grep="postfix/(master|postfix-script|mailward-drain)|fatal|panic|warning")[-5000:]))
    assert len(sent) == total and len(set(sent)) == total, explain(summary, ("sender-ok log", ok_log[-5000:]))
    drain = journal(hosts.mx, since, ids=("postfix/mailward-drain",))
    assert "stopping master" in drain and "is stopped" in drain, explain("the graceful stop did not run", drain)
    print("9c: graceful stop:", " | ".join(line.split(": ", 1)[-1][:120] for line in drain.splitlines()))
    assert len(mx_delivered.splitlines()) == total, explain(summary, ("mx local deliveries", mx_delivered[-3000:]))


def queued_with_tag(hosts, tag):
    """sender-ok queue entries for the burst (its only traffic to burst@example.test)."""
    return [e for e in queue(hosts.ok) if any(r["address"] == "burst@example.test" for r in e.get("recipients", []))]


# ------------------------------------------------------------------------------------------
# 9d: a broken override fails the run before anything is reloaded
# ------------------------------------------------------------------------------------------


def milter_runs_config_on_disk(host, service, path):
    """(bool, detail): the service's main process started after ``path`` was last written."""
    started = host.check_output("systemctl show %s -P ExecMainStartTimestamp --timestamp=unix", service).lstrip("@")
    written = host.check_output("stat -c %%Y %s", path)
    ok = started.isdigit() and int(started) >= int(written)
    return ok, "%s: main process started @%s, %s written @%s" % (service, started, path, written)


@pytest.fixture(scope="module")
def broken_run(hosts, tmp_path_factory):
    """One site.yml run with the molecule inventory plus, for mx, a broken Postfix override and a
    harmless OpenDKIM change (LogWhy) - the usual "two changes, one typo" run."""
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not ephemeral or not os.path.isdir(os.path.join(ephemeral, "inventory")):
        pytest.fail("MOLECULE_EPHEMERAL_DIRECTORY is not set: run through `molecule verify -s e2e`")
    inventory = str(tmp_path_factory.mktemp("inventory") / "inventory")
    shutil.copytree(os.path.join(ephemeral, "inventory"), inventory, symlinks=True)
    with open(os.path.join(inventory, "group_vars", "mail")) as handle:
        mail_vars = yaml.safe_load(handle)
    host_vars = {
        "postfix_main_cf_overrides": dict(mail_vars.get("postfix_main_cf_overrides") or {}, message_size_limit="lots"),
        "opendkim_extra_config": dict(mail_vars.get("opendkim_extra_config") or {}, LogWhy=True),
    }
    os.makedirs(os.path.join(inventory, "host_vars"), exist_ok=True)
    with open(os.path.join(inventory, "host_vars", NAMES["mx"]), "w") as handle:
        yaml.safe_dump(host_vars, handle)
    # The resolver role (it runs before the postfix role fails) must bring back a stale copy of
    # resolv.conf in Postfix's chroot: what an MX that ran Postfix before the resolver role has.
    assert hosts.mx.run("echo 'nameserver %s' > %s", IP["ns"], CHROOT_RESOLV_CONF).rc == 0
    before = {
        "main_cf": hosts.mx.check_output("sha256sum /etc/postfix/main.cf"),
        "master_pid": hosts.mx.check_output("cat /var/spool/postfix/pid/master.pid").strip(),
        "size_limit": hosts.mx.check_output("postconf -h message_size_limit"),
    }
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    since = time.time()
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory, os.path.join(PROJECT, "site.yml")],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)
    return {"proc": proc, "before": before, "since": since, "seconds": time.monotonic() - start}


def test_9d_broken_override_fails_before_reload(hosts, broken_run, run_id):
    proc, before, since = broken_run["proc"], broken_run["before"], broken_run["since"]
    output = proc.stdout + proc.stderr
    tail = output[-6000:]
    assert proc.returncode != 0, explain("site.yml with message_size_limit: lots succeeded", ("output", tail))
    assert re.search(r"fatal: \[%s\]: FAILED!.*" % re.escape(NAMES["mx"]), output), tail
    assert "Check the candidate configuration with Postfix's own checkers" in output and "message_size_limit" in output, tail
    assert "Install the checked configuration" not in output.split("Check the candidate configuration")[-1], tail
    # mx keeps its previous configuration and was not reloaded.
    assert hosts.mx.check_output("sha256sum /etc/postfix/main.cf") == before["main_cf"]
    assert hosts.mx.check_output("postconf -h message_size_limit") == before["size_limit"]
    assert hosts.mx.check_output("cat /var/spool/postfix/pid/master.pid").strip() == before["master_pid"]
    # Exact time stamps: journal()'s one-second slack would also show the start of 9c's restart
    # when it ended less than a second before this run began.
    log = hosts.mx.run("journalctl --no-pager -o short-unix --since @%s -t postfix/postfix-script -t postfix/master",
                       str(int(since) - 1)).stdout
    reloads = [line for line in log.splitlines() if re.match(r"^\d+\.\d+ ", line)
               and float(line.split()[0]) >= since and re.search("refreshing|reload|starting", line)]
    assert not reloads, explain("Postfix was reloaded/restarted by the failed run", ("log", "\n".join(reloads)))
    # ... and still serves: banner, and a message is delivered.
    mid = "f9d-%s@partner-strict.example" % run_id
    data = message(mid, "bob@partner-strict.example", "fault@example.test")
    dialogue = smtp("ok", hosts, send_steps(HELO["ok"], "bob@partner-strict.example", ["fault@example.test"], data))
    assert dialogue.banner[0] == 220 and dialogue.reply("DATA")[0] == 250, explain(dialogue, ("mx log", mx_log(hosts, since)))
    assert len(wait_delivered(hosts.mx, "fault", mid)) == 1, explain(dialogue, ("mx log", mx_log(hosts, since)))
    print("9d: site.yml failed as expected in %.0fs" % broken_run["seconds"])


def test_9d_run_refreshes_the_resolv_conf_in_postfixs_chroot(hosts, broken_run):
    copy = hosts.mx.file(CHROOT_RESOLV_CONF).content_string
    assert copy == hosts.mx.file("/etc/resolv.conf").content_string and "nameserver 127.0.0.1" in copy, \
        explain(("chroot copy", copy), ("site.yml output", (broken_run["proc"].stdout + broken_run["proc"].stderr)[-4000:]))


def test_9d_failed_run_leaves_no_milter_on_a_stale_config(hosts, broken_run):
    """The failed run wrote a valid new opendkim.conf before the Postfix check failed; OpenDKIM must
    run it now. A handler dropped by the failure would leave the old one running, and the next run,
    finding nothing to change, would never restart it."""
    assert "LogWhy" in hosts.mx.check_output("cat /etc/opendkim.conf"), "the failed run did not reach the opendkim role"
    for service, path in (("opendkim", "/etc/opendkim.conf"), ("opendmarc", "/etc/opendmarc.conf")):
        ok, detail = milter_runs_config_on_disk(hosts.mx, service, path)
        assert ok, explain(detail, ("site.yml output", (broken_run["proc"].stdout + broken_run["proc"].stderr)[-4000:]))
