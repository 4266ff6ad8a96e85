"""GET /_security/api_key (SPEC §2, §4, §7): filters, Elasticsearch's field shapes and parameter
validation, and who sees which keys."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from restapi.query.dsl import epoch_millis

pytestmark = pytest.mark.django_db


def call(client, user, method, path, body=None, secure=True, **headers):
    """``method path`` as ``user`` (a login session, or an ``Authorization`` header), over HTTPS."""
    if user is not None:
        client.force_login(user)
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return client.generic(
        method, path, data=data, content_type="application/json", secure=secure, headers=headers
    )


def api_key_header(key) -> str:
    return "ApiKey " + encode_credential(key.id, key.secret)


def get(client, user, **params):
    path = "/_security/api_key" + ("?" + urlencode(params) if params else "")
    return call(client, user, "GET", path)


def names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {key["name"] for key in response.json()["api_keys"]}


def assert_error(response, status, error_type, reason=""):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert body["error"]["type"] == error_type
    assert body["error"]["root_cause"][0]["type"] == error_type
    assert reason in body["error"]["reason"]


@pytest.fixture
def keys(users, make_user, file_realm, make_api_key):
    """Keys of two owners in two realms, in every state."""
    admin, own = users["api_key_admin"], users["own_keys"]
    filer = make_user("filer", "manage_own_api_key", realm=file_realm)
    return {
        "admin-ci": make_api_key(admin, "admin-ci", metadata={"team": "ops"}, expiration="7d"),
        "own-ci": make_api_key(own, "own-ci", role_descriptors={"reader": {"cluster": ["monitor"]}}),
        "own-expired": make_api_key(own, "own-expired", state="expired"),
        "own-gone": make_api_key(own, "own-gone", state="invalidated"),
        "file-ci": make_api_key(filer, "file-ci"),
    }


def test_every_key_is_listed_for_an_api_key_administrator(client, users, keys):
    assert names(get(client, users["api_key_admin"])) == set(keys)


def test_a_key_has_elasticsearchs_fields_with_times_in_epoch_milliseconds(client, users, keys):
    key = keys["admin-ci"]
    response = get(client, users["api_key_admin"], id=key.id)

    [info] = response.json()["api_keys"]
    assert list(info) == [
        "id",
        "name",
        "type",
        "creation",
        "expiration",
        "invalidated",
        "username",
        "realm",
        "realm_type",
        "metadata",
        "role_descriptors",
    ]
    assert info["id"] == key.id and info["name"] == "admin-ci" and info["type"] == "rest"
    assert info["creation"] == epoch_millis(key.created) and isinstance(info["creation"], int)
    assert info["expiration"] == epoch_millis(key.expiration)
    assert info["invalidated"] is False
    assert (info["username"], info["realm"], info["realm_type"]) == (
        "api_key_admin",
        "default_native",
        "native",
    )
    assert info["metadata"] == {"team": "ops"}
    assert info["role_descriptors"] == {}
    assert response["X-Elastic-Product"] == "Elasticsearch"


def test_an_invalidated_key_has_its_invalidation_time_and_a_key_without_expiration_has_none(
    client, users, keys
):
    gone = ApiKey.objects.get(pk=keys["own-gone"].id)
    [info] = get(client, users["api_key_admin"], id=gone.id).json()["api_keys"]

    assert info["invalidated"] is True
    assert info["invalidation"] == epoch_millis(gone.invalidated)
    assert "expiration" not in info


def test_role_descriptors_are_shown_in_elasticsearchs_full_form(client, users, keys):
    [info] = get(client, users["api_key_admin"], id=keys["own-ci"].id).json()["api_keys"]

    assert info["role_descriptors"] == {
        "reader": {
            "cluster": ["monitor"],
            "indices": [],
            "applications": [],
            "run_as": [],
            "metadata": {},
            "transient_metadata": {"enabled": True},
        }
    }
    assert "limited_by" not in info


def test_with_limited_by_adds_the_owners_snapshot_as_a_list_of_one(client, users, keys):
    [info] = get(client, users["api_key_admin"], id=keys["own-ci"].id, with_limited_by="true").json()[
        "api_keys"
    ]

    [snapshot] = info["limited_by"]
    assert set(snapshot) == {"own_keys_default_native_role"}
    assert snapshot["own_keys_default_native_role"]["cluster"] == ["manage_own_api_key"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "own-ci"}, {"own-ci"}),
        ({"name": "own-*"}, {"own-ci", "own-expired", "own-gone"}),
        ({"name": "*-ci"}, {"admin-ci", "own-ci", "file-ci"}),
        ({"name": "*"}, {"admin-ci", "own-ci", "own-expired", "own-gone", "file-ci"}),
        ({"name": "own-?i"}, set()),
        ({"name": "OWN-CI"}, set()),
        ({"username": "own_keys"}, {"own-ci", "own-expired", "own-gone"}),
        ({"realm_name": "default_file"}, {"file-ci"}),
        ({"username": "filer", "realm_name": "default_native"}, set()),
        ({"username": "filer", "realm_name": "default_file"}, {"file-ci"}),
        ({"active_only": "true"}, {"admin-ci", "own-ci", "file-ci"}),
        ({"active_only": "false", "name": "own-*"}, {"own-ci", "own-expired", "own-gone"}),
        ({"active_only": "true", "username": "own_keys"}, {"own-ci"}),
        ({"owner": "true"}, {"admin-ci"}),
        ({"owner": "true", "name": "own-*"}, set()),
        ({"owner": "false", "name": "admin-*"}, {"admin-ci"}),
        ({"id": "", "name": ""}, {"admin-ci", "own-ci", "own-expired", "own-gone", "file-ci"}),
        ({"name": "nobody-*"}, set()),
    ],
)
def test_filters_select_as_elasticsearch_does(client, users, keys, params, expected):
    assert names(get(client, users["api_key_admin"], **params)) == expected


def test_a_flag_without_a_value_means_true(client, users, keys):
    assert names(call(client, users["api_key_admin"], "GET", "/_security/api_key?owner")) == {"admin-ci"}


def test_an_unknown_id_gives_404_with_an_empty_list_as_elasticsearch_does(client, users, keys):
    response = get(client, users["api_key_admin"], id="x" * 20)

    assert response.status_code == 404
    assert response.json() == {"api_keys": []}


def test_manage_own_api_key_user_sees_only_its_own_keys(client, users, keys):
    own = users["own_keys"]
    mine = {"own-ci", "own-expired", "own-gone"}

    assert names(get(client, own)) == mine
    assert names(get(client, own, name="*")) == mine
    hidden = get(client, own, id=keys["admin-ci"].id)
    assert (hidden.status_code, hidden.json()) == (404, {"api_keys": []})
    assert names(get(client, own, owner="true", active_only="true")) == {"own-ci"}
    assert names(get(client, own, username="own_keys", realm_name="default_native")) == mine


# Selections by owner that name anyone but the own_keys user of the native realm, or name only half.
NOT_ONESELF = [
    {"username": "api_key_admin"},
    {"username": "api_key_admin", "realm_name": "default_native"},
    {"username": "filer", "realm_name": "default_file"},
    {"realm_name": "default_native"},
    {"realm_name": "default_file"},
    {"username": "own_keys"},
    {"username": "own_keys", "realm_name": "default_file"},
]


def selection_id(selection: dict) -> str:
    return ",".join(f"{name}={value}" for name, value in selection.items())


@pytest.mark.parametrize("params", NOT_ONESELF, ids=selection_id)
def test_manage_own_api_key_user_naming_an_owner_other_than_itself_is_refused(client, users, keys, params):
    """As Elasticsearch: username and realm_name must both be given, and be the caller's own; the
    selection is never quietly narrowed to the caller's keys."""
    response = get(client, users["own_keys"], **params)

    assert_error(response, 403, "security_exception", "is unauthorized for user [own_keys]")
    assert "granted by the cluster privileges [read_security,manage_api_key,manage_security,all]" in (
        response.json()["error"]["reason"]
    )


def test_read_security_sees_every_key_with_its_snapshot(client, users, keys):
    response = get(client, users["security_reader"], with_limited_by="true")

    assert names(response) == set(keys)
    assert all("limited_by" in key for key in response.json()["api_keys"])


def test_a_user_without_an_api_key_privilege_is_refused(client, users, keys):
    assert_error(
        get(client, users["monitor_only"]),
        403,
        "security_exception",
        "is unauthorized for user [monitor_only]",
    )


def test_a_key_whose_role_descriptors_lack_the_privilege_is_refused(client, users, make_api_key):
    key = make_api_key(
        users["api_key_admin"], "monitor-only", role_descriptors={"m": {"cluster": ["monitor"]}}
    )

    response = call(client, None, "GET", "/_security/api_key", Authorization=api_key_header(key))

    assert_error(response, 403, "security_exception", f"API key id [{key.id}]")


def test_a_key_with_manage_own_api_key_reads_itself_by_id_and_nothing_else(client, users, make_api_key):
    key = make_api_key(users["own_keys"], "session")
    sibling = make_api_key(users["own_keys"], "sibling")
    header = api_key_header(key)

    itself = call(client, None, "GET", f"/_security/api_key?id={key.id}", Authorization=header)
    with_snapshot = call(
        client, None, "GET", f"/_security/api_key?id={key.id}&with_limited_by=true", Authorization=header
    )

    assert names(itself) == {"session"}
    assert_error(with_snapshot, 403, "security_exception")
    for query in ("", f"?id={sibling.id}", "?owner=true", "?name=session", "?name=*", "?username=own_keys",
                  "?username=own_keys&realm_name=default_native", "?realm_name=default_native"):
        response = call(client, None, "GET", "/_security/api_key" + query, Authorization=header)
        assert_error(response, 403, "security_exception", f"is unauthorized for API key id [{key.id}]")
        assert "granted by the cluster privileges [read_security,manage_api_key,manage_security,all]" in (
            response.json()["error"]["reason"]
        )


def test_a_key_with_manage_api_key_may_read_snapshots(client, users, make_api_key):
    key = make_api_key(users["api_key_admin"], "admin-session")

    response = call(
        client, None, "GET", "/_security/api_key?with_limited_by=true", Authorization=api_key_header(key)
    )

    assert response.json()["api_keys"][0]["limited_by"]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"id": "a", "name": "b"}, "only one of [api key id, api key name] can be specified"),
        ({"id": "a", "username": "b"}, "username or realm name must not be specified when the api key id"),
        (
            {"name": "a", "realm_name": "b"},
            "username or realm name must not be specified when the api key id",
        ),
        ({"owner": "true", "username": "b"}, "neither username nor realm-name may be specified"),
        ({"owner": "true", "realm_name": "b"}, "neither username nor realm-name may be specified"),
    ],
)
def test_parameter_combinations_elasticsearch_refuses_are_refused(client, users, keys, params, reason):
    response = get(client, users["api_key_admin"], **params)

    assert_error(response, 400, "action_request_validation_exception", reason)
    assert response.json()["error"]["reason"].startswith("Validation Failed: 1: ")


def test_every_problem_is_numbered_in_one_refusal(client, users, keys):
    response = get(client, users["api_key_admin"], id="a", name="b", owner="true", username="c")

    reason = response.json()["error"]["reason"]
    assert reason.startswith("Validation Failed: 1: ") and "2: " in reason and "3: " in reason


@pytest.mark.parametrize("flag", ["owner", "active_only", "with_limited_by", "with_profile_uid"])
@pytest.mark.parametrize("value", ["yes", "1", "True", "FALSE"])
def test_booleans_must_be_true_or_false(client, users, keys, flag, value):
    assert_error(
        get(client, users["api_key_admin"], **{flag: value}),
        400,
        "illegal_argument_exception",
        f"Failed to parse value [{value}] as only [true] or [false] are allowed.",
    )


def test_an_unknown_parameter_is_refused_with_a_suggestion(client, users, keys):
    close = get(client, users["api_key_admin"], ownr="true")
    far = get(client, users["api_key_admin"], colour="red", zzz="1")

    assert_error(
        close,
        400,
        "illegal_argument_exception",
        "request [/_security/api_key] contains unrecognized parameter: [ownr] -> did you mean [owner]?",
    )
    assert_error(
        far,
        400,
        "illegal_argument_exception",
        "request [/_security/api_key] contains unrecognized parameters: [colour], [zzz]",
    )


def test_common_and_profile_parameters_are_accepted(client, users, keys):
    response = get(
        client,
        users["api_key_admin"],
        pretty="true",
        human="true",
        error_trace="false",
        with_profile_uid="true",
    )

    assert names(response) == set(keys)


def test_a_nul_character_in_a_parameter_is_refused(client, users, keys):
    response = call(client, users["api_key_admin"], "GET", "/_security/api_key?name=a%00b")

    assert_error(response, 400, "illegal_argument_exception", "NUL")


def test_plain_http_answers_feature_not_enabled(client, users, keys):
    response = call(client, users["api_key_admin"], "GET", "/_security/api_key", secure=False)

    assert_error(response, 400, "feature_not_enabled_exception")


def test_anonymous_requests_are_refused(client, keys):
    response = call(client, None, "GET", "/_security/api_key")

    assert_error(response, 401, "security_exception", "missing authentication credentials")


def test_active_only_leaves_out_a_key_that_expired_a_moment_ago(client, users, keys):
    ApiKey.objects.filter(pk=keys["admin-ci"].id).update(expiration=timezone.now() - timedelta(seconds=1))

    assert "admin-ci" not in names(get(client, users["api_key_admin"], active_only="true"))
