"""Races between clients on a real gunicorn with four workers sharing one database: the name
constraint of SPEC §1, invalidation seen by the very next request on every worker (SPEC §3), and
a bounded mixed load that never gets a 5xx.

``KEYWARD_SOAK=1`` runs the same tests longer and wider (``make soak``).
"""

import http.client
import json
import os
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.server import start_keyward_server

SOAK = os.environ.get("KEYWARD_SOAK") == "1"
WORKERS = 4
SAME_NAME_CLIENTS = 16
SAME_NAME_ROUNDS = 20 if SOAK else 3
INVALIDATION_ROUNDS = 10 if SOAK else 1
INVALIDATION_KEYS = 200 if SOAK else 60
INVALIDATORS = 6
AUTHENTICATORS = 6
LOAD_THREADS = 12
LOAD_SECONDS = 120 if SOAK else 10
# Share of each kind of request in the mixed load.
LOAD_MIX = {"authenticate": 5, "create": 2, "list": 2, "invalidate": 1}
REQUEST_TIMEOUT = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The background purge would delete keys at moments no test chose.
    with start_keyward_server(
        tmp_path_factory, WEB_CONCURRENCY=str(WORKERS), KEYWARD_API_KEY_PURGE_ON_REQUEST="false"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def elastic_key(server):
    return server.elastic_api_key("concurrency-runner")


# Keys here are created with elastic's key: as in Elasticsearch, such a key must ask for no
# privileges (SPEC §2). It still authenticates, which is all these tests use it for.
NO_PRIVILEGES = {"none": {}}


def _active_keys_named(server, name):
    return server.query(
        "SELECT COUNT(*) FROM apikeys_apikey WHERE name = %s AND invalidated IS NULL", name
    )[0][0]


@pytest.mark.server
def test_clients_creating_keys_with_the_same_name_at_once_get_one_key_and_conflicts_for_the_rest(
    server, elastic_key
):
    for round_number in range(SAME_NAME_ROUNDS):
        name = f"same-name-{round_number}"
        # Not connected ahead of the barrier: a gthread worker holds a thread for a connection that
        # has not sent its request yet, so 16 idle connections can starve four workers.
        clients = [server.connection(timeout=REQUEST_TIMEOUT) for _ in range(SAME_NAME_CLIENTS)]
        start = threading.Barrier(SAME_NAME_CLIENTS)

        def create(client, name=name, start=start):
            start.wait()
            body = {"name": name, "role_descriptors": NO_PRIVILEGES}
            return server.request(client, "POST", "/_security/api_key", elastic_key, body)

        try:
            with ThreadPoolExecutor(SAME_NAME_CLIENTS) as pool:
                results = list(pool.map(create, clients))
        finally:
            for client in clients:
                client.close()

        statuses = Counter(status for status, _ in results)
        assert statuses == {200: 1, 409: SAME_NAME_CLIENTS - 1}, results
        for status, body in results:
            if status == 409:
                assert body["status"] == 409
                assert body["error"]["type"] == "version_conflict_engine_exception"
                assert f"[{name}]" in body["error"]["reason"]
                assert body["error"]["root_cause"]
        assert _active_keys_named(server, name) == 1


@pytest.mark.server
def test_concurrent_invalidations_report_each_key_once_and_invalidated_keys_fail_every_later_request(
    server, elastic_key, capsys
):
    for round_number in range(INVALIDATION_ROUNDS):
        names = [f"race-{round_number}-{n}" for n in range(INVALIDATION_KEYS)]
        keys = _create_keys(server, elastic_key, names)
        ids = list(keys)
        rng = random.Random(round_number)
        # Each invalidator asks for about half the keys, in small requests: every key is wanted by
        # several invalidators at once, and authentications interleave between the requests.
        requests_by_invalidator = []
        for _ in range(INVALIDATORS):
            wanted = rng.sample(ids, len(ids) // 2)
            requests_by_invalidator.append([wanted[i : i + 5] for i in range(0, len(wanted), 5)])
        done = threading.Event()

        def invalidate(batches):
            answered = []
            client = server.connection(timeout=REQUEST_TIMEOUT)
            try:
                for batch in batches:
                    status, body = server.request(
                        client, "DELETE", "/_security/api_key", elastic_key, {"ids": batch}
                    )
                    answered.append((batch, status, body, time.monotonic()))
            finally:
                client.close()
            return answered

        def authenticate(seed):
            sent = []
            picker = random.Random(seed)
            client = server.connection(timeout=REQUEST_TIMEOUT)
            try:
                # A few requests after the last invalidation, so that "after" is never empty.
                extra = 20
                while extra:
                    if done.is_set():
                        extra -= 1
                    key_id = picker.choice(ids)
                    started = time.monotonic()
                    status, body = server.request(client, "GET", "/_security/_authenticate", keys[key_id])
                    sent.append((key_id, started, status, body))
            finally:
                client.close()
            return sent

        with ThreadPoolExecutor(INVALIDATORS + AUTHENTICATORS) as pool:
            authentications = [pool.submit(authenticate, seed) for seed in range(AUTHENTICATORS)]
            invalidations = [pool.submit(invalidate, batches) for batches in requests_by_invalidator]
            answers = [answer for future in invalidations for answer in future.result()]
            done.set()
            attempts = [attempt for future in authentications for attempt in future.result()]

        reported = Counter()
        invalidated_at = {}
        for batch, status, body, received in answers:
            assert status == 200, body
            assert body["error_count"] == 0, body
            answered_ids = body["invalidated_api_keys"] + body["previously_invalidated_api_keys"]
            assert sorted(answered_ids) == sorted(batch)
            for key_id in body["invalidated_api_keys"]:
                reported[key_id] += 1
                invalidated_at[key_id] = received
        wanted = {key_id for batches in requests_by_invalidator for batch in batches for key_id in batch}
        assert set(reported) == wanted
        assert set(reported.values()) == {1}, "a key was reported invalidated twice"

        later = 0
        for key_id, started, status, body in attempts:
            assert status in (200, 401), body
            if status == 200:
                assert body["api_key"]["id"] == key_id
            else:
                assert body["error"]["type"] == "security_exception"
            if key_id in invalidated_at and started > invalidated_at[key_id]:
                later += 1
                assert status == 401, f"key {key_id} authenticated after its invalidation was answered"
        assert later, "no authentication started after an invalidation: the race was not exercised"
        with capsys.disabled():
            print(f"\ninvalidation race: {len(ids)} keys, {len(answers)} invalidations from {INVALIDATORS} "
                  f"clients, {len(attempts)} authentications from {AUTHENTICATORS} clients, {later} of them "
                  "after the key's invalidation was answered: all refused")
        invalidated_in_db = server.query(
            "SELECT COUNT(*) FROM apikeys_apikey WHERE name LIKE %s AND invalidated IS NOT NULL",
            f"race-{round_number}-%",
        )[0][0]
        assert invalidated_in_db == len(wanted)


def _create_keys(server, authorization, names) -> dict[str, str]:
    """``{id: ApiKey header}`` of new keys, created over a few keep-alive connections."""

    def create(batch):
        created = {}
        client = server.connection(timeout=REQUEST_TIMEOUT)
        try:
            for name in batch:
                status, body = server.request(
                    client, "POST", "/_security/api_key", authorization,
                    {"name": name, "role_descriptors": NO_PRIVILEGES},
                )
                assert status == 200, body
                created[body["id"]] = f"ApiKey {body['encoded']}"
        finally:
            client.close()
        return created

    with ThreadPoolExecutor(WORKERS) as pool:
        parts = list(pool.map(create, [names[i::WORKERS] for i in range(WORKERS)]))
    return {key_id: header for part in parts for key_id, header in part.items()}


@pytest.mark.server
def test_mixed_load_from_many_clients_gets_no_server_error_and_every_body_parses(
    server, elastic_key, capsys
):
    deadline = time.monotonic() + LOAD_SECONDS
    kinds = [kind for kind, weight in LOAD_MIX.items() for _ in range(weight)]

    def client_loop(thread_number):
        """One keep-alive connection, as a pooling client would use; requests back to back."""
        rng = random.Random(thread_number)
        own_keys, results, sequence = [], [], 0
        client = server.connection(timeout=REQUEST_TIMEOUT)
        try:
            while time.monotonic() < deadline:
                kind = rng.choice(kinds)
                if kind == "invalidate" and not own_keys:
                    kind = "create"
                if kind == "authenticate":
                    request = ("GET", "/_security/_authenticate", None)
                elif kind == "create":
                    sequence += 1
                    body = {"name": f"load-{thread_number}-{sequence}", "role_descriptors": NO_PRIVILEGES}
                    request = ("POST", "/_security/api_key", body)
                elif kind == "list":
                    path = f"/_security/api_key?name=load-{thread_number}-*&active_only=true"
                    request = ("GET", path, None)
                else:
                    victim = own_keys.pop(rng.randrange(len(own_keys)))
                    request = ("DELETE", "/_security/api_key", {"ids": [victim]})
                method, path, body = request
                started = time.monotonic()
                try:
                    client.request(
                        method, path, body=None if body is None else json.dumps(body),
                        headers={"Authorization": elastic_key, "Content-Type": "application/json"},
                    )
                    response = client.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException) as error:
                    results.append((kind, None, time.monotonic() - started, repr(error)))
                    client.close()
                    continue
                elapsed = time.monotonic() - started
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    results.append((kind, response.status, elapsed, f"unparseable body: {raw[:200]!r}"))
                    continue
                if kind == "create" and response.status == 200:
                    own_keys.append(parsed["id"])
                results.append((kind, response.status, elapsed, parsed))
        finally:
            client.close()
        return results

    with ThreadPoolExecutor(LOAD_THREADS) as pool:
        results = [result for part in pool.map(client_loop, range(LOAD_THREADS)) for result in part]

    connection_errors = [detail for _, status, _, detail in results if status is None]
    server_errors = [(status, detail) for _, status, _, detail in results if (status or 0) >= 500]
    unparseable = [detail for _, _, _, detail in results if isinstance(detail, str)]
    unexpected = [(kind, status, detail) for kind, status, _, detail in results if status not in (200, None)]
    latencies = defaultdict(list)
    for kind, _, elapsed, _ in results:
        latencies[kind].append(elapsed)
        latencies["all"].append(elapsed)
    summary = [f"mixed load: {LOAD_THREADS} clients, {LOAD_SECONDS} s, {len(results)} requests, "
               f"{len(server_errors)} 5xx, {len(connection_errors)} connection errors"]
    for kind, values in sorted(latencies.items()):
        cuts = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        summary.append(f"  {kind:<12} {len(values):>6} requests  p50 {cuts[49] * 1000:7.1f} ms  "
                       f"p99 {cuts[98] * 1000:7.1f} ms")
    with capsys.disabled():
        print("\n" + "\n".join(summary))

    assert not connection_errors, connection_errors[:5]
    assert not server_errors, server_errors[:5]
    assert not unparseable, unparseable[:5]
    assert not unexpected, unexpected[:5]
    assert set(latencies) >= set(LOAD_MIX)
