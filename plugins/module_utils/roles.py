"""Small pure helpers that shape inventory data for the roles' templates."""

from __future__ import annotations

from ansible_collections.mailward.mail.plugins.module_utils import dkim as _dkim
from ansible_collections.mailward.mail.plugins.module_utils.errors import MailwardError
from ansible_collections.mailward.mail.plugins.module_utils.records import dkim_name


def dkim_key_list(domains, keys_dir, host=None):
    """Flatten normalized mail_domains into one item per DKIM key held by ``host``.

    A selector with a ``hosts`` list belongs only to those inventory hosts (several MX hosts
    serving one domain each sign with a selector of their own); one without belongs to every
    host. ``host=None`` keeps every selector.

    Each item: ``{domain, selector, type, bits, state, path, dns_name}`` where ``state`` is the
    selector's lifecycle state (``active``: signs; ``standby``: published, does not sign;
    ``retired``: revoked, its key is removed after some days; default active), ``path`` is
    ``<keys_dir>/<domain>/<selector>.private`` and ``dns_name`` is
    ``<selector>._domainkey.<domain>`` (the KeyTable/SigningTable key). Every state is listed
    (the dkim_keys module keeps, reports and retires them); the opendkim role's tables take
    only the active ones.
    """
    items = []
    for domain in domains or []:
        name = domain["name"]
        for sel in domain.get("dkim") or []:
            if host is not None and sel.get("hosts") and host not in sel["hosts"]:
                continue
            key_type = sel.get("type", "rsa")
            items.append({
                "domain": name,
                "selector": sel["selector"],
                "type": key_type,
                "bits": _dkim.rsa_bits(sel.get("bits")) if key_type == "rsa" else 0,
                "state": sel.get("state") or "active",
                "path": _dkim.key_path(keys_dir, name, sel["selector"]),
                "dns_name": dkim_name(sel["selector"], name),
            })
    return items


def milter_socket_for_postfix(socket):
    """Translate a milter's own socket spec into Postfix's notation.

    ``inet:8891@localhost`` -> ``inet:localhost:8891``; ``inet:8891`` -> ``inet:localhost:8891``;
    ``local:/var/spool/postfix/x/y.sock`` -> ``unix:/x/y.sock`` (Postfix resolves it inside its
    chroot); any other ``local:/path`` -> ``unix:/path``.
    """
    if not isinstance(socket, str) or ":" not in socket:
        raise MailwardError("milter socket %r: expected inet:PORT@HOST or local:/path" % (socket,))
    kind, rest = socket.split(":", 1)
    if kind in ("inet", "inet6"):
        port, _, host = rest.partition("@")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise MailwardError("milter socket %r: port %r is not 1-65535" % (socket, port))
        host = host or "localhost"
        if kind == "inet6":
            host = "[%s]" % host.strip("[]")
        return "inet:%s:%s" % (host, port)
    if kind in ("local", "unix"):
        path = rest
        if path.startswith("/var/spool/postfix/"):
            path = path[len("/var/spool/postfix"):]
        return "unix:" + path
    raise MailwardError("milter socket %r: unknown type %r (use inet: or local:)" % (socket, kind))


def milter_port(socket):
    """The TCP port of an ``inet:PORT@HOST`` milter socket, or None for a unix socket."""
    kind, _, rest = str(socket).partition(":")
    if kind.startswith("inet"):
        return int(rest.split("@")[0])
    return None
