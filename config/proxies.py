"""Whom Keyward believes about a request's origin: which address the client has, and whether it
came over HTTPS.

By default nobody: the client is the peer (``REMOTE_ADDR``) and a request is secure when it reached
gunicorn over TLS. The peers in ``KEYWARD_TRUSTED_PROXIES`` (addresses, networks, and ``unix`` for
the plain listener's unix socket) are reverse proxies: from them alone, ``X-Forwarded-For`` names the
client (its rightmost hop that is not itself a trusted proxy) and ``X-Forwarded-Proto`` says whether
the client used HTTPS. Throttling, its audit rows, the TLS gate and the authentication hot path all
ask here.
"""

import functools
import ipaddress

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed

# gunicorn gives the peers of a unix socket no address: REMOTE_ADDR is empty.
UNIX = "unix"


def parse_trusted_proxies(value: str) -> tuple[str, ...]:
    """The entries of ``KEYWARD_TRUSTED_PROXIES``, normalised; a ValueError names a bad one."""
    entries = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry.lower() == UNIX:
            entries.append(UNIX)
            continue
        try:
            entries.append(str(ipaddress.ip_network(entry)))
        except ValueError as error:
            raise ValueError(
                f"[{entry}] is not an IP address, a network in CIDR notation (e.g. 10.0.0.0/8)"
                f" or unix: {error}"
            ) from None
    return tuple(entries)


def client_address(request) -> str:
    """The client's address: the peer's, or from a trusted proxy the one it forwarded for."""
    meta = request.META
    peer = meta.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXIES
    if not proxies or not _is_trusted_peer(proxies, peer):
        return peer
    networks = _trust(proxies)[0]
    client = peer
    # Right to left: each hop was appended by the one after it, which vouches for it only if trusted.
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _hop_address(hop.strip())
        if address is None:
            break  # unreadable: the last address a trusted proxy vouched for stands
        client = str(address)
        if not _in_networks(address, networks):
            break
    return client


def request_is_secure(request) -> bool:
    """Whether the client used HTTPS: what a trusted proxy's ``X-Forwarded-Proto`` says, or else
    whether the connection to gunicorn is TLS."""
    meta = request.META
    proxies = settings.TRUSTED_PROXIES
    if proxies:
        forwarded = meta.get("HTTP_X_FORWARDED_PROTO")
        if forwarded is not None and _is_trusted_peer(proxies, meta.get("REMOTE_ADDR", "")):
            # The rightmost value is the nearest proxy's, the one trusted.
            return forwarded.rpartition(",")[2].strip().lower() == "https"
    return meta.get("wsgi.url_scheme") == "https"


class TrustedProxyMiddleware:
    """Makes Django's own ``request.is_secure()`` agree with ``request_is_secure``, for what Django
    decides by it: the CSRF origin check, HSTS, absolute URLs. Not used without trusted proxies."""

    def __init__(self, get_response):
        if not settings.TRUSTED_PROXIES:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request):
        request.META["wsgi.url_scheme"] = "https" if request_is_secure(request) else "http"
        return self.get_response(request)


@functools.lru_cache(maxsize=16)
def _trust(proxies: tuple[str, ...]):
    """(the networks, whether the unix socket is trusted) of a parsed ``TRUSTED_PROXIES``."""
    return tuple(ipaddress.ip_network(entry) for entry in proxies if entry != UNIX), UNIX in proxies


@functools.lru_cache(maxsize=1024)
def _is_trusted_peer(proxies: tuple[str, ...], peer: str) -> bool:
    networks, unix = _trust(proxies)
    if not peer:
        return unix
    address = _hop_address(peer)
    return address is not None and _in_networks(address, networks)


def _in_networks(address, networks) -> bool:
    return any(address in network for network in networks)


def _hop_address(text: str):
    """The address a hop names (bare, ``[v6]``, ``[v6]:port`` or ``v4:port``), IPv4-mapped IPv6
    addresses as IPv4; None when it names none."""
    host = text
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit()
