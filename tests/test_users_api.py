"""Elasticsearch's users API (SPEC §1, §4, §7): native realm users, read with `read_security`,
written with `manage_security`, in Elasticsearch's shapes."""

import base64
import json

import pytest

from accounts.models import User
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from tests.hashes import bcrypt_hash, es_pbkdf2_hash
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
COMPATIBLE = "application/vnd.elasticsearch+json; compatible-with=8"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Argon2 is slow on purpose; these tests are about the API, not about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def basic(username, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def api_key(key):
    return "ApiKey " + encode_credential(key.id, key.secret)


def call(client, method, path, body=None, authorization=None, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body) if body is not None else ""
    return client.generic(
        method,
        path,
        data=data,
        content_type=content_type,
        secure=True,
        headers={"Authorization": authorization} if authorization else {},
    )


@pytest.fixture
def admin(make_user):
    return make_user("admin", "manage_security", password=PASSWORD)


@pytest.fixture
def as_admin(client, admin):
    def request(method, path, body=None, **kwargs):
        return call(client, method, path, body, authorization=basic("admin"), **kwargs)

    return request


@pytest.fixture
def jane(make_user, make_role):
    make_role("viewer", cluster=["monitor"])
    user = make_user("jane", roles=["viewer"], password=PASSWORD)
    user.email, user.metadata = "jane@example.com", {"team": "ops"}
    user.save()
    return user


# Create and replace


def test_put_user_creates_a_native_user_that_can_then_authenticate(as_admin, client, make_role):
    make_role("viewer", cluster=["monitor"])
    body = {
        "password": "jacknich-password-1",
        "roles": ["viewer"],
        "full_name": "Jack Nicholson",
        "email": "jacknich@example.com",
        "metadata": {"intelligence": 7},
    }

    response = as_admin("PUT", "/_security/user/jacknich", body)

    assert response.status_code == 200
    assert response.json() == {"created": True}
    assert response["X-Elastic-Product"] == "Elasticsearch"
    user = User.objects.get(username="jacknich")
    assert (user.realm.name, user.full_name, user.metadata, user.enabled) == (
        "default_native",
        "Jack Nicholson",
        {"intelligence": 7},
        True,
    )
    assert [role.name for role in user.roles.all()] == ["viewer"]
    me = call(
        client, "GET", "/_security/_authenticate", authorization=basic("jacknich", "jacknich-password-1")
    )
    assert me.status_code == 200 and me.json()["username"] == "jacknich"


def test_put_existing_user_replaces_every_field_keeps_the_password_and_answers_created_false(as_admin, jane):
    response = as_admin("PUT", "/_security/user/jane", {"roles": [], "full_name": "Jane Doe"})

    assert response.status_code == 200
    assert response.json() == {"created": False}
    jane.refresh_from_db()
    assert (jane.full_name, jane.email, jane.metadata) == ("Jane Doe", "", {})
    assert not jane.roles.exists()
    assert jane.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("roles", "defined", "pending"),
    [("viewer,auditor", ["viewer"], ["auditor"]), ("viewer", ["viewer"], []), ("", [], [])],
)
def test_put_user_takes_roles_as_a_comma_separated_string_as_elasticsearch_does(
    as_admin, jane, roles, defined, pending
):
    response = as_admin("PUT", "/_security/user/jane", {"roles": roles})

    assert response.status_code == 200, response.json()
    jane.refresh_from_db()
    assert ([role.name for role in jane.roles.all()], jane.pending_roles) == (defined, pending)


def test_an_empty_name_in_a_comma_separated_roles_string_is_refused_and_changes_nothing(as_admin, jane):
    before = security_state()

    response = as_admin("PUT", "/_security/user/jane", {"roles": "viewer,,auditor"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "illegal_argument_exception"
    assert security_state() == before


def test_a_password_and_a_hash_for_an_unknown_user_are_refused_before_the_user_is_looked_up(as_admin):
    response = as_admin(
        "PUT", "/_security/user/nobody/_password", {"password": "a-long-password-1", "password_hash": "x"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "action_request_validation_exception"


def test_put_user_without_enabled_enables_it_as_elasticsearch_does(as_admin, jane):
    jane.enabled = False
    jane.save()

    as_admin("PUT", "/_security/user/jane", {"roles": []})

    jane.refresh_from_db()
    assert jane.enabled


def test_post_user_is_the_same_as_put_and_accepts_the_compatible_media_type(as_admin):
    response = as_admin(
        "POST",
        "/_security/user/newbie",
        {"password": "newbie-password-1", "roles": []},
        content_type=COMPATIBLE,
    )

    assert response.status_code == 200 and response.json() == {"created": True}
    assert User.objects.filter(username="newbie").exists()


def test_a_new_password_replaces_the_old_one(as_admin, client, jane):
    as_admin("PUT", "/_security/user/jane", {"roles": [], "password": "another-password-2"})

    assert call(client, "GET", "/_security/_authenticate", authorization=basic("jane")).status_code == 401
    again = call(client, "GET", "/_security/_authenticate", authorization=basic("jane", "another-password-2"))
    assert again.status_code == 200


def test_same_username_in_the_file_realm_is_another_person_and_left_alone(as_admin, make_user, file_realm):
    file_bob = make_user("bob", realm=file_realm)

    as_admin("PUT", "/_security/user/bob", {"password": "native-bob-password", "roles": []})

    assert User.objects.filter(username="bob").count() == 2
    file_bob.refresh_from_db()
    assert not file_bob.has_usable_password()


# Read


def test_get_user_answers_elasticsearchs_shape_without_the_password(as_admin, jane, make_user):
    make_user("plain")

    body = as_admin("GET", "/_security/user/jane,plain").json()

    assert body["jane"] == {
        "username": "jane",
        "roles": ["viewer"],
        "full_name": "Jane",
        "email": "jane@example.com",
        "metadata": {"team": "ops"},
        "enabled": True,
    }
    assert body["plain"]["email"] is None and body["plain"]["roles"] == []
    assert "password" not in json.dumps(body)


def test_get_user_lists_only_the_names_that_exist(as_admin, jane):
    response = as_admin("GET", "/_security/user/jane,nobody")

    assert response.status_code == 200
    assert set(response.json()) == {"jane"}


def test_get_unknown_user_is_404_with_an_empty_object(as_admin):
    response = as_admin("GET", "/_security/user/nobody")

    assert response.status_code == 404
    assert response.json() == {}
    assert response["X-Elastic-Product"] == "Elasticsearch"


def test_get_all_users_lists_the_native_realm_only(as_admin, jane, make_user, file_realm):
    make_user("filer", realm=file_realm)

    response = as_admin("GET", "/_security/user")

    assert response.status_code == 200
    assert set(response.json()) == {"admin", "jane"}


def test_a_name_with_a_slash_is_reached_percent_encoded(as_admin):
    as_admin("PUT", "/_security/user/ops%2Fci", {"password": "slashed-password-1", "roles": []})

    assert set(as_admin("GET", "/_security/user/ops%2Fci").json()) == {"ops/ci"}


# Delete, enable, disable, password


def test_delete_user_answers_found_and_deletes_their_api_keys(as_admin, make_user, make_api_key):
    owner = make_user("leaver", "manage_own_api_key")
    key = make_api_key(owner, "leaver-key")

    response = as_admin("DELETE", "/_security/user/leaver")

    assert response.status_code == 200
    assert response.json() == {"found": True}
    assert not User.objects.filter(username="leaver").exists()
    assert not ApiKey.objects.filter(pk=key.pk).exists()


def test_delete_unknown_user_is_404_with_found_false(as_admin):
    response = as_admin("DELETE", "/_security/user/nobody")

    assert response.status_code == 404
    assert response.json() == {"found": False}


def test_users_cannot_delete_themselves(as_admin, admin):
    response = as_admin("DELETE", "/_security/user/admin")

    assert response.status_code == 400
    assert "own account" in response.json()["error"]["reason"]
    assert User.objects.filter(pk=admin.pk).exists()


def test_disabled_user_and_their_keys_stop_authenticating_until_enabled(
    as_admin, client, make_user, make_api_key
):
    owner = make_user("worker", "manage_own_api_key", password=PASSWORD)
    key = make_api_key(owner, "worker-key")

    disabled = as_admin("PUT", "/_security/user/worker/_disable")
    refused = [
        call(client, "GET", "/_security/_authenticate", authorization=credential).status_code
        for credential in (basic("worker"), api_key(key))
    ]
    enabled = as_admin("POST", "/_security/user/worker/_enable")

    assert (disabled.status_code, disabled.json()) == (200, {})
    assert refused == [401, 401]
    assert (enabled.status_code, enabled.json()) == (200, {})
    assert call(client, "GET", "/_security/_authenticate", authorization=api_key(key)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/_security/user/admin/_disable", None),
        ("PUT", "/_security/user/admin", {"roles": ["admin_default_native_role"], "enabled": False}),
    ],
    ids=["disable", "put enabled false"],
)
def test_users_cannot_disable_themselves(as_admin, admin, method, path, body):
    response = as_admin(method, path, body)

    assert response.status_code == 400
    assert "enabled status of their own account" in response.json()["error"]["reason"]
    admin.refresh_from_db()
    assert admin.enabled


def test_enabling_an_unknown_user_is_404(as_admin):
    response = as_admin("PUT", "/_security/user/nobody/_enable")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "resource_not_found_exception"


def test_admin_sets_another_users_password(as_admin, client, jane):
    response = as_admin("POST", "/_security/user/jane/_password", {"password": "reset-password-3"})

    assert (response.status_code, response.json()) == (200, {})
    me = call(client, "GET", "/_security/_authenticate", authorization=basic("jane", "reset-password-3"))
    assert me.status_code == 200


def test_users_change_their_own_password_without_manage_security(client, jane):
    response = call(
        client,
        "PUT",
        "/_security/user/_password",
        {"password": "my-new-password-4"},
        authorization=basic("jane"),
    )

    assert response.status_code == 200
    jane.refresh_from_db()
    assert jane.check_password("my-new-password-4")


def test_an_api_key_cannot_change_its_owners_password(client, make_user, make_api_key):
    owner = make_user("keyholder", "manage_own_api_key", password=PASSWORD)
    key = make_api_key(owner, "holder-key")

    response = call(
        client,
        "PUT",
        "/_security/user/keyholder/_password",
        {"password": "stolen-password-5"},
        authorization=api_key(key),
    )

    assert response.status_code == 403
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_without_manage_security_another_users_password_is_refused(client, jane, make_user):
    make_user("peer", password=PASSWORD)

    response = call(
        client,
        "PUT",
        "/_security/user/jane/_password",
        {"password": "peer-chosen-6"},
        authorization=basic("peer"),
    )

    assert response.status_code == 403
    assert "cluster:admin/xpack/security/user/change_password" in response.json()["error"]["reason"]


# Authorization (SPEC §2): read_security reads, manage_security writes, nothing else does either.

# caller: (cluster privileges, roles)
CALLERS = {
    "superuser": ((), ["superuser"]),
    "manage_security": (("manage_security",), []),
    "read_security": (("read_security",), []),
    "manage_api_key": (("manage_api_key",), []),
    "manage_own_api_key": (("manage_own_api_key",), []),
    "no privilege": (("monitor",), []),
}
READERS = {"superuser", "manage_security", "read_security"}
WRITERS = {"superuser", "manage_security"}
ENDPOINTS = [
    ("GET", "/_security/user", None, READERS, lambda: True),
    ("GET", "/_security/user/target", None, READERS, lambda: True),
    (
        "PUT",
        "/_security/user/newcomer",
        {"password": "newcomer-password", "roles": []},
        WRITERS,
        lambda: User.objects.filter(username="newcomer").exists(),
    ),
    (
        "POST",
        "/_security/user/newcomer",
        {"password": "newcomer-password", "roles": []},
        WRITERS,
        lambda: User.objects.filter(username="newcomer").exists(),
    ),
    (
        "DELETE",
        "/_security/user/target",
        None,
        WRITERS,
        lambda: not User.objects.filter(username="target").exists(),
    ),
    (
        "PUT",
        "/_security/user/target/_disable",
        None,
        WRITERS,
        lambda: not User.objects.get(username="target").enabled,
    ),
    (
        "PUT",
        "/_security/user/target/_password",
        {"password": "chosen-by-caller"},
        WRITERS,
        lambda: User.objects.get(username="target").check_password("chosen-by-caller"),
    ),
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "took_effect"), ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS]
)
def test_only_read_security_reads_and_only_manage_security_writes(
    client, make_user, caller, method, path, body, allowed, took_effect
):
    cluster, roles = CALLERS[caller]
    make_user("caller", *cluster, roles=roles, password=PASSWORD)
    make_user("target", password=PASSWORD)

    response = call(client, method, path, body, authorization=basic("caller"))

    if caller in allowed:
        assert response.status_code == 200, response.content
        assert took_effect()
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["type"] == "security_exception"
        assert "is unauthorized for user [caller]" in error["reason"]
        assert error["reason"].startswith("action [cluster:admin/xpack/security/user/")
        assert method == "GET" or not took_effect()


def test_a_superusers_key_limited_to_read_security_reads_users_but_cannot_write(
    client, make_user, make_api_key
):
    elastic = make_user("elastic", roles=["superuser"])
    key = make_api_key(elastic, "auditor", role_descriptors={"audit": {"cluster": ["read_security"]}})

    read = call(client, "GET", "/_security/user", authorization=api_key(key))
    write = call(
        client,
        "PUT",
        "/_security/user/intruder",
        {"password": "intruder-password", "roles": ["superuser"]},
        authorization=api_key(key),
    )

    assert read.status_code == 200 and "elastic" in read.json()
    assert write.status_code == 403
    assert f"API key id [{key.id}] of user [elastic]" in write.json()["error"]["reason"]
    assert not User.objects.filter(username="intruder").exists()


def test_missing_credentials_get_401(client):
    response = call(client, "GET", "/_security/user")

    assert response.status_code == 401
    assert "ApiKey" in response["WWW-Authenticate"]


# Bad input (SPEC §7): the right 4xx, and nothing changes.


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"roles": [], "roles": []}', "Duplicate field"),
        ("[1, 2]", "must be a JSON object"),
        ("", "request body is required"),
        ({"password": "newcomer-password"}, "roles are missing"),
        ({"roles": []}, "password must be specified"),
        ({"password": "newcomer-password", "roles": 7}, "[roles]"),
        ({"password": "newcomer-password", "roles": ["_hidden"]}, "role name [_hidden]"),
        ({"password": "newcomer-password", "roles": [], "colour": "red"}, "unexpected field [colour]"),
        ({"password": "newcomer-password", "roles": [], "enabled": "yes"}, "[enabled]"),
        ({"password": "newcomer-password", "roles": [], "full_name": ["A", "B"]}, "[full_name]"),
        ({"password": "newcomer-password", "roles": [], "email": "x" * 600}, "[email]"),
        ({"password": "newcomer-password", "roles": [], "metadata": ["a"]}, "metadata must be an object"),
        ({"password": "newcomer-password", "roles": [], "metadata": {"_internal": 1}}, "_internal"),
        ({"password": 123456789, "roles": []}, "[password] must be a string"),
        ({"password": "short", "roles": []}, "invalid password"),
        ({"password": "password123", "roles": []}, "too common"),
    ],
)
def test_bad_put_user_bodies_are_refused_and_create_nothing(as_admin, make_role, body, reason):
    make_role("viewer", cluster=["monitor"])

    response = as_admin("PUT", "/_security/user/newcomer", body)

    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]["reason"]
    assert response.json()["status"] == 400
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/_security/user/_hidden", "must not start with [_]"),
        ("/_security/user/%20padded", "whitespace"),
        ("/_security/user/caf%C3%A9", "Basic Latin"),
        ("/_security/user/" + "u" * 508, "507"),
    ],
)
def test_bad_usernames_are_refused(as_admin, path, reason):
    response = as_admin("PUT", path, {"password": "newcomer-password", "roles": []})

    assert response.status_code == 400
    assert reason in response.json()["error"]["reason"]
    assert User.objects.count() == 1


def test_a_refused_update_leaves_the_user_as_it_was(as_admin, jane):
    response = as_admin(
        "PUT", "/_security/user/jane", {"roles": [], "full_name": "Changed", "password": "short"}
    )

    assert response.status_code == 400
    jane.refresh_from_db()
    assert jane.full_name == "Jane" and jane.roles.exists() and jane.check_password(PASSWORD)


def test_a_body_over_the_size_limit_is_413_and_creates_nothing(as_admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"password": "newcomer-password", "roles": [], "metadata": {"blob": "x" * 2000}}

    response = as_admin("PUT", "/_security/user/newcomer", body)

    assert response.status_code == 413
    assert not User.objects.filter(username="newcomer").exists()


def test_a_body_nested_too_deep_is_refused_and_creates_nothing(as_admin):
    deep = "[" * 100 + "]" * 100
    body = '{"password": "newcomer-password", "roles": [], "metadata": {"deep": ' + deep + "}}"

    response = as_admin("PUT", "/_security/user/newcomer", body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "parse_exception"
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("GET", "/_security/user?colour=red", "unrecognized parameter: [colour]"),
        ("DELETE", "/_security/user/jane?refresh=later", "invalid value [later] for parameter [refresh]"),
        ("GET", "/_security/user?with_profile_uid=maybe", "[with_profile_uid]"),
    ],
)
def test_unknown_query_parameters_and_bad_values_are_refused(as_admin, jane, method, path, reason):
    response = as_admin(method, path)

    assert response.status_code == 400
    assert reason in response.json()["error"]["reason"]
    assert User.objects.filter(username="jane").exists()


def test_parameters_the_client_may_send_are_accepted(as_admin, jane):
    assert (
        as_admin("GET", "/_security/user/jane?pretty&error_trace=true&with_profile_uid=false").status_code
        == 200
    )
    assert as_admin("DELETE", "/_security/user/jane?refresh=wait_for").json() == {"found": True}


def test_a_body_on_a_get_is_refused(as_admin):
    response = as_admin("GET", "/_security/user", {"query": {}})

    assert response.status_code == 400
    assert "does not support having a body" in response.json()["error"]["reason"]


def test_an_unsupported_method_is_405(as_admin):
    response = as_admin("PATCH", "/_security/user/jane", {"roles": []})

    assert response.status_code == 405


# Role names no role has (yet): kept and shown, as Elasticsearch keeps them, granting nothing.


def has_cluster_privilege(client, username, privilege) -> bool:
    body = {"cluster": [privilege]}
    answer = call(client, "POST", "/_security/user/_has_privileges", body, authorization=basic(username))
    return answer.json()["cluster"][privilege]


def test_put_user_keeps_role_names_no_role_has_and_shows_them_but_they_grant_nothing(
    as_admin, client, make_role
):
    make_role("viewer", cluster=["monitor"])

    response = as_admin("PUT", "/_security/user/joe", {"password": PASSWORD, "roles": ["viewer", "auditor"]})

    assert response.json() == {"created": True}
    assert as_admin("GET", "/_security/user/joe").json()["joe"]["roles"] == ["viewer", "auditor"]
    me = call(client, "GET", "/_security/_authenticate", authorization=basic("joe")).json()
    assert me["roles"] == ["viewer", "auditor"]
    joe = User.objects.get(username="joe")
    assert ([role.name for role in joe.roles.all()], joe.pending_roles) == (["viewer"], ["auditor"])
    assert has_cluster_privilege(client, "joe", "monitor")
    assert not has_cluster_privilege(client, "joe", "read_security")


def test_defined_roles_come_first_then_the_names_no_role_has(as_admin):
    """Elasticsearch's own test of overwriting a user reads ["superuser", "foo"] back in that order."""
    as_admin("PUT", "/_security/user/joe", {"password": PASSWORD, "roles": ["superuser", "foo"]})

    assert as_admin("GET", "/_security/user/joe").json()["joe"]["roles"] == ["superuser", "foo"]


def test_a_role_created_after_the_user_takes_effect_on_the_next_request(as_admin, client):
    as_admin("PUT", "/_security/user/joe", {"password": PASSWORD, "roles": ["auditor"]})
    before = call(client, "GET", "/_security/user", authorization=basic("joe"))

    created = as_admin("PUT", "/_security/role/auditor", {"cluster": ["read_security"]})
    after = call(client, "GET", "/_security/user", authorization=basic("joe"))

    assert created.json() == {"role": {"created": True}}
    assert (before.status_code, after.status_code) == (403, 200)
    joe = User.objects.get(username="joe")
    assert ([role.name for role in joe.roles.all()], joe.pending_roles) == (["auditor"], [])
    assert after.json()["joe"]["roles"] == ["auditor"]


def test_a_deleted_role_stays_named_on_its_holders_and_grants_again_if_created_again(
    as_admin, client, jane, make_user
):
    make_user("other", roles=["viewer"])

    deleted = as_admin("DELETE", "/_security/role/viewer")

    assert deleted.json() == {"found": True}
    assert as_admin("GET", "/_security/user/jane").json()["jane"]["roles"] == ["viewer"]
    assert User.objects.get(username="other").pending_roles == ["viewer"]
    assert not has_cluster_privilege(client, "jane", "monitor")
    as_admin("PUT", "/_security/role/viewer", {"cluster": ["monitor"]})
    assert has_cluster_privilege(client, "jane", "monitor")
    assert User.objects.get(username="other").role_names() == ["viewer"]


def test_a_user_given_a_role_name_twice_holds_it_once(as_admin):
    roles = ["auditor", "auditor", "superuser"]

    as_admin("PUT", "/_security/user/joe", {"password": PASSWORD, "roles": roles})

    assert as_admin("GET", "/_security/user/joe").json()["joe"]["roles"] == ["superuser", "auditor"]


# A username in the body, as Elasticsearch accepts it: the path's only.


def test_a_username_in_the_body_equal_to_the_paths_is_accepted(as_admin):
    response = as_admin("PUT", "/_security/user/joe", {"username": "joe", "password": PASSWORD, "roles": []})

    assert response.json() == {"created": True}
    assert User.objects.filter(username="joe").exists()


@pytest.mark.parametrize("username", ["joey", "Joe", 7, None])
def test_another_username_in_the_body_is_refused_and_creates_nothing(as_admin, username):
    before = security_state()

    body = {"username": username, "password": PASSWORD, "roles": []}

    response = as_admin("PUT", "/_security/user/joe", body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "root_cause": [
                {
                    "type": "illegal_argument_exception",
                    "reason": "[username] in source does not match the username provided [joe]",
                }
            ],
            "type": "illegal_argument_exception",
            "reason": "[username] in source does not match the username provided [joe]",
        },
        "status": 400,
    }
    assert security_state() == before


# password_hash: a password hashed in one of Elasticsearch's formats, verified by the native realm.


HASHED_PASSWORD = "correct horse battery staple"
ES_HASHES = {
    "bcrypt $2a$": lambda: bcrypt_hash(HASHED_PASSWORD, "$2a$"),
    "bcrypt $2b$ cost 10": lambda: bcrypt_hash(HASHED_PASSWORD, "$2b$", rounds=10),
    "bcrypt $2y$": lambda: bcrypt_hash(HASHED_PASSWORD, "$2y$"),
    "PBKDF2 1000": lambda: es_pbkdf2_hash(HASHED_PASSWORD),
    "PBKDF2 10000": lambda: es_pbkdf2_hash(HASHED_PASSWORD, cost=10000),
    "PBKDF2_STRETCH 1000": lambda: es_pbkdf2_hash(HASHED_PASSWORD, stretch=True),
}


@pytest.fixture
def es_hashes_verified(settings):
    """The fast hasher for new passwords, and Elasticsearch's formats verified, as in settings."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "accounts.hashers.ElasticsearchPasswordHasher",
    ]


@pytest.mark.parametrize("make_hash", ES_HASHES.values(), ids=ES_HASHES.keys())
def test_put_user_with_a_password_hash_authenticates_with_that_password(
    as_admin, client, es_hashes_verified, make_hash
):
    password_hash = make_hash()

    body = {"password_hash": password_hash, "roles": ["superuser"]}

    response = as_admin("PUT", "/_security/user/joe", body)

    assert response.json() == {"created": True}
    wrong = call(client, "GET", "/_security/_authenticate", authorization=basic("joe", "s3krit-password"))
    assert wrong.status_code == 401
    me = call(client, "GET", "/_security/_authenticate", authorization=basic("joe", HASHED_PASSWORD))
    assert (me.status_code, me.json()["username"]) == (200, "joe")
    shown = as_admin("GET", "/_security/user").content.decode() + json.dumps(me.json())
    assert password_hash not in shown and password_hash.split("$")[-1] not in shown


def test_a_password_hash_is_replaced_by_the_preferred_hasher_at_the_first_login(
    as_admin, client, es_hashes_verified
):
    as_admin("PUT", "/_security/user/joe", {"password_hash": es_pbkdf2_hash(HASHED_PASSWORD), "roles": []})
    assert User.objects.get(username="joe").password.startswith("elasticsearch${PBKDF2}1000$")

    call(client, "GET", "/_security/_authenticate", authorization=basic("joe", HASHED_PASSWORD))

    joe = User.objects.get(username="joe")
    assert joe.password.startswith("md5$") and joe.check_password(HASHED_PASSWORD)


def test_a_password_hash_user_logs_in_to_the_ui(as_admin, client, es_hashes_verified):
    as_admin("PUT", "/_security/user/joe", {"password_hash": bcrypt_hash(HASHED_PASSWORD), "roles": []})

    response = client.post("/login", {"username": "joe", "password": HASHED_PASSWORD}, secure=True)

    assert response.status_code == 302
    assert client.get("/", secure=True).wsgi_request.user.username == "joe"


def test_an_update_with_a_password_hash_replaces_the_password(as_admin, client, jane, es_hashes_verified):
    body = {"password_hash": bcrypt_hash(HASHED_PASSWORD), "roles": []}

    response = as_admin("PUT", "/_security/user/jane", body)

    assert response.json() == {"created": False}
    assert call(client, "GET", "/_security/_authenticate", authorization=basic("jane")).status_code == 401
    assert call(
        client, "GET", "/_security/_authenticate", authorization=basic("jane", HASHED_PASSWORD)
    ).status_code == 200


def test_change_password_takes_a_password_hash(as_admin, client, jane, es_hashes_verified):
    body = {"password_hash": es_pbkdf2_hash(HASHED_PASSWORD)}

    response = as_admin("POST", "/_security/user/jane/_password", body)

    assert (response.status_code, response.json()) == (200, {})
    assert call(
        client, "GET", "/_security/_authenticate", authorization=basic("jane", HASHED_PASSWORD)
    ).status_code == 200


NOT_A_HASH = (
    "The provided password hash is not a hash or it could not be resolved to a supported hash algorithm."
)
BAD_PASSWORD_HASHES = [
    pytest.param({"password": PASSWORD}, "password_hash has already been set", id="and a password"),
    pytest.param({}, NOT_A_HASH, id="clear text"),
    pytest.param({"password_hash": "{SHA}" + "a" * 28}, NOT_A_HASH, id="SHA1"),
    pytest.param({"password_hash": "{SSHA256}" + "a" * 56}, NOT_A_HASH, id="SSHA256"),
    pytest.param({"password_hash": "$2a$10$short"}, NOT_A_HASH, id="short bcrypt"),
    pytest.param({"password_hash": "{PBKDF2}1000$c2FsdA==$" + "a" * 44}, NOT_A_HASH, id="short salt"),
    pytest.param({"password_hash": "$2a$15$" + "a" * 53}, "unknown hash function [bcrypt15]", id="cost 15"),
    pytest.param({"password_hash": "$2a$03$" + "a" * 53}, "unknown hash function [bcrypt3]", id="cost 3"),
    pytest.param(
        {"password_hash": es_pbkdf2_hash("x", cost=2000)}, "unknown hash function [pbkdf2_2000]", id="2000"
    ),
    pytest.param(
        {"password_hash": "{PBKDF2_STRETCH}many$c2FsdHNhbHQ=$" + "a" * 44},
        "The number of iterations could not be determined from the provided PBKDF2 hash.",
        id="PBKDF2 without iterations",
    ),
    pytest.param({"password_hash": 12}, "[password_hash] must be a string", id="a number"),
]


def bad_password_hash_body(extra: dict) -> dict:
    """The refused field, or else clear text, as the password_hash of a body."""
    return {"password_hash": HASHED_PASSWORD, **extra}


@pytest.mark.parametrize(("extra", "reason"), BAD_PASSWORD_HASHES)
def test_bad_password_hashes_are_refused_by_put_user_and_change_nothing(
    as_admin, jane, es_hashes_verified, extra, reason
):
    before = security_state()

    response = as_admin("PUT", "/_security/user/jane", {**bad_password_hash_body(extra), "roles": []})

    assert response.status_code == 400
    error = response.json()["error"]
    assert reason in error["reason"]
    assert error["type"] == (
        "action_request_validation_exception" if "password" in extra else "illegal_argument_exception"
    )
    assert security_state() == before


@pytest.mark.parametrize(("extra", "reason"), BAD_PASSWORD_HASHES)
def test_bad_password_hashes_are_refused_by_change_password_and_change_nothing(
    as_admin, jane, es_hashes_verified, extra, reason
):
    before = security_state()

    response = as_admin("PUT", "/_security/user/jane/_password", bad_password_hash_body(extra))

    assert response.status_code == 400
    assert reason in response.json()["error"]["reason"]
    assert security_state() == before


def test_both_a_password_and_a_hash_is_elasticsearchs_validation_error(as_admin, es_hashes_verified):
    body = {"password": PASSWORD, "password_hash": bcrypt_hash(PASSWORD), "roles": []}

    response = as_admin("PUT", "/_security/user/joe", body)

    assert response.json() == {
        "error": {
            "root_cause": [
                {
                    "type": "action_request_validation_exception",
                    "reason": "Validation Failed: 1: password_hash has already been set;",
                }
            ],
            "type": "action_request_validation_exception",
            "reason": "Validation Failed: 1: password_hash has already been set;",
        },
        "status": 400,
    }


def test_the_refusal_of_an_unsupported_hash_lists_elasticsearchs_algorithms(as_admin, es_hashes_verified):
    response = as_admin("PUT", "/_security/user/joe", {"password_hash": "{MD5}abc", "roles": []})

    reason = response.json()["error"]["reason"]
    assert reason.endswith(
        "The supported password hash algorithms are [bcrypt, bcrypt4, bcrypt5, bcrypt6, bcrypt7, bcrypt8, "
        "bcrypt9, bcrypt10, bcrypt11, bcrypt12, bcrypt13, bcrypt14, pbkdf2, pbkdf2_1000, pbkdf2_10000, "
        "pbkdf2_50000, pbkdf2_100000, pbkdf2_500000, pbkdf2_1000000, pbkdf2_stretch, pbkdf2_stretch_1000, "
        "pbkdf2_stretch_10000, pbkdf2_stretch_50000, pbkdf2_stretch_100000, pbkdf2_stretch_500000, "
        "pbkdf2_stretch_1000000]"
    )
    assert "{MD5}abc" not in reason
