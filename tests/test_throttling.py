"""Abuse limits: repeated authentication failures answer 429 with Retry-After, per client and per
username, without locking out the owner of a valid API key."""

import base64
import threading
import uuid

import pytest
from django.core.cache import caches
from django.test import Client, RequestFactory

from accounts import throttling
from apikeys.credentials import encode_credential

IP_LIMIT = 3
USERNAME_LIMIT = 2
WINDOW_SECONDS = 60
PASSWORD = "correct horse battery staple"
ATTACKER, NEIGHBOUR = "203.0.113.7", "198.51.100.9"


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
            "LOCATION": f"throttling-{uuid.uuid4().hex}",
        }
    }
    caches["default"].clear()
    settings.AUTH_FAILURE_LIMIT_PER_IP = IP_LIMIT
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = USERNAME_LIMIT
    settings.AUTH_FAILURE_WINDOW = f"{WINDOW_SECONDS}s"
    return settings


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    moved = Clock()
    monkeypatch.setattr(throttling, "clock", moved)
    return moved


@pytest.fixture
def owner(make_user):
    return make_user("alice", "manage_own_api_key", password=PASSWORD)


@pytest.fixture
def key(owner, make_api_key):
    return make_api_key(owner, "legitimate")


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


def exhaust_ip(ip=ATTACKER):
    for _ in range(IP_LIMIT):
        assert call(bad_key(), ip=ip).status_code == 401


def assert_throttled(response):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= WINDOW_SECONDS
    assert "WWW-Authenticate" not in response


# API keys


def test_bad_api_keys_from_one_client_answer_429_with_retry_after_in_the_elasticsearch_shape(db):
    exhaust_ip()
    response = call(bad_key())
    assert_throttled(response)
    assert response["Retry-After"] == str(WINDOW_SECONDS)  # 59.5 seconds left, rounded up
    body = response.json()
    assert body["status"] == 429
    assert body["error"]["type"] == "security_exception"
    assert body["error"]["root_cause"] == [{"type": body["error"]["type"], "reason": body["error"]["reason"]}]
    assert f"try again in [{WINDOW_SECONDS}] seconds" in body["error"]["reason"]
    assert response["X-Elastic-Product"] == "Elasticsearch"


def test_failures_below_the_limit_still_answer_401(db):
    for _ in range(IP_LIMIT):
        response = call(bad_key())
        assert response.status_code == 401
        assert "WWW-Authenticate" in response


def test_the_owners_valid_api_key_still_works_from_a_throttled_client(key):
    exhaust_ip()
    assert_throttled(call(bad_key()))
    response = call(api_key(key.id, key.secret))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert_throttled(call(api_key(key.id, "x" * 22)))


def test_another_client_is_not_affected(db):
    exhaust_ip()
    assert_throttled(call(bad_key()))
    assert call(bad_key(), ip=NEIGHBOUR).status_code == 401


def test_the_limit_lifts_when_the_window_passes(db, clock):
    exhaust_ip()
    assert_throttled(call(bad_key()))
    clock.advance(WINDOW_SECONDS - 1)
    assert call(bad_key()).status_code == 429
    clock.advance(1)
    assert call(bad_key()).status_code == 401


def test_a_malformed_api_key_header_counts_as_a_failure(db):
    for _ in range(IP_LIMIT):
        assert call("ApiKey not-base64!").status_code == 401
    assert_throttled(call("ApiKey not-base64!"))


def test_kibana_routes_answer_429_in_kibanas_shape(db):
    exhaust_ip()
    response = call(bad_key(), path="/api/security/role")
    assert_throttled(response)
    assert response.json()["statusCode"] == 429
    assert response.json()["error"] == "Too Many Requests"


# HTTP Basic


def test_basic_per_username_limit_refuses_even_the_right_password_until_the_window_passes(owner, clock):
    for number in range(USERNAME_LIMIT):
        # From a different address each time: credential stuffing against one account.
        assert call(basic("alice", "guess"), ip=f"192.0.2.{number}").status_code == 401
    response = call(basic("alice", PASSWORD), ip=NEIGHBOUR)
    assert_throttled(response)
    assert response.json()["error"]["type"] == "security_exception"
    clock.advance(WINDOW_SECONDS)
    assert call(basic("alice", PASSWORD), ip=NEIGHBOUR).status_code == 200


def test_basic_other_usernames_are_not_affected_by_one_accounts_limit(owner, make_user):
    make_user("bob", "manage_own_api_key", password=PASSWORD)
    for number in range(USERNAME_LIMIT):
        call(basic("alice", "guess"), ip=f"192.0.2.{number}")
    assert call(basic("bob", PASSWORD), ip=NEIGHBOUR).status_code == 200


def test_basic_per_client_limit_refuses_passwords_before_they_are_checked(owner, make_user):
    make_user("bob", "manage_own_api_key", password=PASSWORD)
    exhaust_ip()
    assert_throttled(call(basic("bob", PASSWORD)))
    assert call(basic("bob", PASSWORD), ip=NEIGHBOUR).status_code == 200


def test_basic_failures_count_for_unknown_usernames_too(db):
    for _ in range(USERNAME_LIMIT):
        assert call(basic("nobody", "guess"), ip=NEIGHBOUR).status_code == 401
    assert_throttled(call(basic("nobody", "guess"), ip=ATTACKER))


# Login page

THROTTLED_MESSAGE = f"Too many failed attempts. Try again in {WINDOW_SECONDS} seconds."


def test_login_per_username_limit_shows_the_message_with_429_even_for_the_right_password(owner, clock):
    for number in range(USERNAME_LIMIT):
        assert login("alice", "guess", ip=f"192.0.2.{number}").status_code == 200
    response = login("alice", PASSWORD, ip=NEIGHBOUR)
    assert_throttled(response)
    assert THROTTLED_MESSAGE in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session
    clock.advance(WINDOW_SECONDS)
    assert login("alice", PASSWORD, ip=NEIGHBOUR).status_code == 302


def test_login_gives_the_same_answer_for_an_unknown_username(owner):
    for name in ("alice", "nobody"):
        for number in range(USERNAME_LIMIT):
            login(name, "guess", ip=f"192.0.2.{number}")
    known, unknown = login("alice", "guess", ip=NEIGHBOUR), login("nobody", "guess", ip=NEIGHBOUR)
    assert known.status_code == unknown.status_code == 429
    assert known["Retry-After"] == unknown["Retry-After"]
    assert THROTTLED_MESSAGE in known.content.decode()
    assert THROTTLED_MESSAGE in unknown.content.decode()


def test_login_per_client_limit_is_shared_with_api_failures(owner):
    exhaust_ip()
    response = login("alice", PASSWORD)
    assert response.status_code == 429
    assert THROTTLED_MESSAGE in response.content.decode()
    assert login("alice", PASSWORD, ip=NEIGHBOUR).status_code == 302


def test_an_incomplete_login_form_is_not_counted(owner):
    for _ in range(USERNAME_LIMIT + IP_LIMIT):
        assert login("alice", "").status_code == 200
    assert login("alice", PASSWORD).status_code == 302


# Settings and sharing


def test_limits_of_zero_switch_throttling_off(owner, limits):
    limits.AUTH_FAILURE_LIMIT_PER_IP = 0
    limits.AUTH_FAILURE_LIMIT_PER_USERNAME = 0
    for _ in range(IP_LIMIT + USERNAME_LIMIT + 5):
        assert call(bad_key()).status_code == 401
        assert call(basic("alice", "guess")).status_code == 401
    assert call(basic("alice", PASSWORD)).status_code == 200
    assert login("alice", PASSWORD).status_code == 302


def test_only_the_username_limit_applies_when_the_client_limit_is_off(owner, limits):
    limits.AUTH_FAILURE_LIMIT_PER_IP = 0
    for _ in range(IP_LIMIT + 2):
        assert call(bad_key()).status_code == 401
    for _ in range(USERNAME_LIMIT):
        call(basic("alice", "guess"))
    assert_throttled(call(basic("alice", PASSWORD)))


def test_counters_are_shared_by_every_worker_through_the_cache(db):
    """Each thread has its own cache client, as each worker has: failures counted by one are
    seen by the other."""
    clients = []

    def other_worker():
        clients.append(caches["default"])
        request = RequestFactory().get("/_security/_authenticate", REMOTE_ADDR=ATTACKER)
        for _ in range(IP_LIMIT):
            throttling.record_failure(request)

    worker = threading.Thread(target=other_worker)
    worker.start()
    worker.join()
    assert clients[0] is not caches["default"]
    assert_throttled(call(bad_key()))
    assert call(bad_key(), ip=NEIGHBOUR).status_code == 401
