"""The pure parts of bench/throughput/run.py: CPU accounting by name and the signed test message."""
import base64

import dkim
import pytest


@pytest.fixture(scope="module")
def run():
    from bench.throughput import run as module
    return module


# snapshot rows: pid -> [comm, ppid, own ticks, reaped-children ticks]; clk 100 -> 10 ms a tick
def test_alive_and_new_processes_count_their_own_time_in_the_window(run):
    a = {"1": ["systemd", "0", 50, 0], "10": ["master", "1", 100, 0]}
    b = {"1": ["systemd", "0", 50, 0], "10": ["master", "1", 130, 0], "20": ["smtpd", "10", 40, 0]}
    # 10 messages: master 30 ticks = 300 ms -> 30 ms/msg; the new smtpd 40 ticks -> 40 ms/msg
    assert run.cpu_by_name(a, b, 100, 10) == {"smtpd": 40.0, "master": 30.0}


def test_an_exited_child_counts_only_what_it_used_in_the_window(run):
    # cleanup had used 70 ticks before the first snapshot and 20 more before it exited; master
    # reaped it, so master's reaped time grew by all 90.
    a = {"10": ["master", "1", 100, 5], "30": ["cleanup", "10", 70, 0]}
    b = {"10": ["master", "1", 100, 95]}
    assert run.cpu_by_name(a, b, 100, 1) == {"exited children of master": 200.0}


def test_a_process_replaced_under_the_same_pid_counts_from_zero(run):
    a = {"30": ["cleanup", "10", 70, 0], "10": ["master", "1", 0, 0]}
    b = {"30": ["local", "10", 15, 0], "10": ["master", "1", 0, 70]}
    # the old cleanup (pid 30) exited with 70 ticks all before the window; a local got its pid
    assert run.cpu_by_name(a, b, 100, 1) == {"local": 150.0}


def test_the_sum_is_the_cpu_used_in_the_window(run):
    a = {"10": ["master", "1", 100, 0], "11": ["spawn", "10", 1, 0], "12": ["policyd-spf", "11", 40, 0]}
    # policyd-spf used 10 more and exited (spawn reaped 50), spawn used 2 more and exited too
    # (master reaped 3 + 50), a new cleanup used 7
    b = {"10": ["master", "1", 101, 53], "40": ["cleanup", "10", 7, 0]}
    got = run.cpu_by_name(a, b, 100, 1)
    assert round(sum(got.values()), 3) == (1 + 10 + 2 + 7) * 10.0
    assert got["exited children of master"] == 120.0


def test_the_signed_message_verifies_and_its_record_is_split_at_255(run):
    message, record = run.signed_message(2000)
    assert record.startswith("v=DKIM1; k=rsa; p=")
    raw = message.replace("\n", "\r\n").encode()
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record.encode())
    assert 1800 < len(message.split("\n\n", 1)[1]) <= 2000
    # the key is 2048 bits: its DER public key is 294 bytes
    assert len(base64.b64decode(record.split("p=", 1)[1])) == 294
    strings = run.txt_strings(record)
    parts = strings.split('" "')
    assert len(parts) == 2 and all(len(p.strip('"')) <= 255 for p in parts)
    assert "".join(p.strip('"') for p in parts) == record
    tampered = raw.replace(b"Subject: tput signed", b"Subject: tput changed")
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record.encode())


def test_ratios_are_the_issue_pairs_and_skip_missing_or_zero_rates(run):
    rates = {"plain": 1000.0, "tutorial": 100.0, "mailward": 300.0, "rspamd": 250.0, "spf": 500.0}
    assert run.rate_ratios(rates) == {"c/a": 0.3, "c/b": 3.0, "c/d": 1.2, "b/a": 0.1, "d/a": 0.25}
    assert run.rate_ratios({"plain": 1000.0, "mailward": 300.0, "rspamd": 0}) == {"c/a": 0.3}


def test_cpu_per_check_groups_processes_and_keeps_the_total(run):
    mx = {"policyd-spf": 1.2, "exited children of spawn": 0.3, "opendkim": 0.6, "opendmarc": 0.4,
          "unbound": 0.1, "smtpd": 0.9, "exited children of master": 0.5, "cleanup": 0.2}
    got = run.cpu_per_check(mx)
    assert got == {"dkim": 0.6, "dmarc": 0.4, "postfix and other": 1.6, "resolver": 0.1,
                   "spf": 1.5, "total": 4.2}
    assert run.cpu_per_check({"rspamd": 0.8, "smtpd": 1.0}) == {
        "postfix and other": 1.0, "rspamd": 0.8, "total": 1.8}


def _data(tls, plain, mailward, rspamd, signed=False):
    key = "delivered_rate_median" if tls else "accept_rate_median"
    res = {c: {"accept_rate_median": 1.0, "delivered_rate_median": 1.0, "all_ok": True}
           for c in ("plain", "mailward", "rspamd")}
    for c, v in (("plain", plain), ("mailward", mailward), ("rspamd", rspamd)):
        res[c][key] = v
    return {"tls": tls, "signed": signed, "rate": key, "results": res, "argv": ["--quick", "--tls"] if tls else ["--quick"],
            "accounting": {"mailward": {"mx_cpu_ms_per_message": {"policyd-spf": 1.0, "smtpd": 1.0},
                                        "container_cpu_ms_per_message": {"mx": 2.0, "total": 3.0}}}}


def test_summary_takes_the_rate_of_its_mode_and_merges_modes(run):
    clear = run.summarize(_data(False, 1000.0, 300.0, 200.0), "x/throughput.json")
    assert list(clear) == ["cleartext"]
    sec = clear["cleartext"]
    assert sec["ratios"] == {"c_over_a": 0.3, "c_over_d": 1.5, "d_over_a": 0.2}
    assert sec["rate"] == "accepted msg/s" and sec["all_ok"]
    assert sec["command"] == "python bench/throughput/run.py --quick"
    assert sec["cpu_ms_per_message_mx_by_check"]["mailward"] == {"postfix and other": 1.0, "spf": 1.0, "total": 2.0}
    # --tls: the delivered rates (the sender's Postfix accepts; the MX's work is delivery)
    tls = run.summarize(_data(True, 500.0, 250.0, 500.0), "y/throughput.json")
    assert tls["tls"]["ratios"]["c_over_d"] == 0.5 and tls["tls"]["rate"].startswith("delivered")
    merged = run.merge_summary(run.merge_summary({}, clear), tls)
    assert merged["c_over_a"] == 0.3 and merged["c_over_d"] == 1.5
    assert merged["c_over_a_tls"] == 0.5 and merged["c_over_d_tls"] == 0.5
    assert set(merged["modes"]) == {"cleartext", "tls"}
    # a later run of one mode replaces that mode only; a signed run has a section of its own
    signed = run.summarize(_data(False, 1000.0, 100.0, 400.0, signed=True), "z")
    again = run.merge_summary(merged, signed)
    assert set(again["modes"]) == {"cleartext", "tls", "cleartext_signed"}
    assert again["c_over_d"] == 1.5 and again["c_over_d_tls"] == 0.5


def test_started_during_counts_new_pids_and_reused_pids_under_the_name(run):
    a = {"5": ["policyd-spf", "4", 9, 0], "6": ["smtpd", "1", 1, 0], "7": ["policyd-spf", "4", 3, 0]}
    b = {"5": ["policyd-spf", "4", 12, 0], "6": ["policyd-spf", "4", 1, 0], "8": ["policyd-spf", "4", 5, 0],
         "9": ["smtpd", "1", 1, 0]}
    assert run.started_during(a, b, "policyd-spf") == 2
    assert run.started_during(a, b, "smtpd") == 1


def test_a_run_without_ratios_does_not_wipe_the_full_run_of_its_mode(run):
    full = run.merge_summary({}, run.summarize(_data(False, 1000.0, 300.0, 200.0), "full"))
    only_c = _data(False, 1000.0, 300.0, 200.0)
    only_c["results"] = {"mailward": only_c["results"]["mailward"]}
    merged = run.merge_summary(full, run.summarize(only_c, "partial"))
    assert merged["c_over_a"] == 0.3 and merged["modes"]["cleartext"]["source"] == "full"
    assert merged["modes"]["cleartext_partial"]["source"] == "partial"


def test_summary_keeps_each_experiment_and_ablation_step_with_its_cpu_by_check(run):
    data = _data(False, 1000.0, 300.0, 200.0)
    data["experiments"] = [
        {"experiment": "nospfcache", "kind": "experiment", "change": "x", "gain": 0.7,
         "accounting": {"mx_cpu_ms_per_message": {"policyd-spf": 1.6, "smtpd": 0.5}}},
        {"experiment": "no-opendkim", "kind": "ablation", "change": "y", "gain": 1.2,
         "accounting": {"mx_cpu_ms_per_message": {"opendmarc": 0.4, "smtpd": 0.5}}}]
    steps = run.summarize(data, "s")["cleartext"]["steps"]
    assert list(steps) == ["nospfcache", "no-opendkim"]
    assert steps["nospfcache"]["cpu_ms_per_message_mx_by_check"] == {"postfix and other": 0.5, "spf": 1.6, "total": 2.1}
    assert steps["no-opendkim"]["kind"] == "ablation" and steps["no-opendkim"]["gain"] == 1.2
    assert run.summarize(_data(False, 1000.0, 300.0, 200.0), "s")["cleartext"]["steps"] == {}
