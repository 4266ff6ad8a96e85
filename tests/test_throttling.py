"""Abuse limits (SPEC §3): failures count in separate buckets, so that they protect without locking
out the right people. A valid API key is never throttled; a right password is refused only for the
username under attack, from the address that attacks it; an address over its cap still lets in
usernames known good there. Throttled attempts write one summary audit row per bucket and window."""

import base64
import http.client
import json
import os
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts import throttling
from accounts.exceptions import TooManyRequests
from accounts.models import AuditEvent
from apikeys.credentials import encode_credential
from tests.server import start_keyward_server

IP_LIMIT = 3
USERNAME_LIMIT = 2
WINDOW_SECONDS = 60
PASSWORD = "correct horse battery staple"
ATTACKER, NEIGHBOUR, THIRD = "203.0.113.7", "198.51.100.9", "192.0.2.44"


class Clock:
    """The throttling module's clock, moved by hand: windows pass without sleeping."""

    def __init__(self):
        self.now = 1_000_000 * WINDOW_SECONDS + 0.5  # half a second into a window

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture(autouse=True)
def limits(settings):
    """Small limits over a fresh local-memory cache of this test's own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"throttling-{os.urandom(8).hex()}",
        }
    }
    caches["default"].clear()
    settings.AUTH_FAILURE_LIMIT_PER_IP = IP_LIMIT
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = USERNAME_LIMIT
    settings.AUTH_FAILURE_WINDOW = f"{WINDOW_SECONDS}s"
    settings.AUTH_FAILURE_KNOWN_GOOD_PERIOD = "1d"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    moved = Clock()
    monkeypatch.setattr(throttling, "clock", moved)
    return moved


@pytest.fixture
def elastic(make_user):
    return make_user("elastic", roles=["superuser"], password=PASSWORD)


@pytest.fixture
def alice(make_user):
    return make_user("alice", "manage_own_api_key", password=PASSWORD)


@pytest.fixture
def bob(make_user):
    return make_user("bob", "manage_own_api_key", password=PASSWORD)


@pytest.fixture
def key(alice, make_api_key):
    return make_api_key(alice, "legitimate")


def api_key(key_id, secret):
    return "ApiKey " + encode_credential(key_id, secret)


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def call(authorization, ip=ATTACKER, path="/_security/_authenticate"):
    return Client().get(path, secure=True, HTTP_AUTHORIZATION=authorization, REMOTE_ADDR=ip)


def login(username, password, ip=ATTACKER):
    return Client().post(
        "/login", {"username": username, "password": password}, secure=True, REMOTE_ADDR=ip
    )


def bad_key():
    return api_key("A" * 20, "B" * 22)


def exhaust_api_keys(ip=ATTACKER):
    for _ in range(IP_LIMIT):
        assert call(bad_key(), ip=ip).status_code == 401


def assert_throttled(response):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= WINDOW_SECONDS
    assert "WWW-Authenticate" not in response


def rows(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def failures():
    return rows("authentication_failed")


def summaries():
    return rows("authentication_throttled")


THROTTLED_MESSAGE = f"Too many failed attempts. Try again in {WINDOW_SECONDS} seconds."


# The lockout this policy ends: bad API keys from one address locked out everyone behind it.


def test_sixty_malformed_api_key_headers_do_not_lock_elastic_out_of_basic_or_the_login_page(elastic):
    for _ in range(60):
        assert call("ApiKey not-base64!").status_code in (401, 429)
    assert_throttled(call("ApiKey not-base64!"))
    response = call(basic("elastic", PASSWORD))
    assert response.status_code == 200
    assert response.json()["username"] == "elastic"
    assert login("elastic", PASSWORD).status_code == 302


# API keys


def test_bad_api_keys_from_one_address_answer_429_with_retry_after_in_the_elasticsearch_shape(db):
    exhaust_api_keys()
    response = call(bad_key())
    assert_throttled(response)
    assert response["Retry-After"] == str(WINDOW_SECONDS)  # 59.5 seconds left, rounded up
    body = response.json()
    assert body["status"] == 429
    assert body["error"]["type"] == "security_exception"
    assert body["error"]["root_cause"] == [{"type": body["error"]["type"], "reason": body["error"]["reason"]}]
    assert f"try again in [{WINDOW_SECONDS}] seconds" in body["error"]["reason"]
    assert response["X-Elastic-Product"] == "Elasticsearch"


def test_bad_api_keys_below_the_limit_answer_the_same_401_as_ever(db):
    for _ in range(IP_LIMIT):
        response = call(bad_key())
        assert response.status_code == 401
        assert "ApiKey" in response["WWW-Authenticate"]
        assert response.json()["error"]["reason"] == "unable to authenticate with provided credentials"


def test_a_valid_api_key_is_never_throttled(key, clock):
    exhaust_api_keys()
    for _ in range(USERNAME_LIMIT):
        call(basic("alice", "guess"))
    assert_throttled(call(bad_key()))
    assert_throttled(call(basic("alice", PASSWORD)))
    for _ in range(IP_LIMIT + USERNAME_LIMIT + 5):
        response = call(api_key(key.id, key.secret))
        assert response.status_code == 200
        assert response.json()["username"] == "alice"
    assert_throttled(call(api_key(key.id, "x" * 22)))


def test_bad_api_keys_of_another_address_are_not_counted(db):
    exhaust_api_keys()
    assert_throttled(call(bad_key()))
    assert call(bad_key(), ip=NEIGHBOUR).status_code == 401


def test_the_limit_lifts_when_the_window_passes(db, clock):
    exhaust_api_keys()
    assert_throttled(call(bad_key()))
    clock.advance(WINDOW_SECONDS - 1)
    assert call(bad_key()).status_code == 429
    clock.advance(1)
    assert call(bad_key()).status_code == 401


def test_a_malformed_api_key_header_counts_as_a_failed_api_key(db):
    for _ in range(IP_LIMIT):
        assert call("ApiKey not-base64!").status_code == 401
    assert_throttled(call("ApiKey not-base64!"))


def test_kibana_routes_answer_429_in_kibanas_shape(db):
    exhaust_api_keys()
    response = call(bad_key(), path="/api/security/role")
    assert_throttled(response)
    assert response.json()["statusCode"] == 429
    assert response.json()["error"] == "Too Many Requests"


# API keys and passwords count apart


def test_bad_api_keys_do_not_count_against_passwords(alice):
    exhaust_api_keys()
    assert_throttled(call(bad_key()))
    assert call(basic("nobody", "guess")).status_code == 401
    assert call(basic("alice", "guess")).status_code == 401
    assert call(basic("alice", PASSWORD)).status_code == 200
    assert login("alice", PASSWORD).status_code == 302


def test_bad_passwords_do_not_count_against_api_keys(alice):
    for number in range(IP_LIMIT + 2):
        call(basic(f"user{number}", "guess"))
    assert_throttled(call(basic("someone-else", "guess")))
    assert call(bad_key()).status_code == 401


# A username under attack, from the address that attacks it


def test_basic_refuses_the_right_password_from_the_attacking_address_only(alice, clock):
    for _ in range(USERNAME_LIMIT):
        assert call(basic("alice", "guess")).status_code == 401
    response = call(basic("alice", PASSWORD))
    assert_throttled(response)
    assert response.json()["error"]["type"] == "security_exception"
    assert call(basic("alice", PASSWORD), ip=NEIGHBOUR).status_code == 200
    assert login("alice", PASSWORD, ip=NEIGHBOUR).status_code == 302
    clock.advance(WINDOW_SECONDS)
    assert call(basic("alice", PASSWORD)).status_code == 200


def test_login_refuses_the_right_password_from_the_attacking_address_only(alice, clock):
    for _ in range(USERNAME_LIMIT):
        assert login("alice", "guess").status_code == 200
    response = login("alice", PASSWORD)
    assert_throttled(response)
    assert THROTTLED_MESSAGE in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session
    assert login("alice", PASSWORD, ip=NEIGHBOUR).status_code == 302
    clock.advance(WINDOW_SECONDS)
    assert login("alice", PASSWORD).status_code == 302


def test_the_login_page_and_basic_share_a_usernames_bucket(alice):
    assert login("alice", "guess").status_code == 200
    assert call(basic("alice", "guess")).status_code == 401
    assert_throttled(call(basic("alice", PASSWORD)))
    assert login("alice", PASSWORD).status_code == 429


def test_other_usernames_from_the_attacking_address_are_not_refused_for_its_lockout(alice, bob):
    for _ in range(USERNAME_LIMIT + 3):
        call(basic("alice", "guess"))
    assert_throttled(call(basic("alice", PASSWORD)))
    assert call(basic("bob", PASSWORD)).status_code == 200
    assert login("bob", PASSWORD).status_code == 302


def test_unknown_usernames_get_the_same_answers_as_known_ones(alice):
    for name, ip in (("alice", NEIGHBOUR), ("nobody", THIRD)):
        for _ in range(USERNAME_LIMIT):
            assert call(basic(name, "guess"), ip=ip).status_code == 401
    known, unknown = call(basic("alice", "guess"), ip=NEIGHBOUR), call(basic("nobody", "guess"), ip=THIRD)
    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json()
    known, unknown = login("alice", "guess", ip=NEIGHBOUR), login("nobody", "guess", ip=THIRD)
    assert known.status_code == unknown.status_code == 429
    assert known["Retry-After"] == unknown["Retry-After"]
    assert THROTTLED_MESSAGE in known.content.decode()
    assert THROTTLED_MESSAGE in unknown.content.decode()


# Credential stuffing: one address, many usernames


def stuff(ip=ATTACKER):
    """One wrong password for each of IP_LIMIT usernames: the address reaches its cap."""
    for number in range(IP_LIMIT):
        assert call(basic(f"victim{number}", "guess"), ip=ip).status_code == 401


def test_the_stuffing_cap_refuses_usernames_not_known_good_before_their_password_is_checked(alice):
    stuff()
    checked = len(failures())
    assert_throttled(call(basic("alice", PASSWORD)))
    assert_throttled(call(basic("nobody", "guess")))
    assert login("alice", PASSWORD).status_code == 429
    assert len(failures()) == checked  # refused unchecked: the realm chain audited nothing
    assert call(basic("alice", PASSWORD), ip=NEIGHBOUR).status_code == 200


def test_the_stuffing_cap_spares_a_username_known_good_from_that_address(alice, bob):
    assert login("bob", PASSWORD).status_code == 302
    stuff()
    assert_throttled(call(basic("alice", PASSWORD)))
    assert call(basic("bob", PASSWORD)).status_code == 200
    assert login("bob", PASSWORD).status_code == 302


def test_a_username_is_known_good_only_from_the_address_it_authenticated_from(alice):
    assert call(basic("alice", PASSWORD), ip=NEIGHBOUR).status_code == 200
    stuff()
    assert_throttled(call(basic("alice", PASSWORD)))


def test_a_username_stays_known_good_for_the_configured_period_only(alice, clock):
    assert call(basic("alice", PASSWORD)).status_code == 200
    clock.advance(11 * 3600)
    stuff()
    assert call(basic("alice", PASSWORD)).status_code == 200  # within half the period: not rewritten
    clock.advance(13 * 3600)
    stuff()
    assert_throttled(call(basic("alice", PASSWORD)))


def test_a_success_after_half_the_period_renews_it(alice, clock):
    assert call(basic("alice", PASSWORD)).status_code == 200
    clock.advance(13 * 3600)
    assert call(basic("alice", PASSWORD)).status_code == 200
    clock.advance(12 * 3600)
    stuff()
    assert call(basic("alice", PASSWORD)).status_code == 200


def test_a_known_good_username_is_still_refused_from_where_it_is_attacked(alice):
    assert call(basic("alice", PASSWORD)).status_code == 200
    for _ in range(USERNAME_LIMIT):
        call(basic("alice", "guess"))
    assert_throttled(call(basic("alice", PASSWORD)))


# One username, however it is spelt


def test_the_login_page_counts_every_spelling_of_a_username_in_one_bucket(alice):
    for spelling in (" alice", "alice "):
        assert login(spelling, "guess").status_code == 200
    response = login("\u3000alice", PASSWORD)
    assert_throttled(response)
    assert THROTTLED_MESSAGE in response.content.decode()
    assert login("alice", PASSWORD, ip=NEIGHBOUR).status_code == 302


def test_basic_counts_every_spelling_of_a_username_in_the_login_forms_bucket(alice):
    # NFKC folds the full-width letters to "alice"; the login form strips the ideographic space.
    for spelling in ("\uff41\uff4c\uff49\uff43\uff45", "\u3000alice"):
        assert call(basic(spelling, "guess")).status_code == 401
    assert_throttled(call(basic("alice", PASSWORD)))
    assert login(" alice", PASSWORD).status_code == 429
    assert call(basic("alice", PASSWORD), ip=NEIGHBOUR).status_code == 200


# Audit: one summary row per bucket and window


def test_throttled_api_keys_write_no_rows_of_their_own_but_one_summary_per_window(db, clock):
    exhaust_api_keys()
    assert len(failures()) == IP_LIMIT
    for _ in range(5):
        assert_throttled(call(bad_key()))
    assert len(failures()) == IP_LIMIT
    (summary,) = summaries()
    assert summary.count == 4  # rewritten at the 2nd and 4th refusal, not at each
    clock.advance(throttling.SUMMARY_REFRESH)
    assert_throttled(call(bad_key()))
    summary.refresh_from_db()
    assert (summary.outcome, summary.count) == ("failure", 6)
    assert summary.detail["bucket"] == "api_key"
    assert summary.detail["address"] == ATTACKER
    assert summary.detail["reason"] == (
        f"failed API keys from [{ATTACKER}] reached the limit of [{IP_LIMIT}] per [1m]"
    )

    clock.advance(WINDOW_SECONDS)
    exhaust_api_keys()
    assert_throttled(call(bad_key()))
    assert [row.count for row in summaries()] == [6, 1]
    assert len(failures()) == 2 * IP_LIMIT


def test_throttled_passwords_write_no_rows_of_their_own_but_one_summary_per_bucket(alice, bob):
    for _ in range(USERNAME_LIMIT):
        call(basic("alice", "guess"))
    for _ in range(4):
        assert_throttled(call(basic("alice", PASSWORD)))
    call(basic("bob", "guess"))
    for _ in range(2):
        assert_throttled(call(basic("carol", "guess")))
    assert [event.detail["username"] for event in failures()] == ["alice", "alice", "bob"]
    by_bucket = {event.detail["bucket"]: event for event in summaries()}
    assert set(by_bucket) == {"username", "password"}
    assert (by_bucket["username"].target, by_bucket["username"].count) == ("alice", 4)
    assert by_bucket["username"].detail["username"] == "alice"
    assert (by_bucket["password"].target, by_bucket["password"].count) == ("", 2)
    assert by_bucket["password"].detail["address"] == ATTACKER


def test_a_flood_of_refusals_costs_the_database_a_logarithmic_number_of_writes(db):
    request = RequestFactory().get("/_security/_authenticate", REMOTE_ADDR=ATTACKER)
    for _ in range(IP_LIMIT):
        throttling.api_key_refused(request, {"reason": "api key [x] does not exist"})
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            with pytest.raises(TooManyRequests):
                throttling.api_key_refused(request, {"reason": "api key [x] does not exist"})
    writes = [query for query in queries if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert len(writes) == 1 + 9  # the row, then the 2nd, 4th, … 512th refusal
    (summary,) = summaries()
    assert summary.count == 512
    assert len(failures()) == IP_LIMIT


def test_a_refused_api_key_is_audited_with_its_reason_and_never_the_secret(key):
    response = call(api_key(key.id, "x" * 22))
    assert response.status_code == 401
    (event,) = failures()
    assert event.detail == {"reason": f"api key [{key.id}] secret does not match", "api_key_id": key.id}
    assert "x" * 22 not in json.dumps(event.detail)


# Settings


def test_limits_of_zero_switch_throttling_off(alice, limits):
    limits.AUTH_FAILURE_LIMIT_PER_IP = 0
    limits.AUTH_FAILURE_LIMIT_PER_USERNAME = 0
    for _ in range(IP_LIMIT + USERNAME_LIMIT + 5):
        assert call(bad_key()).status_code == 401
        assert call(basic("alice", "guess")).status_code == 401
        assert login("alice", "guess").status_code == 200
    assert call(basic("alice", PASSWORD)).status_code == 200
    assert login("alice", PASSWORD).status_code == 302
    assert not summaries()


def test_only_the_username_limit_applies_when_the_address_limit_is_off(alice, limits):
    limits.AUTH_FAILURE_LIMIT_PER_IP = 0
    for number in range(IP_LIMIT + 2):
        assert call(bad_key()).status_code == 401
        assert call(basic(f"user{number}", "guess")).status_code == 401
    for _ in range(USERNAME_LIMIT):
        call(basic("alice", "guess"))
    assert_throttled(call(basic("alice", PASSWORD)))
    assert call(basic("alice", PASSWORD), ip=NEIGHBOUR).status_code == 200


def test_only_the_address_limits_apply_when_the_username_limit_is_off(alice, limits):
    limits.AUTH_FAILURE_LIMIT_PER_USERNAME = 0
    for _ in range(IP_LIMIT - 1):
        assert call(basic("alice", "guess")).status_code == 401
    assert call(basic("alice", PASSWORD)).status_code == 200  # known good from here from now on
    call(basic("alice", "guess"))
    assert_throttled(call(basic("nobody", "guess")))
    assert call(basic("alice", PASSWORD)).status_code == 200


def test_an_incomplete_login_form_is_not_counted(alice):
    for _ in range(USERNAME_LIMIT + IP_LIMIT):
        assert login("alice", "").status_code == 200
    assert login("alice", PASSWORD).status_code == 302


# Every worker of a real server counts in the same buckets


def serving_worker(server, client: http.client.HTTPSConnection) -> int:
    """The gunicorn worker holding the server end of this client's connection, read from /proc."""
    client_port = client.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local_port, remote_port) == (server.port, client_port):
            inode = fields[9]
    for pid in server.worker_pids():
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(descriptor) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def connect(server, address="127.0.0.1") -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        server.host, server.port, context=server.ssl_context(), timeout=30, source_address=(address, 0)
    )


def send(client, authorization=None) -> int:
    headers = {} if authorization is None else {"Authorization": authorization}
    client.request("GET", "/_security/_authenticate", headers=headers)
    response = client.getresponse()
    response.read()
    return response.status


def connections_on_two_workers(server) -> tuple:
    """Two keep-alive connections that two different workers serve."""
    opened = {}
    for _ in range(30):
        client = connect(server)
        send(client)  # no credentials: answered 401, counted nowhere
        worker = serving_worker(server, client)
        if worker in opened:
            client.close()
            continue
        opened[worker] = client
        if len(opened) == 2:
            return tuple(opened.items())
    raise AssertionError("every connection went to the same worker")


@pytest.fixture(params=["file cache", "Redis"])
def shared_cache(request):
    """The two caches a deployment shares between workers: the default file cache, and Redis."""
    return request.getfixturevalue("redis_cache") if request.param == "Redis" else {"REDIS_URL": ""}


@pytest.mark.server
def test_every_worker_of_a_real_server_counts_in_the_same_buckets_through_the_shared_cache(
    tmp_path_factory, shared_cache
):
    limits = {
        "KEYWARD_AUTH_FAILURE_LIMIT_PER_IP": str(IP_LIMIT),
        "KEYWARD_AUTH_FAILURE_LIMIT_PER_USERNAME": str(USERNAME_LIMIT),
        "KEYWARD_AUTH_FAILURE_WINDOW": "1d",
    }
    with start_keyward_server(tmp_path_factory, WEB_CONCURRENCY="3", **shared_cache, **limits) as server:
        (first_worker, first), (second_worker, second) = connections_on_two_workers(server)
        right, wrong = basic("elastic", server.password), basic("elastic", "wrong password")

        # Bad API keys answered by one worker use up the address's allowance on the other one too,
        # and lock nobody's password out.
        assert [send(first, bad_key()) for _ in range(IP_LIMIT)] == [401] * IP_LIMIT
        assert [send(second, bad_key()) for _ in range(4)] == [429] * 4
        assert send(second, right) == 200
        assert serving_worker(server, second) == second_worker != first_worker

        # Wrong passwords answered by one worker lock elastic out of this address on the other one.
        assert [send(second, wrong) for _ in range(USERNAME_LIMIT)] == [401] * USERNAME_LIMIT
        assert send(first, right) == 429
        assert serving_worker(server, first) == first_worker
        elsewhere = connect(server, "127.0.0.2")
        assert send(elsewhere, right) == 200

        throttled = {}
        for detail, count in server.query(
            "SELECT detail, count FROM accounts_auditevent WHERE action = %s", "authentication_throttled"
        ):
            detail = json.loads(detail) if isinstance(detail, str) else detail
            throttled[detail["bucket"], detail.get("username")] = count
        assert throttled == {("api_key", None): 4, ("username", "elastic"): 1}
        failed = server.query(
            "SELECT COUNT(*) FROM accounts_auditevent WHERE action = %s", "authentication_failed"
        )[0][0]
        assert failed == IP_LIMIT + USERNAME_LIMIT
