"""``GET /_metrics``: Prometheus' text, counted where each thing is decided, open to this host by
default, to a bearer token or the ``monitor`` privilege when configured, and summed across every
gunicorn worker.

The counters of this test process live as long as it does, so each test compares a scrape taken
after with one taken before.
"""

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from accounts.principals import Principal
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from apikeys.services import create_api_key, purge_api_keys
from tests.server import BASE_DIR, start_keyward_server
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

PASSWORD = "metrics-password-5120"
# Fixed, so that every xdist worker collects the same test ids.
METRICS_TOKEN = "test-metrics-token-4c1b9e07d2a54f3b8e61"
REMOTE = "192.0.2.17"
AUTHENTICATE = "/_security/_authenticate"
REQUESTS = "keyward_http_requests_total"
# A key that can do nothing but monitor.
MONITOR_ONLY = {"scraper": {"cluster": ["monitor"]}}
AUTHENTICATIONS = "keyward_authentications_total"


def parse(text: str) -> dict:
    """``{(sample name, labels): value}`` of a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape() -> dict:
    response = Client().get("/_metrics", secure=True)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


class Delta:
    """What one metric moved by between two scrapes."""

    def __init__(self):
        self.before = scrape()

    def __call__(self, name: str, **labels) -> float:
        if not hasattr(self, "after"):
            self.after = scrape()
        return value(self.after, name, **labels) - value(self.before, name, **labels)


def api_key(key) -> str:
    return "ApiKey " + encode_credential(key.id, key.secret)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def call(authorization: str, path: str = AUTHENTICATE, address: str = "127.0.0.1", **kwargs):
    return Client().get(path, secure=True, HTTP_AUTHORIZATION=authorization, REMOTE_ADDR=address, **kwargs)


@pytest.fixture
def own_cache(settings):
    """A cache of this test's own: the throttling counters and overviews of other tests stay out."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}
    }


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def elastic(make_user, fast_passwords):
    return make_user("elastic", roles=["superuser"], password=PASSWORD)


# ---------------------------------------------------------------------------------------------
# The format


def test_scrape_is_prometheus_text_naming_every_metric(client):
    response = client.get("/_metrics", secure=True)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    families = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "keyward_http_requests", "keyward_authentications", "keyward_authentication_duration_seconds",
        "keyward_throttle_rejections", "keyward_api_keys_created", "keyward_api_keys_invalidated",
        "keyward_api_keys_purged", "keyward_api_key_purge_duration_seconds",
    } <= families


def test_requests_are_counted_by_route_and_status_never_by_path(alice, make_api_key):
    key = make_api_key(alice, "counted")
    delta = Delta()
    unknown = [f"/_no_such_endpoint/{secrets.token_hex(8)}" for _ in range(3)]

    for path in unknown:
        assert Client().get(path, secure=True).status_code == 404
    assert call(api_key(key)).status_code == 200  # answered on the hot path, before URL resolution
    assert call(api_key(key), path=f"/_security/api_key?id={key.id}").status_code == 200

    assert delta("keyward_http_requests_total", route="unmatched", status="404") == 3
    assert delta("keyward_http_requests_total", route=AUTHENTICATE, status="200") == 1
    assert delta("keyward_http_requests_total", route="/_security/api_key", status="200") == 1
    routes = {dict(labels)["route"] for name, labels in delta.after if name == "keyward_http_requests_total"}
    assert not any(path in route or key.id in route for path in unknown for route in routes)


# ---------------------------------------------------------------------------------------------
# Authentications, by credential and outcome


def test_a_good_key_is_counted_once_on_the_hot_path_and_once_on_the_ordinary_path(alice, make_api_key):
    key = make_api_key(alice, "good")
    delta = Delta()

    assert call(api_key(key)).status_code == 200
    assert call(api_key(key), path=f"/_security/api_key?id={key.id}").status_code == 200

    assert delta("keyward_authentications_total", credential="api_key", outcome="success") == 2
    assert delta("keyward_authentication_duration_seconds_count", credential="api_key") == 2


@pytest.fixture
def refused_keys(alice, make_user, make_api_key):
    """An ``Authorization`` header for each way an API key is refused."""
    active = make_api_key(alice, "active")
    carol = make_user("carol", "manage_own_api_key")
    orphan = make_api_key(carol, "of a disabled user")
    carol.enabled = False
    carol.save(update_fields=["enabled"])
    return {
        "malformed": "ApiKey !!not-base64!!",
        "unknown_id": "ApiKey " + encode_credential("A" * 20, "B" * 22),
        "wrong_secret": "ApiKey " + encode_credential(active.id, "B" * 22),
        "invalidated": api_key(make_api_key(alice, "invalidated", state="invalidated")),
        "expired": api_key(make_api_key(alice, "expired", state="expired")),
        "disabled_owner": api_key(orphan),
    }


@pytest.mark.parametrize(
    "outcome", ["malformed", "unknown_id", "wrong_secret", "invalidated", "expired", "disabled_owner"]
)
def test_each_refusal_of_a_key_is_counted_once_under_its_reason(refused_keys, outcome):
    delta = Delta()

    assert call(refused_keys[outcome]).status_code == 401

    assert delta("keyward_authentications_total", credential="api_key", outcome=outcome) == 1
    assert delta("keyward_authentications_total", credential="api_key", outcome="success") == 0
    assert delta("keyward_authentication_duration_seconds_count", credential="api_key") == 1


def test_a_throttled_key_is_counted_as_throttled_and_not_under_its_reason(settings, own_cache, refused_keys):
    settings.AUTH_FAILURE_LIMIT_PER_IP = 1
    delta = Delta()

    assert call(refused_keys["unknown_id"], address=REMOTE).status_code == 401
    assert call(refused_keys["unknown_id"], address=REMOTE).status_code == 429

    assert delta("keyward_authentications_total", credential="api_key", outcome="unknown_id") == 1
    assert delta("keyward_authentications_total", credential="api_key", outcome="throttled") == 1
    assert delta("keyward_throttle_rejections_total", bucket="api_key") == 1


def test_passwords_are_counted_by_outcome_and_a_throttled_one_by_its_bucket(settings, own_cache, elastic):
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = 1
    delta = Delta()

    assert call(basic("elastic", PASSWORD)).status_code == 200
    assert call(basic("nobody", PASSWORD)).status_code == 401
    assert call(basic("elastic", "wrong"), address=REMOTE).status_code == 401
    assert call(basic("elastic", "wrong"), address=REMOTE).status_code == 429

    for outcome in ("success", "unknown_user", "refused", "throttled"):
        assert delta("keyward_authentications_total", credential="password", outcome=outcome) == 1, outcome
    assert delta("keyward_throttle_rejections_total", bucket="username") == 1
    assert delta("keyward_authentication_duration_seconds_count", credential="password") == 3


def test_access_tokens_are_counted_by_outcome():
    delta = Delta()

    assert call("Bearer not-a-token").status_code == 401

    assert delta("keyward_authentications_total", credential="token", outcome="malformed") == 1
    assert delta("keyward_authentication_duration_seconds_count", credential="token") == 1


# ---------------------------------------------------------------------------------------------
# Keys created, invalidated and purged: counted once their transaction commits


def test_keys_created_invalidated_and_purged_are_counted_once_committed(
    elastic, django_capture_on_commit_callbacks
):
    credential = basic("elastic", PASSWORD)
    delta = Delta()

    with django_capture_on_commit_callbacks(execute=True):
        created = Client().post(
            "/_security/api_key", {"name": "counted"}, content_type="application/json", secure=True,
            HTTP_AUTHORIZATION=credential,
        )
        again = Client().post(
            "/_security/api_key", {"name": "counted"}, content_type="application/json", secure=True,
            HTTP_AUTHORIZATION=credential,
        )
        invalidations = [
            Client().delete(
                "/_security/api_key", json.dumps({"ids": [created.json()["id"]]}),
                content_type="application/json", secure=True, HTTP_AUTHORIZATION=credential,
            )
            for _ in range(2)
        ]
        with transaction.atomic():
            create_api_key(Principal(elastic), "rolled back")
            transaction.set_rollback(True)
    assert (created.status_code, again.status_code) == (200, 409)
    assert [len(answer.json()["invalidated_api_keys"]) for answer in invalidations] == [1, 0]
    ApiKey.objects.filter(pk=created.json()["id"]).update(invalidated=timezone.now() - timedelta(days=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert purge_api_keys().deleted == 1

    assert delta("keyward_api_keys_created_total") == 1
    assert delta("keyward_api_keys_invalidated_total") == 1
    assert delta("keyward_api_keys_purged_total") == 1
    assert delta("keyward_api_key_purge_duration_seconds_count") == 1


# ---------------------------------------------------------------------------------------------
# Keys by status: the API Keys page's cached overview, never a count per scrape


def test_keys_by_status_come_from_the_cached_overview(
    settings, own_cache, alice, make_api_key, django_assert_num_queries
):
    settings.API_KEY_OVERVIEW_MAX_AGE = "1m"
    states = {"active": 3, "expired": 2, "invalidated": 1}
    for state, count in states.items():
        for number in range(count):
            make_api_key(alice, f"{state}-{number}", state=state)
    make_api_key(alice, "expiring", expiration="1d")

    first = scrape()
    with django_assert_num_queries(0):
        second = scrape()

    for samples in (first, second):
        assert value(samples, "keyward_api_keys", status="active") == states["active"]
        assert value(samples, "keyward_api_keys", status="expiring") == 1
        assert value(samples, "keyward_api_keys", status="expired") == states["expired"]
        assert value(samples, "keyward_api_keys", status="invalidated") == states["invalidated"]


def test_keys_by_status_are_left_out_when_overviews_are_not_cached(
    alice, make_api_key, django_assert_num_queries
):
    make_api_key(alice, "uncounted")

    with django_assert_num_queries(0):
        samples = scrape()

    assert not any(name == "keyward_api_keys" for name, _ in samples)


# ---------------------------------------------------------------------------------------------
# Who may read them


def get_metrics(address: str = "127.0.0.1", authorization: str | None = None, secure: bool = True):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return Client().get("/_metrics", secure=secure, REMOTE_ADDR=address, **extra)


def assert_refused(response, status: int, error_type: str = "security_exception"):
    assert response.status_code == status, response.content
    assert response.json()["error"]["type"] == error_type
    assert response.json()["status"] == status
    assert response["X-Elastic-Product"] == "Elasticsearch"
    if status == 401:
        assert "ApiKey" in response["WWW-Authenticate"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_by_default_this_host_reads_the_metrics_without_credentials(address):
    assert get_metrics(address).status_code == 200


@pytest.mark.parametrize("address", [REMOTE, "2001:db8::1", "", "not-an-address"])
def test_by_default_other_addresses_are_refused_whatever_they_send(address):
    assert_refused(get_metrics(address), 403)
    assert_refused(get_metrics(address, f"Bearer {METRICS_TOKEN}"), 403)


def test_behind_a_trusted_proxy_on_this_host_the_client_it_names_is_the_one_checked(settings):
    settings.TRUSTED_PROXIES = ("127.0.0.1",)
    proxied = Client().get("/_metrics", secure=True, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=REMOTE)
    assert_refused(proxied, 403)
    local = Client().get("/_metrics", secure=True, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert local.status_code == 200


@pytest.fixture
def token_access(settings):
    settings.METRICS_ACCESS = ("token",)
    settings.METRICS_TOKEN = METRICS_TOKEN


def test_the_metrics_token_opens_them_to_any_address(token_access):
    assert get_metrics(REMOTE, f"Bearer {METRICS_TOKEN}").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {METRICS_TOKEN}x", f"Bearer {METRICS_TOKEN[:-1]}", "Bearer ", "Basic eDp5"],
)
def test_without_the_right_token_the_answer_is_401_from_this_host_too(token_access, authorization):
    assert_refused(get_metrics(REMOTE, authorization), 401)
    assert_refused(get_metrics("127.0.0.1", authorization), 401)


def test_the_token_is_refused_over_plain_http(token_access):
    response = get_metrics(REMOTE, f"Bearer {METRICS_TOKEN}", secure=False)

    assert_refused(response, 400, "feature_not_enabled_exception")


@pytest.fixture
def monitor_access(settings):
    settings.METRICS_ACCESS = ("monitor",)


def test_the_monitor_privilege_opens_them_to_a_key_a_user_and_a_session(
    monitor_access, fast_passwords, make_user, make_api_key, client_for
):
    watcher = make_user("watcher", "monitor", "manage_own_api_key", password=PASSWORD)
    key = make_api_key(watcher, "scraper", role_descriptors=MONITOR_ONLY)

    assert get_metrics(REMOTE, api_key(key)).status_code == 200
    assert get_metrics(REMOTE, basic("watcher", PASSWORD)).status_code == 200
    assert client_for(watcher).get("/_metrics", secure=True, REMOTE_ADDR=REMOTE).status_code == 200


def test_without_the_monitor_privilege_the_answer_is_403_naming_it(monitor_access, alice, make_api_key):
    response = get_metrics(REMOTE, api_key(make_api_key(alice, "no monitor")))

    assert_refused(response, 403)
    reason = response.json()["error"]["reason"]
    assert "user [alice]" in reason and "[monitor,manage,all]" in reason


def test_under_the_monitor_privilege_a_bad_credential_is_401_and_this_host_no_exception(
    monitor_access, refused_keys
):
    assert_refused(get_metrics(REMOTE), 401)
    assert_refused(get_metrics("127.0.0.1"), 401)
    assert_refused(get_metrics(REMOTE, refused_keys["wrong_secret"]), 401)
    # No metrics token is configured: a bearer credential is an access token, and this one is none.
    assert_refused(get_metrics(REMOTE, f"Bearer {METRICS_TOKEN}"), 401)


def test_any_one_of_the_listed_ways_suffices(settings, make_user, make_api_key):
    settings.METRICS_ACCESS = ("local", "token", "monitor")
    settings.METRICS_TOKEN = METRICS_TOKEN
    watcher = make_user("watcher", "monitor", "manage_own_api_key")
    key = make_api_key(watcher, "scraper", role_descriptors=MONITOR_ONLY)

    assert get_metrics("127.0.0.1").status_code == 200
    assert get_metrics(REMOTE, f"Bearer {METRICS_TOKEN}").status_code == 200
    assert get_metrics(REMOTE, api_key(key)).status_code == 200
    assert_refused(get_metrics(REMOTE), 401)


def test_a_scrape_writes_nothing_and_authenticates_no_one(alice, make_api_key):
    make_api_key(alice, "untouched")
    before = security_state()
    assert get_metrics("127.0.0.1").status_code == 200
    assert security_state() == before


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"KEYWARD_METRICS_ACCESS": "local,everyone"}, "must list one or more of local, token and monitor"),
        ({"KEYWARD_METRICS_ACCESS": ","}, "must list one or more of local, token and monitor"),
        ({"KEYWARD_METRICS_ACCESS": "token"}, "set KEYWARD_METRICS_TOKEN"),
        ({"KEYWARD_METRICS_TOKEN": METRICS_TOKEN}, "does not include token"),
        ({"KEYWARD_METRICS_ACCESS": "token", "KEYWARD_METRICS_TOKEN": "short"}, "at least 32 printable"),
        ({"KEYWARD_METRICS_ACCESS": "token", "KEYWARD_METRICS_TOKEN": "x" * 31 + " y"}, "without spaces"),
    ],
)
def test_settings_refuse_a_bad_configuration_clearly(tmp_path, environment, message):
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("KEYWARD_METRICS_")}
    env = {**inherited, "KEYWARD_DATA_DIR": str(tmp_path), **environment}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=60,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


# ---------------------------------------------------------------------------------------------
# Several workers: every scrape sums them all


def counted_by_each_worker(server, tmp_path, name: str, **labels) -> dict[int, float]:
    """``{worker pid: its count}`` from each worker's own file of the server's metrics directory."""
    counts = {}
    for path in (server.data_dir / "metrics").glob("counter_*.db"):
        alone = tmp_path / f"{path.stem}-{secrets.token_hex(4)}"
        alone.mkdir()
        shutil.copy(path, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[int(path.stem.rpartition("_")[2])] = registry.get_sample_value(name, labels) or 0
    return counts


def scrape_server(server) -> dict:
    """One scrape on a new connection, which the kernel hands to either worker."""
    client = server.connection()
    try:
        client.request("GET", "/_metrics")
        response = client.getresponse()
        assert response.status == 200
        return parse(response.read().decode())
    finally:
        client.close()


@pytest.mark.server
def test_a_scrape_from_any_worker_sums_what_every_worker_counted(tmp_path_factory, tmp_path):
    requests = 40
    with start_keyward_server(tmp_path_factory, WEB_CONCURRENCY="2") as server:
        authorization = server.elastic_api_key("scraped")
        for _ in range(requests):  # each on a new connection, spread over the workers' sockets
            client = server.connection()
            client.request("GET", AUTHENTICATE, headers={"Authorization": authorization})
            assert client.getresponse().status == 200
            client.close()
        workers = set(server.worker_pids())
        by_worker = counted_by_each_worker(server, tmp_path, REQUESTS, route=AUTHENTICATE, status="200")
        assert len(workers) == 2 and all(by_worker.get(pid, 0) > 0 for pid in workers), by_worker

        scraped_by: dict[int, float] = {}
        for _ in range(50):  # until each worker has served a scrape
            samples = scrape_server(server)
            assert value(samples, REQUESTS, route=AUTHENTICATE, status="200") == requests
            assert value(samples, AUTHENTICATIONS, credential="api_key", outcome="success") == requests
            assert value(samples, "keyward_api_keys_created_total") == 1
            scraped_by = counted_by_each_worker(server, tmp_path, REQUESTS, route="/_metrics", status="200")
            if all(scraped_by.get(pid, 0) > 0 for pid in workers):
                break
        assert all(scraped_by.get(pid, 0) > 0 for pid in workers), scraped_by


def test_without_gunicorn_the_process_counts_in_memory():
    from metrics import registry

    assert not registry.MULTIPROCESS
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
