"""Writes killed with SIGKILL half-way: a bulk invalidation is one transaction, so it changes every
matching key or none; a purge commits batch by batch, so it deletes whole batches only; and the
server recovers by itself afterwards.

``KEYWARD_SOAK=1`` runs them on more keys (``make soak``).
"""

import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest

from tests.server import BASE_DIR, start_keyward_server

SOAK = os.environ.get("KEYWARD_SOAK") == "1"
INVALIDATION_KEYS = 100_000 if SOAK else 20_000
PURGE_KEYS = 100_000 if SOAK else 20_000
PURGE_BATCH = 1000
# A kill that misses the write proves nothing: try again with twice the keys.
ATTEMPTS = 3
RECOVERY_SECONDS = 30
WRITE_SECONDS = 120
PROGRESS = re.compile(rb"(\d+) deleted so far")

# Rows written straight to the database: 20,000 keys through the API would take minutes.
SEED_KEYS = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import User
from apikeys.credentials import generate_api_key_id
from apikeys.hashers import make_api_key_hash
from apikeys.models import ApiKey
owner = User.objects.select_related("realm").get(username="elastic", realm__name="default_native")
now = timezone.now()
invalidated = now - timedelta(days={invalidated_days_ago}) if {invalidated_days_ago} else None
hashed = make_api_key_hash("not-a-usable-secret")
ApiKey.objects.bulk_create(
    (
        ApiKey(
            id=generate_api_key_id(), name=f"{prefix}{{n}}", hash=hashed, owner=owner,
            realm_name=owner.realm.name, realm_type=owner.realm.type, created=now, invalidated=invalidated,
        )
        for n in range({count})
    ),
    batch_size=2000,
)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The background purge would race the purge under test.
    with start_keyward_server(tmp_path_factory, KEYWARD_API_KEY_PURGE_ON_REQUEST="false") as running:
        yield running


@pytest.fixture(scope="module")
def elastic_key(server):
    return server.elastic_api_key("crash-runner")


def _seed(server, prefix, count, invalidated_days_ago=0):
    server.manage(
        "shell", "-c", SEED_KEYS.format(prefix=prefix, count=count, invalidated_days_ago=invalidated_days_ago)
    )


def _count(server, sql, *params) -> int:
    return server.query(sql, *params)[0][0]


def _invalidate_by_name(server, authorization, name):
    client = server.connection(timeout=WRITE_SECONDS)
    try:
        return server.request(client, "DELETE", "/_security/api_key", authorization, {"name": name})
    finally:
        client.close()


def _kill_workers(server) -> set[int]:
    """SIGKILL every worker, the one serving the write among them; the master starts new ones."""
    killed = set(server.worker_pids())
    assert killed, "no gunicorn worker found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    return killed


def _assert_recovers(server, authorization, killed):
    """The server answers again by itself, from workers other than the killed ones."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    last = None
    while time.monotonic() < deadline:
        try:
            client = server.connection(timeout=5)
            try:
                last = server.request(client, "GET", "/_security/_authenticate", authorization)
            finally:
                client.close()
            if last[0] == 200 and not killed & set(server.worker_pids()):
                return
        except (OSError, ValueError) as error:
            last = error
        time.sleep(0.2)
    pytest.fail(f"the server did not recover within {RECOVERY_SECONDS} s: {last!r}")


def _write_transaction_open(server) -> bool:
    """Whether some connection to the server's database is inside a write transaction right now."""
    if server.sqlite_path is not None:
        # IMMEDIATE transactions take the write lock at BEGIN: a second one cannot start meanwhile.
        with closing(sqlite3.connect(server.sqlite_path, timeout=0, isolation_level=None)) as database:
            try:
                database.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return True
            database.execute("ROLLBACK")
            return False
    # A transaction gets an id once it writes or locks a row.
    return bool(_count(server, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"))


def _assert_database_intact(server):
    if server.sqlite_path is not None:
        assert server.query("PRAGMA integrity_check") == [("ok",)]


@pytest.mark.server
def test_a_bulk_invalidation_killed_half_way_changes_every_matching_key_or_none_and_the_server_recovers(
    server, elastic_key, capsys
):
    count = INVALIDATION_KEYS
    for attempt in range(ATTEMPTS):
        # The same invalidation, uninterrupted, tells how long the real one takes.
        _seed(server, f"timed-{attempt}-", count)
        started = time.monotonic()
        status, body = _invalidate_by_name(server, elastic_key, f"timed-{attempt}-*")
        duration = time.monotonic() - started
        assert status == 200 and len(body["invalidated_api_keys"]) == count, status

        prefix = f"crash-{attempt}-"
        _seed(server, prefix, count)
        outcome = {}

        def send(prefix=prefix, outcome=outcome):
            try:
                outcome["response"] = _invalidate_by_name(server, elastic_key, f"{prefix}*")
            except (OSError, ValueError) as error:
                outcome["error"] = error

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(duration / 4)
        deadline = time.monotonic() + duration
        while not (inside := _write_transaction_open(server)) and time.monotonic() < deadline:
            time.sleep(0.005)
        killed = _kill_workers(server)
        sender.join(WRITE_SECONDS)
        _assert_recovers(server, elastic_key, killed)

        matching = "SELECT COUNT(*) FROM apikeys_apikey WHERE name LIKE %s"
        invalidated = _count(server, matching + " AND invalidated IS NOT NULL", f"{prefix}%")
        assert invalidated in (0, count), f"{invalidated} of {count} keys invalidated: a partial commit"
        _assert_database_intact(server)
        if "response" in outcome or invalidated or not inside:
            count *= 2
            continue
        # Nothing was committed and nothing stays locked: the same request now invalidates them all.
        status, body = _invalidate_by_name(server, elastic_key, f"{prefix}*")
        assert status == 200
        assert (len(body["invalidated_api_keys"]), body["previously_invalidated_api_keys"]) == (count, [])
        with capsys.disabled():
            print(f"\nbulk invalidation of {count} keys ({duration:.2f} s uninterrupted) killed inside its "
                  "transaction: none committed, server recovered")
        return
    pytest.fail(f"no kill landed inside the invalidation transaction in {ATTEMPTS} attempts")


@pytest.mark.server
def test_a_purge_killed_half_way_deletes_whole_batches_only_and_the_server_still_serves(
    server, elastic_key, capsys
):
    count = PURGE_KEYS
    # Only these keys are past retention: every other one was invalidated minutes ago, if at all.
    due = "SELECT COUNT(*) FROM apikeys_apikey WHERE name LIKE %s AND invalidated IS NOT NULL"
    for _ in range(ATTEMPTS):
        _seed(server, f"purge-{count}-", count, invalidated_days_ago=30)
        before = _count(server, due, "purge-%")
        finished, reported = _purge_until_two_batches_then_kill(server)
        after = _count(server, due, "purge-%")
        deleted = before - after
        assert deleted % PURGE_BATCH == 0 or after == 0, f"{deleted} keys deleted: a batch was cut in two"
        assert deleted >= reported
        _assert_database_intact(server)
        _assert_recovers(server, elastic_key, set())
        if finished or after == 0:
            count *= 2
            continue
        # The next run picks up where the killed one stopped.
        output = server.manage("purge_api_keys", "--batch-size", str(PURGE_BATCH))
        assert f"Deleted {after} API keys" in output
        assert _count(server, due, "purge-%") == 0
        with capsys.disabled():
            print(f"\npurge of {before} keys killed after {deleted // PURGE_BATCH} whole batches")
        return
    pytest.fail(f"the purge finished before the kill in all {ATTEMPTS} attempts")


def _purge_until_two_batches_then_kill(server) -> tuple[bool, int]:
    """Run ``purge_api_keys`` on a terminal, so that it reports each batch, and SIGKILL it once two
    batches are reported. Returns (whether it had finished first, the last count it reported)."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "purge_api_keys", "--batch-size", str(PURGE_BATCH)],
        cwd=BASE_DIR, env=server.env, stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(secondary)
    output, reported = b"", 0
    deadline = time.monotonic() + WRITE_SECONDS
    try:
        while reported < 2 * PURGE_BATCH and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closes when the command exits
                chunk = b""
            if not chunk:
                break
            output += chunk
            reported = max([reported, *(int(n) for n in PROGRESS.findall(output))])
        finished = process.poll() is not None
        if not finished:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(WRITE_SECONDS)
    finally:
        os.close(primary)
    assert finished or process.returncode == -signal.SIGKILL, output.decode(errors="replace")
    assert reported or finished, f"the purge reported no batch:\n{output.decode(errors='replace')}"
    return finished, reported
