#!/usr/bin/python3
# mailward-fromcheck: a milter for the submission services (587/465) only. Installed by the
# mailward submission role; the pure functions are unit-tested (tests/unit/test_submission_fromcheck.py).
"""Refuse submitted mail whose header From the SASL login may not use.

Postfix checks the envelope sender against the login (reject_sender_login_mismatch) but cannot
compare the header From with it, and OpenDKIM signs whatever From domain it hosts. This milter
reads the SASL login ({auth_authen}, sent with the MAIL FROM macros), takes the one address out
of the From header with a strict parser (anything it cannot read unambiguously is refused), and
looks it up in the very map Postfix uses for the envelope (texthash: address -> logins).
Refusals are 550 5.7.1 with a text naming the address and the login; an error of the milter
itself is a 451 4.3.0 (and a milter that does not answer is a 4xx through milter_default_action).

Runs with Python 3.6 (EL 8) and newer; pymilter is imported only when the milter runs.
"""

import argparse
import re
import sys

# Postfix's recipient_delimiter (roles/postfix/vars/main.yml): alice+news@ belongs to alice@.
RECIPIENT_DELIMITER = "+"

REFUSE_CODE, REFUSE_STATUS = "550", "5.7.1"
ERROR_CODE, ERROR_STATUS = "451", "4.3.0"

# RFC 5322 3.2.3 atext (ASCII); an atom of a display name may also hold UTF-8 (RFC 6532).
ATEXT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~")
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*\Z")
# A host name with at least one dot: letters, digits, inner hyphens (A-labels are plain ASCII).
DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")
FOLD = re.compile(r"\r?\n(?=[ \t])")
HOW = "use one address, user@domain or Name <user@domain>"


class FromError(ValueError):
    """The From header is not exactly one mailbox this module can read unambiguously."""


def _scan_quoted(text, pos):
    """Index just after the quoted string that starts at text[pos] (a double quote)."""
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == '"':
            return pos + 1
        pos += 1
    raise FromError("an unterminated quoted string")


def _check_characters(value):
    """Refuse what different parsers could cut differently: line breaks, controls, bad bytes."""
    for char in value:
        code = ord(char)
        if char in "\r\n":
            raise FromError("a line break")
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: a byte that is not UTF-8
            raise FromError("bytes that are not UTF-8")
        if (code < 0x20 and char != "\t") or code == 0x7F:
            raise FromError("a control character")


def _check_display_name(text):
    """A phrase: atoms (atext, '.', UTF-8) and quoted strings separated by blanks; may be empty."""
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == '"':
            pos = _scan_quoted(text, pos)
        elif char in " \t" or char in ATEXT or char == "." or ord(char) > 0x7F:
            pos += 1
        elif char == "@":
            raise FromError("an @ outside the address")
        else:
            raise FromError("a %r outside the address" % char)


def parse_addr_spec(text):
    """local@domain -> its lower-case form; a dot-atom local part and a host name only."""
    if not text:
        raise FromError("no @ in the address")
    if any(char in " \t" for char in text):
        raise FromError("a space in the address")
    if text.startswith('"') or '"' in text.split("@")[0]:
        raise FromError("a quoted local part")
    if text.count("@") == 0:
        raise FromError("no @ in the address")
    if text.count("@") > 1:
        raise FromError("more than one @ in the address")
    local, domain = text.split("@")
    if domain.startswith("["):
        raise FromError("an address literal")
    if len(local) > 64 or len(domain) > 253 or len(text) > 254:
        raise FromError("an address too long")
    if not DOT_ATOM.match(local):
        raise FromError("a malformed local part")
    if not DOMAIN.match(domain):
        raise FromError("a malformed domain")
    return (local + "@" + domain).lower()


def parse_from(value):
    """The one address of a From header value (lower case), or FromError naming the problem.

    Accepted: ``local@domain``, ``<local@domain>`` and ``Display Name <local@domain>`` where
    the display name is atoms and quoted strings. Refused: several addresses, groups, comments,
    source routes, quoted local parts, address literals and any stray character, because mail
    clients, DKIM and DMARC could read a different author out of them.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    value = FOLD.sub("", value)
    _check_characters(value)
    value = value.strip(" \t")
    if not value:
        raise FromError("empty")
    # One pass over what is outside quoted strings: where the angle brackets are, and the
    # characters that start a second address, a group, a route or a comment.
    opens, closes, pos = [], [], 0
    while pos < len(value):
        char = value[pos]
        inside = len(opens) > len(closes)
        if char == '"':
            pos = _scan_quoted(value, pos)
            continue
        if char == ",":
            raise FromError("more than one address")
        if char == "(":
            raise FromError("a comment")
        if char in ":;":
            raise FromError("a source route" if inside else "group syntax")
        if char == "<":
            if opens:
                raise FromError("more than one address")
            opens.append(pos)
        elif char == ">":
            if not inside:
                raise FromError("an unbalanced >")
            closes.append(pos)
        pos += 1
    if not opens:
        return parse_addr_spec(value)
    if not closes:
        raise FromError("an unbalanced <")
    start, end = opens[0], closes[0]
    if value[end + 1:].strip(" \t"):
        raise FromError("text after the address")
    _check_display_name(value[:start])
    return parse_addr_spec(value[start + 1:end])


def parse_owners(text):
    """The sender/login map as Postfix's texthash reads it: {address: frozenset(logins)}.

    One entry per line, ``key  login[,login...]`` (commas and/or blanks); a line that starts
    with a blank continues the entry above; blank lines and # comments are skipped. Keys and
    logins are compared in lower case, as Postfix does. A duplicate key or a key without
    logins is an error: the milter must not guess which line Postfix would use.
    """
    owners, last = {}, None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":
            if last is None:
                raise ValueError("line %d: a continuation line without an entry" % number)
            owners[last] = owners[last] | frozenset(_logins(line))
            continue
        fields = line.split(None, 1)
        key = fields[0].lower()
        logins = _logins(fields[1]) if len(fields) > 1 else []
        if not logins:
            raise ValueError("line %d: a key without logins" % number)
        if key in owners:
            raise ValueError("line %d: %s listed twice" % (number, key))
        owners[key], last = frozenset(logins), key
    return owners


def _logins(text):
    return [login.lower() for login in re.split(r"[\s,]+", text.strip()) if login]


def read_owners(path):
    with open(path, encoding="utf-8") as handle:
        return parse_owners(handle.read())


def owners_of(address, owners, delimiter=RECIPIENT_DELIMITER):
    """The logins that may use ``address``: Postfix's order for smtpd_sender_login_maps.

    The full address, then the address without its +extension, then @domain; the first key
    found decides.
    """
    local, domain = address.lower().rsplit("@", 1)
    keys = [local + "@" + domain]
    if delimiter and delimiter in local:
        base = local.split(delimiter, 1)[0]
        if base:
            keys.append(base + "@" + domain)
    keys.append("@" + domain)
    for key in keys:
        if key in owners:
            return set(owners[key])
    return set()


def _printable(text, limit=100):
    """Text for an SMTP reply: printable ASCII without % (libmilter drops a reply with one)."""
    clean = "".join(char if 0x20 <= ord(char) < 0x7F and char != "%" else "?" for char in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


def check_message(login, from_values, owners):
    """None when ``login`` may send a message with these From header values, else the text
    of the 550 5.7.1 refusal."""
    if not login:
        return "no SASL login on this session: header From cannot be checked"
    if not from_values:
        return "message without a From header"
    if len(from_values) > 1:
        return "message with %d From headers: exactly one is allowed" % len(from_values)
    try:
        address = parse_from(from_values[0])
    except FromError as error:
        return "header From not accepted (%s): %s" % (_printable(str(error)), HOW)
    if login.lower() not in owners_of(address, owners):
        return "header From <%s> not owned by login %s" % (_printable(address), _printable(login))
    return None


def run_milter(socket, map_path, timeout):
    """Serve Postfix until stopped (pymilter, one thread per SMTP session)."""
    import Milter  # only here: the checks and the unit tests run without pymilter

    def log(*words):
        print(*words, flush=True)

    class FromCheck(Milter.Base):
        """One SMTP session. Callbacks not defined here are not requested from Postfix."""

        def __init__(self):
            self.login, self.froms, self.queue_id = None, [], None

        # noreply: Postfix need not wait for an answer to these two (saves a round trip each).
        @Milter.noreply
        def envfrom(self, mailfrom, *params):
            # {auth_authen} comes with the MAIL FROM macros (Postfix's milter_mail_macros).
            self.login = self.getsymval("{auth_authen}")
            self.froms, self.queue_id = [], None
            return Milter.CONTINUE

        @Milter.noreply
        def header(self, name, value):
            if name.lower() == "from":
                self.froms.append(value)
            return Milter.CONTINUE

        def eoh(self):
            self.queue_id = self.getsymval("i") or "NOQUEUE"
            try:
                # Read on every message: the map is small and a changed map applies at once.
                refusal = check_message(self.login, self.froms, read_owners(map_path))
            except Exception as error:  # fail closed: any trouble here is a temporary refusal
                log("%s: error: %s: %s" % (self.queue_id, type(error).__name__, error))
                self.setreply(ERROR_CODE, ERROR_STATUS, "header From check unavailable, try again later")
                return Milter.TEMPFAIL
            if refusal is None:
                return Milter.ACCEPT
            log("%s: reject: login=%s: %s %s %s" % (self.queue_id, _printable(self.login or ""),
                                                     REFUSE_CODE, REFUSE_STATUS, refusal))
            self.setreply(REFUSE_CODE, REFUSE_STATUS, refusal)
            return Milter.REJECT

    Milter.factory = FromCheck
    log("mailward-fromcheck: listening on %s, map %s" % (socket, map_path))
    Milter.runmilter("mailward-fromcheck", socket, timeout)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", required=True, help="the sender/login map (texthash source)")
    parser.add_argument("--socket", help="libmilter socket: local:/path or inet:port@host")
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait for Postfix")
    parser.add_argument("--check", action="store_true", help="read the map, report, exit")
    args = parser.parse_args(argv)
    try:
        owners = read_owners(args.map)
    except (OSError, ValueError) as error:
        print("%s: %s" % (args.map, error), file=sys.stderr)
        return 1
    if args.check:
        print("%s: %d sender addresses" % (args.map, len(owners)))
        return 0
    if not args.socket:
        parser.error("--socket is required unless --check")
    return run_milter(args.socket, args.map, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
