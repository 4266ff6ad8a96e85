"""Limits on repeated authentication failures, counted in the shared cache.

Failures are counted per client address (``REMOTE_ADDR``) and, for passwords, per username too,
so that one account guessed at from many addresses is protected as well. Each counter is a fixed
window of ``AUTH_FAILURE_WINDOW``: at most ``AUTH_FAILURE_LIMIT_PER_IP`` (or ``..._PER_USERNAME``)
failures per window; a limit of 0 switches that counter off.

Passwords can be guessed, so once over a limit an attempt is refused before the password is
checked. API keys carry 128 random bits and cannot be: they are always verified, and only a
failure turns into a 429, so the owner of a valid key is never locked out by someone else's noise.

The counters live in Django's default cache, shared by every worker (and every host with Redis).
``cache.add`` and ``cache.incr`` are atomic in Redis and the local-memory cache; the file cache
increments by read and write, so concurrent failures may now and then be counted once: a limit,
not an exact tally.
"""

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from accounts.exceptions import TooManyRequests
from apikeys.timeunits import configured_time_value

logger = logging.getLogger("keyward.audit")

KEY_PREFIX = "keyward:auth-failures"
# The clock the windows are cut from; a function so that tests can move it.
clock = time.time


def _window() -> float:
    return configured_time_value("AUTH_FAILURE_WINDOW").total_seconds()


def _counters(request, username: str | None) -> list[tuple[str, int]]:
    """(cache key without window, limit) of each counter that applies to this attempt."""
    subjects = [("ip", request.META.get("REMOTE_ADDR", ""), settings.AUTH_FAILURE_LIMIT_PER_IP)]
    if username is not None:
        subjects.append(("username", username, settings.AUTH_FAILURE_LIMIT_PER_USERNAME))
    # Hashed: usernames are arbitrary text, and cache keys need not see either in the clear.
    return [
        (f"{KEY_PREFIX}:{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}", limit)
        for kind, value, limit in subjects
        if limit > 0
    ]


def _current_window() -> tuple[int, float]:
    """(number of the current window, seconds until it ends)."""
    window, now = _window(), clock()
    number = math.floor(now / window)
    return number, (number + 1) * window - now


def check(request, username: str | None = None) -> None:
    """Raise TooManyRequests when this client, or this username, has used up its failures."""
    counters = _counters(request, username)
    if not counters:
        return
    number, remaining = _current_window()
    counts = cache.get_many([f"{key}:{number}" for key, _ in counters])
    if any(counts.get(f"{key}:{number}", 0) >= limit for key, limit in counters):
        retry_after = max(1, math.ceil(remaining))
        logger.info(
            "authentication throttled for client [%s]%s for %s seconds",
            request.META.get("REMOTE_ADDR", ""),
            f" and user [{username}]" if username is not None else "",
            retry_after,
        )
        raise TooManyRequests(
            f"too many failed authentication attempts; try again in [{retry_after}] seconds",
            retry_after=retry_after,
        )


def record_failure(request, username: str | None = None) -> None:
    """Count one failed attempt against this client and, when given, this username."""
    counters = _counters(request, username)
    if not counters:
        return
    number, remaining = _current_window()
    timeout = math.ceil(remaining) + 1
    for key, _ in counters:
        windowed = f"{key}:{number}"
        if cache.add(windowed, 1, timeout):
            continue
        try:
            cache.incr(windowed)
        except ValueError:  # expired between add and incr
            cache.add(windowed, 1, timeout)
