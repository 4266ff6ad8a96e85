"""Elasticsearch time values (``7d``, ``12h``, ``90m``) and API key expiration dates (SPEC §1, §7)."""

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.exceptions import ValidationError

NANOS_PER_UNIT = {
    "d": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "micros": 10**3,
    "nanos": 1,
}
UNITS = ", ".join(NANOS_PER_UNIT)
# [0-9], not \d: \d also matches non-ASCII digits such as "１".
TIME_VALUE = re.compile(r"(-?)([0-9]+)(d|h|ms|m|s|micros|nanos)")
# Significant digits beyond this are refused unread: no lifetime that long fits a timedelta.
MAX_DIGITS = 24
MAX_NANOS = timedelta.max // timedelta(microseconds=1) * 1000
# The last expiration accepted: a day short of datetime.max, so it still converts to any time zone.
LATEST_EXPIRATION = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
SHOWN_LENGTH = 64


def parse_time_value(text: str, name: str = "expiration") -> timedelta:
    """A positive Elasticsearch time value of at least 1ms; ``name`` is the field named in errors."""
    match = TIME_VALUE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(
            f"failed to parse {name} [{_shown(text)}] as a time value: expected a positive integer "
            f"followed by one of the units [{UNITS}], such as [7d]"
        )
    sign, digits, unit = match.groups()
    digits = digits.lstrip("0")  # leading zeros are accepted, as Elasticsearch's parseLong does
    if sign or not digits:
        raise ValidationError(f"{name} must be positive, got [{_shown(text)}]")
    # The length test comes first so that int() never sees a huge string.
    if len(digits) > MAX_DIGITS or (nanos := int(digits) * NANOS_PER_UNIT[unit]) > MAX_NANOS:
        raise ValidationError(f"{name} [{_shown(text)}] is too large")
    if nanos < NANOS_PER_UNIT["ms"]:
        raise ValidationError(f"{name} must be at least 1ms, got [{_shown(text)}]")
    return timedelta(microseconds=nanos // 1000)


def expiration_from(text: str | None, now: datetime) -> datetime | None:
    """When a key created at ``now`` (timezone-aware) expires; None means never."""
    lifetime = None if text is None else parse_time_value(text)
    return expiration_after(lifetime, now, shown=text)


def expiration_after(lifetime: timedelta | None, now: datetime, shown: str | None = None) -> datetime | None:
    """When a key with this lifetime (None: no expiration), created at ``now``, expires.

    With ``API_KEY_MAX_EXPIRATION`` set, every key must expire, and no later than that: an absent
    expiration is refused rather than quietly given the maximum, so nobody is surprised by a key
    that stops working. ``shown`` is the expiration as the client wrote it, for the messages.
    """
    longest = max_lifetime()
    if longest is not None:
        maximum = settings.API_KEY_MAX_EXPIRATION
        if lifetime is None:
            raise ValidationError(
                f"API keys must expire: the maximum lifetime is [{maximum}]; "
                f"give an expiration of at most [{maximum}]"
            )
        if lifetime > longest:
            raise ValidationError(
                f"expiration [{_shown(shown or format_time_value(lifetime))}] exceeds the maximum "
                f"allowed lifetime of an API key [{maximum}]"
            )
    if lifetime is None:
        return None
    return _expiration_date(now, lifetime, shown or format_time_value(lifetime))


def max_lifetime() -> timedelta | None:
    """The ``API_KEY_MAX_EXPIRATION`` policy: the longest lifetime of a key, or None for no limit."""
    if getattr(settings, "API_KEY_MAX_EXPIRATION", None) is None:
        return None
    return configured_time_value("API_KEY_MAX_EXPIRATION")


def configured_time_value(name: str) -> timedelta:
    """A time value setting such as ``API_KEY_RETENTION_PERIOD``; a bad value is the operator's
    error, not the client's."""
    try:
        return parse_time_value(getattr(settings, name), name=name)
    except ValidationError as error:
        raise ImproperlyConfigured(error.reason) from None


def format_time_value(value: timedelta) -> str:
    """``value`` in the largest unit that states it exactly: ``90d``, ``36h``, ``1500ms``."""
    micros = value // timedelta(microseconds=1)
    for unit in ("d", "h", "m", "s", "ms"):
        per_unit = NANOS_PER_UNIT[unit] // 1000
        if micros % per_unit == 0:
            return f"{micros // per_unit}{unit}"
    return f"{micros}micros"


def _expiration_date(now: datetime, lifetime: timedelta, text: str) -> datetime:
    if lifetime > LATEST_EXPIRATION - now:
        raise ValidationError(
            f"expiration [{_shown(text)}] is too far in the future: it would end after the year 9999"
        )
    return now + lifetime


def _shown(value) -> str:
    """The bad value as quoted in a message, cut short so an error never echoes a huge input."""
    shown = str(value)
    return shown if len(shown) <= SHOWN_LENGTH else shown[:SHOWN_LENGTH] + "..."
