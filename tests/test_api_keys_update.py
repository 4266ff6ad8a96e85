"""Updating keys (SPEC §1, Elasticsearch 8.4+): only the owner, as a user, changes a key's role
descriptors, metadata or expiration, one key or many in one transaction; its limited_by follows the
owner's roles of now; its name never changes. A no-op writes and audits nothing.

Errors are Elasticsearch's, in its shapes and statuses: a key acting is refused (400), a key that is
unknown or another's is not found (404), invalidated and expired keys cannot be updated (400)."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.exceptions import NotFound, PermissionDenied, RequestValidationFailed, ValidationError
from accounts.models import AuditEvent, Role
from accounts.principals import Principal
from accounts.privileges import validate_role_descriptors
from apikeys import services
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from apikeys.selectors import UPDATE_THROUGH_API_KEY
from apikeys.services import update_api_key, update_api_keys

pytestmark = pytest.mark.django_db

READ_LOGS = {"reader": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}
MONITOR = {"watcher": {"cluster": ["monitor"]}}


def stored(key) -> ApiKey:
    return ApiKey.objects.get(pk=key.pk)


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def call(client, method, path, body=None, user=None, key=None, secure=True):
    """``method path`` over HTTPS as a logged-in ``user`` or with ``key``'s credential."""
    headers = {}
    if user is not None:
        client.force_login(user)
    if key is not None:
        headers["Authorization"] = "ApiKey " + encode_credential(key.id, key.secret)
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return client.generic(
        method, path, data=data, content_type="application/json", secure=secure, headers=headers
    )


def assert_error(response, status, error_type, reason):
    assert response.status_code == status, response.content
    body = response.json()
    assert (body["status"], body["error"]["type"]) == (status, error_type)
    assert reason in body["error"]["reason"]


# --- What an update changes -------------------------------------------------------------------


def test_the_owner_replaces_role_descriptors_and_metadata_and_limited_by_takes_the_roles_of_now(
    users, make_api_key
):
    owner = users["own_keys"]
    key = make_api_key(owner, "ci", role_descriptors=READ_LOGS, metadata={"team": "ops"})
    Role.objects.filter(name="own_keys_default_native_role").update(cluster=["manage_own_api_key", "monitor"])

    assert update_api_key(Principal(owner), key.id, role_descriptors=MONITOR, metadata={"env": "prod"})

    after = stored(key)
    assert after.role_descriptors == validate_role_descriptors(MONITOR)
    assert after.metadata == {"env": "prod"}
    assert after.limited_by["own_keys_default_native_role"]["cluster"] == ["manage_own_api_key", "monitor"]
    assert (after.name, after.created, after.expiration) == (key.name, key.created, None)
    assert after.hash == key.hash


def test_fields_left_out_are_kept_and_empty_role_descriptors_remove_the_keys_own_restriction(
    users, make_api_key
):
    owner = users["own_keys"]
    key = make_api_key(owner, "ci", role_descriptors=READ_LOGS, metadata={"team": "ops"}, expiration="7d")

    assert update_api_key(Principal(owner), key.id, role_descriptors={})

    after = stored(key)
    assert (after.role_descriptors, after.metadata, after.expiration) == ({}, {"team": "ops"}, key.expiration)


def test_an_update_that_changes_nothing_is_a_noop_that_writes_and_audits_nothing(users, make_api_key):
    owner = users["own_keys"]
    key = make_api_key(owner, "ci", role_descriptors=READ_LOGS, metadata={"team": "ops"})
    before = stored(key)

    with CaptureQueriesContext(connection) as queries:
        updated = update_api_key(
            Principal(owner), key.id, role_descriptors=READ_LOGS, metadata={"team": "ops"}
        )

    assert updated is False
    assert not [query for query in queries if query["sql"].startswith(("UPDATE", "INSERT"))]
    assert events("api_key_updated") == []
    assert (stored(key).role_descriptors, stored(key).metadata) == (before.role_descriptors, before.metadata)


def test_an_update_without_fields_refreshes_limited_by_only_when_the_roles_changed(users, make_api_key):
    owner = users["own_keys"]
    key = make_api_key(owner, "ci", metadata={"team": "ops"})

    assert update_api_key(Principal(owner), key.id) is False
    Role.objects.filter(name="own_keys_default_native_role").update(cluster=["manage_own_api_key", "monitor"])
    assert update_api_key(Principal(owner), key.id) is True

    assert stored(key).limited_by == owner.role_descriptors()
    assert stored(key).metadata == {"team": "ops"}


def test_an_expiration_counts_from_now_and_is_always_a_change(users, make_api_key):
    owner = users["own_keys"]
    key = make_api_key(owner, "ci", expiration="1d")
    ApiKey.objects.filter(pk=key.pk).update(created=key.created - timedelta(days=5))

    before = timezone.now()
    assert update_api_key(Principal(owner), key.id, expiration="30d") is True
    assert update_api_key(Principal(owner), key.id, expiration="30d") is True

    lifetime = timedelta(days=30)
    assert before + lifetime - timedelta(seconds=1) <= stored(key).expiration <= timezone.now() + lifetime
    assert len(events("api_key_updated")) == 2


def test_an_expiration_beyond_the_maximum_lifetime_is_refused_and_changes_nothing(
    users, make_api_key, settings
):
    settings.API_KEY_MAX_EXPIRATION = "30d"
    owner = users["own_keys"]
    key = make_api_key(owner, "ci", expiration="7d")

    with pytest.raises(ValidationError, match=r"exceeds the maximum allowed lifetime of an API key \[30d\]"):
        update_api_key(Principal(owner), key.id, expiration="31d", metadata={"changed": True})

    assert (stored(key).expiration, stored(key).metadata) == (key.expiration, {})
    assert update_api_key(Principal(owner), key.id, expiration="30d")


def test_an_update_is_seen_by_the_very_next_request_made_with_the_key(client, make_user, make_api_key):
    owner = make_user("owner", "manage_own_api_key", "monitor")
    key = make_api_key(owner, "ci", role_descriptors=MONITOR)
    asked = {"cluster": ["manage_own_api_key"]}

    before = call(client, "POST", "/_security/user/_has_privileges", asked, key=key).json()
    update_api_key(Principal(owner), key.id, role_descriptors={})
    after = call(client, "POST", "/_security/user/_has_privileges", asked, key=key).json()

    assert (before["has_all_requested"], after["has_all_requested"]) == (False, True)


# --- Who may update ---------------------------------------------------------------------------


@pytest.mark.parametrize("holder", ["superuser", "security_admin", "api_key_admin", "own_keys"])
def test_a_key_may_not_update_even_itself_whatever_it_holds(users, make_api_key, holder):
    key = make_api_key(users[holder], "ci")
    caller = services.authenticate_api_key("ApiKey " + encode_credential(key.id, key.secret))

    with pytest.raises(ValidationError, match="only the owner user can update an API key"):
        update_api_key(caller, key.id, metadata={"changed": True})

    assert stored(key).metadata == {}


@pytest.mark.parametrize("holder", ["superuser", "security_admin", "api_key_admin"])
def test_an_administrator_may_not_update_another_users_key_it_is_not_found(users, make_api_key, holder):
    key = make_api_key(users["own_keys"], "theirs")

    with pytest.raises(NotFound, match=rf"no API key owned by requesting user found for ID \[{key.id}\]"):
        update_api_key(Principal(users[holder]), key.id, metadata={"changed": True})

    assert stored(key).metadata == {}


@pytest.mark.parametrize("holder", ["security_reader", "monitor_only"])
def test_without_manage_own_api_key_an_update_is_denied_naming_the_action(users, make_api_key, holder):
    with pytest.raises(PermissionDenied) as single:
        update_api_key(Principal(users[holder]), "x" * 20)
    with pytest.raises(PermissionDenied) as bulk:
        update_api_keys(Principal(users[holder]), ["x" * 20])

    assert "action [cluster:admin/xpack/security/api_key/update] is unauthorized" in single.value.reason
    assert "action [cluster:admin/xpack/security/api_key/bulk_update] is unauthorized" in bulk.value.reason
    assert "granted by the cluster privileges [manage_own_api_key,manage_api_key" in bulk.value.reason


# --- Bulk -------------------------------------------------------------------------------------


def test_bulk_update_reports_each_id_once_as_updated_noop_or_error(users, make_api_key):
    owner = users["own_keys"]
    first = make_api_key(owner, "first")
    already = make_api_key(owner, "already", metadata={"env": "prod"})
    invalidated = make_api_key(owner, "invalidated", state="invalidated")
    expired = make_api_key(owner, "expired", state="expired")
    theirs = make_api_key(users["api_key_admin"], "theirs")
    ids = [first.id, already.id, invalidated.id, expired.id, theirs.id, "unknown", first.id]

    result = update_api_keys(Principal(owner), ids, metadata={"env": "prod"})

    assert (result.updated, result.noops) == ([first.id], [already.id])
    assert {key_id: (type(error), error.reason) for key_id, error in result.errors.items()} == {
        invalidated.id: (ValidationError, f"cannot update invalidated API key [{invalidated.id}]"),
        expired.id: (ValidationError, f"cannot update expired API key [{expired.id}]"),
        theirs.id: (NotFound, f"no API key owned by requesting user found for ID [{theirs.id}]"),
        "unknown": (NotFound, "no API key owned by requesting user found for ID [unknown]"),
    }
    metadata = [stored(key).metadata for key in (first, invalidated, expired, theirs)]
    assert metadata == [{"env": "prod"}, {}, {}, {}]
    [event] = events("api_keys_updated")
    assert (event.api_key_ids, event.detail["noops"], event.detail["errors"]) == ([first.id], 1, 4)


def test_bulk_update_takes_one_select_and_at_most_one_update_per_batch(users, make_api_key, monkeypatch):
    owner = users["own_keys"]
    keys = [make_api_key(owner, f"key-{number}") for number in range(5)]
    monkeypatch.setattr(services, "UPDATE_BATCH_SIZE", 2)

    with CaptureQueriesContext(connection) as queries:
        result = update_api_keys(Principal(owner), [key.id for key in keys], metadata={"batch": True})

    statements = [query["sql"] for query in queries if '"apikeys_apikey"' in query["sql"]]
    assert sum(sql.startswith("SELECT") for sql in statements) == 3
    assert sum(sql.startswith("UPDATE") for sql in statements) == 3
    assert result.updated == [key.id for key in keys]


def test_bulk_update_without_fields_is_a_noop_for_keys_limited_by_the_roles_of_now(users, make_api_key):
    owner = users["own_keys"]
    keys = [make_api_key(owner, "one"), make_api_key(owner, "two")]

    result = update_api_keys(Principal(owner), [key.id for key in keys])

    assert (result.updated, result.noops, result.errors) == ([], [key.id for key in keys], {})
    assert events("api_keys_updated") == []


def test_bulk_update_needs_ids(users):
    with pytest.raises(RequestValidationFailed, match=r"Field \[ids\] cannot be empty"):
        update_api_keys(Principal(users["own_keys"]), [])


# --- The REST API: shapes and statuses --------------------------------------------------------


@pytest.fixture
def owner(users):
    return users["own_keys"]


def update(client, key_id, body=None, **auth):
    return call(client, "PUT", f"/_security/api_key/{key_id}", body, **auth)


def bulk_update(client, body, **auth):
    return call(client, "POST", "/_security/api_key/_bulk_update", body, **auth)


def test_put_updates_the_key_and_answers_updated_true_then_false(client, owner, make_api_key):
    key = make_api_key(owner, "ci")

    first = update(client, key.id, {"metadata": {"env": "prod"}, "role_descriptors": MONITOR}, user=owner)
    again = update(client, key.id, {"metadata": {"env": "prod"}, "role_descriptors": MONITOR}, user=owner)
    bodiless = update(client, key.id, user=owner)

    assert (first.status_code, first.json()) == (200, {"updated": True})
    assert first["X-Elastic-Product"] == "Elasticsearch"
    assert (again.json(), bodiless.json()) == ({"updated": False}, {"updated": False})
    shown = call(client, "GET", f"/_security/api_key?id={key.id}", user=owner).json()["api_keys"][0]
    assert (shown["name"], shown["metadata"]) == ("ci", {"env": "prod"})
    assert list(shown["role_descriptors"]) == ["watcher"]


def test_put_with_an_api_key_is_refused_with_elasticsearchs_rule(client, owner, make_api_key):
    key = make_api_key(owner, "ci")

    response = update(client, key.id, {"metadata": {"changed": True}}, key=key)

    assert_error(response, 400, "illegal_argument_exception", UPDATE_THROUGH_API_KEY)
    assert stored(key).metadata == {}


@pytest.mark.parametrize("holder", ["own_keys", "api_key_admin", "superuser"])
def test_put_on_an_unknown_or_another_users_key_is_not_found(client, users, make_api_key, holder):
    theirs = make_api_key(users["security_admin"], "theirs")

    for key_id in (theirs.id, "no-such-key-at-all-x"):
        response = update(client, key_id, {"metadata": {"changed": True}}, user=users[holder])
        assert_error(
            response, 404, "resource_not_found_exception",
            f"no API key owned by requesting user found for ID [{key_id}]",
        )
    assert stored(theirs).metadata == {}


@pytest.mark.parametrize(("state", "reason"), [("invalidated", "invalidated"), ("expired", "expired")])
def test_put_on_an_invalidated_or_expired_key_is_refused(client, owner, make_api_key, state, reason):
    key = make_api_key(owner, "ci", state=state)

    response = update(client, key.id, {"metadata": {"changed": True}}, user=owner)

    assert_error(response, 400, "illegal_argument_exception", f"cannot update {reason} API key [{key.id}]")
    assert stored(key).metadata == {}


@pytest.mark.parametrize(
    ("body", "error_type", "reason"),
    [
        ({"role_descriptors": "all"}, "illegal_argument_exception", "[role_descriptors] must be an object"),
        ({"role_descriptors": {"r": {"cluster": ["no_such_privilege"]}}}, "illegal_argument_exception",
         "no_such_privilege"),
        ({"metadata": ["a"]}, "illegal_argument_exception", "metadata must be an object"),
        ({"metadata": None}, "illegal_argument_exception", "metadata must be an object"),
        ({"metadata": {"_reserved": 1}}, "illegal_argument_exception", "keys may not start with [_]"),
        ({"expiration": 30}, "illegal_argument_exception", "expiration must be a string"),
        ({"expiration": "-1d"}, "illegal_argument_exception", "expiration must be positive"),
        ({"name": "renamed"}, "x_content_parse_exception",
         "[update_api_key_request_payload] unknown field [name]"),
        ([], "illegal_argument_exception", "request body must be a JSON object"),
        ("{not json", "parse_exception", ""),
    ],
)
def test_put_with_a_bad_body_is_refused_and_changes_nothing(
    client, owner, make_api_key, body, error_type, reason
):
    key = make_api_key(owner, "ci", metadata={"team": "ops"})

    response = update(client, key.id, body, user=owner)

    assert_error(response, 400, error_type, reason)
    assert (stored(key).metadata, stored(key).name) == ({"team": "ops"}, "ci")
    assert events("api_key_updated") == []


@pytest.mark.parametrize("holder", ["security_reader", "monitor_only"])
def test_update_without_manage_own_api_key_is_403_naming_the_action(client, users, make_api_key, holder):
    key = make_api_key(users["own_keys"], "ci")

    single = update(client, key.id, {"metadata": {}}, user=users[holder])
    bulk = bulk_update(client, {"ids": [key.id]}, user=users[holder])

    assert_error(single, 403, "security_exception", "action [cluster:admin/xpack/security/api_key/update]")
    assert_error(bulk, 403, "security_exception", "action [cluster:admin/xpack/security/api_key/bulk_update]")


def test_update_over_plain_http_is_not_enabled(client, owner, make_api_key):
    key = make_api_key(owner, "ci")

    response = update(client, key.id, {"metadata": {"changed": True}}, user=owner, secure=False)

    assert_error(response, 400, "feature_not_enabled_exception", "api keys are not enabled")
    assert stored(key).metadata == {}


def test_bulk_update_answers_in_elasticsearchs_shape_with_errors_only_when_there_are_some(
    client, owner, users, make_api_key
):
    one, two = make_api_key(owner, "one"), make_api_key(owner, "two")
    gone = make_api_key(owner, "gone", state="invalidated")
    theirs = make_api_key(users["api_key_admin"], "theirs")

    clean = bulk_update(client, {"ids": [one.id, two.id, one.id], "metadata": {"v": 1}}, user=owner)
    mixed = bulk_update(client, {"ids": [one.id, gone.id, theirs.id], "metadata": {"v": 1}}, user=owner)

    assert clean.status_code == 200
    assert clean.json() == {"updated": [one.id, two.id], "noops": []}
    assert mixed.json() == {
        "updated": [],
        "noops": [one.id],
        "errors": {
            "count": 2,
            "details": {
                gone.id: {
                    "type": "illegal_argument_exception",
                    "reason": f"cannot update invalidated API key [{gone.id}]",
                },
                theirs.id: {
                    "type": "resource_not_found_exception",
                    "reason": f"no API key owned by requesting user found for ID [{theirs.id}]",
                },
            },
        },
    }
    assert stored(theirs).metadata == {}


@pytest.mark.parametrize(
    ("body", "error_type", "reason"),
    [
        ({"ids": []}, "action_request_validation_exception",
         "Validation Failed: 1: Field [ids] cannot be empty;"),
        ({"metadata": {}}, "illegal_argument_exception", "Required [ids]"),
        ({"ids": "abc"}, "illegal_argument_exception", "[ids] must be a list of strings"),
        ({"ids": [1]}, "illegal_argument_exception", "[ids] must be a list of strings"),
        ({"ids": ["a"], "owner": True}, "x_content_parse_exception",
         "[bulk_update_api_key_request] unknown field [owner]"),
        ({"ids": ["a"], "metadata": "x"}, "illegal_argument_exception", "metadata must be an object"),
    ],
)
def test_bulk_update_with_a_bad_body_is_refused(client, owner, body, error_type, reason):
    assert_error(bulk_update(client, body, user=owner), 400, error_type, reason)


def test_bulk_update_with_an_api_key_is_refused_with_elasticsearchs_rule(client, owner, make_api_key):
    key = make_api_key(owner, "ci")

    response = bulk_update(client, {"ids": [key.id], "metadata": {"changed": True}}, key=key)

    assert_error(response, 400, "illegal_argument_exception", UPDATE_THROUGH_API_KEY)
    assert stored(key).metadata == {}


def test_updates_are_audited_by_event_and_shown_on_the_audit_log_page(client, users, owner, make_api_key):
    one, two = make_api_key(owner, "one"), make_api_key(owner, "two")
    update(client, one.id, {"metadata": {"v": 1}}, user=owner)
    bulk_update(client, {"ids": [one.id, two.id], "metadata": {"v": 1}}, user=owner)

    [single], [bulk] = events("api_key_updated"), events("api_keys_updated")
    assert (single.target, single.api_key_ids, single.actor) == ("one", [one.id], owner)
    assert single.detail == {"fields": "metadata, limited_by"}
    assert (bulk.api_key_ids, bulk.count, bulk.detail["noops"]) == ([two.id], 1, 1)
    page = Client()
    page.force_login(users["superuser"])
    shown = page.get("/app/management/security/audit", secure=True).content.decode()
    assert ">API key updated</span>" in shown and ">API keys updated</span>" in shown
