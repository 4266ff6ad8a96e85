"""Clearing the API key cache (SPEC §3, §4): ``POST /_security/api_key/{ids}/_clear_cache`` makes
every worker on every host that shares the cache hash each key's secret again, through a
verification epoch in the shared cache; Elasticsearch's ``_nodes`` answer; the shared cache being
down costs hashing, never a wrong answer.

What is observed is the DEBUG line the slow path logs each time it hashes a secret, read here from
the log records and, for a real multi-worker server, from the server's log, per worker."""

import base64
import logging
import re

import pytest
from django.core.cache import cache, caches

from apikeys.credentials import encode_credential
from apikeys.hashers import (
    EPOCH_KEY,
    SharedCacheUnavailable,
    clear_verification_cache,
    make_api_key_hash,
    verification_cache,
    verification_epoch,
    verify_api_key_hash,
)
from tests.server import start_keyward_server
from tests.test_throttling import connect, serving_worker

SECRET = "N4pGcA2xQkWWQ9oVwKx1Fg"
HASHED = "secret verified against its stored hash"
# Nothing listens on port 1: a Redis cache there fails every call, as a Redis that is down does.
UNREACHABLE_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}
CLEAR_REFUSAL = (
    "action [cluster:admin/xpack/security/cache/clear] is unauthorized for API key id [{key}] of user [keys] "
    "with effective roles [keys_default_native_role], this action is granted by the cluster privileges "
    "[manage_security,all]"
)


@pytest.fixture(autouse=True)
def fresh_caches(settings, tmp_path):
    """A shared cache of this test's own: the suite's file cache is shared by every test process,
    and a new epoch written here would make another process's remembered verifications count no
    more, in the middle of a test of its own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)
        }
    }
    verification_cache.clear()
    cache.delete(EPOCH_KEY)
    yield
    verification_cache.clear()


@pytest.fixture
def pbkdf2(settings):
    settings.API_KEY_HASH_ALGORITHM = "pbkdf2_sha256"
    settings.API_KEY_PBKDF2_ITERATIONS = 10
    return make_api_key_hash(SECRET)


@pytest.fixture
def hashings(caplog):
    """How many times a secret was hashed on the slow path: the log lines it writes."""
    caplog.set_level(logging.DEBUG, logger="keyward.apikeys.hashing")
    return lambda: sum(HASHED in record.getMessage() for record in caplog.records)


def test_a_remembered_verification_counts_until_the_cache_is_cleared(pbkdf2, hashings):
    assert verify_api_key_hash(SECRET, pbkdf2) and verify_api_key_hash(SECRET, pbkdf2)
    assert hashings() == 1

    clear_verification_cache()

    assert verify_api_key_hash(SECRET, pbkdf2) and verify_api_key_hash(SECRET, pbkdf2)
    assert hashings() == 2


def test_another_workers_clear_is_seen_through_the_shared_epoch(pbkdf2, hashings):
    """A worker whose own memory is untouched still hashes again once the shared epoch changed."""
    assert verify_api_key_hash(SECRET, pbkdf2)

    cache.set(EPOCH_KEY, "written by another worker", timeout=None)

    assert verify_api_key_hash(SECRET, pbkdf2)
    assert hashings() == 2


def test_an_evicted_epoch_never_revives_an_entry_it_only_costs_a_hash(pbkdf2, hashings):
    assert verify_api_key_hash(SECRET, pbkdf2)
    stored_under = verification_epoch()

    cache.delete(EPOCH_KEY)

    assert verify_api_key_hash(SECRET, pbkdf2)
    assert hashings() == 2
    assert verification_epoch() != stored_under


def test_an_unreachable_shared_cache_means_hashing_every_time(pbkdf2, hashings, settings, caplog):
    settings.CACHES = UNREACHABLE_CACHE
    try:
        assert verify_api_key_hash(SECRET, pbkdf2) and verify_api_key_hash(SECRET, pbkdf2)
        assert not verify_api_key_hash("wrong" + SECRET, pbkdf2)
        assert hashings() == 3
        assert "verification cache bypassed" in caplog.text
        with pytest.raises(SharedCacheUnavailable):
            clear_verification_cache()
    finally:
        caches["default"].close()


def test_the_fast_default_hash_never_reads_the_shared_cache(settings, caplog):
    settings.CACHES = UNREACHABLE_CACHE
    settings.API_KEY_HASH_ALGORITHM = "salted_sha256"
    caplog.set_level(logging.DEBUG, logger="keyward.apikeys.hashing")

    assert verify_api_key_hash(SECRET, make_api_key_hash(SECRET))

    assert caplog.records == []


# The endpoint


@pytest.fixture
def post_clear(client, make_user, make_api_key):
    def post(ids="*", privilege="manage_security"):
        caller = make_user("keys" if privilege == "manage_api_key" else "security", privilege)
        key = make_api_key(caller, f"{caller.username}-key")
        response = client.post(
            f"/_security/api_key/{ids}/_clear_cache", secure=True,
            HTTP_AUTHORIZATION="ApiKey " + encode_credential(key.id, key.secret),
        )
        response.key_id = key.id
        return response

    return post


def test_clearing_answers_elasticsearchs_nodes_shape_and_changes_the_epoch(post_clear, settings):
    before = verification_epoch()

    response = post_clear("AAAAAAAAAAAAAAAAAAAA,BBBBBBBBBBBBBBBBBBBB")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    assert body["cluster_name"] == settings.CLUSTER_NAME
    [(node_id, node)] = body["nodes"].items()
    assert len(node_id) == 22 and set(node) == {"name"}
    assert verification_epoch() != before


def test_manage_api_key_does_not_clear_the_cache(post_clear):
    before = verification_epoch()

    response = post_clear(privilege="manage_api_key")

    assert response.status_code == 403, response.content
    assert response.json()["error"]["reason"] == CLEAR_REFUSAL.format(key=response.key_id)
    assert verification_epoch() == before


def test_a_blank_id_is_refused(post_clear):
    response = post_clear("abc,,def")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["reason"] == "Field [ids] must not contain blank id"


def test_an_unreachable_shared_cache_is_reported_as_a_failed_node(post_clear, settings):
    settings.CACHES = UNREACHABLE_CACHE
    try:
        response = post_clear()
    finally:
        caches["default"].close()

    assert response.status_code == 200, response.content
    body = response.json()
    assert {name: body["_nodes"][name] for name in ("total", "successful", "failed")} == {
        "total": 1, "successful": 0, "failed": 1,
    }
    [failure] = body["_nodes"]["failures"]
    assert failure["type"] == "failed_node_exception"
    assert body["nodes"] == {}


# Every worker of a real server, on the file cache and on Redis


def hashed_by_worker(server, key_id: str) -> dict[int, int]:
    """{worker pid: times it hashed this key's secret}, from the server's log."""
    counts = {}
    pattern = re.compile(rf"\[(\d+)\] DEBUG keyward\.apikeys\.hashing api key \[{key_id}\] {HASHED}")
    for match in pattern.finditer((server.data_dir / "gunicorn.log").read_text()):
        counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
    return counts


def connections_on_workers(server, wanted: int, at_least: int) -> dict:
    """{worker pid: a keep-alive connection it serves}, for as many workers as new connections reach.

    Which worker accepts a connection is the kernel's and gunicorn's choice; on a busy machine one
    worker may win every race for a while, so the test asks for ``at_least`` of them, not all.
    """
    opened = {}
    for _ in range(200):
        client = connect(server)
        client.request("GET", "/_security/_authenticate")
        client.getresponse().read()
        worker = serving_worker(server, client)
        if worker in opened:
            client.close()
            continue
        opened[worker] = client
        if len(opened) == wanted:
            break
    assert len(opened) >= at_least, f"connections reached only {len(opened)} of {wanted} workers"
    return opened


def authenticate(client, authorization) -> int:
    client.request("GET", "/_security/_authenticate", headers={"Authorization": authorization})
    response = client.getresponse()
    response.read()
    return response.status


@pytest.fixture(params=["file cache", "Redis"])
def shared_cache(request):
    return request.getfixturevalue("redis_cache") if request.param == "Redis" else {"REDIS_URL": ""}


@pytest.mark.server
def test_after_a_clear_every_worker_of_a_real_server_hashes_again(tmp_path_factory, shared_cache):
    with start_keyward_server(
        tmp_path_factory, WEB_CONCURRENCY="3", KEYWARD_API_KEY_HASH_ALGORITHM="pbkdf2_sha256",
        KEYWARD_API_KEY_PBKDF2_ITERATIONS="1000", KEYWARD_HASHING_LOG_LEVEL="DEBUG", **shared_cache,
    ) as server:
        elastic = "Basic " + base64.b64encode(f"elastic:{server.password}".encode()).decode()
        # The clear is answered by the first worker; at least one other must forget too.
        workers = connections_on_workers(server, wanted=3, at_least=2)
        first = next(iter(workers.values()))
        status, created = server.request(first, "POST", "/_security/api_key", elastic, {"name": "cached"})
        assert status == 200, created
        key = f"ApiKey {created['encoded']}"

        # Each worker hashes the secret once, then remembers it.
        for client in workers.values():
            assert [authenticate(client, key), authenticate(client, key)] == [200, 200]
        assert hashed_by_worker(server, created["id"]) == dict.fromkeys(workers, 1)

        clear = f"/_security/api_key/{created['id']}/_clear_cache"
        status, cleared = server.request(first, "POST", clear, elastic)
        assert status == 200, cleared
        assert cleared["_nodes"]["failed"] == 0

        # Every worker hashes it again, the ones that did not answer the clear too, then remembers it.
        for pid, client in workers.items():
            assert [authenticate(client, key), authenticate(client, key)] == [200, 200]
            assert serving_worker(server, client) == pid
        assert hashed_by_worker(server, created["id"]) == dict.fromkeys(workers, 2)
        assert created["api_key"] not in (server.data_dir / "gunicorn.log").read_text()
        for client in workers.values():
            client.close()

