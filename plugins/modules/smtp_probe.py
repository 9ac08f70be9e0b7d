#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: talk SMTP to a mail server as an outside client would, and record every reply."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: smtp_probe
short_description: Record an SMTP server's answers to relay, VRFY/EXPN, STARTTLS and TLS-version probes
description:
  - "Runs on the host it is delegated to (the probe host), with Python's smtplib and ssl only, and
    returns the structured dialogue. It judges nothing: the audit role's filters do
    (P(mailward.mail.audit_smtp_checks#filter))."
  - Never sends DATA. Every relay probe is C(MAIL FROM:<>) then C(RCPT TO) then C(RSET); sessions end with C(QUIT).
    Relay probes are split over several sessions (O(session_probes)) so that the server's error limits
    (smtpd_soft_error_limit) do not change its answers.
  - Per port, a session reads the greeting, sends EHLO, and (on O(relay_port)) VRFY/EXPN postmaster and
    the relay probes; then a session with STARTTLS without certificate checks (version, cipher,
    certificate, EHLO after TLS), one with the probe host's trust store and host name check, and
    one per legacy TLS version (client allows only that version, C(DEFAULT:@SECLEVEL=0) ciphers, so a
    failed handshake is the server's refusal).
options:
  address:
    description: Address or name to connect to.
    type: str
    required: true
  ports:
    description: Ports to probe; a refused connection is recorded, not an error.
    type: list
    elements: int
    default: [25]
  server_name:
    description: The MX host name (SNI and certificate check).
    type: str
    required: true
  helo:
    description: Name sent in EHLO.
    type: str
    default: audit-probe.mailward.invalid
  relay_probes:
    description:
      - Relay probes for O(relay_port), each C({name, domain, rcpt}) (C(rcpt) with its angle brackets),
        as P(mailward.mail.audit_relay_probes#filter) returns them.
    type: list
    elements: dict
    default: []
  relay_port:
    description: The port the relay and VRFY/EXPN probes use.
    type: int
    default: 25
  legacy_versions:
    description: TLS versions that must be refused.
    type: list
    elements: str
    default: [TLSv1, TLSv1.1]
  legacy_ports:
    description: Ports where the legacy versions are tried.
    type: list
    elements: int
    default: [25]
  ca_file:
    description: CA bundle for the trust check; empty for the probe host's default store.
    type: str
    default: ""
  timeout:
    description: Seconds per network operation.
    type: float
    default: 15
  session_probes:
    description: At most this many RCPT probes per session.
    type: int
    default: 6
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module changes nothing anywhere; it probes in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: mailward.mail.audit_dns
  - plugin: mailward.mail.audit_smtp_checks
    plugin_type: filter
author: mailward
"""

EXAMPLES = r"""
- name: Probe ports 25 and 587 of the MX from the controller
  mailward.mail.smtp_probe:
    address: 192.0.2.25
    server_name: mx.example.test
    ports: [25, 587]
    relay_probes: "{{ mail_domains_normalized | mailward.mail.audit_relay_probes('mx.example.test', 'other.test', 'user') }}"
  delegate_to: localhost
  register: smtp_result

- name: Show what port 25 answered to VRFY
  ansible.builtin.debug:
    var: smtp_result.ports['25'].vrfy
"""

RETURN = r"""
address:
  description: The address connected to (O(address)).
  type: str
  returned: always
  sample: 192.0.2.25
ports:
  description:
    - Per port (as a string), the dialogue. C(connect) (ok, error, refused, local_address), C(banner),
      C(ehlo), C(extensions), C(transcript); on O(relay_port) also C(vrfy), C(expn) and C(relay)
      (per probe name); when STARTTLS is offered C(starttls) (ok, version, cipher, cert_der_b64,
      ehlo_after, auth_after_tls, verify) and, on O(legacy_ports), C(tls_legacy) (per version,
      result accepted, refused, client_unsupported or error).
  type: dict
  returned: always
  sample:
    "25":
      connect: {ok: true, local_address: 192.0.2.10}
      banner: [220, mx.example.test ESMTP]
      starttls: {ok: true, version: TLSv1.3, cipher: TLS_AES_256_GCM_SHA384, verify: {ok: true}}
      tls_legacy: {TLSv1: {result: refused, error: "..."}}
openssl:
  description: OpenSSL version of the probe host's Python (which legacy versions it can offer depends on it).
  type: str
  returned: always
  sample: OpenSSL 3.0.15 3 Sep 2024
seconds:
  description: Wall-clock time of the probes.
  type: float
  returned: always
  sample: 2.4
"""

import base64
import smtplib
import socket
import ssl
import time

from ansible.module_utils.basic import AnsibleModule

_CLIENT_SIDE = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE")


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class Session:
    """One SMTP connection with its transcript."""

    def __init__(self, address, port, timeout, transcript):
        self.address, self.port, self.timeout = address, port, timeout
        self.transcript = transcript
        self.smtp = smtplib.SMTP(timeout=timeout)
        self.sock_tls = None

    def open(self):
        code, msg = self.smtp.connect(self.address, self.port)
        self.transcript.append({"send": "(connect %s:%s)" % (self.address, self.port), "code": code, "text": _text(msg)})
        return [code, _text(msg)]

    def cmd(self, line):
        try:
            code, msg = self.smtp.docmd(line)
        except smtplib.SMTPServerDisconnected as error:
            self.transcript.append({"send": line, "code": None, "text": "disconnected: %s" % error})
            return [None, "disconnected: %s" % error]
        self.transcript.append({"send": line, "code": code, "text": _text(msg)})
        return [code, _text(msg)]

    def ehlo(self, helo):
        code, msg = self.smtp.ehlo(helo)
        self.transcript.append({"send": "EHLO %s" % helo, "code": code, "text": _text(msg)})
        lines = _text(msg).splitlines()
        return [code, _text(msg)], [line.strip() for line in lines[1:]] if code == 250 else []

    def starttls(self, context, server_name):
        reply = self.cmd("STARTTLS")
        if reply[0] != 220:
            return reply, None
        sock = context.wrap_socket(self.smtp.sock, server_hostname=server_name)
        self.smtp.sock = sock
        self.smtp.file = None
        self.smtp.helo_resp = self.smtp.ehlo_resp = None
        self.smtp.esmtp_features = {}
        self.smtp.does_esmtp = False
        self.transcript.append({"send": "(TLS handshake)", "code": None,
                                "text": "%s %s" % (sock.version(), (sock.cipher() or ("",))[0])})
        return reply, sock

    def quit(self):
        try:
            self.cmd("QUIT")
        finally:
            try:
                self.smtp.close()
            except OSError:
                pass


def _legacy_context(version):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    wanted = getattr(ssl.TLSVersion, version.replace(".", "_"))
    context.minimum_version = wanted
    context.maximum_version = wanted
    return context


def _no_verify_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect(params, port, transcript):
    session = Session(params["address"], port, params["timeout"], transcript)
    banner = session.open()
    reply, extensions = session.ehlo(params["helo"])
    return session, banner, reply, extensions


def probe_port(params, port):
    """Every probe of one port."""
    transcript = []
    out = {"transcript": transcript}
    try:
        session, banner, ehlo, extensions = _connect(params, port, transcript)
    except (OSError, smtplib.SMTPException) as error:
        out["connect"] = {"ok": False, "error": "%s: %s" % (type(error).__name__, error),
                          "refused": isinstance(error, ConnectionRefusedError)}
        return out
    try:
        local_address = session.smtp.sock.getsockname()[0]
    except (OSError, AttributeError):
        local_address = None
    out.update(connect={"ok": True, "local_address": local_address}, banner=banner, ehlo=ehlo, extensions=extensions)
    offered = any(e.lower().startswith("starttls") for e in extensions)
    try:
        if port == params["relay_port"]:
            out["vrfy"] = session.cmd("VRFY postmaster")
            out["expn"] = session.cmd("EXPN postmaster")
            out["relay"] = _relay(params, session, transcript)
        session.quit()
    except (OSError, smtplib.SMTPException) as error:
        out["error"] = "%s: %s" % (type(error).__name__, error)
    if offered:
        out["starttls"] = _starttls(params, port, transcript)
        if port in params["legacy_ports"]:
            out["tls_legacy"] = {v: _legacy(params, port, v, transcript) for v in params["legacy_versions"]}
    return out


def _relay(params, session, transcript):
    """Relay probes, at most session_probes RCPTs per session (new sessions as needed)."""
    results = {}
    used = 0
    for item in params["relay_probes"]:
        if used >= params["session_probes"]:
            session.quit()
            session, _, _, _ = _connect(params, params["relay_port"], transcript)
            used = 0
        mail = session.cmd("MAIL FROM:<>")
        rcpt = session.cmd("RCPT TO:%s" % item["rcpt"]) if mail[0] and 200 <= mail[0] < 300 else None
        rset = session.cmd("RSET")
        used += 1
        results.setdefault(item["name"], []).append(
            {"domain": item.get("domain"), "rcpt_to": item["rcpt"], "mail": mail, "rcpt": rcpt, "rset": rset})
        if mail[0] is None or (rcpt and rcpt[0] is None):  # disconnected: open a new session
            session, _, _, _ = _connect(params, params["relay_port"], transcript)
            used = 0
    session.quit()
    return results


def _starttls(params, port, transcript):
    """STARTTLS without checks (what the server offers), then with the trust store."""
    out = {}
    try:
        session, _, _, _ = _connect(params, port, transcript)
        reply, sock = session.starttls(_no_verify_context(), params["server_name"])
        out["reply"] = reply
        if sock is None:
            out.update(ok=False, error="STARTTLS answered %s %s" % tuple(reply))
            session.quit()
            return out
        der = sock.getpeercert(binary_form=True)
        out.update(ok=True, version=sock.version(), cipher=(sock.cipher() or ("",))[0],
                   cert_der_b64=base64.b64encode(der).decode("ascii") if der else "")
        ehlo, extensions = session.ehlo(params["helo"])
        out["ehlo_after"] = ehlo
        out["auth_after_tls"] = [e for e in extensions if e.lower().startswith("auth")]
        session.quit()
    except (OSError, smtplib.SMTPException, ssl.SSLError) as error:
        out.update(ok=False, error="%s: %s" % (type(error).__name__, error))
        return out
    verify, session = {}, None
    try:
        context = ssl.create_default_context(cafile=params["ca_file"] or None)
        session, _, _, _ = _connect(params, port, transcript)
        reply, sock = session.starttls(context, params["server_name"])
        if sock is None:
            verify.update(ok=False, error="STARTTLS answered %s %s" % tuple(reply))
        else:
            verify["ok"] = True
            session.quit()
    except ssl.SSLCertVerificationError as error:
        verify.update(ok=False, error=error.verify_message or str(error), code=error.verify_code)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as error:
        verify.update(ok=False, error="%s: %s" % (type(error).__name__, error))
    finally:
        if session is not None:
            try:
                session.smtp.close()
            except OSError:
                pass
    out["verify"] = verify
    return out


def _legacy(params, port, version, transcript):
    """One handshake allowing only ``version``: accepted, refused (by the server) or client_unsupported."""
    try:
        context = _legacy_context(version)
    except (ValueError, AttributeError, ssl.SSLError) as error:
        return {"result": "client_unsupported", "error": "%s: %s" % (type(error).__name__, error)}
    try:
        session, _, _, _ = _connect(params, port, transcript)
    except (OSError, smtplib.SMTPException) as error:
        return {"result": "error", "error": "%s: %s" % (type(error).__name__, error)}
    try:
        reply, sock = session.starttls(context, params["server_name"])
        if sock is None:
            return {"result": "error", "error": "STARTTLS answered %s %s" % tuple(reply)}
        result = {"result": "accepted", "version": sock.version(), "cipher": (sock.cipher() or ("",))[0]}
        session.quit()
        return result
    except ssl.SSLError as error:
        reason = getattr(error, "reason", None) or ""
        kind = "client_unsupported" if reason in _CLIENT_SIDE else "refused"
        transcript.append({"send": "(TLS handshake %s)" % version, "code": None, "text": str(error)})
        return {"result": kind, "error": "%s: %s" % (reason or type(error).__name__, error)}
    except (ConnectionResetError, BrokenPipeError, socket.timeout) as error:
        return {"result": "refused", "error": "%s: %s" % (type(error).__name__, error)}
    except (OSError, smtplib.SMTPException) as error:
        return {"result": "error", "error": "%s: %s" % (type(error).__name__, error)}
    finally:
        try:
            session.smtp.close()
        except OSError:
            pass


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str", required=True),
            ports=dict(type="list", elements="int", default=[25]),
            server_name=dict(type="str", required=True),
            helo=dict(type="str", default="audit-probe.mailward.invalid"),
            relay_probes=dict(type="list", elements="dict", default=[]),
            relay_port=dict(type="int", default=25),
            legacy_versions=dict(type="list", elements="str", default=["TLSv1", "TLSv1.1"]),
            legacy_ports=dict(type="list", elements="int", default=[25]),
            ca_file=dict(type="str", default=""),
            timeout=dict(type="float", default=15),
            session_probes=dict(type="int", default=6),
        ),
        supports_check_mode=True,
    )
    started = time.monotonic()
    ports = {str(port): probe_port(module.params, port) for port in module.params["ports"]}
    module.exit_json(changed=False, address=module.params["address"], ports=ports,
                     openssl=ssl.OPENSSL_VERSION, seconds=round(time.monotonic() - started, 2))


if __name__ == "__main__":
    main()
