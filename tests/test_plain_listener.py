"""The plain HTTP listener for a reverse proxy on the same host (``KEYWARD_PLAIN_HTTP_BIND``), on a
real gunicorn: plain HTTP there, TLS still on the HTTPS port, a socket per worker, and requests on it
secure only on a trusted proxy's word. The address is a loopback one or a unix socket, nothing else.
"""

import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.server import BASE_DIR, _free_port, start_keyward_server

pytestmark = pytest.mark.server

PROXY = "127.0.0.2"
AUTHENTICATE = "/_security/_authenticate"
RELOAD_TIMEOUT = 30


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get(client, headers) -> tuple[int, dict]:
    try:
        client.request("GET", AUTHENTICATE, headers=headers)
        response = client.getresponse()
        return response.status, json.loads(response.read())
    finally:
        client.close()


def listening_sockets(port: int) -> int:
    """How many sockets listen on this TCP port on 127.0.0.1, read from the kernel."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and local == f"0100007F:{port:04X}":
            count += 1
    return count


@pytest.fixture(scope="module")
def tcp_server(tmp_path_factory):
    port = _free_port()
    with start_keyward_server(
        tmp_path_factory, KEYWARD_PLAIN_HTTP_BIND=f"127.0.0.1:{port}", KEYWARD_TRUSTED_PROXIES=PROXY
    ) as server:
        yield server, port


WITHOUT_PROXIES_WARNING = "Warning: KEYWARD_TRUSTED_PROXIES is not set"


def test_a_plain_listener_without_trusted_proxies_is_warned_about_at_start(tmp_path_factory, tcp_server):
    plain = f"127.0.0.1:{_free_port()}"
    with start_keyward_server(tmp_path_factory, KEYWARD_PLAIN_HTTP_BIND=plain) as server:
        assert WITHOUT_PROXIES_WARNING in (server.data_dir / "gunicorn.log").read_text()
    assert WITHOUT_PROXIES_WARNING not in (tcp_server[0].data_dir / "gunicorn.log").read_text()


@pytest.fixture(scope="module")
def key(tcp_server):
    return {"Authorization": tcp_server[0].elastic_api_key("plain-listener")}


def test_each_worker_listens_on_the_plain_port_with_a_socket_of_its_own(tcp_server):
    server, port = tcp_server
    assert len(server.worker_pids()) == 2
    assert listening_sockets(port) == 2


def test_the_plain_listener_speaks_plain_http_and_the_https_port_still_tls(tcp_server, key):
    server, port = tcp_server

    assert get(server.connection(), key)[0] == 200
    status, body = get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), key)
    assert status == 400
    assert body["error"]["type"] == "feature_not_enabled_exception"


@pytest.mark.parametrize(
    ("source", "headers", "status"),
    [
        (PROXY, {"X-Forwarded-Proto": "https"}, 200),
        (PROXY, {}, 400),
        (PROXY, {"X-Forwarded-Proto": "http"}, 400),
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, 400),
        ("127.0.0.3", {"X-Forwarded-Proto": "https", "X-Forwarded-For": PROXY}, 400),
    ],
)
def test_on_the_plain_listener_only_a_trusted_proxy_makes_it_secure(tcp_server, key, source, headers, status):
    _, port = tcp_server
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))

    assert get(client, {**key, **headers})[0] == status


@pytest.mark.parametrize(("trusted", "forwarded_https"), [("unix", 200), (PROXY, 400)])
def test_a_unix_socket_is_served_private_to_its_group_and_trusted_when_listed(
    tmp_path_factory, trusted, forwarded_https
):
    directory = tmp_path_factory.mktemp("run")
    path = str(directory / "keyward.sock")
    # A socket file left by a server that stopped without removing it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(path)

    with start_keyward_server(
        tmp_path_factory, KEYWARD_PLAIN_HTTP_BIND=f"unix:{path}", KEYWARD_TRUSTED_PROXIES=trusted
    ) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        key = {"Authorization": server.elastic_api_key("over-a-unix-socket")}
        status, body = get(UnixHTTPConnection(path), {**key, "X-Forwarded-Proto": "https"})
        assert status == forwarded_https, body
        assert get(UnixHTTPConnection(path), key)[0] == 400

        # A reload (HUP) reads the configuration anew and replaces the workers: the new ones accept
        # on the same socket.
        before = set(server.worker_pids())
        os.kill(server.master_pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while not (len(after := set(server.worker_pids())) == 2 and not after & before):
            assert time.monotonic() < deadline, f"the workers were not replaced: {before} → {after}"
            time.sleep(0.2)
        status, body = get(UnixHTTPConnection(path), {**key, "X-Forwarded-Proto": "https"})
        assert status == forwarded_https, body
        second = gunicorn({"KEYWARD_PLAIN_HTTP_BIND": f"unix:{path}"}, tmp_path_factory)
        assert second.returncode != 0
        assert f"Cannot listen on unix:{path}: another server listens there" in second.stderr

    assert not os.path.exists(path)


def gunicorn(environment: dict, tmp_path_factory) -> subprocess.CompletedProcess:
    """gunicorn started as ``make run`` starts it, expected to stop at once."""
    env = {
        **os.environ, "KEYWARD_DATA_DIR": str(tmp_path_factory.mktemp("refused")),
        "PORT": str(_free_port()), **environment,
    }
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("bind", ["0.0.0.0:8080", "192.0.2.1:8080", "localhost:8080"])
def test_gunicorn_refuses_a_plain_listener_off_this_host(tmp_path_factory, bind):
    result = gunicorn({"KEYWARD_PLAIN_HTTP_BIND": bind}, tmp_path_factory)
    assert result.returncode != 0
    assert "KEYWARD_PLAIN_HTTP_BIND: " in result.stderr
    assert bind in result.stderr
