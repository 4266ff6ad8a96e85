"""SPEC §5: invalidated and expired keys are deleted in batches once older than the retention period,
by a command for cron and by the server itself at most once per interval, in the background."""

import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.exceptions import ValidationError
from accounts.models import AuditEvent, Realm, User
from apikeys import middleware as purge_middleware
from apikeys import services
from apikeys.middleware import ApiKeyPurgeMiddleware
from apikeys.models import ApiKey
from apikeys.services import PurgeResult, purge_api_keys
from tests.server import BASE_DIR
from tokens.models import Token

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)
SECOND = timedelta(seconds=1)


@pytest.fixture
def store_key(users):
    """store_key("name", invalidated=..., expiration=...): a key row with exactly these times."""
    owner = users["own_keys"]
    made = iter(range(10**6))

    def store(name, *, created=None, expiration=None, invalidated=None):
        return ApiKey.objects.create(
            id=f"{next(made):020d}",
            name=name,
            hash="x",
            owner=owner,
            realm_name="default_native",
            realm_type="native",
            created=created or NOW - timedelta(days=400),
            expiration=expiration,
            invalidated=invalidated,
        )

    return store


def remaining() -> set[str]:
    return set(ApiKey.objects.values_list("name", flat=True))


# What is deleted, and when


@pytest.mark.django_db
def test_invalidated_key_is_deleted_only_once_older_than_the_retention_period(store_key):
    store_key("invalidated-just-inside", invalidated=NOW - RETENTION + SECOND)
    store_key("invalidated-just-past", invalidated=NOW - RETENTION - SECOND)

    result = purge_api_keys(now=NOW)

    assert remaining() == {"invalidated-just-inside"}
    assert result == PurgeResult(deleted=1, cutoff=NOW - RETENTION)


@pytest.mark.django_db
def test_expired_key_is_deleted_only_once_its_expiration_is_older_than_the_retention_period(store_key):
    store_key("expired-just-inside", expiration=NOW - RETENTION + SECOND)
    store_key("expired-just-past", expiration=NOW - RETENTION - SECOND)

    purge_api_keys(now=NOW)

    assert remaining() == {"expired-just-inside"}


@pytest.mark.django_db
def test_key_exactly_at_the_retention_period_is_deleted_as_elasticsearch_does(store_key):
    store_key("invalidated-exactly", invalidated=NOW - RETENTION)
    store_key("expired-exactly", expiration=NOW - RETENTION)

    assert purge_api_keys(now=NOW).deleted == 2


@pytest.mark.django_db
def test_active_keys_are_never_deleted_however_old(store_key):
    store_key("never-expires", created=NOW - timedelta(days=3650))
    store_key("expires-later", created=NOW - timedelta(days=3650), expiration=NOW + SECOND)

    assert purge_api_keys(now=NOW).deleted == 0
    assert remaining() == {"never-expires", "expires-later"}


@pytest.mark.django_db
def test_recently_expired_and_recently_invalidated_keys_are_kept(store_key):
    store_key("expired-yesterday", expiration=NOW - timedelta(days=1))
    store_key("invalidated-yesterday", invalidated=NOW - timedelta(days=1))

    assert purge_api_keys(now=NOW).deleted == 0
    assert remaining() == {"expired-yesterday", "invalidated-yesterday"}


@pytest.mark.django_db
def test_recently_invalidated_key_that_expired_long_ago_is_deleted(store_key):
    store_key("expired-then-invalidated", expiration=NOW - timedelta(days=30), invalidated=NOW - SECOND)

    assert purge_api_keys(now=NOW).deleted == 1


@pytest.mark.django_db
def test_retention_period_comes_from_the_setting(store_key, settings):
    settings.API_KEY_RETENTION_PERIOD = "1h"
    store_key("invalidated-2h-ago", invalidated=NOW - timedelta(hours=2))
    store_key("invalidated-30m-ago", invalidated=NOW - timedelta(minutes=30))

    purge_api_keys(now=NOW)

    assert remaining() == {"invalidated-30m-ago"}


@pytest.mark.django_db
def test_dry_run_counts_the_keys_and_changes_nothing(store_key):
    store_key("old", invalidated=NOW - timedelta(days=30))
    store_key("active")

    result = purge_api_keys(now=NOW, dry_run=True)

    assert (result.deleted, result.dry_run) == (1, True)
    assert remaining() == {"old", "active"}
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "10", True])
@pytest.mark.django_db
def test_batch_size_must_be_a_positive_integer(batch_size):
    with pytest.raises(ValidationError, match="batch size"):
        purge_api_keys(now=NOW, batch_size=batch_size)


# Batches


@pytest.fixture
def committed_owner(transactional_db):
    """An owner committed for real, so that other connections see its keys. A transactional test
    starts from an empty database once an earlier one has flushed it, so the realm is made here."""
    realm, _ = Realm.objects.get_or_create(name="default_native", defaults={"type": Realm.NATIVE})
    return User.objects.create(username="purged-keys-owner", realm=realm)


def _store_many(owner, count):
    ApiKey.objects.bulk_create(
        ApiKey(
            id=f"{n:020d}",
            name=f"old-{n}",
            hash="x",
            owner=owner,
            realm_name="default_native",
            realm_type="native",
            created=NOW - timedelta(days=60),
            invalidated=NOW - timedelta(days=30),
        )
        for n in range(count)
    )


@pytest.mark.django_db
def test_purge_deletes_in_batches_of_the_given_size(users):
    _store_many(users["own_keys"], 2500)

    with CaptureQueriesContext(connection) as queries:
        result = purge_api_keys(now=NOW, batch_size=1000)

    deletes = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("DELETE")]
    assert result.deleted == 2500 and not ApiKey.objects.exists()
    # Each DELETE names its batch's ids: 20-digit, zero-padded strings here.
    assert [delete.count("'0000000") for delete in deletes] == [1000, 1000, 500]


def test_each_batch_is_committed_before_the_next_begins(committed_owner):
    _store_many(committed_owner, 25)
    seen = []

    def progress(deleted):
        seen.append((deleted, connection.in_atomic_block, ApiKey.objects.count()))

    purge_api_keys(now=NOW, batch_size=10, progress=progress)

    assert seen == [(10, False, 15), (20, False, 5), (25, False, 0)]


# Audit


@pytest.mark.django_db
def test_purge_is_audited_once_as_the_system_with_the_count_and_ids(store_key):
    gone = [store_key(f"old-{n}", invalidated=NOW - timedelta(days=30)).id for n in range(3)]

    purge_api_keys(now=NOW, batch_size=2)

    event = AuditEvent.objects.get()
    assert (event.action, event.outcome, event.actor, event.actor_username) == (
        "api_keys_purged",
        "success",
        None,
        "",
    )
    assert event.count == 3 and sorted(event.api_key_ids) == sorted(gone)
    assert event.detail["retention_period"] == "7d"


@pytest.mark.django_db
def test_purge_that_deletes_nothing_is_not_audited(store_key):
    store_key("active")
    purge_api_keys(now=NOW)
    assert not AuditEvent.objects.exists()


# The command


def run_command(*args, tty=False):
    out = StringIO()
    out.isatty = lambda: tty
    call_command("purge_api_keys", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_command_deletes_and_prints_one_summary_line_when_not_on_a_terminal(users):
    _store_many(users["own_keys"], 5)

    output = run_command("--batch-size", "2")

    assert output.splitlines() == [output.strip()]
    assert output.startswith("Deleted 5 API keys invalidated or expired before ")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_command_shows_progress_on_a_terminal(users):
    _store_many(users["own_keys"], 5)

    lines = run_command("--batch-size", "2", tty=True).splitlines()

    assert [line.strip() for line in lines[:3]] == [f"{n} deleted so far" for n in (2, 4, 5)]
    assert lines[3].startswith("Deleted 5 API keys")


@pytest.mark.django_db
def test_command_dry_run_changes_nothing(users):
    _store_many(users["own_keys"], 3)

    output = run_command("--dry-run")

    assert output.startswith("Dry run: 3 API keys invalidated or expired before ")
    assert "would be deleted" in output
    assert ApiKey.objects.count() == 3


@pytest.mark.django_db
def test_command_refuses_a_bad_batch_size_clearly():
    with pytest.raises(CommandError, match="batch size must be a positive integer"):
        run_command("--batch-size", "0")


# The server's own purge


@pytest.fixture
def shared_cache(settings):
    """One cache shared by the "workers" of a test, as the file cache or Redis is in production."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"purge-{time.monotonic_ns()}",
        }
    }
    settings.API_KEY_PURGE_ON_REQUEST = True
    settings.API_KEY_PURGE_INTERVAL = "24h"


@pytest.fixture
def purges(monkeypatch):
    """Counts purges instead of running them; ``purges.release`` lets a blocked one finish."""

    class Purges:
        count = 0
        started = threading.Event()
        release = threading.Event()

    def fake_purge():
        Purges.count += 1
        Purges.started.set()
        assert Purges.release.wait(10)
        return PurgeResult(deleted=0, cutoff=NOW)

    monkeypatch.setattr(services, "purge_api_keys", fake_purge)
    yield Purges
    Purges.release.set()


def worker():
    """One gunicorn worker's middleware chain, answering every request with "done"."""
    return ApiKeyPurgeMiddleware(lambda request: HttpResponse("done"))


def request():
    return RequestFactory().get("/app/management/security/api_keys")


def finish(*workers):
    for each in workers:
        if each.thread is not None:
            each.thread.join(10)
            assert not each.thread.is_alive()


def test_response_is_returned_before_the_background_purge_finishes(shared_cache, purges):
    server = worker()

    response = server(request())

    assert response.content == b"done"
    assert purges.started.wait(10)
    assert server.thread.is_alive() and server.thread.daemon
    purges.release.set()
    finish(server)
    assert purges.count == 1


def test_server_purges_at_most_once_per_interval_across_workers(shared_cache, purges, settings):
    settings.API_KEY_PURGE_INTERVAL = "1s"
    purges.release.set()
    first, second = worker(), worker()

    first(request())
    second(request())
    finish(first, second)
    assert purges.count == 1

    time.sleep(1.2)
    second(request())
    first(request())
    finish(first, second)
    assert purges.count == 2


def test_a_worker_asks_the_shared_cache_at_most_once_a_minute(shared_cache, purges, monkeypatch):
    purges.release.set()
    asked = []

    class CountingCache:
        def add(self, *args, **kwargs):
            asked.append(args)
            return caches["default"].add(*args, **kwargs)

    monkeypatch.setattr(purge_middleware, "cache", CountingCache())
    server = worker()

    for _ in range(5):
        server(request())
    finish(server)

    assert len(asked) == 1 and purges.count == 1


def test_server_does_not_purge_when_switched_off(shared_cache, purges, settings):
    settings.API_KEY_PURGE_ON_REQUEST = False
    server = worker()

    server(request())

    assert server.thread is None and purges.count == 0


def test_a_failure_to_start_the_purge_never_fails_the_request(shared_cache, purges, monkeypatch, caplog):
    class UnreachableCache:
        def add(self, *args, **kwargs):
            raise ConnectionError("cache is down")

    monkeypatch.setattr(purge_middleware, "cache", UnreachableCache())

    response = worker()(request())

    assert response.status_code == 200 and purges.count == 0
    assert "could not start the API key purge" in caplog.text


def test_background_purge_deletes_keys_and_tokens_past_retention_and_closes_its_connection(
    committed_owner, monkeypatch
):
    _store_many(committed_owner, 3)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    Token.objects.create(
        id="T" * 20, user=committed_owner, grant_type="client_credentials", access_hash="0" * 64,
        created=long_ago, expiration=long_ago + timedelta(minutes=20),
    )
    closed_in = []
    real_connection = purge_middleware.connection

    class Connection:
        def close(self):
            closed_in.append(threading.current_thread().name)
            real_connection.close()

    monkeypatch.setattr(purge_middleware, "connection", Connection())
    thread = threading.Thread(target=purge_middleware.purge_in_background, name=purge_middleware.THREAD_NAME)

    thread.start()
    thread.join(30)

    assert not ApiKey.objects.exists() and not Token.objects.exists()
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"api_keys_purged", "tokens_purged"}
    assert closed_in == [purge_middleware.THREAD_NAME]


def test_the_servers_purge_says_what_it_deleted_in_the_log_format():
    """As a worker logs it, under the settings' own logging configuration."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('apikeys.middleware').info('deleted %d API keys past retention', 3)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )

    assert result.returncode == 0, result.stderr
    assert re.search(r"^\S+ \S+ \[\d+\] INFO apikeys\.middleware deleted 3 API keys past retention$",
                     result.stderr, re.MULTILINE), result.stderr
