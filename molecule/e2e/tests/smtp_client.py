#!/usr/bin/python3
"""A scripted SMTP client that runs INSIDE a test container (copied there by conftest.py).

Usage: python3 smtp_client.py '<json>'  with
    {"host": "10.89.200.25", "port": 25, "timeout": 30,
     "steps": [["EHLO", "name"], ["MAIL", "<a@b>"], ["RCPT", "<c@d>"], ["DATA", "<message>"],
               ["CMD", "VRFY root"], ["STARTTLS", {"min": "TLSv1_2", "max": "TLSv1_2"}],
               ["RSET"], ["QUIT"]],
     "dkim": {"key": "/root/k.pem", "domain": "d", "selector": "s"}}   # optional: sign DATA

Prints one JSON object: {"banner": [code, text], "steps": [[op, arg, code, text], ...],
"transcript": "C: ...\\nS: ..."}. A step that raises records code null and the error text, and
the session stops there. Only the standard library (and dkimpy for "dkim") is used.
"""

import json
import smtplib
import ssl
import sys
import warnings


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _tls_context(spec):
    """A client context pinned to the versions asked for, at SECLEVEL=0.

    OpenSSL 3 (Debian 12) refuses TLS 1.0/1.1 on the client side at SECLEVEL >= 1; level 0 makes
    any refusal the server's.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if spec.get("min"):
            ctx.minimum_version = getattr(ssl.TLSVersion, spec["min"])
        if spec.get("max"):
            ctx.maximum_version = getattr(ssl.TLSVersion, spec["max"])
    return ctx


def _sign(message, spec):
    import dkim  # pylint: disable=import-outside-toplevel

    with open(spec["key"], "rb") as handle:
        key = handle.read()
    data = message.encode("utf-8")
    signature = dkim.sign(data, spec["selector"].encode(), spec["domain"].encode(), key,
                          canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature.decode("ascii") + message


def main():
    spec = json.loads(sys.argv[1])
    transcript, steps = [], []
    result = {"banner": None, "steps": steps, "transcript": ""}
    client = smtplib.SMTP(timeout=spec.get("timeout", 30))
    try:
        code, text = client.connect(spec["host"], spec.get("port", 25))
        result["banner"] = [code, _text(text)]
        transcript.append("S: %d %s" % (code, _text(text)))
        for step in spec["steps"]:
            op, arg = step[0], (step[1] if len(step) > 1 else None)
            shown = "<message, %d bytes>" % len(arg) if op == "DATA" else arg
            transcript.append("C: %s %s" % (op, "" if shown is None else json.dumps(shown)))
            try:
                if op == "EHLO":
                    code, text = client.ehlo(arg)
                elif op == "HELO":
                    code, text = client.helo(arg)
                elif op == "MAIL":
                    code, text = client.docmd("MAIL FROM:" + arg)
                elif op == "RCPT":
                    code, text = client.docmd("RCPT TO:" + arg)
                elif op == "DATA":
                    message = _sign(arg, spec["dkim"]) if spec.get("dkim") else arg
                    code, text = client.docmd("DATA")
                    if code == 354:
                        transcript.append("S: %d %s" % (code, _text(text)))
                        client.send(smtplib.quotedata(message).encode("utf-8") + b"\r\n.\r\n")
                        code, text = client.getreply()
                elif op == "STARTTLS":
                    code, text = client.docmd("STARTTLS")
                    if code == 220:
                        transcript.append("S: %d %s" % (code, _text(text)))
                        client.sock = _tls_context(arg or {}).wrap_socket(client.sock)
                        client.file = None
                        text = "TLS established: %s %s" % (client.sock.version(), client.sock.cipher()[0])
                        code = 220
                elif op == "RSET":
                    code, text = client.rset()
                elif op == "QUIT":
                    code, text = client.docmd("QUIT")
                elif op == "CMD":
                    code, text = client.docmd(arg)
                else:
                    raise ValueError("unknown step %r" % op)
            except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
                steps.append([op, shown, None, "%s: %s" % (type(error).__name__, error)])
                transcript.append("!  %s: %s" % (type(error).__name__, error))
                break
            steps.append([op, shown, code, _text(text)])
            lines = _text(text).split("\n")
            transcript.extend("S: %d%s%s" % (code, " " if i == len(lines) - 1 else "-", line)
                              for i, line in enumerate(lines))
    except (OSError, smtplib.SMTPException) as error:
        transcript.append("!  connect: %s: %s" % (type(error).__name__, error))
        steps.append(["CONNECT", spec["host"], None, "%s: %s" % (type(error).__name__, error)])
    finally:
        try:
            client.close()
        except OSError:
            pass
    result["transcript"] = "\n".join(transcript)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
