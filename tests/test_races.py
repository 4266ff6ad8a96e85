"""Races the other concurrency tests leave out: two rotations of one key at once on a real
gunicorn, and two expiry-warning runs or two purges at once as real processes on one database; and
the audit event of a purge of more keys than it names.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEvent
from apikeys.models import ApiKey
from apikeys.services import PURGE_AUDITED_IDS, PURGE_BATCH_SIZE
from tests.server import BASE_DIR, COMMAND_TIMEOUT, start_keyward_server

# KEYWARD_SOAK=1 (make soak) races many more keys.
SOAK = os.environ.get("KEYWARD_SOAK") == "1"
ROTATION_ROUNDS = 200 if SOAK else 15
ROTATION_SECONDS = 60
EXPIRING_KEYS = 200
PURGED_KEYS = 2345
CONCURRENTLY_PURGED_KEYS = 3000
CONCURRENT_PURGE_BATCH = 100
REQUEST_TIMEOUT = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The background purge would delete keys at moments no test chose.
    with start_keyward_server(tmp_path_factory, KEYWARD_API_KEY_PURGE_ON_REQUEST="false") as running:
        yield running


# Two rotations of one key


# Made by the service, as elastic: keys that may rotate themselves, from one process start.
CREATE_KEYS = """
import json
import os
from accounts.models import User
from accounts.principals import Principal
from apikeys.services import create_api_key
elastic = User.objects.get(username="elastic", realm__name="default_native")
created = [
    create_api_key(Principal(elastic), name=f"{prefix}{{n}}", expiration="30d") for n in range({count})
]
print(json.dumps([[key.api_key.id, key.encoded] for key in created]))
"""


def _both_at_once(server, method, path, authorization):
    """Send one request on two connections released by one barrier; [(status, body)] of each."""
    clients = [server.connection(timeout=REQUEST_TIMEOUT) for _ in range(2)]
    # Connected ahead of the barrier, so that the TLS handshakes do not spread the requests apart.
    for client in clients:
        client.connect()
    start = threading.Barrier(2)

    def send(client):
        start.wait()
        return server.request(client, method, path, authorization)

    try:
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(send, clients))
    finally:
        for client in clients:
            client.close()


@pytest.mark.server
def test_two_rotations_of_one_key_at_once_replace_it_exactly_once(server, capsys):
    output = server.manage("shell", "-c", CREATE_KEYS.format(prefix="rotated-", count=ROTATION_ROUNDS))
    created = json.loads(output.splitlines()[-1])
    deadline = time.monotonic() + ROTATION_SECONDS
    winners, lost_at_the_lock = {}, 0
    for n, (key_id, encoded) in enumerate(created):
        assert time.monotonic() < deadline, f"{n} rounds took over {ROTATION_SECONDS} s"
        # The key rotates itself, as a cron job holding only the key would.
        results = _both_at_once(server, "POST", f"/_security/api_key/{key_id}/_rotate", f"ApiKey {encoded}")

        statuses = sorted(status for status, _ in results)
        assert statuses in ([200, 400], [200, 401]), results
        [winner] = [body for status, body in results if status == 200]
        [(status, loser)] = [(status, body) for status, body in results if status != 200]
        assert winner["rotated_from"] == key_id and winner["name"] == f"rotated-{n}"
        assert winner["id"] != key_id and winner["encoded"]
        assert loser["status"] == status and loser["error"]["root_cause"]
        if status == 400:
            # Authenticated while the key was still active, then found it invalidated under the
            # row lock: the race was lost inside the window that matters.
            lost_at_the_lock += 1
            assert loser["error"]["type"] == "illegal_argument_exception"
            reason = f"api key [{key_id}] has been invalidated and cannot be rotated"
            assert loser["error"]["reason"] == reason
        else:
            # Arrived after the winner had committed: the old key no longer authenticates.
            assert loser["error"]["type"] == "security_exception"
        winners[key_id] = winner["id"]
    assert lost_at_the_lock, "every loser arrived after the winner had committed: the race was not exercised"

    rows = server.query(
        "SELECT id, name, invalidated IS NULL FROM apikeys_apikey WHERE name LIKE %s", "rotated-%"
    )
    active = {name: key_id for key_id, name, is_active in rows if is_active}
    assert len(rows) == 2 * ROTATION_ROUNDS, "a rotation made more than one replacement"
    assert active == {f"rotated-{n}": winners[key_id] for n, (key_id, _) in enumerate(created)}
    old_ids = {key_id for key_id, _ in created}
    assert {key_id for key_id, _, is_active in rows if not is_active} == old_ids
    rotations = server.query(
        "SELECT target, COUNT(*) FROM accounts_auditevent WHERE action = %s GROUP BY target",
        "api_key_rotated",
    )
    assert dict(rotations) == {f"rotated-{n}": 1 for n in range(ROTATION_ROUNDS)}
    with capsys.disabled():
        print(f"\nrotation race: {ROTATION_ROUNDS} keys rotated twice at once, one winner each; "
              f"{lost_at_the_lock} losers had authenticated before the winner committed (400), "
              f"{ROTATION_ROUNDS - lost_at_the_lock} after (401)")


# Two expiry-warning runs


SEED_EXPIRING_KEYS = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import User
from apikeys.hashers import make_api_key_hash
from apikeys.models import ApiKey
owner = User.objects.select_related("realm").get(username="elastic", realm__name="default_native")
owner.email = "elastic@example.com"
owner.save(update_fields=["email"])
now = timezone.now()
hashed = make_api_key_hash("not-a-usable-secret")
ApiKey.objects.bulk_create(
    ApiKey(
        id=f"expiring{{n:012d}}", name=f"expiring-{{n}}", hash=hashed, owner=owner,
        realm_name=owner.realm.name, realm_type=owner.realm.type, created=now,
        expiration=now + timedelta(days=3),
    )
    for n in range({count})
)
"""

# manage.py, held at a gate once Django is set up and the database connected: two processes
# starting side by side are otherwise seconds apart, and the race is over before it begins.
GATED_MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.core.management import execute_from_command_line, load_command_class
from django.db import connection
load_command_class("apikeys", sys.argv[1])
connection.ensure_connection()
print("ready", file=sys.stderr, flush=True)
sys.stdin.readline()
execute_from_command_line(["manage.py", *sys.argv[1:]])
"""


def _manage_twice_at_once(server, tmp_path, *args) -> list[str]:
    """Run one management command in two processes on the server's database at the same moment;
    the output of each."""
    # Without a mail server, mail is printed to the output, where the tests read it.
    env = {name: value for name, value in server.env.items() if not name.startswith("KEYWARD_EMAIL_")}
    # Output to files: a pipe read one at a time fills up and stalls its process, deciding the race.
    outputs = [tmp_path / f"output-{n}.txt" for n in range(2)]
    runs = []
    try:
        for output in outputs:
            with open(output, "w") as stdout:
                runs.append(subprocess.Popen(
                    [sys.executable, "-c", GATED_MANAGE, *args], cwd=BASE_DIR, env=env,
                    stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, text=True,
                ))
        for run in runs:
            assert run.stderr.readline() == "ready\n", run.stderr.read()
        for run in runs:
            run.stdin.write("go\n")
            run.stdin.flush()
        errors = [run.communicate(timeout=COMMAND_TIMEOUT)[1] for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert [run.returncode for run in runs] == [0, 0], errors
    return [output.read_text() for output in outputs]


@pytest.mark.server
def test_two_expiry_warning_runs_at_once_mail_each_key_once(server, tmp_path, capsys):
    server.manage("shell", "-c", SEED_EXPIRING_KEYS.format(count=EXPIRING_KEYS))
    outputs = _manage_twice_at_once(server, tmp_path, "notify_expiring_api_keys")

    mailed, warned = Counter(), Counter()
    for stdout in outputs:
        for line in stdout.splitlines():
            if line.startswith("Subject: Your API key '"):
                mailed[line.split("'")[1]] += 1
            elif line.startswith("Warned elastic@example.com about API key ["):
                warned[line.split("[")[1].split("]")[0]] += 1
    expected = [f"expiring-{n}" for n in range(EXPIRING_KEYS)]
    doubled = sorted(name for name, count in mailed.items() if count > 1)
    assert not doubled, f"{len(doubled)} keys were mailed twice, e.g. {doubled[:5]}"
    assert sorted(mailed) == sorted(expected)
    assert sorted(warned) == sorted(f"expiring{n:012d}" for n in range(EXPIRING_KEYS))
    assert set(warned.values()) == {1}
    sent = [int(stdout.split("Sent ")[-1].split()[0]) for stdout in outputs]
    assert sum(sent) == EXPIRING_KEYS
    # Each run read the due keys before the other had claimed them all, or there was no race.
    assert all(sent), f"one run found nothing left to warn about: {sent}"
    unmarked = server.query(
        "SELECT COUNT(*) FROM apikeys_apikey WHERE name LIKE %s AND expiry_notified IS NULL", "expiring-%"
    )[0][0]
    assert unmarked == 0
    with capsys.disabled():
        print(f"\nexpiry warning race: {EXPIRING_KEYS} keys, two runs at once sent {sent[0]} and {sent[1]}; "
              "none mailed twice")


# The purge


SEED_PURGEABLE_KEYS = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import User
from apikeys.models import ApiKey
owner = User.objects.select_related("realm").get(username="elastic", realm__name="default_native")
long_ago = timezone.now() - timedelta(days=30)
ApiKey.objects.bulk_create(
    (
        ApiKey(
            id=f"purged{{n:014d}}", name=f"purged-{{n}}", hash="x", owner=owner, realm_name=owner.realm.name,
            realm_type=owner.realm.type, created=long_ago, invalidated=long_ago + timedelta(seconds=n),
        )
        for n in range({count})
    ),
    batch_size=2000,
)
"""


@pytest.mark.server
def test_two_purges_at_once_delete_every_key_once_and_audit_only_what_each_deleted(
    server, tmp_path, capsys
):
    server.manage("shell", "-c", SEED_PURGEABLE_KEYS.format(count=CONCURRENTLY_PURGED_KEYS))

    batch_size = str(CONCURRENT_PURGE_BATCH)
    outputs = _manage_twice_at_once(server, tmp_path, "purge_api_keys", "--batch-size", batch_size)

    deleted = [int(stdout.split("Deleted ")[-1].split()[0]) for stdout in outputs]
    events = server.query(
        "SELECT count, api_key_ids FROM accounts_auditevent WHERE action = %s", "api_keys_purged"
    )
    assert sorted(count for count, _ in events) == sorted(count for count in deleted if count)
    assert sum(deleted) == CONCURRENTLY_PURGED_KEYS
    audited = Counter()
    for count, ids in events:
        ids = json.loads(ids) if isinstance(ids, str) else ids
        assert len(ids) == min(count, PURGE_AUDITED_IDS)
        audited.update(ids)
    twice = sorted(key_id for key_id, times in audited.items() if times > 1)
    assert not twice, f"{len(twice)} keys are named by both purges' audit events, e.g. {twice[:3]}"
    assert set(audited) <= {f"purged{n:014d}" for n in range(CONCURRENTLY_PURGED_KEYS)}
    left = server.query("SELECT COUNT(*) FROM apikeys_apikey WHERE name LIKE %s", "purged-%")[0][0]
    assert left == 0
    with capsys.disabled():
        print(f"\npurge race: {CONCURRENTLY_PURGED_KEYS} keys, two purges at once deleted {deleted[0]} and "
              f"{deleted[1]}; no key audited twice")


# The purge's audit event


@pytest.mark.parametrize("batch_size", [300, PURGE_BATCH_SIZE])
@pytest.mark.django_db
def test_purge_of_more_keys_than_it_names_audits_the_full_count_and_the_first_ids(users, batch_size):
    owner = users["own_keys"]
    now = timezone.now()
    long_ago = now - timedelta(days=30)

    def key(n, **times):
        return ApiKey(
            id=f"{n:020d}", name=f"old-{n}", hash="x", owner=owner, realm_name="default_native",
            realm_type="native", created=long_ago - timedelta(days=1), **times,
        )

    # Stopped working in an order unlike the ids', half by invalidation and half by expiry, so
    # that the audited ids are the first the purge deleted, not merely the lowest.
    stopped = {n: long_ago + timedelta(seconds=(n * 7919) % PURGED_KEYS) for n in range(PURGED_KEYS)}
    ApiKey.objects.bulk_create(
        [key(n, invalidated=at) if n % 2 else key(n, expiration=at) for n, at in stopped.items()]
        + [key(PURGED_KEYS + n) for n in range(3)]
    )
    out = StringIO()

    call_command("purge_api_keys", "--batch-size", str(batch_size), stdout=out)

    first_deleted = [f"{n:020d}" for n in sorted(stopped, key=lambda n: (stopped[n], f"{n:020d}"))]
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.count) == ("api_keys_purged", None, PURGED_KEYS)
    assert len(event.api_key_ids) == PURGE_AUDITED_IDS < PURGED_KEYS
    assert event.api_key_ids == first_deleted[:PURGE_AUDITED_IDS]
    assert event.detail["retention_period"] == "7d"
    kept = [f"old-{PURGED_KEYS + n}" for n in range(3)]
    assert sorted(ApiKey.objects.values_list("name", flat=True)) == kept
    assert out.getvalue().startswith(f"Deleted {PURGED_KEYS} API keys invalidated or expired before ")
