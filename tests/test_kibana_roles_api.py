"""Kibana's role management API (SPEC §4): `/api/security/role` in Kibana's shapes, its
`kbn-xsrf` rule, 204 answers and `{statusCode, error, message}` errors."""

import base64
import json

import pytest

from accounts.models import Role
from apikeys.credentials import encode_credential

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
KBN_XSRF_MISSING = {
    "statusCode": 400,
    "error": "Bad Request",
    "message": "Request must contain a kbn-xsrf header.",
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


@pytest.fixture
def elastic(make_user):
    return make_user("elastic", roles=["superuser"])


@pytest.fixture
def key_for(elastic, make_api_key):
    """``Authorization`` of a key of the superuser limited to ``cluster`` (or unlimited)."""
    serial = iter(range(1000))

    def make(*cluster):
        descriptors = {"limit": {"cluster": list(cluster)}} if cluster else {}
        key = make_api_key(elastic, f"key-{next(serial)}", role_descriptors=descriptors)
        return "ApiKey " + encode_credential(key.id, key.secret)

    return make


def call(client, method, path, body=None, authorization=None, xsrf=True, **headers):
    if authorization:
        headers["Authorization"] = authorization
    if xsrf:
        headers["kbn-xsrf"] = "true"
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return client.generic(
        method, path, data=data, content_type="application/json", secure=True, headers=headers
    )


@pytest.fixture
def kibana(client, key_for):
    """Requests as Kibana's API key example sends them: an ApiKey header and ``kbn-xsrf: true``."""
    authorization = key_for()

    def request(method, path, body=None, **kwargs):
        return call(client, method, path, body, authorization=authorization, **kwargs)

    return request


def is_kibana_error(response, status) -> bool:
    body = response.json()
    return (
        set(body) == {"statusCode", "error", "message"}
        and body["statusCode"] == status == response.status_code
    )


# Shapes


def test_get_roles_lists_every_role_in_kibanas_shape_sorted_by_name(kibana, make_role):
    make_role("zeta", cluster=["monitor"])
    make_role("alpha", indices=[{"names": ["logs-*"], "privileges": ["read"]}])

    response = kibana("GET", "/api/security/role", xsrf=False)

    assert response.status_code == 200
    roles = response.json()
    assert [role["name"] for role in roles] == ["alpha", "superuser", "zeta"]
    assert roles[0] == {
        "name": "alpha",
        "metadata": {},
        "transient_metadata": {"enabled": True},
        "elasticsearch": {
            "cluster": [],
            "indices": [{"names": ["logs-*"], "privileges": ["read"]}],
            "run_as": [],
        },
        "kibana": [],
        "_transform_error": [],
        "_unrecognized_applications": [],
    }
    assert roles[1]["metadata"] == {"_reserved": True}
    assert roles[1]["elasticsearch"]["cluster"] == ["all"]


def test_a_role_put_through_kibana_reads_back_as_it_was_put(kibana):
    put = kibana("PUT", "/api/security/role/my_kibana_role", ROLE)
    got = kibana("GET", "/api/security/role/my_kibana_role")

    assert put.status_code == 204 and put.content == b""
    assert got.status_code == 200
    role = got.json()
    assert role["name"] == "my_kibana_role"
    assert (role["metadata"], role["elasticsearch"], role["kibana"]) == (
        ROLE["metadata"],
        ROLE["elasticsearch"],
        [],
    )
    stored = Role.objects.get(name="my_kibana_role")
    assert stored.indices[0]["allow_restricted_indices"] is False


def test_put_replaces_an_existing_role_unless_create_only(kibana):
    kibana("PUT", "/api/security/role/viewer", ROLE)

    replaced = kibana(
        "PUT", "/api/security/role/viewer", {"elasticsearch": {"cluster": ["manage_own_api_key"]}}
    )
    refused = kibana("PUT", "/api/security/role/viewer?createOnly=true", ROLE)

    assert replaced.status_code == 204
    assert is_kibana_error(refused, 409)
    assert Role.objects.get(name="viewer").cluster == ["manage_own_api_key"]


def test_delete_answers_204_then_404(kibana, make_role):
    make_role("viewer")

    deleted = kibana("DELETE", "/api/security/role/viewer")
    again = kibana("DELETE", "/api/security/role/viewer")

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert is_kibana_error(again, 404)
    assert not Role.objects.filter(name="viewer").exists()


def test_unknown_role_is_a_kibana_404(kibana):
    response = kibana("GET", "/api/security/role/nothing")

    assert is_kibana_error(response, 404)
    assert response.json()["error"] == "Not Found"


def test_built_in_superuser_cannot_be_deleted_or_replaced(kibana):
    deleted = kibana("DELETE", "/api/security/role/superuser")
    replaced = kibana("PUT", "/api/security/role/superuser", ROLE)

    assert is_kibana_error(deleted, 400) and "reserved" in deleted.json()["message"]
    assert is_kibana_error(replaced, 400)
    assert Role.objects.get(name="superuser").cluster == ["all"]


# kbn-xsrf


@pytest.mark.parametrize(("method", "body"), [("PUT", ROLE), ("DELETE", None)])
def test_writes_without_kbn_xsrf_get_kibanas_400_and_change_nothing(kibana, make_role, method, body):
    make_role("existing", cluster=["monitor"])

    response = kibana(method, "/api/security/role/existing", body, xsrf=False)

    assert response.status_code == 400
    assert response.json() == KBN_XSRF_MISSING
    assert Role.objects.get(name="existing").cluster == ["monitor"]


def test_kbn_version_stands_in_for_kbn_xsrf_as_in_kibana(kibana):
    response = kibana("PUT", "/api/security/role/versioned", ROLE, xsrf=False, **{"kbn-version": "8.19.0"})

    assert response.status_code == 204


def test_any_kbn_xsrf_value_will_do(client, key_for):
    response = call(
        client,
        "PUT",
        "/api/security/role/anything",
        ROLE,
        authorization=key_for(),
        xsrf=False,
        **{"kbn-xsrf": "reporting"},
    )

    assert response.status_code == 204


def test_authentication_comes_before_the_xsrf_check_as_in_kibana(client):
    response = call(client, "PUT", "/api/security/role/anonymous", ROLE, xsrf=False)

    assert is_kibana_error(response, 401)
    assert not Role.objects.filter(name="anonymous").exists()


# Authentication: ApiKey (Kibana's documented example), Basic and the session


def test_basic_and_session_authentication_work_too(client, make_user, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    admin = make_user("admin", "manage_security", password=PASSWORD)
    basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

    with_basic = call(client, "PUT", "/api/security/role/by_basic", ROLE, authorization=basic)
    client.force_login(admin)
    with_session = call(client, "GET", "/api/security/role/by_basic")

    assert with_basic.status_code == 204
    assert with_session.status_code == 200


# Authorization (SPEC §2)

CALLERS = {
    "superuser": (),
    "manage_security": ("manage_security",),
    "read_security": ("read_security",),
    "manage_api_key": ("manage_api_key",),
    "manage_own_api_key": ("manage_own_api_key",),
    "no privilege": ("monitor",),
}
READERS = {"superuser", "manage_security", "read_security"}
WRITERS = {"superuser", "manage_security"}
ENDPOINTS = [
    ("GET", "/api/security/role", None, READERS, 200, lambda: True),
    ("GET", "/api/security/role/target", None, READERS, 200, lambda: True),
    (
        "PUT",
        "/api/security/role/newcomer",
        ROLE,
        WRITERS,
        204,
        lambda: Role.objects.filter(name="newcomer").exists(),
    ),
    (
        "DELETE",
        "/api/security/role/target",
        None,
        WRITERS,
        204,
        lambda: not Role.objects.filter(name="target").exists(),
    ),
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "status", "took_effect"),
    ENDPOINTS,
    ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS],
)
def test_only_read_security_reads_and_only_manage_security_writes(
    client, make_role, key_for, caller, method, path, body, allowed, status, took_effect
):
    make_role("target", cluster=["monitor"])

    response = call(client, method, path, body, authorization=key_for(*CALLERS[caller]))

    if caller in allowed:
        assert response.status_code == status, response.content
        assert took_effect()
    else:
        assert is_kibana_error(response, 403)
        assert response.json()["error"] == "Forbidden"
        assert "cluster:admin/xpack/security/role/" in response.json()["message"]
        assert method == "GET" or not took_effect()


# Bad input (SPEC §7): Kibana's 400, and nothing changes.


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("", "[request body]: expected a plain object value"),
        ("[1]", "[request body]: expected a plain object value, but found [Array] instead."),
        ({"kibana": []}, "[request body.elasticsearch]: expected a plain object value, but found [null]"),
        ({**ROLE, "colour": "red"}, "[request body.colour]: definition for this key is missing"),
        (
            {"elasticsearch": {"cluster": [], "clusters": []}},
            "[request body.elasticsearch.clusters]: definition",
        ),
        ({"elasticsearch": {}, "kibana": {}}, "[request body.kibana]: expected value of type [array]"),
        (
            {"elasticsearch": {}, "kibana": [{"base": ["write"]}]},
            "[request body.kibana.0.base.0]: unknown base privilege [write], must be one of [all, read]",
        ),
        (
            {"elasticsearch": {}, "kibana": [{"base": ["read"], "feature": {"discover": ["all"]}}]},
            "[request body.kibana.0]: base and feature privileges cannot be granted in the same entry",
        ),
        ({"elasticsearch": {}, "kibana": [{"spaces": ["*"]}]}, "at least one base or feature privilege"),
        ({"elasticsearch": {}, "kibana": [{"base": ["all"], "spaces": ["My Space"]}]}, "kibana.0.spaces.0"),
        ({"elasticsearch": {}, "kibana": [{"base": ["all"], "colour": 1}]}, "[request body.kibana.0.colour]"),
        ({"elasticsearch": {}, "kibana": [{"feature": {"dis cover": ["all"]}}]}, "feature id [dis cover]"),
        ({"elasticsearch": {"cluster": ["manage_apikey"]}}, "unknown cluster privilege [manage_apikey]"),
        ({"elasticsearch": {}, "metadata": {"_private": 1}}, "[_private]"),
        ({"elasticsearch": {}, "description": "x" * 1001}, "Role description must be less than 1000"),
    ],
)
def test_bad_bodies_get_kibanas_400_and_create_nothing(kibana, body, message):
    response = kibana("PUT", "/api/security/role/newcomer", body)

    assert is_kibana_error(response, 400), response.content
    assert message in response.json()["message"]
    assert not Role.objects.filter(name="newcomer").exists()


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        (
            "GET",
            "/api/security/role?colour=red",
            "[request query.colour]: definition for this key is missing",
        ),
        ("PUT", "/api/security/role/newcomer?createOnly=perhaps", "[request query.createOnly]"),
        ("PUT", "/api/security/role/_newcomer", "must not start with [_]"),
    ],
)
def test_bad_query_parameters_and_names_get_kibanas_400(kibana, method, path, message):
    response = kibana(method, path, ROLE if method == "PUT" else None)

    assert is_kibana_error(response, 400)
    assert message in response.json()["message"]
    assert not Role.objects.exclude(name="superuser").exists()


# Kibana privileges: the kibana-.kibana application privileges underneath


KIBANA_PRIVILEGES = [
    {"base": ["read"], "feature": {}, "spaces": ["*"]},
    {"base": [], "feature": {"dashboard": ["all"], "discover": ["read"]}, "spaces": ["marketing", "sales"]},
    {"base": ["all"], "feature": {}, "spaces": ["default"]},
]
STORED_AS = [
    {"application": "kibana-.kibana", "privileges": ["read"], "resources": ["*"]},
    {
        "application": "kibana-.kibana",
        "privileges": ["feature_dashboard.all", "feature_discover.read"],
        "resources": ["space:marketing", "space:sales"],
    },
    {"application": "kibana-.kibana", "privileges": ["space_all"], "resources": ["space:default"]},
]
INVOICES = {"application": "invoices", "privileges": ["approve"], "resources": ["*"]}


def test_kibana_privileges_are_stored_as_kibanas_application_privileges_and_read_back(kibana):
    put = kibana("PUT", "/api/security/role/analyst", {**ROLE, "kibana": KIBANA_PRIVILEGES})
    assert put.status_code == 204, put.content

    assert Role.objects.get(name="analyst").applications == STORED_AS
    assert kibana("GET", "/api/security/role/analyst").json()["kibana"] == KIBANA_PRIVILEGES
    es_view = kibana("GET", "/_security/role/analyst", xsrf=False).json()["analyst"]
    assert es_view["applications"] == STORED_AS


def test_spaces_default_to_every_space(kibana):
    kibana("PUT", "/api/security/role/viewer", {**ROLE, "kibana": [{"base": ["read"]}]})

    assert Role.objects.get(name="viewer").applications == [STORED_AS[0]]


def test_a_kibana_put_keeps_the_roles_privileges_of_other_applications(kibana):
    kibana("PUT", "/_security/role/analyst", {"applications": [INVOICES, STORED_AS[0]]})

    kibana("PUT", "/api/security/role/analyst", {**ROLE, "kibana": [KIBANA_PRIVILEGES[2]]})

    assert Role.objects.get(name="analyst").applications == [STORED_AS[2], INVOICES]


def test_other_applications_are_listed_as_unrecognized_and_the_superusers_wildcard_is_not(kibana):
    kibana("PUT", "/_security/role/analyst", {"applications": [INVOICES, STORED_AS[0]]})

    role = kibana("GET", "/api/security/role/analyst").json()
    superuser = kibana("GET", "/api/security/role/superuser").json()

    assert (role["kibana"], role["_unrecognized_applications"]) == ([KIBANA_PRIVILEGES[0]], ["invoices"])
    assert (superuser["kibana"], superuser["_unrecognized_applications"]) == ([], [])


def test_kibana_privileges_kibana_cannot_show_are_a_transform_error(kibana):
    odd = {"application": "kibana-.kibana", "privileges": ["read"], "resources": ["*", "space:default"]}
    kibana("PUT", "/_security/role/odd", {"applications": [odd]})

    role = kibana("GET", "/api/security/role/odd").json()

    assert (role["kibana"], role["_transform_error"]) == ([], ["kibana"])
