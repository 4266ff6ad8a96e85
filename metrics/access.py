"""Who may read the metrics (``METRICS_ACCESS``): requests from this host, a bearer token, or a
principal holding the ``monitor`` cluster privilege; any one of those configured is enough."""

import hashlib
import hmac
import ipaddress

from django.conf import settings
from rest_framework.exceptions import NotAuthenticated

from accounts.exceptions import AuthenticationFailed, FeatureNotEnabled, PermissionDenied
from accounts.selectors import can_monitor
from apikeys import selectors as api_key_selectors
from config.proxies import client_address
from restapi.tls import api_key_service_enabled

LOCAL, TOKEN, MONITOR = "local", "token", "monitor"
ACCESS_MODES = (LOCAL, TOKEN, MONITOR)
# Elasticsearch's monitoring actions are cluster:monitor/*; this one is Keyward's own.
ACTION = "cluster:monitor/keyward/metrics"
GRANTED_BY = "[monitor,manage,all]"


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 and ::1, an IPv4 loopback address written as IPv6 too; anything else, a unix
    socket's empty address included, is not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def _presented_token(request) -> str | None:
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _token_matches(presented: str) -> bool:
    """Compared as digests in constant time, so that neither the token nor its length leaks."""
    expected = hashlib.sha256(settings.METRICS_TOKEN.encode()).digest()
    return hmac.compare_digest(hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest(), expected)


def check_metrics_access(request) -> None:
    """Return when ``request`` (DRF's, authenticating lazily) may read the metrics; raise the 401
    or 403 to answer otherwise. Credentials are looked at only when an access mode needs them."""
    access = settings.METRICS_ACCESS
    if LOCAL in access and is_loopback(client_address(request)):
        return
    presented = _presented_token(request) if TOKEN in access else None
    if presented is not None:
        if not api_key_service_enabled(request):
            # Refused, never compared: the token has just crossed the network in clear text.
            raise FeatureNotEnabled("the metrics token requires HTTPS")
        if _token_matches(presented):
            return
        if MONITOR not in access:
            raise AuthenticationFailed("unable to authenticate with provided credentials")
    if MONITOR in access:
        principal = request.auth
        if principal is None:
            raise NotAuthenticated()
        if not can_monitor(principal, ACTION):
            denial = api_key_selectors.unauthorized(principal, ACTION).reason
            raise PermissionDenied(f"{denial}, this action is granted by the cluster privileges {GRANTED_BY}")
        return
    if TOKEN in access:
        raise NotAuthenticated()
    raise PermissionDenied("metrics are served only to requests from this host's loopback address")
