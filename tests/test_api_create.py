"""The create-key endpoint and the TLS gate at the REST API (SPEC §3, §4)."""

import base64
import json

import pytest

from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
COMPATIBLE = "application/vnd.elasticsearch+json; compatible-with=8"


@pytest.fixture
def owner(make_user):
    return make_user("cron", "manage_own_api_key", password=PASSWORD)


def basic(username="cron", password=PASSWORD):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post(client, body, secure=True, authorization=None, content_type="application/json"):
    return client.post(
        "/_security/api_key",
        data=json.dumps(body) if not isinstance(body, str) else body,
        content_type=content_type,
        secure=secure,
        HTTP_AUTHORIZATION=authorization or basic(),
    )


def test_create_over_https_returns_the_credential_once_with_product_header(client, owner):
    response = post(client, {"name": "cron-job", "expiration": "1d", "metadata": {"team": "ops"}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "name", "api_key", "encoded", "expiration"}
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert response["Cache-Control"] == "no-store"
    assert base64.b64decode(body["encoded"]).decode() == f"{body['id']}:{body['api_key']}"
    assert ApiKey.objects.get(pk=body["id"]).metadata == {"team": "ops"}


def test_key_authenticates_a_later_request(client, owner):
    body = post(client, {"name": "cron-job"}).json()
    response = client.get(
        "/_security/_authenticate", secure=True, HTTP_AUTHORIZATION="ApiKey " + body["encoded"]
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["api_key"] == {"id": body["id"], "name": "cron-job"}
    assert answer["authentication_type"] == "api_key"
    # Elasticsearch's answer for a key: its owner without roles, the key service as both realms.
    assert answer["username"] == owner.username
    assert answer["roles"] == []
    assert (
        answer["authentication_realm"]
        == answer["lookup_realm"]
        == {"name": "_es_api_key", "type": "_es_api_key"}
    )


def test_elasticsearch_compatible_media_type_is_accepted(client, owner):
    response = client.post(
        "/_security/api_key",
        data=json.dumps({"name": "compat"}),
        content_type=COMPATIBLE,
        secure=True,
        HTTP_AUTHORIZATION=basic(),
        HTTP_ACCEPT=COMPATIBLE,
    )
    assert response.status_code == 200
    assert json.loads(response.content)["name"] == "compat"


def test_plain_http_answers_feature_not_enabled_and_creates_nothing(client, owner):
    response = post(client, {"name": "clear-text"}, secure=False)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "feature_not_enabled_exception"
    assert not ApiKey.objects.exists()


def test_api_key_header_over_plain_http_is_refused_not_ignored(client, owner):
    body = post(client, {"name": "cron-job"}).json()
    response = client.get(
        "/_security/_authenticate", secure=False, HTTP_AUTHORIZATION="ApiKey " + body["encoded"]
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "feature_not_enabled_exception"


def test_gate_can_be_switched_off_for_development(client, owner, settings):
    settings.API_KEY_REQUIRE_HTTPS = False
    assert post(client, {"name": "dev-only"}, secure=False).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ("{not json", 400, "parse_exception"),
        ('{"name": "x", "metadata": {"a": "nul\\u0000"}}', 400, "parse_exception"),
        ('{"name": "x", "metadata": {"\\u0000": 1}}', 400, "parse_exception"),
        ('{"name": "x", "metadata": {"a": "\\ud800"}}', 400, "parse_exception"),
        ('{"name": "x", "name": "y"}', 400, "parse_exception"),
        ('{"name": "x", "metadata": {"a": NaN}}', 400, "parse_exception"),
        ('{"name": "x", "metadata": ' + "[" * 70 + "]" * 70 + "}", 400, "parse_exception"),
        ([1, 2], 400, "illegal_argument_exception"),
        ({"name": "x", "colour": "red"}, 400, "illegal_argument_exception"),
        ({"name": "_x"}, 400, "illegal_argument_exception"),
        ({"name": "x", "expiration": "0d"}, 400, "illegal_argument_exception"),
        ({"name": "x", "expiration": 5}, 400, "illegal_argument_exception"),
        (
            {"name": "x", "role_descriptors": {"r": {"cluster": ["manage_apikey"]}}},
            400,
            "illegal_argument_exception",
        ),
    ],
)
def test_bad_bodies_get_an_elasticsearch_error_and_create_nothing(client, owner, body, status, error_type):
    response = post(client, body)
    assert response.status_code == status
    error = response.json()
    assert error["status"] == status and error["error"]["type"] == error_type
    assert error["error"]["root_cause"][0]["type"] == error_type
    assert not ApiKey.objects.exists()


def test_duplicate_active_name_is_a_conflict(client, owner):
    post(client, {"name": "dup"})
    response = post(client, {"name": "dup"})
    assert response.status_code == 409
    assert "dup" in response.json()["error"]["reason"]


@pytest.mark.parametrize(
    "authorization",
    [basic(password="wrong"), basic(username="nobody"), "Basic !!!", "ApiKey !!!", "ApiKey " + "A" * 40],
)
def test_bad_credentials_get_401_with_www_authenticate(client, owner, authorization):
    response = post(client, {"name": "x"}, authorization=authorization)
    assert response.status_code == 401
    assert "ApiKey" in response["WWW-Authenticate"]
    assert response.json()["error"]["type"] == "security_exception"


def test_missing_credentials_get_401(client, owner):
    response = client.post("/_security/api_key", data="{}", content_type="application/json", secure=True)
    assert response.status_code == 401
    assert response.json()["error"]["reason"].startswith("missing authentication credentials")


def test_user_without_privilege_gets_403(client, make_user):
    make_user("watcher", "monitor", password=PASSWORD)
    response = post(client, {"name": "x"}, authorization=basic("watcher"))
    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_body_larger_than_the_limit_is_refused_with_413_and_creates_nothing(client, owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(client, {"name": "big", "metadata": {"padding": "x" * 2000}})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "content_too_long_exception"
    assert not ApiKey.objects.exists()
