"""Elasticsearch's application privileges API: put, get, delete, clear cache and the built-in names,
with its rules for names and its authorization (``manage_security``, ``read_security``, or a role's
global application manage privilege), and the evaluation of application grants by has-privileges
and get-user-privileges, for users and for API keys (key ∩ ``limited_by``)."""

import json

import pytest

from accounts.models import AuditEvent
from apikeys.credentials import encode_credential
from application_privileges.models import ApplicationPrivilege
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

INVALID = "action_request_validation_exception"

MYAPP = {
    "myapp": {
        "read": {"actions": ["data:read/*", "action:login"], "metadata": {"description": "Read only"}},
        "write": {"actions": ["data:write/*", "action:login"]},
        "admin": {"actions": ["*"]},
    }
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
def key_of(elastic, make_api_key):
    """A superuser's key narrowed to one role descriptor (or not narrowed)."""
    serial = iter(range(1000))

    def make(descriptor=None, owner=None):
        descriptors = {"narrowed": descriptor} if descriptor is not None else {}
        return make_api_key(owner or elastic, f"key-{next(serial)}", role_descriptors=descriptors)

    return make


@pytest.fixture
def admin(client, key_of):
    key = key_of({"cluster": ["manage_security"]})

    def request(method, path, body=None):
        return call(client, method, path, body, key=key)

    request.key = key
    return request


@pytest.fixture
def stored(admin):
    assert admin("PUT", "/_security/privilege", MYAPP).status_code == 200


def error(response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"]["type"], body["error"]["reason"]


# ---------------------------------------------------------------------------------------------
# Put, get, delete


def test_put_creates_then_replaces_and_reports_which(admin):
    first = admin("PUT", "/_security/privilege", MYAPP)
    again = admin("POST", "/_security/privilege", {"myapp": {"read": {"actions": ["data:read/*"]}}})

    assert first.status_code == 200
    assert first.json() == {"myapp": {name: {"created": True} for name in ("read", "write", "admin")}}
    assert again.json() == {"myapp": {"read": {"created": False}}}
    replaced = ApplicationPrivilege.objects.get(application="myapp", name="read")
    assert (replaced.actions, replaced.metadata) == (["data:read/*"], {})


def test_get_answers_in_elasticsearchs_shape_by_application_and_by_name(admin, stored):
    by_name = admin("GET", "/_security/privilege/myapp/read,nope")
    by_application = admin("GET", "/_security/privilege/myapp")
    everything = admin("GET", "/_security/privilege")

    assert by_name.status_code == 200
    assert by_name.json() == {
        "myapp": {
            "read": {
                "application": "myapp",
                "name": "read",
                "actions": ["data:read/*", "action:login"],
                "metadata": {"description": "Read only"},
            }
        }
    }
    assert sorted(by_application.json()["myapp"]) == ["admin", "read", "write"]
    assert everything.json() == by_application.json()


def test_get_of_nothing_stored_is_a_404_with_an_empty_object(admin, stored):
    for path in ("/_security/privilege/myapp/x", "/_security/privilege/yourapp", "/_security/privilege/x/a"):
        response = admin("GET", path)
        assert (response.status_code, response.json()) == (404, {}), path


def test_get_by_application_pattern(admin, stored):
    admin("PUT", "/_security/privilege", {"myapp-two": {"read": {"actions": ["x:y"]}}})

    response = admin("GET", "/_security/privilege/myapp*")

    assert sorted(response.json()) == ["myapp", "myapp-two"]


def test_delete_reports_found_per_name_and_is_a_404_when_none_was(admin, stored):
    deleted = admin("DELETE", "/_security/privilege/myapp/read,write,nope")
    again = admin("DELETE", "/_security/privilege/myapp/read")

    assert deleted.status_code == 200
    assert deleted.json() == {
        "myapp": {"read": {"found": True}, "write": {"found": True}, "nope": {"found": False}}
    }
    assert list(ApplicationPrivilege.objects.values_list("name", flat=True)) == ["admin"]
    assert (again.status_code, again.json()) == (404, {"myapp": {"read": {"found": False}}})


def test_writes_are_audited_with_who_and_what(admin, stored):
    admin("DELETE", "/_security/privilege/myapp/read,nope")

    changed, deleted = AuditEvent.objects.order_by("pk").filter(action__startswith="application_privileges")
    assert (changed.action, changed.target, changed.detail) == (
        "application_privileges_changed", "myapp", {"privileges": {"myapp": ["admin", "read", "write"]}}
    )
    assert (deleted.action, deleted.actor_username, deleted.detail) == (
        "application_privileges_deleted", "elastic", {"privileges": {"myapp": ["read"]}}
    )
    assert deleted.via_api_key


def test_clear_cache_answers_the_nodes_shape(admin):
    response = admin("POST", "/_security/privilege/myapp,other/_clear_cache")

    assert response.status_code == 200
    body = response.json()
    assert body["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    assert set(body) == {"_nodes", "cluster_name", "nodes"}


def test_builtin_privileges_are_the_catalogs(admin):
    response = admin("GET", "/_security/privilege/_builtin")

    assert response.status_code == 200
    body = response.json()
    assert {"manage_security", "read_security", "manage_own_api_key"} <= set(body["cluster"])
    assert body["cluster"] == sorted(body["cluster"])
    assert {"read", "write", "all"} <= set(body["index"])
    assert body["remote_cluster"] == ["monitor_enrich", "monitor_stats"]


# ---------------------------------------------------------------------------------------------
# Bad input: Elasticsearch's messages, all at once, and nothing written


@pytest.mark.parametrize(
    ("body", "status", "kind", "reasons"),
    [
        ({}, 400, INVALID, ["At least one application privilege must be provided"]),
        (
            {"*": {"all": {"actions": ["*"]}}},
            400, INVALID, ["Application names may not contain '*' (found '*')"],
        ),
        (
            {"ab": {"read": {"actions": ["a:b"]}}},
            400, INVALID,
            ["An application name prefix must be at least 3 characters long (found 'ab')"],
        ),
        (
            {"Myapp": {"read": {"actions": ["a:b"]}}},
            400, INVALID,
            ["An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found 'Myapp')"],
        ),
        (
            {"myapp-a/b": {"read": {"actions": ["a:b"]}}},
            400, INVALID, ["An application name suffix may not contain"],
        ),
        (
            {"my app": {"read": {"actions": ["a:b"]}}},
            400, INVALID, ["Application names may not contain whitespace"],
        ),
        (
            {"myapp": {"7346": {"actions": ["a:b"]}, "r e a d": {"actions": ["a:b"]}}},
            400, INVALID,
            [
                "1: Application privilege names must match the pattern ^[a-z][a-zA-Z0-9_.-]*$ (found '7346')",
                "2: Application privilege names must match the pattern",
            ],
        ),
        (
            {"myapp": {"read": {"actions": []}}},
            400, INVALID, ["Application privileges must have at least one action"],
        ),
        (
            {"myapp": {"read": {"actions": ["data.read", "a b/c"]}}},
            400, INVALID,
            [
                "action [data.read] must contain one of [ '/' , '*' , ':' ]",
                "names and actions must match the pattern ^\\p{Graph}*$ (found 'a b/c')",
            ],
        ),
        (
            {"myapp": {"read": {"actions": ["a:b"], "metadata": {"_reserved": True}}}},
            400, INVALID,
            ["metadata keys may not start with [_] (in privilege myapp read)"],
        ),
        (
            {"myapp": {"read": {"actions": ["a:b"], "colour": "red"}}},
            400, "x_content_parse_exception", ["[application-privilege] unknown field [colour]"],
        ),
        (
            {"myapp": {"read": {"actions": "a:b"}}},
            400, "x_content_parse_exception", ["[application-privilege] failed to parse field [actions]"],
        ),
        (
            {"myapp": {"read": {"name": "write", "actions": ["a:b"]}}},
            400, "illegal_argument_exception",
            ["privilege name [write] in source does not match the provided name [read]"],
        ),
        (
            {"myapp": ["read"]}, 400, "illegal_argument_exception",
            ["expected the value for myapp to be an object, but found START_ARRAY instead"],
        ),
        ("[]", 400, "illegal_argument_exception", ["request body must be a JSON object"]),
        ("", 400, "illegal_argument_exception", ["request body is required"]),
    ],
)
def test_bad_put_bodies_are_refused_with_elasticsearchs_reasons_and_change_nothing(
    admin, body, status, kind, reasons
):
    before = security_state(authenticated_with=admin.key.id)

    response = admin("PUT", "/_security/privilege", body)

    got_status, got_kind, reason = error(response)
    assert (got_status, got_kind) == (status, kind), reason
    for expected in reasons:
        assert expected in reason
    assert security_state(authenticated_with=admin.key.id) == before


def test_unknown_parameters_and_bodies_where_none_is_taken_are_refused(admin, stored):
    assert error(admin("GET", "/_security/privilege?colour=red"))[:2] == (400, "illegal_argument_exception")
    with_body = admin("DELETE", "/_security/privilege/myapp/read", {})
    assert "does not support having a body" in error(with_body)[2]
    assert ApplicationPrivilege.objects.filter(name="read").exists()


# ---------------------------------------------------------------------------------------------
# Who may: manage_security writes, read_security reads, and the global application manage privilege


def manage_apps(*patterns, cluster=()):
    return {"cluster": list(cluster), "global": {"application": {"manage": {"applications": list(patterns)}}}}


def test_read_security_reads_but_does_not_write(client, key_of, stored):
    reader = key_of({"cluster": ["read_security"]})
    before = security_state(authenticated_with=reader.id)

    assert call(client, "GET", "/_security/privilege", key=reader).status_code == 200
    assert call(client, "GET", "/_security/privilege/_builtin", key=reader).status_code == 200
    refused = [
        call(client, "PUT", "/_security/privilege", {"myapp": {"x": {"actions": ["a:b"]}}}, key=reader),
        call(client, "DELETE", "/_security/privilege/myapp/read", key=reader),
        call(client, "POST", "/_security/privilege/myapp/_clear_cache", key=reader),
    ]

    for response in refused:
        status, kind, reason = error(response)
        assert (status, kind) == (403, "security_exception")
        assert "is unauthorized for API key id" in reason
    assert security_state(authenticated_with=reader.id) == before


def test_without_a_security_privilege_nothing_is_read(client, key_of, stored):
    monitor = key_of({"cluster": ["monitor"]})

    for path in ("/_security/privilege", "/_security/privilege/myapp", "/_security/privilege/_builtin"):
        status, kind, reason = error(call(client, "GET", path, key=monitor))
        assert (status, kind) == (403, "security_exception"), path
        assert "action [cluster:admin/xpack/security/privilege/" in reason


def test_global_manage_privilege_covers_its_applications_only(client, key_of, stored):
    key = key_of(manage_apps("myapp*"))

    own = call(client, "PUT", "/_security/privilege", {"myapp-b": {"read": {"actions": ["a:b"]}}}, key=key)
    mixed = call(
        client, "PUT", "/_security/privilege",
        {"myapp-b": {"x": {"actions": ["a:b"]}}, "other": {"x": {"actions": ["a:b"]}}}, key=key,
    )
    read_own = call(client, "GET", "/_security/privilege/myapp", key=key)
    read_all = call(client, "GET", "/_security/privilege", key=key)
    delete_other = call(client, "DELETE", "/_security/privilege/other/x", key=key)
    delete_own = call(client, "DELETE", "/_security/privilege/myapp/read", key=key)
    clear = call(client, "POST", "/_security/privilege/myapp/_clear_cache", key=key)
    builtin = call(client, "GET", "/_security/privilege/_builtin", key=key)

    assert own.status_code == 200
    assert error(mixed)[0] == 403
    assert not ApplicationPrivilege.objects.filter(application="other").exists()
    assert read_own.status_code == 200
    # A request naming no application is covered only by "*".
    assert error(read_all)[0] == 403
    assert error(delete_other)[0] == 403
    assert delete_own.status_code == 200
    # Clearing the cache and the built-in names are not about applications.
    assert error(clear)[0] == 403
    assert error(builtin)[0] == 403


def test_global_manage_privilege_over_star_reads_everything(client, key_of, stored):
    key = key_of(manage_apps("*"))

    assert call(client, "GET", "/_security/privilege", key=key).status_code == 200


def test_a_granted_action_pattern_grants_the_privilege_actions(client, key_of, stored):
    key = key_of({"cluster": ["cluster:admin/xpack/security/privilege/*"]})

    assert call(client, "DELETE", "/_security/privilege/myapp/admin", key=key).status_code == 200
    assert call(client, "POST", "/_security/privilege/*/_clear_cache", key=key).status_code == 200


def test_an_api_key_needs_the_global_privilege_from_its_owner_too(client, make_user, key_of, stored):
    owner = make_user("owner", "manage_own_api_key")
    key = key_of(manage_apps("myapp"), owner=owner)

    response = call(client, "DELETE", "/_security/privilege/myapp/read", key=key)

    assert error(response)[0] == 403
    assert ApplicationPrivilege.objects.filter(name="read").exists()


# ---------------------------------------------------------------------------------------------
# Has privileges: requested privileges by name or action, resources by pattern


def has(client, key, *checks):
    body = {"application": [{"application": app, "privileges": p, "resources": r} for app, p, r in checks]}
    response = call(client, "POST", "/_security/user/_has_privileges", body, key=key)
    assert response.status_code == 200, response.content
    return response.json()


def grants(*entries):
    return {"applications": [{"application": a, "privileges": p, "resources": r} for a, p, r in entries]}


PRIVILEGES = ["read", "write", "data:read/docs", "action:login", "data:*", "undefined"]


def test_a_privilege_name_is_held_where_the_granted_actions_cover_its_actions(client, key_of, stored):
    key = key_of(grants(("myapp", ["read"], ["object/*"])))

    answer = has(
        client, key,
        ("myapp", PRIVILEGES, ["object/1", "other"]),
    )

    assert answer["application"] == {
        "myapp": {
            "object/1": {
                "read": True, "write": False, "data:read/docs": True, "action:login": True, "data:*": False,
                "undefined": False,
            },
            "other": dict.fromkeys(PRIVILEGES, False),
        }
    }
    assert answer["has_all_requested"] is False


def test_resource_patterns_are_held_only_when_covered_whole(client, key_of, stored):
    key = key_of(grants(("myapp", ["read"], ["object/*", "doc/1"])))

    answer = has(client, key, ("myapp", ["read"], ["object/*", "object/a*", "obj*", "doc/*", "doc/1", "*"]))

    assert answer["application"]["myapp"] == {
        "object/*": {"read": True},
        "object/a*": {"read": True},
        "obj*": {"read": False},
        "doc/*": {"read": False},
        "doc/1": {"read": True},
        "*": {"read": False},
    }


def test_a_grant_of_every_action_covers_undefined_names_too(client, key_of, stored):
    key = key_of(grants(("myapp", ["admin"], ["*"])))

    answer = has(client, key, ("myapp", ["read", "undefined", "anything:at/all"], ["x"]))

    assert answer["has_all_requested"] is True


def test_application_patterns_in_grants_and_other_applications(client, key_of, admin, stored):
    admin("PUT", "/_security/privilege", {"myapp-two": {"read": {"actions": ["two:read"]}}})
    key = key_of(grants(("myapp*", ["read"], ["*"])))

    answer = has(client, key, ("myapp", ["read"], ["x"]), ("myapp-two", ["read", "data:read/x"], ["x"]),
                 ("yourapp", ["read"], ["x"]))

    assert answer["application"] == {
        "myapp": {"x": {"read": True}},
        "myapp-two": {"x": {"read": True, "data:read/x": False}},
        "yourapp": {"x": {"read": False}},
    }


def test_grants_on_the_same_resources_are_merged_as_in_elasticsearch(client, key_of, admin, stored):
    admin("PUT", "/_security/privilege", {"myapp": {"both": {"actions": ["data:read/*", "data:write/*"]}}})
    merged = key_of({
        "applications": [
            {"application": "myapp", "privileges": ["read"], "resources": ["*"]},
            {"application": "myapp", "privileges": ["write"], "resources": ["*"]},
        ]
    })
    apart = key_of({
        "applications": [
            {"application": "myapp", "privileges": ["read"], "resources": ["*"]},
            {"application": "myapp", "privileges": ["write"], "resources": ["*", "x"]},
        ]
    })

    assert has(client, merged, ("myapp", ["both"], ["r"]))["has_all_requested"] is True
    assert has(client, apart, ("myapp", ["both"], ["r"]))["has_all_requested"] is False


def test_an_api_key_holds_an_application_privilege_only_if_its_owner_does(client, make_user, key_of, stored):
    owner = make_user("owner", "manage_own_api_key")
    key = key_of(grants(("myapp", ["admin"], ["*"])), owner=owner)
    superusers = key_of(grants(("myapp", ["read"], ["*"])))

    assert has(client, key, ("myapp", ["read"], ["x"]))["has_all_requested"] is False
    assert has(client, superusers, ("myapp", ["read"], ["x"]))["has_all_requested"] is True
    assert has(client, superusers, ("myapp", ["write"], ["x"]))["has_all_requested"] is False


def test_has_privileges_refuses_application_names_elasticsearch_refuses(client, key_of):
    key = key_of()
    body = {"application": [{"application": "my*", "privileges": ["read"], "resources": ["*"]},
                            {"application": "ab", "privileges": ["read"], "resources": ["*"]}]}

    status, kind, reason = error(call(client, "POST", "/_security/user/_has_privileges", body, key=key))

    assert (status, kind) == (400, INVALID)
    assert reason == (
        "Validation Failed: 1: Application names may not contain '*' (found 'my*');"
        "2: An application name prefix must be at least 3 characters long (found 'ab');"
    )


# ---------------------------------------------------------------------------------------------
# Get user privileges


def test_user_privileges_merge_roles_as_elasticsearch_does(client, make_user, make_role, key_of, stored):
    make_role("viewer", cluster=["monitor"], indices=[
        {"names": ["logs-*"], "privileges": ["read"], "query": {"term": {"team": "a"}}},
        {"names": ["metrics-*"], "privileges": ["read"]},
    ], run_as=["ci-*"])
    make_role("writer", cluster=["manage_own_api_key", "MONITOR"], indices=[
        {"names": ["logs-*"], "privileges": ["write"], "query": '{"term":{"team":"b"}}'},
    ], run_as=["bot"])
    owner = make_user("owner", roles=["viewer", "writer"])
    key = key_of(None, owner=owner)

    response = call(client, "GET", "/_security/user/_privileges", key=key)

    assert response.status_code == 200
    assert response.json() == {
        "cluster": ["manage_own_api_key", "monitor"],
        "global": [],
        "indices": [
            {
                "names": ["logs-*"], "privileges": ["read", "write"],
                "query": ['{"term":{"team":"a"}}', '{"term":{"team":"b"}}'],
                "allow_restricted_indices": False,
            },
            {"names": ["metrics-*"], "privileges": ["read"], "allow_restricted_indices": False},
        ],
        "applications": [],
        "run_as": ["bot", "ci-*"],
    }


def test_user_privileges_of_a_key_with_role_descriptors_are_refused_as_in_elasticsearch(client, key_of):
    key = key_of({"cluster": ["monitor"]})

    status, kind, reason = error(call(client, "GET", "/_security/user/_privileges", key=key))

    assert (status, kind) == (400, "illegal_argument_exception")
    assert reason.startswith("Cannot retrieve privileges for API keys with assigned role descriptors.")


def test_user_privileges_resolve_application_grants(client, make_user, make_api_key, admin, stored):
    admin("PUT", "/_security/privilege", {"myapp-two": {"read": {"actions": ["two:read"]}}})
    descriptors = {
        "apps": {
            "cluster": ["manage_own_api_key"],
            **manage_apps("myapp-*"),
            **grants(("myapp", ["read"], ["object/1"]), ("myapp", ["read"], ["object/2"]),
                     ("myapp", ["admin"], ["admin/*"]), ("myapp*", ["read"], ["shared"])),
        }
    }
    owner = make_user("owner", "manage_own_api_key")
    key = make_api_key(owner, "apps-key")
    key.limited_by = descriptors
    key.save(update_fields=["limited_by"])

    answer = call(client, "GET", "/_security/user/_privileges", key=key).json()

    assert answer["global"] == [{"application": {"manage": {"applications": ["myapp-*"]}}}]
    assert answer["applications"] == [
        # read is held on its own resources and wherever admin (every action) or read are granted
        {
            "application": "myapp", "privileges": ["read"],
            "resources": ["object/1", "object/2", "shared", "admin/*"],
        },
        {"application": "myapp", "privileges": ["admin"], "resources": ["admin/*"]},
        {"application": "myapp-two", "privileges": ["read"], "resources": ["shared"]},
    ]
