"""Forward authentication behind a real nginx: the README's configuration, run as written but for
its addresses and certificate paths, in front of a small application that answers with the headers
it received, with a real Keyward server deciding every request through ``auth_request``."""

import base64
import grp
import http.client
import json
import os
import pwd
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.server import BASE_DIR, _free_port, missing_service, start_keyward_server

pytestmark = pytest.mark.server

NGINX = Path("/usr/sbin/nginx")
START_TIMEOUT = 10
# The README's addresses and paths, and what each becomes here.
README_PLACEHOLDERS = (
    "listen 443 ssl;",
    "server 127.0.0.1:8443;",
    "server 127.0.0.1:8080;",
    "/etc/nginx/tls/app.example.com.pem",
    "/etc/nginx/tls/app.example.com.key",
    "/srv/keyward/var/tls/cert.pem",
)
# Keyward's limit of failed API keys per address: the tests that fail a key on purpose through the
# shared nginx stay below it; the throttling test goes over it from an address of its own.
FAILURE_LIMIT = 5
THROTTLED_SOURCE = "127.0.0.2"
# Behind a trusted nginx: its calls to Keyward come from PROXY_SOURCE, its clients from the others.
PROXY_SOURCE, FIRST_CLIENT, OTHER_CLIENT = "127.0.0.5", "127.0.0.6", "127.0.0.7"


def readme_nginx_configuration() -> str:
    blocks = (BASE_DIR / "README.md").read_text().split("```nginx\n")[1:]
    assert len(blocks) == 1, "the README should have one nginx configuration"
    return blocks[0].split("```", 1)[0]


class EchoHandler(BaseHTTPRequestHandler):
    """The application behind nginx: answers every request with its path and headers as JSON."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps(
            {"path": self.path, "headers": {name.lower(): value for name, value in self.headers.items()}}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module", autouse=True)
def nginx_installed():
    """Checked before anything starts: skipped where nginx is missing, a failure in CI."""
    if not NGINX.exists():
        missing_service(f"{NGINX} is missing (apt-get install nginx)")


@pytest.fixture(scope="module")
def application():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def keyward(tmp_path_factory):
    with start_keyward_server(
        tmp_path_factory, KEYWARD_AUTH_FAILURE_LIMIT_PER_IP=str(FAILURE_LIMIT)
    ) as server:
        yield server


@contextmanager
def running_nginx(directory: Path, keyward, application_port: int, http_directives: str = ""):
    """nginx with the README's configuration in its ``http`` block, as the current user, everything
    it writes under ``directory``; yields the port it serves HTTPS on."""
    port = _free_port()
    tls = keyward.data_dir / "tls"
    configuration = readme_nginx_configuration()
    for placeholder, value in zip(
        README_PLACEHOLDERS,
        (
            f"listen 127.0.0.1:{port} ssl;",
            f"server 127.0.0.1:{keyward.port};",
            f"server 127.0.0.1:{application_port};",
            str(tls / "cert.pem"),
            str(tls / "key.pem"),
            str(keyward.certfile),
        ),
    ):
        assert configuration.count(placeholder) == 1, f"the README's nginx configuration has no {placeholder}"
        configuration = configuration.replace(placeholder, value)
    with nginx_serving(directory, port, f"{http_directives}\n{configuration}"):
        yield port


@contextmanager
def nginx_serving(directory: Path, port: int, http_block: str):
    """nginx as the current user with ``http_block`` in its ``http`` block, everything it writes
    under ``directory``; entered once it listens on ``port``."""
    # As root nginx would run its workers as nobody; as anyone else it ignores the directive.
    user = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    temp = "\n".join(
        f"    {name}_temp_path {directory / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"user {user};\nworker_processes 1;\ndaemon off;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {directory / 'access.log'};\n{temp}\n{http_block}}}\n"
    )
    process = subprocess.Popen(
        [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", "stderr"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_until_listening(port, process)
        yield
    finally:
        process.terminate()
        process.wait(START_TIMEOUT)


def _wait_until_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen on {port} within {START_TIMEOUT} s")


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, keyward, application):
    with running_nginx(tmp_path_factory.mktemp("nginx"), keyward, application) as port:
        yield port


def call(port, keyward, path="/", headers=None, source=None) -> tuple[int, dict, bytes]:
    """One request through nginx, from the ``source`` address if given; returns status, headers
    (lower-case names) and body."""
    context = ssl.create_default_context(cafile=keyward.certfile)
    client = http.client.HTTPSConnection(
        "127.0.0.1", port, context=context, timeout=30, source_address=(source, 0) if source else None
    )
    try:
        client.request("GET", path, headers=headers or {})
        response = client.getresponse()
        return (
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            response.read(),
        )
    finally:
        client.close()


def received(port, keyward, path="/", headers=None) -> dict:
    """The headers the application received for a request that passed."""
    status, _, body = call(port, keyward, path, headers)
    assert status == 200, body
    return json.loads(body)["headers"]


def elastic(keyward) -> str:
    return "Basic " + base64.b64encode(f"elastic:{keyward.password}".encode()).decode()


def create_key(keyward, body: dict) -> dict:
    client = keyward.connection()
    try:
        status, created = keyward.request(client, "POST", "/_security/api_key", elastic(keyward), body)
    finally:
        client.close()
    assert status == 200, created
    return created


def test_a_good_key_reaches_the_application_which_learns_who_called_and_never_sees_the_key(nginx, keyward):
    key = create_key(keyward, {"name": "relevé ✓, 100%"})

    headers = received(
        nginx, keyward, headers={"Authorization": f"ApiKey {key['encoded']}", "X-Keyward-User": "forged"}
    )

    assert {name: value for name, value in headers.items() if name.startswith("x-keyward-")} == {
        "x-keyward-user": "elastic",
        "x-keyward-realm": "default_native",
        "x-keyward-api-key-id": key["id"],
        "x-keyward-api-key-name": "relev%C3%A9%20%E2%9C%93%2C%20100%25",
        "x-keyward-roles": "superuser",
    }
    assert unquote(headers["x-keyward-api-key-name"]) == "relevé ✓, 100%"
    assert "authorization" not in headers


def test_a_user_gets_no_key_headers_even_when_the_client_sends_some(nginx, keyward):
    headers = received(
        nginx, keyward, headers={"Authorization": elastic(keyward), "X-Keyward-Api-Key-Id": "forged"}
    )

    assert headers["x-keyward-user"] == "elastic"
    assert "x-keyward-api-key-id" not in headers


def test_an_invalidated_key_is_refused_from_its_very_next_request(nginx, keyward):
    key = create_key(keyward, {"name": "short-lived"})
    authorization = {"Authorization": f"ApiKey {key['encoded']}"}
    assert received(nginx, keyward, headers=authorization)["x-keyward-api-key-id"] == key["id"]
    client = keyward.connection()
    try:
        status, body = keyward.request(
            client, "DELETE", "/_security/api_key", elastic(keyward), {"ids": [key["id"]]}
        )
    finally:
        client.close()
    assert status == 200 and body["invalidated_api_keys"] == [key["id"]]

    status, headers, _ = call(nginx, keyward, headers=authorization)

    assert status == 401
    assert (
        headers["www-authenticate"]
        == 'Basic realm="security", charset="UTF-8", Bearer realm="security", ApiKey'
    )


def test_no_credentials_get_401_with_the_challenge(nginx, keyward):
    status, headers, _ = call(nginx, keyward)

    assert status == 401
    assert "ApiKey" in headers["www-authenticate"]


def test_a_location_requiring_an_index_privilege_refuses_a_key_without_it(nginx, keyward):
    metrics_only = create_key(
        keyward,
        {
            "name": "metrics-reader",
            "role_descriptors": {"metrics": {"indices": [{"names": ["metrics-*"], "privileges": ["read"]}]}},
        },
    )
    logs = create_key(
        keyward,
        {
            "name": "logs-reader",
            "role_descriptors": {"logs": {"indices": [{"names": ["logs-*"], "privileges": ["read"]}]}},
        },
    )

    refused, _, _ = call(
        nginx, keyward, "/logs/today", {"Authorization": f"ApiKey {metrics_only['encoded']}"}
    )
    allowed = received(nginx, keyward, "/logs/today", {"Authorization": f"ApiKey {logs['encoded']}"})

    assert refused == 403
    assert allowed["x-keyward-roles"] == "logs"
    assert received(nginx, keyward, "/", {"Authorization": f"ApiKey {metrics_only['encoded']}"})


def test_a_throttled_client_gets_429_and_retry_after_not_nginxs_500(tmp_path, keyward, application):
    bad = {"Authorization": "ApiKey " + base64.b64encode(b"A" * 20 + b":" + b"B" * 22).decode()}
    # Its calls to Keyward come from an address of their own, whose failures fill a bucket apart.
    with running_nginx(tmp_path, keyward, application, f"proxy_bind {THROTTLED_SOURCE};") as port:
        statuses = [call(port, keyward, headers=bad)[0] for _ in range(FAILURE_LIMIT)]
        status, headers, _ = call(port, keyward, headers=bad)

    assert statuses == [401] * FAILURE_LIMIT
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 300


def test_behind_a_trusted_nginx_each_client_fills_its_own_failure_bucket(tmp_path_factory, application):
    bad = {"Authorization": "ApiKey " + base64.b64encode(b"C" * 20 + b":" + b"D" * 22).decode()}
    with start_keyward_server(
        tmp_path_factory, KEYWARD_AUTH_FAILURE_LIMIT_PER_IP=str(FAILURE_LIMIT),
        KEYWARD_TRUSTED_PROXIES=PROXY_SOURCE,
    ) as keyward, running_nginx(
        tmp_path_factory.mktemp("nginx"), keyward, application, f"proxy_bind {PROXY_SOURCE};"
    ) as port:
        first = [call(port, keyward, headers=bad, source=FIRST_CLIENT)[0] for _ in range(FAILURE_LIMIT + 1)]
        other = call(port, keyward, headers=bad, source=OTHER_CLIENT)[0]
        # A client's own X-Forwarded-For is kept, but nginx appends the address it saw: that one counts.
        forged = {**bad, "X-Forwarded-For": OTHER_CLIENT}
        spoofed = call(port, keyward, headers=forged, source=FIRST_CLIENT)[0]

    assert first == [401] * FAILURE_LIMIT + [429]
    assert other == 401
    assert spoofed == 429
