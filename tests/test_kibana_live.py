"""Kibana's documented use of an API key, replayed byte for byte against the real HTTPS server:
create a key, then call Kibana's role API with ``Authorization: ApiKey`` (SPEC §4)."""

import base64
import json

import pytest

pytestmark = pytest.mark.server

# The headers of the example in Kibana's "API Keys" documentation.
KIBANA_EXAMPLE_HEADERS = {"Content-Type": "application/json;charset=UTF-8", "kbn-xsrf": "true"}
KBN_XSRF_MISSING = {
    "statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."
}
ROLE = {
    "metadata": {"version": 1},
    "elasticsearch": {
        "cluster": ["monitor"],
        "indices": [{"names": ["logs-*"], "privileges": ["read"]}],
        "run_as": [],
    },
    "kibana": [],
}


def send(server, method, path, headers, body=None):
    """One request over a fresh HTTPS connection: (status, headers, parsed JSON body or None)."""
    client = server.connection()
    try:
        client.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = client.getresponse()
        raw = response.read()
    finally:
        client.close()
    return response.status, response.headers, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def encoded_key(keyward_server):
    """The `encoded` credential of a key that the `elastic` superuser created over the REST API."""
    basic = base64.b64encode(f"elastic:{keyward_server.password}".encode()).decode()
    status, _, created = send(
        keyward_server, "POST", "/_security/api_key",
        {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}, {"name": "kibana-example"},
    )
    assert status == 200, created
    return created["encoded"]


@pytest.fixture
def api_key_headers(encoded_key):
    return {**KIBANA_EXAMPLE_HEADERS, "Authorization": f"ApiKey {encoded_key}"}


def test_kibana_docs_example_lists_roles_in_kibanas_shape(keyward_server, api_key_headers):
    status, headers, roles = send(keyward_server, "GET", "/api/security/role", api_key_headers)

    assert status == 200, roles
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(roles, list)
    superuser = next(role for role in roles if role["name"] == "superuser")
    assert set(superuser) >= {"name", "metadata", "elasticsearch", "kibana"}
    assert set(superuser["elasticsearch"]) >= {"cluster", "indices", "run_as"}
    assert superuser["elasticsearch"]["cluster"] == ["all"]
    assert isinstance(superuser["kibana"], list)


def test_put_without_kbn_xsrf_is_refused_with_kibanas_message_and_creates_nothing(
    keyward_server, api_key_headers
):
    headers = {name: value for name, value in api_key_headers.items() if name != "kbn-xsrf"}

    status, _, body = send(keyward_server, "PUT", "/api/security/role/kibana-no-xsrf", headers, ROLE)

    assert (status, body) == (400, KBN_XSRF_MISSING)
    assert send(keyward_server, "GET", "/api/security/role/kibana-no-xsrf", api_key_headers)[0] == 404


def test_role_is_put_read_and_deleted_through_kibanas_api_with_kbn_xsrf(keyward_server, api_key_headers):
    path = "/api/security/role/kibana-live"

    put_status, _, _ = send(keyward_server, "PUT", path, api_key_headers, ROLE)
    get_status, _, role = send(keyward_server, "GET", path, api_key_headers)
    delete_status, _, _ = send(keyward_server, "DELETE", path, api_key_headers)
    gone_status, _, gone = send(keyward_server, "GET", path, api_key_headers)

    assert put_status == 204
    assert get_status == 200
    assert role["name"] == "kibana-live"
    assert role["metadata"] == {"version": 1}
    assert role["elasticsearch"] == ROLE["elasticsearch"]
    assert role["kibana"] == []
    assert delete_status == 204
    assert gone_status == 404
    assert set(gone) == {"statusCode", "error", "message"}
