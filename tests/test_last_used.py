"""SPEC §5: ``last_used`` is recorded with at most one database write per key per minute, however
many workers authenticate the key."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, record_last_used

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, now):
        self.now = now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """The time as the services see it, moved by the test."""
    clock = Clock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def key(users, make_api_key, clock):
    return make_api_key(users["own_keys"], "used")


def authenticate(key):
    return authenticate_api_key("ApiKey " + encode_credential(key.id, key.secret))


def updates(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if query["sql"].startswith("UPDATE")]


def test_first_authentication_records_last_used(key, clock):
    authenticate(key)
    key.refresh_from_db()
    assert key.last_used == clock.now


def test_two_authentications_within_a_minute_write_once(key, clock):
    with CaptureQueriesContext(connection) as queries:
        authenticate(key)
        clock.advance(seconds=59)
        authenticate(key)

    assert len(updates(queries)) == 1
    key.refresh_from_db()
    assert key.last_used == clock.now - timedelta(seconds=59)


def test_authentication_after_more_than_a_minute_writes_again(key, clock):
    authenticate(key)
    clock.advance(seconds=61)

    with CaptureQueriesContext(connection) as queries:
        authenticate(key)

    assert len(updates(queries)) == 1
    key.refresh_from_db()
    assert key.last_used == clock.now


def test_of_two_workers_holding_the_same_stale_row_only_one_writes(key, clock):
    authenticate(key)
    clock.advance(minutes=5)
    first_worker, second_worker = ApiKey.objects.get(pk=key.pk), ApiKey.objects.get(pk=key.pk)

    written = [record_last_used(first_worker, clock.now), record_last_used(second_worker, clock.now)]

    assert written == [True, False]
    key.refresh_from_db()
    assert key.last_used == clock.now


def test_a_worker_slightly_behind_does_not_move_last_used_back(key, clock):
    authenticate(key)
    clock.advance(minutes=5)
    stale = ApiKey.objects.get(pk=key.pk)
    authenticate(key)

    assert record_last_used(stale, clock.now - timedelta(seconds=10)) is False
    key.refresh_from_db()
    assert key.last_used == clock.now
