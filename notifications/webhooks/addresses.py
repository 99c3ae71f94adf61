"""Where a webhook may go: the URL rules checked when an endpoint is saved, and the guard
that checks the address each connection actually reaches (SSRF).

An endpoint's URL is ``https://`` (plain ``http://`` only with ``DEBUG``), and its host must
not resolve to an address of this side of the network: loopback, private (RFC 1918, unique
local), link-local (the cloud metadata service at 169.254.169.254 among them), carrier-grade
NAT, multicast, reserved or unspecified — anything that is not globally routable. Checked
when the endpoint is saved (every address the name resolves to), and again on every send, on
the connection's own peer address, so a name that resolves elsewhere later (DNS rebinding)
is refused too. ``NOTIFY_WEBHOOK_ALLOW_PRIVATE=1`` turns both checks off (tests, a receiver
on the same private network). Redirects are never followed (``transport``).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

_url = URLValidator(schemes=["http", "https"])


def refused_address(address: str) -> bool:
    """Whether a webhook may not connect to ``address`` (an IP, v4 or v6)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def host_refusal(host: str, port: int) -> str:
    """Why ``host`` may not be a webhook's host ("" when it may): it is, or resolves to, an
    address ``refused_address`` refuses, or it does not resolve."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as err:
        return _("%(host)s does not resolve (%(error)s).") % {"host": host, "error": err}
    refused = sorted(address for address in found if refused_address(address))
    if refused:
        return _(
            "%(host)s resolves to %(addresses)s, an address of a private network, loopback "
            "or link-local (as a cloud metadata service): webhooks go only to public "
            "addresses (NOTIFY_WEBHOOK_ALLOW_PRIVATE=1 allows others)."
        ) % {"host": host, "addresses": ", ".join(refused)}
    return ""


def validate_webhook_url(url: str) -> None:
    """Raises ``ValidationError`` for a URL a webhook may not go to: not a URL (code
    ``invalid``), not https outside DEBUG (``https``), a host on a private network
    (``private``, looked up in DNS unless ``NOTIFY_WEBHOOK_ALLOW_PRIVATE``)."""
    _url(url)
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # out of range
        raise ValidationError(_url.message, code="invalid") from None
    if parts.scheme != "https" and not settings.DEBUG:
        raise ValidationError(
            _("Use an https:// URL: webhooks carry your notifications' state."), code="https"
        )
    if settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE:
        return
    why = host_refusal(parts.hostname or "", port)
    if why:
        raise ValidationError(why, code="private")


# --- the guard on each connection -----------------------------------------------------------


class RefusedAddress(NewConnectionError):
    """The connection reached an address ``refused_address`` refuses; it was closed before
    anything was sent."""


class _Guarded:
    """Checks the peer address of each new connection (after DNS, as connected)."""

    def _new_conn(self):
        sock = super()._new_conn()
        try:
            address = sock.getpeername()[0]
        except OSError:
            address = ""
        if address and refused_address(address):
            sock.close()
            raise RefusedAddress(
                self, f"refused: {self.host} is at {address}, not a public address"
            )
        return sock


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


GUARDED_POOLS = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}
