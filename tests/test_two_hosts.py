"""Two hosts of one installation, as behind a load balancer (docs/deploy.md): two real gunicorn
servers, each with a data directory of its own, sharing one PostgreSQL database, one Redis and one
SECRET_KEY. What one host writes, the other acts on from its very next request: keys, invalidations,
sessions, failure counts, the retention purge's lock and the API Keys page's overview."""

import base64
import http.client
import json
import os
import re
import secrets
import signal
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.db import connection

from apikeys.middleware import PURGE_LOCK
from tests.server import REDIS_URL, RunningServer, _own_database, redis_key_prefix, start_keyward_server
from tests.test_throttling import serving_worker

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="hosts share a PostgreSQL database: runs when the suite does (make test's PostgreSQL pass)",
    ),
]

# Failed API keys allowed per address and window, shared by the hosts. The throttling test fails
# keys from an address of its own; the others, from 127.0.0.1, fail fewer than this.
IP_LIMIT = 5
THROTTLED_ADDRESS = "127.0.0.2"
# Every worker asks for the purge lock this often; whoever gets it holds it as long.
PURGE_INTERVAL = 3
# Slack for the requests in flight when a wait ends.
PURGE_MARGIN = 0.5
PAGE = "/app/management/security/api_keys"
STATES = ("active", "expiring soon", "expired", "invalidated")


@dataclass(frozen=True)
class Hosts:
    first: RunningServer
    second: RunningServer
    redis: object  # a client of the shared Redis
    cache_prefix: str

    def cache_key(self, key: str) -> str:
        """The name Django's Redis cache gives ``key`` (version 1) under the hosts' prefix."""
        return f"{self.cache_prefix}:1:{key}"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    with (
        redis_key_prefix() as (prefix, redis_client),
        _own_database(tmp_path_factory.mktemp("shared-database")) as database,
    ):
        # What the hosts of one installation share; everything else (data directory, certificate,
        # file realm, port) is each host's own.
        shared = {
            "REDIS_URL": REDIS_URL,
            "KEYWARD_CACHE_KEY_PREFIX": prefix,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ELASTIC_PASSWORD": secrets.token_urlsafe(16),
            "KEYWARD_AUTH_FAILURE_LIMIT_PER_IP": str(IP_LIMIT),
            "KEYWARD_AUTH_FAILURE_WINDOW": "1d",
            "KEYWARD_API_KEY_OVERVIEW_MAX_AGE": "1h",
            "KEYWARD_API_KEY_PURGE_ON_REQUEST": "true",
            "KEYWARD_API_KEY_PURGE_INTERVAL": f"{PURGE_INTERVAL}s",
        }
        with (
            start_keyward_server(tmp_path_factory, shared_database=database, **shared) as first,
            start_keyward_server(tmp_path_factory, shared_database=database, **shared) as second,
        ):
            assert first.data_dir != second.data_dir and first.database_url == second.database_url
            yield Hosts(first, second, redis_client, prefix)
            # Both drain at once, rather than one after the other.
            for server in (first, second):
                os.kill(server.master_pid, signal.SIGTERM)


def connect(server: RunningServer, address: str = "127.0.0.1") -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        server.host, server.port, context=server.ssl_context(), timeout=30, source_address=(address, 0)
    )


def call(client, method: str, path: str, authorization: str | None = None, body=None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    client.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = client.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def elastic(server: RunningServer) -> str:
    return "Basic " + base64.b64encode(f"elastic:{server.password}".encode()).decode()


def create_key(server: RunningServer, name: str) -> tuple[str, str]:
    """(id, ``ApiKey`` header) of a new key of ``elastic``, made on ``server``."""
    with closing(connect(server)) as client:
        status, body = call(client, "POST", "/_security/api_key", elastic(server), {"name": name})
    assert status == 200, body
    return body["id"], f"ApiKey {body['encoded']}"


def invalidate(server: RunningServer, key_id: str) -> None:
    with closing(connect(server)) as client:
        status, body = call(client, "DELETE", "/_security/api_key", elastic(server), {"ids": [key_id]})
    assert (status, body["invalidated_api_keys"]) == (200, [key_id]), body


@contextmanager
def connections_to_every_worker(*servers: RunningServer):
    """Keep-alive connections, one served by each worker of the servers; closed afterwards, so that
    no server waits for them to stop."""
    clients = []
    try:
        for server in servers:
            clients += _connections_to_every_worker(server)
        yield clients
    finally:
        for client in clients:
            client.close()


def _connections_to_every_worker(server: RunningServer, address: str = "127.0.0.1") -> list:
    """A worker still booting has not bound its socket yet, hence the time allowed."""
    workers, opened = set(server.worker_pids()), {}
    deadline = time.monotonic() + 10
    while set(opened) != workers:
        assert time.monotonic() < deadline, f"connections reached {sorted(opened)} of {sorted(workers)}"
        client = connect(server, address)
        call(client, "GET", "/_security/_authenticate")  # no credentials: 401, counted nowhere
        worker = serving_worker(server, client)
        if worker in opened:
            client.close()
            time.sleep(0.05)
        else:
            opened[worker] = client
    return list(opened.values())


def bad_key() -> str:
    return "ApiKey " + base64.b64encode(f"{'A' * 20}:{'B' * 22}".encode()).decode()


def cookies(response) -> dict[str, str]:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def log_in(server: RunningServer) -> str:
    """The ``sessionid`` of ``elastic`` logged in through the login page of ``server``."""
    with closing(connect(server)) as client:
        client.request("GET", "/login")
        response = client.getresponse()
        page = response.read().decode()
        csrf_cookie = cookies(response)["csrftoken"]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": "elastic", "password": server.password, "csrfmiddlewaretoken": token}
        client.request("POST", "/login", body=urlencode(form), headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie}",
            "Referer": f"{server.base_url}/login",
        })
        response = client.getresponse()
        response.read()
    assert response.status == 302, response.status
    return cookies(response)["sessionid"]


def overview(server: RunningServer, session: str) -> dict[str, int]:
    """The counts the API Keys page's overview shows on ``server`` to the session's user."""
    with closing(connect(server)) as client:
        client.request("GET", PAGE, headers={"Cookie": f"sessionid={session}"})
        response = client.getresponse()
        page = response.read().decode()
    assert response.status == 200, (response.status, response.getheader("Location"))
    summary = re.search(r'id="overview-summary">([^<]*)<', page).group(1)
    counts = dict.fromkeys(STATES, 0)
    for count, state in re.findall(rf"([\d,]+) ({'|'.join(STATES)})", summary):
        counts[state] = int(count.replace(",", ""))
    counts["total"] = int(re.match(r"([\d,]+) API key", summary).group(1).replace(",", ""))
    return counts


def key_exists(server: RunningServer, key_id: str) -> bool:
    return bool(server.query("SELECT 1 FROM apikeys_apikey WHERE id = %s", key_id))


def backdate_invalidation(server: RunningServer, key_id: str) -> None:
    """Past the retention period (7 days) at once, straight in the database."""
    updated = server.query(
        "UPDATE apikeys_apikey SET invalidated = now() - interval '30 days' WHERE id = %s RETURNING id",
        key_id,
    )
    assert updated == [(key_id,)]


def test_a_key_created_on_one_host_authenticates_on_the_other(hosts):
    _, key = create_key(hosts.first, "made-on-first")

    with closing(connect(hosts.second)) as client:
        status, body = call(client, "GET", "/_security/_authenticate", key)

    assert status == 200, body
    assert (body["username"], body["api_key"]["name"]) == ("elastic", "made-on-first")


def test_a_key_invalidated_on_one_host_is_refused_by_the_other_at_its_next_request(hosts):
    key_id, key = create_key(hosts.first, "invalidated-on-second")
    # The invalidation is sent with a key on a connection already open, so that it is answered in
    # milliseconds: a host that rechecked only once a second would still trust its memory.
    _, admin = create_key(hosts.second, "invalidates")
    with connections_to_every_worker(hosts.first) as remembering, closing(connect(hosts.second)) as second:
        assert call(second, "GET", "/_security/_authenticate", admin)[0] == 200
        # Each worker of the first host authenticates the key twice: the second time from memory.
        for client in remembering:
            assert [call(client, "GET", "/_security/_authenticate", key)[0] for _ in range(2)] == [200, 200]

        status, body = call(second, "DELETE", "/_security/api_key", admin, {"ids": [key_id]})
        assert (status, body["invalidated_api_keys"]) == (200, [key_id]), body

        for client in remembering:
            status, body = call(client, "GET", "/_security/_authenticate", key)
            assert status == 401, body


def test_failed_authentications_on_one_host_count_on_the_other(hosts):
    _, valid = create_key(hosts.first, "throttled-address")
    with (
        closing(connect(hosts.first, THROTTLED_ADDRESS)) as first,
        closing(connect(hosts.second, THROTTLED_ADDRESS)) as second,
    ):
        assert [call(first, "GET", "/_security/_authenticate", bad_key())[0] for _ in range(IP_LIMIT)] == [
            401
        ] * IP_LIMIT
        # The address's allowance is used up on the second host too, and on the first still.
        assert call(second, "GET", "/_security/_authenticate", bad_key())[0] == 429
        assert call(first, "GET", "/_security/_authenticate", bad_key())[0] == 429
        # A valid key is never throttled.
        assert call(second, "GET", "/_security/_authenticate", valid)[0] == 200


def test_a_session_made_on_one_host_works_on_the_other(hosts):
    """They share SECRET_KEY, which signs the session's data and its hash of the password."""
    session = log_in(hosts.first)

    assert overview(hosts.second, session)["total"] >= 1


def test_the_api_keys_overview_is_forgotten_on_both_hosts_after_a_write_on_either(hosts):
    key_id, _ = create_key(hosts.first, "counted")
    session = log_in(hosts.second)
    before = overview(hosts.first, session)
    assert overview(hosts.second, session) == before
    # A change Keyward does not make is not seen: both hosts show the one overview kept in Redis.
    hosts.first.query("UPDATE apikeys_apikey SET invalidated = now() WHERE id = %s RETURNING id", key_id)
    assert overview(hosts.first, session) == overview(hosts.second, session) == before

    create_key(hosts.second, "counted-too")

    after = {**before, "total": before["total"] + 1, "invalidated": before["invalidated"] + 1}
    assert overview(hosts.first, session) == overview(hosts.second, session) == after


def test_the_retention_purge_runs_on_one_host_at_a_time(hosts):
    """The purge lock is one entry in the shared Redis. While it is held, here by the test as a purge
    elsewhere would hold it, no worker of either host purges a key that is due, though each asks
    twice; once it is free, the first worker to ask, on either host, takes it and purges."""
    key_id, _ = create_key(hosts.first, "purged")
    invalidate(hosts.first, key_id)
    lock = hosts.cache_key(PURGE_LOCK)

    with connections_to_every_worker(hosts.first, hosts.second) as workers:

        def requests_until(done, seconds: float) -> None:
            """Send requests to every worker of both hosts until ``done()``."""
            deadline = time.monotonic() + seconds
            while not done():
                assert time.monotonic() < deadline, f"still waiting after {seconds} s"
                for client in workers:
                    call(client, "GET", "/_security/_authenticate")

        assert hosts.redis.set(lock, b"held by the test", ex=60)
        backdate_invalidation(hosts.first, key_id)
        # Long enough for a lock of a host's own, taken just before, to expire and be taken again.
        asking_twice = time.monotonic() + 2 * PURGE_INTERVAL + PURGE_MARGIN
        requests_until(lambda: time.monotonic() >= asking_twice, 3 * PURGE_INTERVAL)
        assert key_exists(hosts.first, key_id)

        hosts.redis.delete(lock)
        requests_until(lambda: not key_exists(hosts.first, key_id), 3 * PURGE_INTERVAL)
        assert 0 < hosts.redis.pttl(lock) <= PURGE_INTERVAL * 1000
