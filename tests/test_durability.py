"""Answered writes survive a power loss: on SQLite every commit syncs the WAL (synchronous=FULL)
but the ``last_used`` writes, and ``check --deploy`` warns when the database would not keep a
commit (docs/security.md, *Durability*)."""

import pytest
from django.db import connection
from django.utils import timezone

from accounts.principals import Principal
from apikeys.checks import durable_commits_check
from apikeys.models import ApiKey
from apikeys.services import create_api_key, invalidate_api_keys, record_last_used

# Not wrapped in a test transaction: the pragma cannot change inside one, as it must for last_used.
pytestmark = pytest.mark.django_db(transaction=True)

FULL, NORMAL = 2, 1


def require_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's synchronous pragma; this run's database is PostgreSQL")


class SyncAtWrite:
    """Reads ``PRAGMA synchronous`` on the connection just before each statement that starts with
    ``prefix`` runs: inside that statement's transaction, where it decides how the commit syncs."""

    def __init__(self, prefix: str):
        self.prefix, self.levels = prefix, []

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith(self.prefix):
            driver = context["connection"].connection
            self.levels.append(driver.execute("PRAGMA synchronous").fetchone()[0])
        return execute(sql, params, many, context)


def level() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        return cursor.fetchone()[0]


def test_creating_and_invalidating_a_key_commit_with_a_synced_wal(users):
    require_sqlite()
    owner = Principal(users["own_keys"])
    created = SyncAtWrite('INSERT INTO "apikeys_apikey"')
    with connection.execute_wrapper(created):
        key = create_api_key(owner, name="durable", expiration=None, role_descriptors={}, metadata={}).api_key
    invalidated = SyncAtWrite('UPDATE "apikeys_apikey" SET "invalidated"')
    with connection.execute_wrapper(invalidated):
        invalidate_api_keys(owner, ids=[key.id])

    assert created.levels == [FULL]
    assert invalidated.levels == [FULL]
    assert ApiKey.objects.get(pk=key.pk).invalidated is not None


def test_last_used_commits_without_syncing_and_leaves_the_connection_synced(users, make_api_key):
    require_sqlite()
    key = make_api_key(users["own_keys"], "used")
    written = SyncAtWrite('UPDATE "apikeys_apikey" SET "last_used"')
    with connection.execute_wrapper(written):
        assert record_last_used(key, timezone.now())

    assert written.levels == [NORMAL]
    assert level() == FULL
    assert ApiKey.objects.get(pk=key.pk).last_used is not None


def test_deploy_check_warns_when_sqlite_commits_are_not_synced():
    require_sqlite()
    assert durable_commits_check() == []
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=NORMAL")
    try:
        warnings = durable_commits_check()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")

    assert [warning.id for warning in warnings] == ["apikeys.W001"]
    assert "synchronous = 1" in warnings[0].msg


def test_deploy_check_warns_when_postgresql_commits_are_asynchronous():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's synchronous_commit; this run's database is SQLite")
    assert durable_commits_check() == []
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    try:
        warnings = durable_commits_check()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")

    assert [warning.id for warning in warnings] == ["apikeys.W001"]
    assert "synchronous_commit = off" in warnings[0].msg
