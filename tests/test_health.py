"""Health probes, Elasticsearch's cluster health and root info, and the content-negotiated ``/``.

The probes are asked as a load balancer asks them: by address, without credentials, over plain HTTP
on the HTTPS port too; against real gunicorn servers whose database is unreachable, hangs, or lacks
a migration. The Elasticsearch endpoints are asked by the official client.
"""

import base64
import json
import socket
import threading
import time

import pytest
from django.test import override_settings
from elasticsearch import ApiError, AuthorizationException, Elasticsearch

import config
from cluster.models import Installation
from cluster.selectors import cluster_uuid
from tests.server import start_keyward_server

JSON = "application/json"
VENDOR = "application/vnd.elasticsearch+json; compatible-with=9"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# How long a probe may take when a check hangs: the 1 s bound, and a margin for a busy machine.
HANGING_PROBE_LIMIT = 3.0
LOG_WAIT = 5.0


# ---------------------------------------------------------------------------------------------
# In process: shapes, negotiation, privileges


def probe(client, path, **headers):
    response = client.get(path, headers=headers)
    return response.status_code, response.json(), response


@pytest.mark.django_db
def test_liveness_answers_ok_never_cached_whatever_the_host(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        status, body, response = probe(client, "/_health", host="10.0.0.5:8443", accept="text/html")

    assert status == 200
    assert body["status"] == "ok"
    assert body["checks"]["process"]["status"] == "ok"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == JSON


@pytest.mark.django_db
def test_readiness_answers_each_checks_state_and_time(client):
    status, body, response = probe(client, "/_health/ready", host="10.0.0.5:8443")

    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "cache"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert 0 <= check["time_ms"] < 1000
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readiness_fails_and_cluster_health_turns_yellow_when_the_cache_is_unreachable(client_for, users):
    unreachable = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    monitor = client_for(users["monitor_only"])
    with override_settings(CACHES=unreachable):
        status, body, _ = probe(monitor, "/_health/ready")
        health = monitor.get("/_cluster/health", secure=True)

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["cache"]["status"] == "failed"
    assert body["checks"]["cache"]["reason"].startswith("cache unreachable")
    assert body["checks"]["database"]["status"] == "ok"
    assert health.status_code == 200
    assert health.json()["status"] == "yellow"


@pytest.mark.django_db
def test_cluster_health_answers_elasticsearchs_shape_green(client_for, users, settings):
    settings.CLUSTER_NAME = "production-keys"

    response = client_for(users["monitor_only"]).get("/_cluster/health", secure=True)

    assert response.status_code == 200
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["cluster_name"] == "production-keys"
    assert (body["status"], body["timed_out"]) == ("green", False)
    assert (body["number_of_nodes"], body["active_shards"], body["unassigned_shards"]) == (1, 0, 0)
    assert body["active_shards_percent_as_number"] == 100.0
    assert "indices" not in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("wait_for_status=yellow&timeout=5s", {"status": "green", "timed_out": False}),
        ("wait_for_status=green&level=indices", {"indices": {}, "timed_out": False}),
        ("wait_for_nodes=>=1&wait_for_active_shards=all&wait_for_events=urgent", {"timed_out": False}),
        ("local&wait_for_no_relocating_shards=true&master_timeout=-1", {"timed_out": False}),
        ("filter_path=status,cluster_name", {"status": "green", "cluster_name": "keyward"}),
    ],
)
def test_cluster_health_answers_at_once_when_what_it_waits_for_holds(client_for, users, query, fields):
    started = time.monotonic()

    response = client_for(users["superuser"]).get(f"/_cluster/health?{query}", secure=True)

    assert response.status_code == 200, response.content
    assert fields.items() <= response.json().items()
    if query.startswith("filter_path"):
        assert set(response.json()) == set(fields)
    assert time.monotonic() - started < 3


@pytest.mark.django_db
def test_cluster_health_times_out_with_408_on_what_one_host_can_never_be(client_for, users):
    response = client_for(users["superuser"]).get("/_cluster/health?wait_for_nodes=2&timeout=1s", secure=True)

    assert response.status_code == 408
    assert response.json()["timed_out"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("wait_for_stat=green", "contains unrecognized parameter: [wait_for_stat]"),
        ("wait_for_status=blue", "invalid value [blue] for parameter [wait_for_status]"),
        ("timeout=soon", "failed to parse timeout [soon] as a time value"),
        ("level=nodes", "invalid value [nodes] for parameter [level]"),
        ("wait_for_nodes=two", "cannot parse [wait_for_nodes] value [two]"),
        ("wait_for_nodes=ge(2", "cannot parse [wait_for_nodes] value [ge(2]"),
        ("wait_for_active_shards=some", "cannot parse [wait_for_active_shards] value [some]"),
        ("local=maybe", "Failed to parse value [maybe]"),
    ],
)
def test_cluster_health_refuses_bad_parameters_as_elasticsearch_does(client_for, users, query, reason):
    response = client_for(users["superuser"]).get(f"/_cluster/health?{query}", secure=True)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "illegal_argument_exception"
    assert reason in response.json()["error"]["reason"]


@pytest.mark.django_db
def test_cluster_health_takes_monitor_as_elasticsearch_does(client, client_for, users):
    refused = client_for(users["security_admin"]).get("/_cluster/health", secure=True)
    anonymous = client.get("/_cluster/health", secure=True)

    assert refused.status_code == 403
    assert refused.json()["error"]["reason"] == (
        "action [cluster:monitor/health] is unauthorized for user [security_admin] with effective roles "
        "[security_admin_default_native_role], this action is granted by the cluster privileges "
        "[monitor,manage,all]"
    )
    assert anonymous.status_code == 401
    assert "ApiKey" in anonymous["WWW-Authenticate"]


@pytest.mark.django_db
def test_a_role_naming_the_health_action_itself_may_ask(client_for, make_user):
    user = make_user("probe", "cluster:monitor/health")

    assert client_for(user).get("/_cluster/health", secure=True).status_code == 200
    assert client_for(user).get("/", secure=True, headers={"accept": JSON}).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "*/*", BROWSER, "text/html"])
def test_root_gives_a_browser_the_home_page(client, accept):
    headers = {"accept": accept} if accept else {}

    response = client.get("/", secure=True, headers=headers)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "Accept" in response["Vary"]
    assert "X-Elastic-Product" not in response


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (JSON, JSON),
        (VENDOR, "application/vnd.elasticsearch+json"),
        ("application/vnd.elasticsearch+json; compatible-with=8", "application/vnd.elasticsearch+json"),
        ("application/json, text/html;q=0.9", JSON),
    ],
)
def test_root_gives_a_client_asking_json_elasticsearchs_root_info(client_for, users, accept, content_type):
    # Remembered per process: a transactional test before this one may have emptied the table since.
    cluster_uuid.cache_clear()
    response = client_for(users["monitor_only"]).get("/", secure=True, headers={"accept": accept})

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(content_type)
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert "Accept" in response["Vary"]
    body = json.loads(response.content)
    assert body["name"] == socket.gethostname()
    assert body["cluster_name"] == "keyward"
    assert body["cluster_uuid"] == Installation.objects.get().cluster_uuid
    assert len(body["cluster_uuid"]) == 22
    assert body["version"]["number"] == config.__version__
    assert body["tagline"]


@pytest.mark.django_db
def test_root_info_takes_credentials_and_monitor_as_elasticsearch_does(client, client_for, users):
    anonymous = client.get("/", secure=True, headers={"accept": JSON})
    refused = client_for(users["own_keys"]).get("/", secure=True, headers={"accept": JSON})
    unknown = client_for(users["superuser"]).get("/?pretty&verbose", secure=True, headers={"accept": JSON})

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "security_exception"
    assert refused.status_code == 403
    reason = refused.json()["error"]["reason"]
    assert "action [cluster:monitor/main] is unauthorized for user [own_keys]" in reason
    assert unknown.status_code == 400
    assert "unrecognized parameter: [verbose]" in unknown.json()["error"]["reason"]


# ---------------------------------------------------------------------------------------------
# Real servers


def plain_request(server, request: bytes) -> tuple[int, dict, bytes]:
    """One request in plain HTTP on the HTTPS port; (status, headers, body) once the server closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines)
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    return int(status_line.split()[1]), headers, body


def https_get(server, path: str, headers=None) -> tuple[int, dict, bytes]:
    client = server.connection(timeout=15)
    try:
        client.request("GET", path, headers=headers or {})
        response = client.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        client.close()


def basic(server) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"elastic:{server.password}".encode()).decode()}


def access_log_lines(server, path: str) -> list[str]:
    log = (server.data_dir / "gunicorn.log").read_text(errors="replace")
    return [line for line in log.splitlines() if f'"GET {path} HTTP/1.1"' in line]


def wait_for_log_line(server, path: str) -> list[str]:
    """gunicorn writes the access line after the answer: give it a moment."""
    deadline = time.monotonic() + LOG_WAIT
    while not (lines := access_log_lines(server, path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return lines


@pytest.mark.server
def test_probes_answer_plain_http_on_the_https_port_and_nothing_else_does(keyward_server):
    host = f"Host: 10.0.0.5:{keyward_server.port}\r\n"
    status, headers, body = plain_request(
        keyward_server, f"GET /_health/ready HTTP/1.1\r\n{host}\r\n".encode()
    )
    head_status, head_headers, head_body = plain_request(
        keyward_server, f"HEAD /_health HTTP/1.1\r\n{host}\r\n".encode()
    )
    post_status, post_headers, _ = plain_request(
        keyward_server, f"POST /_health HTTP/1.1\r\n{host}\r\n".encode()
    )
    other_status, other_headers, _ = plain_request(
        keyward_server,
        f"GET /_security/_authenticate HTTP/1.1\r\n{host}Authorization: Basic eDp5\r\n\r\n".encode(),
    )

    assert status == 200, body
    assert json.loads(body)["checks"]["database"]["status"] == "ok"
    assert headers["cache-control"] == "no-store"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert "strict-transport-security" not in headers
    assert (head_status, head_body) == (200, b"")
    assert int(head_headers["content-length"]) > 0
    assert post_status == 308 and post_headers["location"].endswith("/_health")
    assert other_status == 308 and other_headers["location"].endswith("/_security/_authenticate")


@pytest.mark.server
def test_successful_probes_stay_out_of_the_access_log_by_default(keyward_server):
    assert https_get(keyward_server, "/_health")[0] == 200
    assert https_get(keyward_server, "/_health/ready")[0] == 200
    # Asked after the probes: once its line is written, theirs would have been too.
    assert https_get(keyward_server, "/api/schema/?format=json")[0] == 200

    assert wait_for_log_line(keyward_server, "/api/schema/?format=json")
    assert access_log_lines(keyward_server, "/_health") == []
    assert access_log_lines(keyward_server, "/_health/ready") == []


@pytest.mark.server
def test_the_setting_writes_probes_to_the_access_log(tmp_path_factory):
    with start_keyward_server(tmp_path_factory, KEYWARD_ACCESS_LOG_HEALTH="true") as server:
        assert https_get(server, "/_health")[0] == 200
        assert https_get(server, "/_health/ready")[0] == 200

        assert wait_for_log_line(server, "/_health")
        assert wait_for_log_line(server, "/_health/ready")


@pytest.mark.server
def test_a_bad_access_log_setting_stops_the_server_with_a_clear_message(tmp_path_factory):
    with pytest.raises(pytest.fail.Exception, match="KEYWARD_ACCESS_LOG_HEALTH must be true or false"):
        with start_keyward_server(tmp_path_factory, KEYWARD_ACCESS_LOG_HEALTH="sometimes"):
            pass


@pytest.mark.server
def test_readiness_and_cluster_health_fail_while_a_migration_is_missing_and_recover(tmp_path_factory):
    with start_keyward_server(tmp_path_factory, WEB_CONCURRENCY="1") as server:
        server.manage("migrate", "cluster", "zero")

        status, _, body = https_get(server, "/_health/ready")
        red = https_get(server, "/_cluster/health?wait_for_status=yellow&timeout=1s", basic(server))
        red_now = https_get(server, "/_cluster/health?wait_for_status=red", basic(server))
        server.manage("migrate")
        recovered = https_get(server, "/_health/ready")
        green = https_get(server, "/_cluster/health?wait_for_status=green&timeout=5s", basic(server))
        # Remembered once good: the process walks the migration graph no more.
        server.manage("migrate", "cluster", "zero")
        remembered = https_get(server, "/_health/ready")
        server.manage("migrate")

        checks = json.loads(body)["checks"]
        assert status == 503
        assert checks["migrations"] == {
            "status": "failed", "time_ms": checks["migrations"]["time_ms"],
            "reason": "1 migrations not applied: run manage.py migrate",
        }
        assert checks["database"]["status"] == "ok"
        assert red[0] == 408
        assert json.loads(red[2])["status"] == "red" and json.loads(red[2])["timed_out"] is True
        assert red_now[0] == 200 and json.loads(red_now[2])["status"] == "red"
        assert recovered[0] == 200
        assert green[0] == 200 and json.loads(green[2])["status"] == "green"
        assert remembered[0] == 200
        # A failing probe is logged, whatever the setting.
        assert any('" 503 ' in line for line in wait_for_log_line(server, "/_health/ready"))


@pytest.mark.server
def test_liveness_answers_and_readiness_fails_when_the_database_cannot_be_opened(tmp_path_factory):
    with start_keyward_server(
        tmp_path_factory, bootstrap=False, DATABASE_URL="sqlite:////nonexistent/keyward/keyward.sqlite3"
    ) as server:
        live = https_get(server, "/_health")
        ready = https_get(server, "/_health/ready")
        plain_ready = plain_request(server, b"GET /_health/ready HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n")

    assert live[0] == 200
    assert json.loads(live[2])["status"] == "ok"
    checks = json.loads(ready[2])["checks"]
    assert ready[0] == 503
    assert checks["database"]["status"] == "failed"
    assert checks["database"]["reason"] == "database unreachable (OperationalError)"
    assert checks["migrations"]["reason"] == "not checked: the database is unreachable"
    assert checks["cache"]["status"] == "ok"
    assert plain_ready[0] == 503


class SilentDatabase:
    """A port that takes connections and never answers, as a database behind a dropped route."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"postgres://keyward@127.0.0.1:{self.listener.getsockname()[1]}/keyward"

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.server
def test_a_hanging_database_fails_readiness_within_a_second_and_is_asked_once(tmp_path_factory):
    database = SilentDatabase()
    try:
        with start_keyward_server(
            tmp_path_factory, bootstrap=False, DATABASE_URL=database.url, WEB_CONCURRENCY="1",
            KEYWARD_API_KEY_PURGE_ON_REQUEST="false",
        ) as server:
            timings, answers = [], []
            for _ in range(3):
                started = time.monotonic()
                answers.append(https_get(server, "/_health/ready"))
                timings.append(time.monotonic() - started)
            started = time.monotonic()
            live = https_get(server, "/_health")
            live_time = time.monotonic() - started
    finally:
        database.close()

    for status, _, body in answers:
        checks = json.loads(body)["checks"]
        assert status == 503
        assert checks["database"]["reason"] == "no answer within 1 s"
        assert checks["database"]["time_ms"] >= 1000
        assert checks["cache"]["status"] == "ok"
    assert max(timings) < HANGING_PROBE_LIMIT
    # The first check still hangs: the later probes waited on it rather than connecting again.
    assert len(database.connections) == 1
    assert live[0] == 200 and live_time < 1


# ---------------------------------------------------------------------------------------------
# The official client


def connect(server, **credentials) -> Elasticsearch:
    return Elasticsearch(server.base_url, ca_certs=str(server.certfile), **credentials)


@pytest.mark.server
def test_the_official_client_reads_info_and_cluster_health(keyward_server):
    client = connect(keyward_server, basic_auth=("elastic", keyward_server.password))
    try:
        info = client.info()
        health = client.cluster.health(wait_for_status="green", timeout="5s")
        filtered = client.cluster.health(filter_path="status")
        with pytest.raises(ApiError) as timed_out:
            client.cluster.health(wait_for_nodes=2, timeout="1s")
        assert client.ping()
    finally:
        client.close()

    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert info["cluster_name"] == "keyward"
    assert info["version"]["number"] == config.__version__
    assert info["cluster_uuid"] == keyward_server.query("SELECT cluster_uuid FROM cluster_installation")[0][0]
    assert (health["status"], health["timed_out"], health["number_of_nodes"]) == ("green", False, 1)
    assert dict(filtered) == {"status": "green"}
    assert timed_out.value.meta.status == 408
    assert timed_out.value.body["timed_out"] is True


@pytest.mark.server
def test_the_official_client_without_monitor_is_refused_info(keyward_server):
    admin = connect(keyward_server, basic_auth=("elastic", keyward_server.password))
    admin.security.put_user(username="health-kim", password="health-kim-password", roles=[])
    admin.close()
    client = connect(keyward_server, basic_auth=("health-kim", "health-kim-password"))
    try:
        with pytest.raises(AuthorizationException):
            client.info()
        with pytest.raises(AuthorizationException):
            client.cluster.health()
    finally:
        client.close()

