"""The API Keys page's overview (SPEC §5, §6): how many keys are in each state, and how many were
created each week, drawn server-side as inline SVG.

Two aggregate queries whatever the number of keys: one COUNT per state in a single pass, and one
COUNT per week over the last weeks only, which the ``created`` index narrows down. Counting every
state still reads every key, some 0.4 s at a million, so an overview is kept in the shared cache
for ``API_KEY_OVERVIEW_MAX_AGE`` per visibility scope, and forgotten on every change to the keys:
only keys expiring by the passing of time can make it lag, and by no more than that age.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import ClassVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apikeys.timeunits import configured_time_value

log = logging.getLogger(__name__)

WEEKS = 12
# Bumped on every change to the keys: cached overviews are stored under the generation they saw.
GENERATION = "keyward:api-key-overview-generation"
# The weekly chart's drawing area, in SVG user units.
WEEKS_WIDTH, WEEKS_HEIGHT, BAR_GAP, LABEL_SPACE = 480, 64, 10, 14
STATES = {"active": "Active", "expiring": "Expiring soon", "expired": "Expired", "invalidated": "Invalidated"}
# A state with any key at all keeps at least this share of the status bar, so it stays visible.
MIN_SHARE = 1.5


@dataclass(frozen=True)
class StateCount:
    state: str  # the CSS class suffix: chart-<state>
    label: str
    count: int
    x: float  # position and width in the status bar, in percent
    width: float


@dataclass(frozen=True)
class WeekBar:
    week: date  # the Monday the week starts on
    count: int
    x: float
    y: float
    width: float
    height: float

    @property
    def label_x(self) -> float:
        return self.x + self.width / 2

    @property
    def label_y(self) -> float:
        return self.y - 3


@dataclass(frozen=True)
class Overview:
    total: int
    states: list[StateCount]
    weeks: list[WeekBar]
    created_in_weeks: int
    # The weekly chart's viewBox, and the line its bars stand on.
    width: ClassVar[int] = WEEKS_WIDTH
    height: ClassVar[int] = WEEKS_HEIGHT
    baseline: ClassVar[int] = WEEKS_HEIGHT - 1


def state_counts(keys: QuerySet, now: datetime) -> dict[str, int]:
    """Active, expiring soon (within ``API_KEY_EXPIRY_WARNING``), expired and invalidated: disjoint."""
    live = Q(invalidated__isnull=True)
    soon = now + configured_time_value("API_KEY_EXPIRY_WARNING")
    return keys.order_by().aggregate(
        active=Count("pk", filter=live & (Q(expiration__isnull=True) | Q(expiration__gt=soon))),
        expiring=Count("pk", filter=live & Q(expiration__gt=now, expiration__lte=soon)),
        expired=Count("pk", filter=live & Q(expiration__lte=now)),
        invalidated=Count("pk", filter=Q(invalidated__isnull=False)),
    )


def first_week(now: datetime, weeks: int = WEEKS) -> datetime:
    """Midnight of the Monday that starts the oldest of the last ``weeks`` weeks, this one included."""
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday(), weeks=weeks - 1)


def weekly_created(keys: QuerySet, now: datetime, weeks: int = WEEKS) -> list[tuple[date, int]]:
    """``[(monday, keys created that week)]`` for the last ``weeks`` weeks, oldest first.

    One COUNT per week over the ``created`` index, rather than GROUP BY TruncWeek: SQLite truncates
    with a Python function called on every row, some 2 s for 200,000 keys against 0.2 s this way.
    """
    start = first_week(now, weeks)
    mondays = [start + timedelta(weeks=number) for number in range(weeks + 1)]
    counts = (
        keys.filter(created__gte=start)
        .order_by()
        .aggregate(
            **{
                f"week_{number}": Count("pk", filter=Q(created__gte=monday, created__lt=next_monday))
                for number, (monday, next_monday) in enumerate(pairwise(mondays))
            }
        )
    )
    return [(monday.date(), counts[f"week_{number}"]) for number, monday in enumerate(mondays[:-1])]


def _status_bar(counts: dict[str, int]) -> list[StateCount]:
    total = sum(counts.values())
    shares = {state: max(counts[state] / total * 100, MIN_SHARE) if counts[state] else 0 for state in STATES}
    scale = 100 / sum(shares.values()) if total else 0
    states, x = [], 0.0
    for state, label in STATES.items():
        width = shares[state] * scale
        states.append(StateCount(state, label, counts[state], round(x, 3), round(width, 3)))
        x += width
    return states


def _week_bars(weekly: list[tuple[date, int]]) -> list[WeekBar]:
    busiest = max((count for _, count in weekly), default=0)
    slot = WEEKS_WIDTH / len(weekly)
    tallest = Overview.baseline - LABEL_SPACE
    bars = []
    for number, (week, count) in enumerate(weekly):
        # An empty week still shows a sliver on the baseline, so the weeks read as a row.
        height = max(count / busiest * tallest, 2) if count else 1
        bars.append(
            WeekBar(
                week=week,
                count=count,
                x=round(number * slot + BAR_GAP / 2, 3),
                y=round(Overview.baseline - height, 3),
                width=round(slot - BAR_GAP, 3),
                height=round(height, 3),
            )
        )
    return bars


def api_key_overview(keys: QuerySet, now: datetime | None = None, *, scope: str | None = None) -> Overview:
    """The overview of ``keys`` (the keys the viewer may see), in two queries.

    With a ``scope`` naming those keys (``selectors.visibility_scope``), it comes from the shared
    cache while no key has changed and it is younger than ``API_KEY_OVERVIEW_MAX_AGE``.
    """
    return cached_for_scope("api-key-overview", scope, lambda: _count_overview(keys, now or timezone.now()))


def cached_overview(keys: QuerySet, scope: str) -> Overview | None:
    """The overview of ``scope`` as its page shows it, or None when overviews are not kept
    (``API_KEY_OVERVIEW_MAX_AGE`` is 0): for callers that must never count every key themselves."""
    return api_key_overview(keys, scope=scope) if _max_age() else None


def cached_for_scope(what: str, scope: str | None, compute):
    """``compute()`` over the keys of ``scope``, kept in the shared cache as the overview is: while
    no key has changed and for at most ``API_KEY_OVERVIEW_MAX_AGE``. Without a scope, computed."""
    max_age = _max_age()
    if scope is None or not max_age:
        return compute()
    cache_key = f"keyward:{what}:{scope}:{_generation()}"
    value = cache.get(cache_key)
    if value is None:
        value = compute()
        cache.set(cache_key, value, timeout=max_age)
    return value


def _max_age() -> float:
    """``API_KEY_OVERVIEW_MAX_AGE`` in seconds; ``0`` keeps no overview at all."""
    if str(settings.API_KEY_OVERVIEW_MAX_AGE).strip() == "0":
        return 0
    return configured_time_value("API_KEY_OVERVIEW_MAX_AGE").total_seconds()


def forget_overviews() -> None:
    """Called by every write to keys: once it commits, no overview cached before it is shown again.

    One cache write per transaction, a new random generation rather than an increment, which
    would read the counter first. A cache that cannot be reached must not fail the write; the
    overviews then age out instead.
    """
    transaction.on_commit(_next_generation)


def _generation() -> str:
    return cache.get_or_set(GENERATION, _new_generation, timeout=None)


def _new_generation() -> str:
    return secrets.token_hex(8)


def _next_generation() -> None:
    try:
        cache.set(GENERATION, _new_generation(), timeout=None)
    except Exception:
        log.exception("could not forget the cached API key overviews")


def _count_overview(keys: QuerySet, now: datetime) -> Overview:
    counts = state_counts(keys, now)
    weekly = weekly_created(keys, now)
    return Overview(
        total=sum(counts.values()),
        states=_status_bar(counts),
        weeks=_week_bars(weekly),
        created_in_weeks=sum(count for _, count in weekly),
    )
