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
