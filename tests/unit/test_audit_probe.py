"""The smtp_probe module's dialogue against a scripted SMTP server on loopback (no TLS).

Checks what the module sends (never DATA, RSET after every RCPT, at most session_probes RCPTs
per session, QUIT at the end) and that every reply is recorded.
"""
import socket
import socketserver
import threading

import pytest

from ansible_collections.mailward.mail.plugins.modules import smtp_probe


class Handler(socketserver.StreamRequestHandler):
    """A minimal server: refuses relay for other.test, VRFY disabled, no STARTTLS."""

    def handle(self):
        log = self.server.log
        session = []
        log.append(session)
        self.wfile.write(b"220 fake.test ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            session.append(text)
            verb = text.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-fake.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == "VRFY":
                self.wfile.write(b"502 5.5.1 VRFY command is disabled\r\n")
            elif verb == "EXPN":
                self.wfile.write(b"502 5.5.2 Error: command not recognized\r\n")
            elif verb in ("MAIL", "RSET"):
                self.wfile.write(b"250 2.0.0 Ok\r\n")
            elif verb == "RCPT":
                if "other.test" in text and self.server.open_relay is False:
                    self.wfile.write(b"554 5.7.1 Relay access denied\r\n")
                else:
                    self.wfile.write(b"250 2.1.5 Ok\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 2.0.0 Bye\r\n")
                return
            else:
                self.wfile.write(b"502 5.5.2 Error: command not recognized\r\n")


@pytest.fixture()
def server():
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.log, srv.open_relay = [], False
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _params(port, probes, **extra):
    params = dict(address="127.0.0.1", ports=[port], server_name="fake.test", helo="probe.test",
                  relay_probes=probes, relay_port=port, legacy_versions=["TLSv1"], legacy_ports=[port],
                  ca_file="", timeout=5, session_probes=3)
    params.update(extra)
    return params


PROBES = [{"name": "foreign", "domain": "a.test", "rcpt": "<user@other.test>"},
          {"name": "percent_hack", "domain": "a.test", "rcpt": "<user%other.test@a.test>"},
          {"name": "bang_path", "domain": "a.test", "rcpt": "<other.test!user@a.test>"},
          {"name": "quoted_local", "domain": "a.test", "rcpt": '<"user@other.test"@a.test>'},
          {"name": "source_route", "domain": "a.test", "rcpt": "<@mx.a.test:user@other.test>"}]


def test_probe_records_every_reply_and_never_sends_data(server):
    port = server.server_address[1]
    out = smtp_probe.probe_port(_params(port, PROBES), port)
    assert out["connect"] == {"ok": True, "local_address": "127.0.0.1"}
    assert out["banner"] == [220, "fake.test ESMTP"]
    assert out["vrfy"][0] == 502 and out["expn"][0] == 502
    assert "starttls" not in out  # not offered: no TLS attempts
    for probe in PROBES:
        (attempt,) = out["relay"][probe["name"]]
        assert attempt["rcpt_to"] == probe["rcpt"]
        assert attempt["rcpt"] == [554, "5.7.1 Relay access denied"]
        assert attempt["rset"][0] == 250
    sent = [line for session in server.log for line in session]
    assert not any(line.upper().startswith("DATA") for line in sent)
    # the RCPT lines go out verbatim (no smtplib quoting)
    assert 'RCPT TO:<"user@other.test"@a.test>' in sent
    # every RCPT is followed by RSET; sessions hold at most 3 RCPTs and end with QUIT
    for session in server.log:
        rcpts = [i for i, line in enumerate(session) if line.startswith("RCPT")]
        assert len(rcpts) <= 3
        assert all(session[i + 1] == "RSET" for i in rcpts)
        assert session[-1] == "QUIT"
    assert sum(1 for line in sent if line.startswith("RCPT")) == len(PROBES)
    assert any(step["send"].startswith("RCPT") and step["code"] == 554 for step in out["transcript"])


def test_probe_reports_an_open_relay_as_recorded_250(server):
    server.open_relay = True
    port = server.server_address[1]
    out = smtp_probe.probe_port(_params(port, PROBES[:1]), port)
    assert out["relay"]["foreign"][0]["rcpt"][0] == 250


def test_probe_records_a_refused_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    out = smtp_probe.probe_port(_params(port, []), port)
    assert out["connect"]["ok"] is False and out["connect"]["refused"] is True
