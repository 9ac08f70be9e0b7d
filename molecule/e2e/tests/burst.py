#!/usr/bin/python3
"""Burst injector for check 9c, run INSIDE sender-ok (copied there by the test).

Usage: burst.py MAX RUN_ID OUT_FILE STOP_FILE [RATE]
Submits messages to sender-ok's own Postfix (127.0.0.1:25, one session), which relays them to
mx, until STOP_FILE exists or MAX messages were submitted. The test creates STOP_FILE only after
mx's restart, so the restart falls inside the burst however fast the machine is. At most RATE
messages per second (default 50): the load stays the same on a fast machine, and the logs the
test counts stay under journald's rate limit (10,000 lines per unit per 30 s). Every reply is
recorded: a 250 means the message is in sender-ok's queue (it is sender-ok's job from then on);
anything else means it never left the injector. Writes {"accepted": [mid...], "refused": [[mid,
code, text]...], "seconds": t, "stopped_by": "file"|"max"} to OUT_FILE when done.
"""

import email.utils
import json
import os
import smtplib
import sys
import time


def main():
    limit, run_id, out, stop_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    interval = 1.0 / float(sys.argv[5]) if len(sys.argv) > 5 else 0.02
    accepted, refused = [], []
    start = time.monotonic()
    client = smtplib.SMTP("127.0.0.1", 25, local_hostname="mail.partner-strict.example", timeout=60)
    stopped_by = "max"
    for index in range(limit):
        pause = start + index * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if os.path.exists(stop_file):
            stopped_by = "file"
            break
        mid = "burst-%s-%05d@partner-strict.example" % (run_id, index)
        data = ("From: burst@partner-strict.example\r\nTo: burst@example.test\r\nSubject: burst %d\r\n"
                "Date: %s\r\nMessage-ID: <%s>\r\n\r\nmessage %d of at most %d\r\n"
                % (index, email.utils.formatdate(), mid, index + 1, limit))
        try:
            client.sendmail("burst@partner-strict.example", ["burst@example.test"], data)
            accepted.append(mid)
        except smtplib.SMTPResponseException as error:
            refused.append([mid, error.smtp_code, str(error.smtp_error)])
        except smtplib.SMTPException as error:
            refused.append([mid, None, str(error)])
    client.quit()
    with open(out + ".tmp", "w") as handle:
        json.dump({"accepted": accepted, "refused": refused, "seconds": time.monotonic() - start,
                   "stopped_by": stopped_by}, handle)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
