"""Plain HTTP on the HTTPS port: a redirect to https with a word of explanation, never an empty
reply, and nothing a silent or babbling client can hold for long (config/plain_http.py)."""

import json
import socket
import time

import pytest
import urllib3
from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT

from tests.server import start_keyward_server

pytestmark = pytest.mark.server

# The server's keep-alive timeout, which is also how long a plain-HTTP client may take to send its
# request head: one second here, so that the tests of clients that stall wait little.
READ_TIMEOUT = 1
# gunicorn waits DEFAULT_WORKER_DATA_TIMEOUT for a new connection's first bytes in a thread, then
# its keep-alive in its poller, which checks once a second. With more silent clients than threads,
# the last ones wait for a thread first. Which worker accepts a connection is not balanced: one
# worker may take all ten, and with its 4 threads that is three rounds, then the poller, and a
# margin for a machine busy with the rest of the suite.
SILENT_CLIENT_LIMIT = 3 * DEFAULT_WORKER_DATA_TIMEOUT + READ_TIMEOUT + 1 + 4


@pytest.fixture(scope="module")
def keyward_server(tmp_path_factory):
    with start_keyward_server(tmp_path_factory, KEYWARD_KEEPALIVE=str(READ_TIMEOUT)) as server:
        yield server


def connect(server, timeout: float) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=timeout)


def exchange(server, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` in plain text on a new connection; return all the server sends until it closes."""
    with connect(server, timeout) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def parse_response(raw: bytes) -> tuple[str, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("ascii").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


def https_works(server) -> bool:
    client = server.connection(timeout=10)
    try:
        client.request("GET", "/api/schema/?format=json")
        response = client.getresponse()
        return response.status == 200 and "openapi" in json.loads(response.read())
    finally:
        client.close()


def test_a_plain_http_request_is_redirected_to_the_same_url_over_https(keyward_server):
    target = "/_security/api_key?name=cron*&active_only=true"
    raw = exchange(
        keyward_server,
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{keyward_server.port}\r\n"
        "User-Agent: curl/8\r\nAccept: */*\r\n\r\n".encode(),
    )

    status_line, headers, body = parse_response(raw)
    location = f"https://127.0.0.1:{keyward_server.port}{target}"
    assert status_line == "HTTP/1.1 308 Permanent Redirect"
    assert headers["location"] == location
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    assert "HTTPS only" in body.decode() and location in body.decode()


def test_the_redirect_names_the_host_the_client_asked_for(keyward_server):
    host = f"localhost:{keyward_server.port}"
    raw = exchange(keyward_server, f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())

    assert parse_response(raw)[1]["location"] == f"https://localhost:{keyward_server.port}/"


@pytest.mark.parametrize(
    "host",
    ["evil.example@127.0.0.1", "a b", "x\x0bLocation: https://evil.example/", ""],
    ids=["userinfo", "space", "control-character", "empty"],
)
def test_a_host_header_that_is_no_host_name_gives_way_to_the_servers_own_address(keyward_server, host):
    raw = exchange(keyward_server, f"GET /login HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())

    status_line, headers, _ = parse_response(raw)
    assert status_line == "HTTP/1.1 308 Permanent Redirect"
    assert headers["location"] == f"https://127.0.0.1:{keyward_server.port}/login"
    assert raw.count(b"Location:") == 1


def test_a_head_request_gets_the_headers_without_the_body(keyward_server):
    raw = exchange(keyward_server, b"HEAD /login HTTP/1.0\r\n\r\n")

    status_line, headers, body = parse_response(raw)
    assert status_line == "HTTP/1.1 308 Permanent Redirect"
    assert int(headers["content-length"]) > 0
    assert body == b""


def test_an_http_client_following_the_redirect_gets_its_answer_over_https_on_the_same_pool(keyward_server):
    pool = urllib3.PoolManager(ca_certs=str(keyward_server.certfile), retries=urllib3.Retry(redirect=2))
    try:
        plain = f"http://127.0.0.1:{keyward_server.port}/api/schema/?format=json"
        followed = pool.request("GET", plain)
        again = pool.request("GET", f"{keyward_server.base_url}/api/schema/?format=json")
        https_pool = pool.connection_from_url(keyward_server.base_url)
    finally:
        pool.clear()

    assert followed.status == 200 and "openapi" in followed.json()
    assert followed.geturl() == f"{keyward_server.base_url}/api/schema/?format=json"
    assert again.status == 200
    # The https request after the redirect reused the connection that the redirect opened.
    assert https_pool.num_connections == 1
    assert https_pool.num_requests == 2


def test_garbage_is_answered_by_closing_the_connection_and_the_server_goes_on(keyward_server):
    for garbage in (b"\x00\x01\x02garbage\r\n\r\n", b"hello\r\n", b"GET\r\n\r\n", b"\xff" * 100_000):
        try:
            assert exchange(keyward_server, garbage) == b""
        except ConnectionResetError:
            pass  # the server closed with the rest of a long garbage unread: closed all the same

    assert https_works(keyward_server)
    log = (keyward_server.data_dir / "gunicorn.log").read_text()
    assert "Traceback" not in log and "[ERROR]" not in log


def test_a_client_that_stalls_in_its_request_line_is_let_go_after_the_read_timeout(keyward_server):
    with connect(keyward_server, READ_TIMEOUT + 10) as sock:
        sock.sendall(b"GET /log")
        started = time.monotonic()

        assert https_works(keyward_server)
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < READ_TIMEOUT + 3


def test_a_request_head_that_never_ends_is_answered_from_its_request_line_after_the_read_timeout(
    keyward_server,
):
    with connect(keyward_server, READ_TIMEOUT + 10) as sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()

        raw = read_until_closed(sock)

        assert READ_TIMEOUT - 0.2 < time.monotonic() - started < READ_TIMEOUT + 3
    assert parse_response(raw)[1]["location"] == "https://localhost/login"


def test_clients_that_stall_in_the_tls_handshake_are_let_go_and_do_not_stop_https(keyward_server):
    """A client that starts a handshake and goes quiet (a browser's unused speculative connection
    does) holds a thread only for the read timeout, not until it gives up."""
    # The first bytes of a ClientHello record, whose remaining 512 bytes never come.
    stalled = [connect(keyward_server, 30) for _ in range(10)]
    try:
        for sock in stalled:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01")
        started = time.monotonic()
        assert https_works(keyward_server)
        for sock in stalled:
            assert read_until_closed(sock) == b""
        assert time.monotonic() - started < SILENT_CLIENT_LIMIT
    finally:
        for sock in stalled:
            sock.close()


def test_clients_that_finish_the_handshake_and_send_nothing_do_not_stop_https(keyward_server):
    """A browser opens connections ahead of need and may leave them unused: each holds a thread
    only for the read timeout while it sends no request."""
    idle = [
        keyward_server.ssl_context().wrap_socket(connect(keyward_server, 30), server_hostname="127.0.0.1")
        for _ in range(10)
    ]
    try:
        started = time.monotonic()
        assert https_works(keyward_server)
        for sock in idle:
            assert read_until_closed(sock) == b""
        assert time.monotonic() - started < SILENT_CLIENT_LIMIT
    finally:
        for sock in idle:
            sock.close()


def test_clients_that_connect_and_send_nothing_are_closed_and_do_not_stop_https(keyward_server):
    # More silent connections than the server has threads (2 workers of 4).
    silent = [connect(keyward_server, 30) for _ in range(10)]
    try:
        started = time.monotonic()
        for sock in silent:
            assert read_until_closed(sock) == b""
        assert time.monotonic() - started < SILENT_CLIENT_LIMIT
        assert https_works(keyward_server)
    finally:
        for sock in silent:
            sock.close()
