"""Abuse limits on authentication (SPEC §3): failures counted in buckets in the shared cache.

Each bucket counts failures in fixed windows of ``AUTH_FAILURE_WINDOW``; a limit of 0 switches it
off. The address is the client's (``config.proxies.client_address``: a trusted proxy's client).
Usernames are counted as the login form cleans them (strip, then NFKC), over HTTP Basic too, so
that ``" mal"`` and ``"mal"`` share a bucket.

- ``username``: failed passwords for one username from one address, login page and HTTP Basic
  together. Over ``AUTH_FAILURE_LIMIT_PER_USERNAME`` that username is refused from that address
  before its password is checked, the right one too; from any other address it still works.
- ``password``: failed passwords from one address, whatever the username: credential stuffing.
  Over ``AUTH_FAILURE_LIMIT_PER_IP`` a username is refused before its password is checked unless
  it is known good there: it authenticated from that address within
  ``AUTH_FAILURE_KNOWN_GOOD_PERIOD``. People who work from that address keep working; a stuffer
  learns nothing more about new names.
- ``api_key``: failed ``ApiKey`` credentials from one address, against ``AUTH_FAILURE_LIMIT_PER_IP``
  too but counted apart. A key carries 128 random bits and cannot be guessed, so it is always
  verified: a valid key is never throttled, a failing one gets 429 instead of 401.
- ``token``: failed ``Bearer`` access tokens from one address, the same way as API keys, apart.

Audit: a failure that is not throttled writes its own row (the realm chain's for a password, here
for an API key). A throttled attempt writes none: the first refusal of a bucket's window writes one
``authentication_throttled`` row, and its count is rewritten at the 2nd, 4th, 8th… refusal and at
the first refusal ``SUMMARY_REFRESH`` seconds or more after the last write. So a bucket costs at
most 1 + log2(refusals) + window / ``SUMMARY_REFRESH`` writes per window however fast it is hit,
and its row never shows less than half the refusals, nor misses any but those of the
``SUMMARY_REFRESH`` seconds after its last write.

``cache.add`` and ``cache.incr`` are atomic in Redis and the local-memory cache; the file cache
increments by read and write, so simultaneous failures may now and then be counted once.
"""

import functools
import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

from accounts import audit
from accounts.exceptions import TooManyRequests
from accounts.models import AuditEvent
from apikeys.timeunits import configured_time_value, format_time_value
from config.proxies import client_address
from metrics import registry as metrics

KEY_PREFIX = "keyward:auth"
SUMMARY_REFRESH = 10
# The clock the windows are cut from; a function so that tests can move it.
clock = time.time


@dataclass(frozen=True)
class Window:
    """One fixed window of ``AUTH_FAILURE_WINDOW``, numbered from the epoch; times in seconds."""

    number: int
    start: float
    end: float

    @property
    def timeout(self) -> int:
        """Cache lifetime of an entry of this window: until it ends, and a second more."""
        return max(1, math.ceil(self.end - clock()) + 1)


@dataclass(frozen=True)
class Bucket:
    """One counter of failures: what kind, from which address, for which username if any."""

    kind: str
    limit: int
    address: str
    username: str = ""

    def key(self, part: str, window: Window) -> str:
        return f"{KEY_PREFIX}:{part}:{self.kind}:{_subject(self.address, self.username)}:{window.number}"


def _subject(address: str, username: str) -> str:
    """An address and a username in a cache key, hashed: usernames are arbitrary text, and cache
    keys need not show either in the clear."""
    return hashlib.sha256(f"{address}\0{username}".encode("utf-8", "surrogatepass")).hexdigest()


def normalized_username(username: str) -> str:
    """The username as the login form cleans it, so that no spelling of it escapes its bucket."""
    return _login_username_field().to_python(username)


@functools.cache
def _login_username_field():
    return AuthenticationForm().fields["username"]


def check_password(request, username: str) -> None:
    """Refuse before the password is checked: this username from this address is over its limit,
    or this address is over its cap and the username is not known good here."""
    username = normalized_username(username)
    pair, address = _username_bucket(request, username), _password_bucket(request)
    if pair is None and address is None:
        return
    window = _current_window()
    full = _full_buckets([pair, address], window)
    if pair in full:
        _throttle(pair, window)
    if address in full and not _known_good(request, username):
        _throttle(address, window)


def password_failed(request, username: str) -> None:
    """Count one wrong password for this username from this address, and for the address."""
    username = normalized_username(username)
    window = _current_window()
    for bucket in (_username_bucket(request, username), _password_bucket(request)):
        if bucket is not None:
            _increment(bucket.key("failures", window), window.timeout)


def password_succeeded(request, username: str) -> None:
    """Remember that this username proved itself from this address: the address's cap spares it.

    Written when first seen and again once half the period has passed, not on every request."""
    if settings.AUTH_FAILURE_LIMIT_PER_IP <= 0:
        return
    key, now, period = _known_good_key(request, normalized_username(username)), clock(), _known_good_period()
    remembered = cache.get(key)
    if remembered is None or now - remembered >= period / 2:
        cache.set(key, now, math.ceil(period))


def api_key_refused(request, audit_detail: dict) -> None:
    """A refused ``ApiKey`` credential: 429 once its address is over the limit, with no audit row of
    its own; otherwise counted and audited with its reason, and the caller's 401 stands."""
    _random_secret_refused("api_key", request, audit_detail)


def token_refused(request, audit_detail: dict) -> None:
    """A refused ``Bearer`` access token, as a refused API key, in a bucket of its own."""
    _random_secret_refused("token", request, audit_detail)


def _random_secret_refused(kind: str, request, audit_detail: dict) -> None:
    bucket = _limited(kind, settings.AUTH_FAILURE_LIMIT_PER_IP, client_address(request))
    if bucket is not None:
        window = _current_window()
        if _full_buckets([bucket], window):
            _throttle(bucket, window)
        _increment(bucket.key("failures", window), window.timeout)
    audit.record(audit.AUTHENTICATION_FAILED, outcome=AuditEvent.FAILURE, **audit_detail)


def _limited(kind: str, limit: int, address: str, username: str = "") -> Bucket | None:
    return Bucket(kind, limit, address, username) if limit > 0 else None


def _username_bucket(request, username: str) -> Bucket | None:
    return _limited("username", settings.AUTH_FAILURE_LIMIT_PER_USERNAME, client_address(request), username)


def _password_bucket(request) -> Bucket | None:
    return _limited("password", settings.AUTH_FAILURE_LIMIT_PER_IP, client_address(request))


def _known_good_key(request, username: str) -> str:
    return f"{KEY_PREFIX}:known-good:{_subject(client_address(request), username)}"


def _known_good_period() -> float:
    return configured_time_value("AUTH_FAILURE_KNOWN_GOOD_PERIOD").total_seconds()


def _known_good(request, username: str) -> bool:
    remembered = cache.get(_known_good_key(request, username))
    return remembered is not None and clock() - remembered < _known_good_period()


def _current_window() -> Window:
    length, now = configured_time_value("AUTH_FAILURE_WINDOW").total_seconds(), clock()
    number = math.floor(now / length)
    return Window(number, number * length, (number + 1) * length)


def _full_buckets(buckets: list[Bucket | None], window: Window) -> list[Bucket]:
    """Those of the buckets that have used up their failures in this window, read in one go."""
    buckets = [bucket for bucket in buckets if bucket is not None]
    counts = cache.get_many([bucket.key("failures", window) for bucket in buckets])
    return [bucket for bucket in buckets if counts.get(bucket.key("failures", window), 0) >= bucket.limit]


def _increment(key: str, timeout: int) -> int:
    """Add one to a counter of the shared cache; returns the new count."""
    if cache.add(key, 1, timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1


def _throttle(bucket: Bucket, window: Window):
    """Refuse with 429 until the window ends; the refusal is counted into the bucket's summary row."""
    metrics.throttled(bucket.kind)
    refused = _increment(bucket.key("refused", window), window.timeout)
    _summarise(bucket, window, refused)
    retry_after = max(1, math.ceil(window.end - clock()))
    raise TooManyRequests(
        f"too many failed authentication attempts; try again in [{retry_after}] seconds",
        retry_after=retry_after,
    )


def _summarise(bucket: Bucket, window: Window, refused: int) -> None:
    """The bucket's one audit row for this window: written at the first refusal, then its count
    rewritten at each power of two and at least every SUMMARY_REFRESH seconds while refusals go on.
    Should the cache lose the row's entry, the row keeps the last count written."""
    key, now = bucket.key("summary", window), clock()
    if refused == 1:
        event = audit.record(
            audit.AUTHENTICATION_THROTTLED, outcome=AuditEvent.FAILURE, target=bucket.username,
            count=1, **_summary_detail(bucket, window),
        )
        cache.set(key, (event.pk, now), window.timeout)
        return
    summary = cache.get(key)
    if summary is None:
        return
    event_id, written = summary
    if refused & (refused - 1) == 0 or now - written >= SUMMARY_REFRESH:
        audit.raise_count(event_id, refused)
        cache.set(key, (event_id, now), window.timeout)


def _summary_detail(bucket: Bucket, window: Window) -> dict:
    length = format_time_value(configured_time_value("AUTH_FAILURE_WINDOW"))
    whose = {
        "username": f"failed passwords for [{bucket.username}] from [{bucket.address}]",
        "password": f"failed passwords from [{bucket.address}]",
        "api_key": f"failed API keys from [{bucket.address}]",
        "token": f"failed access tokens from [{bucket.address}]",
    }[bucket.kind]
    detail = {
        "reason": f"{whose} reached the limit of [{bucket.limit}] per [{length}]",
        "bucket": bucket.kind,
        "address": bucket.address,
        "window_start": datetime.fromtimestamp(window.start, UTC).isoformat(),
        "window_end": datetime.fromtimestamp(window.end, UTC).isoformat(),
    }
    return {**detail, "username": bucket.username} if bucket.kind == "username" else detail
