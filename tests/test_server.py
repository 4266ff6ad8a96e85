"""The deployed stack: gunicorn speaking TLS with its own certificate, keep-alive, several workers
sharing one database, and the TLS gate of SPEC §3 as the browser sees it."""

import base64
import http.client
import json
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

BURST_REQUESTS = 200
BURST_THREADS = 16
BURST_SECONDS = 60
HTTPS_REQUIRED = re.compile(r"""id=["']?https-required\b""")


@pytest.mark.server
def test_home_page_is_served_over_https_with_an_ecdsa_certificate_and_security_headers(keyward_server):
    client = keyward_server.connection()
    try:
        client.request("GET", "/")
        response = client.getresponse()
        response.read()
        certificate = x509.load_der_x509_certificate(client.sock.getpeercert(binary_form=True))
    finally:
        client.close()

    assert response.status == 200
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.public_key().curve.name == "secp256r1"
    assert response.getheader("Content-Security-Policy")
    assert response.getheader("Strict-Transport-Security", "").startswith("max-age=")
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_home_page_over_plain_http_says_api_keys_require_https_and_offers_no_controls(client, users):
    client.force_login(users["superuser"])

    response = client.get("/")

    page = response.content.decode()
    assert response.status_code in (200, 403)
    assert HTTPS_REQUIRED.search(page)
    assert "HTTPS" in page
    assert "create api key" not in page.lower()
    assert "invalidate" not in page.lower()


def test_home_page_over_https_does_not_say_https_is_required(client, users):
    client.force_login(users["superuser"])

    response = client.get("/", secure=True)

    assert response.status_code < 400
    assert not HTTPS_REQUIRED.search(response.content.decode())


@pytest.mark.server
def test_two_requests_a_few_seconds_apart_share_one_keep_alive_connection(keyward_server):
    client = keyward_server.connection()
    try:
        client.request("GET", "/")
        first = client.getresponse()
        first.read()
        assert not first.will_close, "the server asked to close the connection after one request"
        sock = client.sock
        time.sleep(3)  # longer than gunicorn's default keep-alive of 2 s
        try:
            client.request("GET", "/")
            second = client.getresponse()
            second.read()
        except (ConnectionError, http.client.RemoteDisconnected) as error:
            pytest.fail(f"the server closed the idle connection: {error!r}")
        # http.client opens a new connection by itself when the old one was closed.
        assert client.sock is sock
    finally:
        client.close()

    assert (first.status, second.status) == (200, 200)


@pytest.mark.server
def test_concurrent_key_creation_under_two_workers_never_reports_database_is_locked(keyward_server):
    # Programs authenticate with an API key: one cheap hash per request, not a password hash. A key
    # created with a key asks for no privileges (SPEC §2), which is all this burst needs.
    basic = base64.b64encode(f"elastic:{keyward_server.password}".encode()).decode()
    client = keyward_server.connection()
    client.request(
        "POST", "/_security/api_key", body=json.dumps({"name": "burst-runner"}),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
    )
    runner = json.loads(client.getresponse().read())
    client.close()
    headers = {"Authorization": f"ApiKey {runner['encoded']}", "Content-Type": "application/json"}
    names = [f"burst-{n}" for n in range(BURST_REQUESTS)]
    deadline = time.monotonic() + BURST_SECONDS

    def create_keys(batch):
        """One keep-alive connection per thread, as a pooling client would use."""
        results = []
        client = keyward_server.connection(timeout=BURST_SECONDS)
        try:
            for name in batch:
                if time.monotonic() > deadline:
                    results.append((name, None, f"not sent: the burst took over {BURST_SECONDS} s"))
                    continue
                body = json.dumps({"name": name, "role_descriptors": {"none": {}}})
                client.request("POST", "/_security/api_key", body=body, headers=headers)
                response = client.getresponse()
                results.append((name, response.status, response.read().decode(errors="replace")))
        finally:
            client.close()
        return results

    with ThreadPoolExecutor(BURST_THREADS) as pool:
        batches = pool.map(create_keys, [names[i::BURST_THREADS] for i in range(BURST_THREADS)])
        results = [result for batch in batches for result in batch]

    failures = [f"{name}: {status} {body[:300]}" for name, status, body in results if status != 200]
    assert not failures, f"{len(failures)} of {BURST_REQUESTS} requests failed:\n" + "\n".join(failures[:10])
    assert not [body for _, _, body in results if "database is locked" in body]
    created = [json.loads(body) for _, _, body in results]
    assert all({"id", "api_key", "encoded"} <= key.keys() for key in created)
    assert len({key["id"] for key in created}) == BURST_REQUESTS
    assert _count_api_keys(keyward_server, "burst-%") == BURST_REQUESTS + 1


@pytest.mark.server
def test_server_sqlite_database_runs_in_wal_mode(keyward_server):
    if keyward_server.sqlite_path is None:
        pytest.skip("the suite runs on PostgreSQL: the server has no SQLite file")
    with closing(sqlite3.connect(f"file:{keyward_server.sqlite_path}?mode=ro", uri=True)) as database:
        assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _count_api_keys(server, name_pattern):
    """Count rows straight from the server's database: what was committed, not what was answered."""
    query = "SELECT COUNT(*) FROM apikeys_apikey WHERE name LIKE {}"
    if server.sqlite_path is not None:
        with closing(sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True)) as database:
            return database.execute(query.format("?"), (name_pattern,)).fetchone()[0]
    with psycopg.connect(server.database_url) as database:
        return database.execute(query.format("%s"), (name_pattern,)).fetchone()[0]
