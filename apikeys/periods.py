"""Lifecycle periods (SPEC §5) in words, as the pages state them: "deleted after 7 days", "must
expire within 90 days". The settings themselves are read by ``apikeys.timeunits``."""

from datetime import timedelta

from apikeys.timeunits import configured_time_value

# Largest unit first; a microsecond divides every timedelta.
UNIT_NAMES = (
    (timedelta(days=1), "day"),
    (timedelta(hours=1), "hour"),
    (timedelta(minutes=1), "minute"),
    (timedelta(seconds=1), "second"),
    (timedelta(milliseconds=1), "millisecond"),
    (timedelta(microseconds=1), "microsecond"),
)


def in_words(period: timedelta) -> str:
    """``7 days``, ``36 hours``, ``1 minute``: the largest unit that states the period exactly."""
    unit, name = next((unit, name) for unit, name in UNIT_NAMES if period % unit == timedelta(0))
    count = period // unit
    return f"{count} {name}{'' if count == 1 else 's'}"


def setting_in_words(name: str) -> str:
    """A time value setting such as ``API_KEY_RETENTION_PERIOD``, in words."""
    return in_words(configured_time_value(name))
