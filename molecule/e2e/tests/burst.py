#!/usr/bin/python3
"""Burst injector for check 9c, run INSIDE sender-ok (copied there by the test).

Usage: burst.py N RUN_ID OUT_FILE
Submits N messages to sender-ok's own Postfix (127.0.0.1:25, one session) which relays them to
mx. Every reply is recorded: a 250 means the message is in sender-ok's queue (it is sender-ok's
job from then on); anything else means it never left the injector. Writes
{"accepted": [mid...], "refused": [[mid, code, text]...], "seconds": t} to OUT_FILE when done.
"""

import email.utils
import json
import smtplib
import sys
import time


def main():
    count, run_id, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    accepted, refused = [], []
    start = time.monotonic()
    client = smtplib.SMTP("127.0.0.1", 25, local_hostname="mail.partner-strict.example", timeout=60)
    for index in range(count):
        mid = "burst-%s-%04d@partner-strict.example" % (run_id, index)
        data = ("From: burst@partner-strict.example\r\nTo: burst@example.test\r\nSubject: burst %d\r\n"
                "Date: %s\r\nMessage-ID: <%s>\r\n\r\nmessage %d of %d\r\n"
                % (index, email.utils.formatdate(), mid, index + 1, count))
        try:
            client.sendmail("burst@partner-strict.example", ["burst@example.test"], data)
            accepted.append(mid)
        except smtplib.SMTPResponseException as error:
            refused.append([mid, error.smtp_code, str(error.smtp_error)])
        except smtplib.SMTPException as error:
            refused.append([mid, None, str(error)])
    client.quit()
    with open(out + ".tmp", "w") as handle:
        json.dump({"accepted": accepted, "refused": refused, "seconds": time.monotonic() - start}, handle)
    import os  # pylint: disable=import-outside-toplevel

    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
