"""DELETE /_security/api_key (SPEC §2, §4, §7): what is invalidated, how it is reported, who may
invalidate which keys, and Elasticsearch's refusals of bad requests, none of which change anything."""

import pytest

from apikeys.models import ApiKey
from tests.test_api_keys_get import NOT_ONESELF, api_key_header, assert_error, call, selection_id

pytestmark = pytest.mark.django_db


def invalidate(client, user, body, params="", **headers):
    return call(client, user, "DELETE", "/_security/api_key" + params, body, **headers)


def invalidated() -> set[str]:
    return set(ApiKey.objects.filter(invalidated__isnull=False).values_list("name", flat=True))


@pytest.fixture
def keys(users, make_user, file_realm, make_api_key):
    admin, own = users["api_key_admin"], users["own_keys"]
    filer = make_user("filer", "manage_own_api_key", realm=file_realm)
    return {
        "admin-ci": make_api_key(admin, "admin-ci"),
        "own-ci": make_api_key(own, "own-ci"),
        "own-nightly": make_api_key(own, "own-nightly"),
        "own-gone": make_api_key(own, "own-gone", state="invalidated"),
        "file-ci": make_api_key(filer, "file-ci"),
    }


def test_invalidating_by_ids_reports_each_key_once_in_elasticsearchs_shape(client, users, keys):
    ids = [keys["own-ci"].id, keys["own-gone"].id, keys["own-ci"].id]

    response = invalidate(client, users["api_key_admin"], {"ids": ids})

    assert response.status_code == 200
    assert response.json() == {
        "invalidated_api_keys": [keys["own-ci"].id],
        "previously_invalidated_api_keys": [keys["own-gone"].id],
        "error_count": 0,
    }
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert invalidated() == {"own-ci", "own-gone"}


def test_an_unknown_id_is_an_error_detail_and_the_others_are_still_invalidated(client, users, keys):
    response = invalidate(client, users["api_key_admin"], {"ids": ["x" * 20, keys["file-ci"].id]})

    body = response.json()
    assert body["invalidated_api_keys"] == [keys["file-ci"].id]
    assert body["error_count"] == 1
    assert body["error_details"] == [
        {"type": "resource_not_found_exception", "reason": f"api key [{'x' * 20}] not found"}
    ]


def test_the_deprecated_single_id_still_works(client, users, keys):
    response = invalidate(client, users["api_key_admin"], {"id": keys["admin-ci"].id})

    assert response.json()["invalidated_api_keys"] == [keys["admin-ci"].id]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "own-ci"}, {"own-ci"}),
        ({"name": "*-ci"}, {"admin-ci", "own-ci", "file-ci"}),
        ({"name": "own-*"}, {"own-ci", "own-nightly"}),
        ({"username": "own_keys"}, {"own-ci", "own-nightly"}),
        ({"realm_name": "default_file"}, {"file-ci"}),
        ({"username": "filer", "realm_name": "default_native"}, set()),
        ({"owner": True}, {"admin-ci"}),
        ({"owner": True, "name": "own-*"}, set()),
    ],
)
def test_keys_are_selected_as_elasticsearch_selects_them(client, users, keys, body, expected):
    response = invalidate(client, users["api_key_admin"], body)

    assert response.status_code == 200
    assert {
        ApiKey.objects.get(pk=key_id).name for key_id in response.json()["invalidated_api_keys"]
    } == expected
    assert invalidated() == expected | {"own-gone"}


def test_manage_own_api_key_user_never_invalidates_someone_elses_key(client, users, keys):
    own = users["own_keys"]
    others = [keys["admin-ci"].id, keys["file-ci"].id]

    by_id = invalidate(client, own, {"ids": [*others, keys["own-ci"].id]}).json()
    by_name = invalidate(client, own, {"name": "*"}).json()

    assert by_id["invalidated_api_keys"] == [keys["own-ci"].id]
    assert by_id["error_count"] == 2
    assert by_name["invalidated_api_keys"] == [keys["own-nightly"].id]
    assert invalidated() == {"own-ci", "own-nightly", "own-gone"}


def test_manage_own_api_key_user_invalidates_by_its_own_username_and_realm(client, users, keys):
    response = invalidate(client, users["own_keys"], {"username": "own_keys", "realm_name": "default_native"})

    assert set(response.json()["invalidated_api_keys"]) == {keys["own-ci"].id, keys["own-nightly"].id}
    assert invalidated() == {"own-ci", "own-nightly", "own-gone"}


@pytest.mark.parametrize("body", NOT_ONESELF, ids=selection_id)
def test_manage_own_api_key_user_naming_an_owner_other_than_itself_is_refused_and_nothing_changes(
    client, users, keys, body
):
    response = invalidate(client, users["own_keys"], body)

    assert_error(response, 403, "security_exception", "is unauthorized for user [own_keys]")
    assert "granted by the cluster privileges [manage_api_key,manage_security,all]" in (
        response.json()["error"]["reason"]
    )
    assert invalidated() == {"own-gone"}


def test_read_security_may_not_invalidate(client, users, keys):
    response = invalidate(client, users["security_reader"], {"ids": [keys["own-ci"].id]})

    assert_error(response, 403, "security_exception", "is unauthorized for user [security_reader]")
    assert invalidated() == {"own-gone"}


def test_a_user_without_an_api_key_privilege_may_not_invalidate(client, users, keys):
    assert_error(invalidate(client, users["monitor_only"], {"owner": True}), 403, "security_exception")


def test_a_key_whose_role_descriptors_lack_the_privilege_may_not_invalidate(
    client, users, keys, make_api_key
):
    key = make_api_key(
        users["api_key_admin"], "monitor-only", role_descriptors={"m": {"cluster": ["monitor"]}}
    )

    response = invalidate(client, None, {"ids": [keys["own-ci"].id]}, Authorization=api_key_header(key))

    assert_error(response, 403, "security_exception", f"API key id [{key.id}]")
    assert invalidated() == {"own-gone"}


def test_a_key_may_invalidate_itself(client, users, make_api_key):
    key = make_api_key(users["own_keys"], "self")

    response = invalidate(client, None, {"ids": [key.id]}, Authorization=api_key_header(key))

    assert response.json()["invalidated_api_keys"] == [key.id]
    again = call(client, None, "GET", "/_security/_authenticate", Authorization=api_key_header(key))
    assert again.status_code == 401


@pytest.mark.parametrize(
    "selection",
    [
        {"ids": ["{sibling}"]},
        {"ids": ["{key}", "{sibling}"]},
        {"owner": True},
        {"name": "*"},
        {"name": "self"},
        {"username": "own_keys", "realm_name": "default_native"},
        {"realm_name": "default_native"},
    ],
    ids=selection_id,
)
def test_a_key_with_manage_own_api_key_invalidates_nothing_but_itself(client, users, make_api_key, selection):
    """An API key owns no keys: it may not touch its owner's other keys, whatever it names."""
    key = make_api_key(users["own_keys"], "self")
    sibling = make_api_key(users["own_keys"], "sibling")
    body = {
        field: [item.format(key=key.id, sibling=sibling.id) for item in value] if field == "ids" else value
        for field, value in selection.items()
    }

    response = invalidate(client, None, body, Authorization=api_key_header(key))

    assert_error(response, 403, "security_exception", f"is unauthorized for API key id [{key.id}]")
    assert "granted by the cluster privileges [manage_api_key,manage_security,all]" in (
        response.json()["error"]["reason"]
    )
    assert invalidated() == set()


def test_a_key_with_manage_api_key_invalidates_any_key(client, users, keys, make_api_key):
    key = make_api_key(users["api_key_admin"], "admin-session")

    response = invalidate(client, None, {"username": "own_keys"}, Authorization=api_key_header(key))

    assert response.status_code == 200
    assert invalidated() == {"own-ci", "own-nightly", "own-gone"}


BAD_BODIES = {
    "malformed JSON": ('{"ids": [', "parse_exception", "not valid JSON"),
    "body not an object": ('["a"]', "illegal_argument_exception", "must be a JSON object"),
    "empty body": ("", "illegal_argument_exception", "must be specified if [owner] flag is false"),
    "nothing selected": ({}, "illegal_argument_exception", "must be specified if [owner] flag is false"),
    "unknown field": (
        {"ids": ["a"], "idz": []},
        "x_content_parse_exception",
        "[invalidate_api_key] unknown field [idz]",
    ),
    "ids not a list": ({"ids": "abc"}, "illegal_argument_exception", "[ids] must be a list of strings"),
    "ids of numbers": ({"ids": [1, 2]}, "illegal_argument_exception", "[ids] must be a list of strings"),
    "blank id": ({"ids": [" "]}, "illegal_argument_exception", "must not contain blank id"),
    "empty ids": ({"ids": []}, "illegal_argument_exception", "must be specified"),
    "id and ids": (
        {"id": "a", "ids": ["b"]},
        "illegal_argument_exception",
        "Must use either [id] or [ids], not both at the same time",
    ),
    "id not a string": ({"id": ["a"]}, "illegal_argument_exception", "[id] must be a string"),
    "ids and name": ({"ids": ["a"], "name": "b"}, "illegal_argument_exception", "only one of"),
    "name and username": (
        {"name": "a", "username": "b"},
        "illegal_argument_exception",
        "username or realm name must not be specified",
    ),
    "owner and realm": (
        {"owner": True, "realm_name": "default_native"},
        "illegal_argument_exception",
        "username or realm name must not be specified",
    ),
    "owner not a boolean": ({"owner": "yes"}, "illegal_argument_exception", "[owner] must be true or false"),
    "empty name": ({"name": ""}, "illegal_argument_exception", "[name] must be a non-empty string"),
    "name not a string": ({"name": 5}, "illegal_argument_exception", "[name] must be a non-empty string"),
    "NUL in an id": ({"ids": ["a\x00b"]}, "parse_exception", "NUL"),
    "NUL in a name": ({"name": "*\x00"}, "parse_exception", "NUL"),
    "too long a pattern": ({"name": "a*" * 5000}, "illegal_argument_exception", "pattern"),
}


@pytest.mark.parametrize(("body", "error_type", "reason"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_bodies_get_elasticsearchs_error_and_change_nothing(
    client, users, keys, body, error_type, reason
):
    assert_error(invalidate(client, users["api_key_admin"], body), 400, error_type, reason)
    assert invalidated() == {"own-gone"}


def test_an_unknown_url_parameter_is_refused_and_changes_nothing(client, users, keys):
    response = invalidate(client, users["api_key_admin"], {"owner": True}, params="?refresh=true")

    assert_error(response, 400, "illegal_argument_exception", "contains unrecognized parameter: [refresh]")
    assert invalidated() == {"own-gone"}


def test_plain_http_answers_feature_not_enabled_and_changes_nothing(client, users, keys):
    response = call(
        client, users["api_key_admin"], "DELETE", "/_security/api_key", {"owner": True}, secure=False
    )

    assert_error(response, 400, "feature_not_enabled_exception")
    assert invalidated() == {"own-gone"}


def test_anonymous_requests_are_refused_and_change_nothing(client, keys):
    assert_error(invalidate(client, None, {"name": "*"}), 401, "security_exception")
    assert invalidated() == {"own-gone"}
