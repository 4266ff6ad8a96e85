"""Keyward behind a real nginx that terminates TLS and proxies to Keyward's plain HTTP listener.

nginx connects to Keyward from 127.0.0.2, the one trusted proxy; its clients connect from 127.0.0.3
and up, and the clients that skip it and talk to the plain listener directly from other loopback
addresses. Through nginx the API key service is on and each client keeps its own address; directly
on the plain listener it stays off, and forged ``X-Forwarded-*`` headers change nothing.
"""

import base64
import http.client
import json
import re
import ssl
from urllib.parse import urlencode

import pytest

from apikeys.credentials import encode_credential
from tests.server import _free_port, missing_service, start_keyward_server
from tests.test_nginx_forward_auth import NGINX, nginx_serving

pytestmark = pytest.mark.server

PROXY = "127.0.0.2"
FAILURE_LIMIT = 3
AUTHENTICATE = "/_security/_authenticate"
BAD_KEY = "ApiKey " + encode_credential("A" * 20, "B" * 22)


@pytest.fixture(scope="module", autouse=True)
def nginx_installed():
    """Checked before anything starts: skipped where nginx is missing, a failure in CI."""
    if not NGINX.exists():
        missing_service(f"{NGINX} is missing (apt-get install nginx)")


@pytest.fixture(scope="module")
def keyward(tmp_path_factory):
    plain_port = _free_port()
    with start_keyward_server(
        tmp_path_factory,
        KEYWARD_PLAIN_HTTP_BIND=f"127.0.0.1:{plain_port}",
        KEYWARD_TRUSTED_PROXIES=PROXY,
        KEYWARD_AUTH_FAILURE_LIMIT_PER_IP=str(FAILURE_LIMIT),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, keyward):
    """nginx terminating TLS with Keyward's own certificate, as the current user; yields its port."""
    directory = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    with nginx_serving(
        directory,
        port,
        f"""    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {keyward.certfile};
        ssl_certificate_key {keyward.data_dir / 'tls' / 'key.pem'};
        location / {{
            proxy_pass http://127.0.0.1:{plain_port(keyward)};
            proxy_bind {PROXY};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
""",
    ):
        yield port


def plain_port(keyward) -> int:
    return int(keyward.env["KEYWARD_PLAIN_HTTP_BIND"].rpartition(":")[2])


def through_nginx(nginx, keyward, source, headers, method="GET", path=AUTHENTICATE, body=None):
    """One request from ``source`` through nginx: (status, lower-cased headers, body)."""
    context = ssl.create_default_context(cafile=keyward.certfile)
    client = http.client.HTTPSConnection(
        "127.0.0.1", nginx, context=context, timeout=30, source_address=(source, 0)
    )
    return _exchange(client, method, path, headers, body)


def direct(keyward, source, headers, path=AUTHENTICATE):
    """One GET from ``source`` straight to the plain listener."""
    client = http.client.HTTPConnection(
        "127.0.0.1", plain_port(keyward), timeout=30, source_address=(source, 0)
    )
    return _exchange(client, "GET", path, headers, None)


def _exchange(client, method, path, headers, body):
    try:
        client.request(method, path, body=body, headers=headers)
        response = client.getresponse()
        joined = {}
        for name, value in response.getheaders():
            name = name.lower()
            joined[name] = f"{joined[name]}\n{value}" if name in joined else value
        return response.status, joined, response.read()
    finally:
        client.close()


def error_type(body: bytes) -> str:
    return json.loads(body)["error"]["type"]


def throttled_addresses(keyward, bucket: str) -> list[str]:
    """The client addresses of the audit trail's throttling rows for one kind of bucket."""
    rows = keyward.query(
        "SELECT detail FROM accounts_auditevent WHERE action = %s", "authentication_throttled"
    )
    details = [json.loads(detail) if isinstance(detail, str) else detail for (detail,) in rows]
    return sorted(detail["address"] for detail in details if detail["bucket"] == bucket)


def wrong_password(username: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:not-the-password".encode()).decode()


@pytest.fixture(scope="module")
def key(keyward):
    return {"Authorization": keyward.elastic_api_key("through-nginx")}


def test_through_nginx_an_api_key_authenticates(nginx, keyward, key):

    status, _, body = through_nginx(nginx, keyward, "127.0.0.3", key)
    assert status == 200, body
    assert json.loads(body)["username"] == "elastic"
    # The ordinary path too, not only the hot path.
    listed = "/_security/api_key?name=through-nginx"
    status, _, body = through_nginx(nginx, keyward, "127.0.0.3", key, path=listed)
    assert status == 200, body
    assert [found["name"] for found in json.loads(body)["api_keys"]] == ["through-nginx"]


@pytest.mark.parametrize(
    "forged",
    [{}, {"X-Forwarded-Proto": "https"}, {"X-Forwarded-Proto": "https", "X-Forwarded-For": PROXY}],
    ids=["plain", "forged-proto", "forged-proto-and-proxy"],
)
def test_directly_on_the_plain_listener_the_api_key_service_stays_off(nginx, keyward, key, forged):
    status, _, body = direct(keyward, "127.0.0.1", {**key, **forged})

    assert status == 400, body
    assert error_type(body) == "feature_not_enabled_exception"


def test_throttling_counts_each_client_behind_nginx_apart(nginx, keyward):
    for _ in range(FAILURE_LIMIT):
        status, _, body = through_nginx(nginx, keyward, "127.0.0.3", {"Authorization": BAD_KEY})
        assert status == 401, body
    status, headers, _ = through_nginx(nginx, keyward, "127.0.0.3", {"Authorization": BAD_KEY})
    assert status == 429
    assert "retry-after" in headers

    status, _, body = through_nginx(nginx, keyward, "127.0.0.4", {"Authorization": BAD_KEY})
    assert status == 401, body
    assert throttled_addresses(keyward, "api_key") == ["127.0.0.3"]


def test_a_client_behind_nginx_cannot_pass_for_another(nginx, keyward):
    claims = {"Authorization": BAD_KEY, "X-Forwarded-For": "127.0.0.6"}
    for _ in range(FAILURE_LIMIT):
        assert through_nginx(nginx, keyward, "127.0.0.5", claims)[0] == 401
    assert through_nginx(nginx, keyward, "127.0.0.5", claims)[0] == 429

    status, _, body = through_nginx(nginx, keyward, "127.0.0.6", {"Authorization": BAD_KEY})
    assert status == 401, body
    assert "127.0.0.5" in throttled_addresses(keyward, "api_key")
    assert "127.0.0.6" not in throttled_addresses(keyward, "api_key")


def test_a_direct_client_forging_x_forwarded_for_is_counted_by_its_own_address(nginx, keyward):
    """Passwords are accepted over plain HTTP, API keys are not: so it guesses passwords."""
    for attempt in range(FAILURE_LIMIT):
        forged = {
            "Authorization": wrong_password(f"guess-{attempt}"),
            "X-Forwarded-For": f"127.0.1.{attempt}",
            "X-Forwarded-Proto": "https",
        }
        status, _, body = direct(keyward, "127.0.0.7", forged)
        assert status == 401, body
    forged = {"Authorization": wrong_password("guess-again"), "X-Forwarded-For": "127.0.0.8"}
    status, _, body = direct(keyward, "127.0.0.7", forged)
    assert status == 429, body

    honest = {"Authorization": wrong_password("guess-again")}
    status, _, body = through_nginx(nginx, keyward, "127.0.0.8", honest)
    assert status == 401, body
    assert throttled_addresses(keyward, "password") == ["127.0.0.7"]


def test_the_login_form_works_through_nginx(nginx, keyward):
    """Django's CSRF check compares the browser's Origin with the scheme it believes the request
    came by: https, on nginx's word."""
    origin = f"https://127.0.0.1:{nginx}"
    status, headers, page = through_nginx(nginx, keyward, "127.0.0.9", {}, path="/login")
    assert status == 200
    assert "strict-transport-security" in headers
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = urlencode({"username": "elastic", "password": keyward.password, "csrfmiddlewaretoken": token})
    headers = {
        "Cookie": f"csrftoken={cookie}", "Origin": origin, "Referer": f"{origin}/login",
        "Content-Type": "application/x-www-form-urlencoded",
    }

    status, headers, body = through_nginx(nginx, keyward, "127.0.0.9", headers, "POST", "/login", form)

    assert status == 302, body
    assert "sessionid=" in headers["set-cookie"]
