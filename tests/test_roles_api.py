"""Elasticsearch's roles API (SPEC §1, §4, §7): roles read with `read_security`, written with
`manage_security`, validated by the privilege engine, in Elasticsearch's shapes."""

import json

import pytest

from accounts.models import Role
from apikeys.credentials import encode_credential

pytestmark = pytest.mark.django_db

ADMIN_ROLE = {"security_admin": {"cluster": ["manage_security"]}}
LOGS_READER = {
    "cluster": ["monitor", "manage_own_api_key"],
    "indices": [{"names": ["logs-*"], "privileges": ["read", "view_index_metadata"]}],
    "run_as": ["ci"],
    "metadata": {"version": 1},
}


def call(client, method, path, body=None, key=None):
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    headers = {"Authorization": "ApiKey " + encode_credential(key.id, key.secret)} if key else {}
    return client.generic(
        method, path, data=data, content_type="application/json", secure=True, headers=headers
    )


@pytest.fixture
def elastic(make_user):
    return make_user("elastic", roles=["superuser"])


@pytest.fixture
def key_for(elastic, make_api_key):
    """A key of the superuser limited to ``cluster`` (or unlimited): the key ∩ owner intersection."""
    serial = iter(range(1000))

    def make(*cluster):
        descriptors = {"limit": {"cluster": list(cluster)}} if cluster else {}
        return make_api_key(elastic, f"key-{next(serial)}", role_descriptors=descriptors)

    return make


@pytest.fixture
def as_admin(client, key_for):
    key = key_for("manage_security")

    def request(method, path, body=None):
        return call(client, method, path, body, key=key)

    return request


# Create, replace, read, delete


def test_put_role_creates_it_then_replaces_it(as_admin):
    created = as_admin("PUT", "/_security/role/logs_reader", LOGS_READER)
    replaced = as_admin("POST", "/_security/role/logs_reader", {"cluster": ["monitor"]})

    assert (created.status_code, created.json()) == (200, {"role": {"created": True}})
    assert (replaced.status_code, replaced.json()) == (200, {"role": {"created": False}})
    role = Role.objects.get(name="logs_reader")
    assert (role.cluster, role.indices, role.run_as, role.metadata) == (["monitor"], [], [], {})


def test_get_role_answers_elasticsearchs_shape(as_admin):
    as_admin("PUT", "/_security/role/logs_reader", LOGS_READER)

    response = as_admin("GET", "/_security/role/logs_reader")

    assert response.status_code == 200
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert response.json() == {
        "logs_reader": {
            "cluster": ["monitor", "manage_own_api_key"],
            "indices": [
                {
                    "names": ["logs-*"],
                    "privileges": ["read", "view_index_metadata"],
                    "allow_restricted_indices": False,
                }
            ],
            "applications": [],
            "run_as": ["ci"],
            "metadata": {"version": 1},
            "transient_metadata": {"enabled": True},
        }
    }


def test_field_and_document_level_security_are_kept(as_admin):
    entry = {
        "names": "secrets-*",
        "privileges": ["read"],
        "allow_restricted_indices": True,
        "field_security": {"grant": ["title", "body"]},
        "query": {"term": {"public": True}},
    }

    as_admin("PUT", "/_security/role/partial", {"indices": [entry]})

    [stored] = as_admin("GET", "/_security/role/partial").json()["partial"]["indices"]
    assert stored == {**entry, "names": ["secrets-*"]}


def test_get_all_roles_includes_the_built_in_superuser_marked_reserved(as_admin, make_role):
    make_role("viewer", cluster=["monitor"])

    roles = as_admin("GET", "/_security/role").json()

    assert set(roles) == {"superuser", "viewer"}
    assert roles["superuser"]["cluster"] == ["all"]
    assert roles["superuser"]["metadata"] == {"_reserved": True}
    assert roles["viewer"]["indices"] == [] and roles["viewer"]["metadata"] == {}


def test_get_roles_by_a_comma_separated_list_skips_unknown_names(as_admin, make_role):
    make_role("viewer")

    response = as_admin("GET", "/_security/role/viewer,superuser,nothing")

    assert response.status_code == 200
    assert set(response.json()) == {"viewer", "superuser"}


def test_get_unknown_role_is_404_with_an_empty_object(as_admin):
    response = as_admin("GET", "/_security/role/nothing")

    assert (response.status_code, response.json()) == (404, {})


def test_delete_role_answers_found_and_users_lose_it(as_admin, make_role, make_user):
    make_role("viewer", cluster=["monitor"])
    holder = make_user("holder", roles=["viewer"])

    deleted = as_admin("DELETE", "/_security/role/viewer")
    again = as_admin("DELETE", "/_security/role/viewer")

    assert (deleted.status_code, deleted.json()) == (200, {"found": True})
    assert (again.status_code, again.json()) == (404, {"found": False})
    assert not holder.roles.exists()


def test_built_in_superuser_can_be_neither_deleted_nor_replaced(as_admin):
    deleted = as_admin("DELETE", "/_security/role/superuser")
    replaced = as_admin("PUT", "/_security/role/superuser", {"cluster": ["monitor"]})

    assert deleted.status_code == 400
    assert deleted.json()["error"]["reason"] == "role [superuser] is reserved and cannot be deleted"
    assert replaced.status_code == 400
    assert "reserved" in replaced.json()["error"]["reason"]
    assert Role.objects.get(name="superuser").cluster == ["all"]


def test_a_changed_role_changes_what_its_holders_may_do_on_their_next_request(
    client, as_admin, make_role, make_user, make_api_key, key_for
):
    make_role("keyholders", cluster=["manage_own_api_key"])
    holder = make_user("holder", roles=["keyholders"])
    key = make_api_key(holder, "holder-session")

    before = call(client, "GET", "/_security/role", key=key)
    as_admin("PUT", "/_security/role/keyholders", {"cluster": ["manage_own_api_key", "read_security"]})

    # A key keeps the snapshot it was created with; a new one sees the new role.
    assert before.status_code == 403
    assert call(client, "GET", "/_security/role", key=key).status_code == 403
    fresh = make_api_key(holder, "holder-fresh")
    assert call(client, "GET", "/_security/role", key=fresh).status_code == 200


# Authorization (SPEC §2), through API keys whose descriptors limit a superuser

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
    ("GET", "/_security/role", None, READERS, lambda: True),
    ("GET", "/_security/role/target", None, READERS, lambda: True),
    (
        "PUT",
        "/_security/role/newcomer",
        {"cluster": ["monitor"]},
        WRITERS,
        lambda: Role.objects.filter(name="newcomer").exists(),
    ),
    (
        "POST",
        "/_security/role/newcomer",
        {"cluster": ["monitor"]},
        WRITERS,
        lambda: Role.objects.filter(name="newcomer").exists(),
    ),
    (
        "DELETE",
        "/_security/role/target",
        None,
        WRITERS,
        lambda: not Role.objects.filter(name="target").exists(),
    ),
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "took_effect"), ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS]
)
def test_only_read_security_reads_and_only_manage_security_writes(
    client, make_role, key_for, caller, method, path, body, allowed, took_effect
):
    make_role("target", cluster=["monitor"])
    key = key_for(*CALLERS[caller])

    response = call(client, method, path, body, key=key)

    if caller in allowed:
        assert response.status_code == 200, response.content
        assert took_effect()
    else:
        assert response.status_code == 403
        reason = response.json()["error"]["reason"]
        assert reason.startswith("action [cluster:admin/xpack/security/role/")
        assert f"API key id [{key.id}] of user [elastic]" in reason
        assert method == "GET" or not took_effect()


def test_a_key_cannot_exceed_its_owner_whatever_its_descriptors_say(client, make_user, make_api_key):
    reader = make_user("reader", "read_security", "manage_own_api_key")
    key = make_api_key(reader, "wishful", role_descriptors={"wish": {"cluster": ["manage_security"]}})

    response = call(client, "PUT", "/_security/role/escalated", {"cluster": ["all"]}, key=key)

    assert response.status_code == 403
    assert not Role.objects.filter(name="escalated").exists()


# Bad input (SPEC §7): the right 4xx, and nothing changes.


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("", "request body is required"),
        (
            {"cluster": ["manage_apikey", "monitor", "read_securty"]},
            "unknown cluster privileges [manage_apikey,read_securty]",
        ),
        ({"indices": [{"names": ["logs-*"], "privileges": ["raed"]}]}, "unknown index privilege [raed]"),
        ({"cluster": "monitor"}, "[cluster]"),
        ({"indices": {"names": ["a"]}}, "[indices]"),
        ({"indices": [{"names": ["a"]}]}, "missing required [privileges]"),
        ({"indices": [{"names": [], "privileges": ["read"]}]}, "at least one index name"),
        ({"indices": [{"names": ["/[/"], "privileges": ["read"]}]}, "invalid index name pattern"),
        ({"run_as": [1]}, "[run_as]"),
        ({"metadata": {"_reserved": True}}, "[_reserved]"),
        ({"metadata": "v1"}, "[metadata]"),
        ({"colour": "red"}, "unexpected field [colour]"),
        (
            {"applications": [{"application": "ap", "privileges": ["read"], "resources": ["*"]}]},
            "An application name prefix must be at least 3 characters long (found 'ap')",
        ),
        (
            {"applications": [{"application": "myapp", "privileges": ["read"]}]},
            "missing required [resources]",
        ),
        ({"description": "x" * 1001}, "Role description must be less than 1000 characters."),
        (
            {"remote_indices": [{"clusters": ["c"], "names": ["a"], "privileges": ["read"]}]},
            "[remote_indices]",
        ),
    ],
)
def test_bad_role_bodies_are_refused_and_create_nothing(as_admin, body, reason):
    response = as_admin("PUT", "/_security/role/newcomer", body)

    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]["reason"]
    assert not Role.objects.filter(name="newcomer").exists()


def test_empty_applications_and_transient_metadata_from_a_get_are_accepted_back(as_admin):
    as_admin("PUT", "/_security/role/viewer", {"cluster": ["monitor"]})
    fetched = as_admin("GET", "/_security/role/viewer").json()["viewer"]

    response = as_admin("PUT", "/_security/role/viewer", fetched)

    assert response.json() == {"role": {"created": False}}
    assert as_admin("GET", "/_security/role/viewer").json()["viewer"] == fetched


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/_security/role/_system", "must not start with [_]"),
        ("/_security/role/trailing%20", "whitespace"),
        ("/_security/role/" + "r" * 508, "507"),
        ("/_security/role/r%C3%B4le", "Basic Latin"),
    ],
)
def test_bad_role_names_are_refused(as_admin, path, reason):
    response = as_admin("PUT", path, {"cluster": ["monitor"]})

    assert response.status_code == 400
    assert reason in response.json()["error"]["reason"]
    assert list(Role.objects.values_list("name", flat=True)) == ["superuser"]


def test_a_refused_replacement_leaves_the_role_as_it_was(as_admin):
    as_admin("PUT", "/_security/role/logs_reader", LOGS_READER)

    response = as_admin("PUT", "/_security/role/logs_reader", {"cluster": ["all", "manage_evrything"]})

    assert response.status_code == 400
    assert Role.objects.get(name="logs_reader").cluster == LOGS_READER["cluster"]


def test_a_deeply_nested_body_is_refused(as_admin):
    deep = '{"metadata": ' + '{"a": ' * 80 + "1" + "}" * 80 + "}"

    response = as_admin("PUT", "/_security/role/newcomer", deep)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "parse_exception"
    assert not Role.objects.filter(name="newcomer").exists()


def test_a_body_on_a_delete_is_refused_and_deletes_nothing(as_admin, make_role):
    make_role("viewer")

    response = as_admin("DELETE", "/_security/role/viewer", {"cluster": []})

    assert response.status_code == 400
    assert Role.objects.filter(name="viewer").exists()
