"""Rotating a key: a new key with the same name, owner, privileges and lifetime replaces the old one,
which is invalidated in the same transaction. Keyward's own operation; Elasticsearch has none.

A rotation never extends what a key may do or for how long (SPEC §2): a key rotating itself passes
on its expiration and its limited_by snapshot; its owner, as a user, rotates as they would create a
key, limited by their roles of now, within the lifetime policy."""

import base64
import json
from datetime import timedelta

import pytest

from accounts.exceptions import AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from accounts.models import AuditEvent, Role
from accounts.principals import Principal
from apikeys import services
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, rotate_api_key

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
READ_LOGS = {"reader": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}


def header(key_id, secret):
    return "ApiKey " + encode_credential(key_id, secret)


def shift_back(key, delta):
    """Make the key as if created ``delta`` ago, keeping its lifetime."""
    key.created -= delta
    if key.expiration is not None:
        key.expiration -= delta
    key.save(update_fields=["created", "expiration"])


# What the replacement is


def test_rotation_replaces_the_key_with_one_of_the_same_name_owner_privileges_and_metadata(
    users, make_api_key
):
    old = make_api_key(users["own_keys"], "ci", role_descriptors=READ_LOGS, metadata={"team": "ops"})

    created = rotate_api_key(Principal(users["own_keys"]), old.id)

    new, old_secret, old = created.api_key, old.secret, ApiKey.objects.get(pk=old.id)
    assert new.id != old.id and created.secret != old_secret
    assert (new.name, new.owner, new.realm_name, new.type) == ("ci", old.owner, old.realm_name, old.type)
    assert (new.role_descriptors, new.limited_by, new.metadata) == (
        old.role_descriptors,
        old.limited_by,
        old.metadata,
    )
    assert old.invalidated == new.created


def test_replacement_authenticates_and_the_old_key_fails_at_once(users, make_api_key):
    old = make_api_key(users["own_keys"], "ci")

    created = rotate_api_key(Principal(users["own_keys"]), old.id)

    assert authenticate_api_key(header(created.api_key.id, created.secret)).api_key.id == created.api_key.id
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(old.id, old.secret))


def test_replacement_gets_the_same_lifetime_counted_from_the_rotation(users, make_api_key):
    old = make_api_key(users["own_keys"], "monthly", expiration="30d")
    shift_back(old, timedelta(days=10))

    new = rotate_api_key(Principal(users["own_keys"]), old.id).api_key

    assert new.expiration - new.created == timedelta(days=30)


def test_replacement_of_a_key_that_never_expires_never_expires(users, make_api_key):
    old = make_api_key(users["own_keys"], "forever")
    assert rotate_api_key(Principal(users["own_keys"]), old.id).api_key.expiration is None


def test_owner_rotating_as_a_user_gets_a_key_limited_by_their_roles_of_now(users, make_api_key):
    owner = users["own_keys"]
    owner.roles.add(Role.objects.get(name="superuser"))
    old = make_api_key(owner, "wide")
    owner.roles.remove(Role.objects.get(name="superuser"))

    new = rotate_api_key(Principal(owner), old.id).api_key

    assert "superuser" in old.limited_by
    assert new.limited_by == owner.role_descriptors()
    assert "superuser" not in new.limited_by


def test_owner_rotating_as_a_user_may_choose_a_new_expiration(users, make_api_key):
    old = make_api_key(users["own_keys"], "monthly", expiration="30d")

    new = rotate_api_key(Principal(users["own_keys"]), old.id, expiration="90d").api_key

    assert new.expiration - new.created == timedelta(days=90)


def test_a_chosen_expiration_is_held_to_the_maximum_lifetime(users, make_api_key, settings):
    settings.API_KEY_MAX_EXPIRATION = "30d"
    old = make_api_key(users["own_keys"], "monthly", expiration="30d")

    with pytest.raises(ValidationError, match=r"exceeds the maximum allowed lifetime of an API key \[30d\]"):
        rotate_api_key(Principal(users["own_keys"]), old.id, expiration="31d")

    assert list(ApiKey.objects.values_list("id", "invalidated")) == [(old.id, None)]


def test_a_key_rotating_itself_keeps_its_expiration_and_its_limited_by_snapshot(users, make_api_key):
    owner = users["own_keys"]
    old = make_api_key(owner, "monthly", expiration="30d")
    shift_back(old, timedelta(days=10))
    owner.roles.add(Role.objects.get(name="superuser"))
    caller = authenticate_api_key(header(old.id, old.secret))

    new = rotate_api_key(caller, old.id).api_key

    assert new.expiration == ApiKey.objects.get(pk=old.id).expiration
    assert new.expiration - new.created < timedelta(days=20)
    assert new.limited_by == old.limited_by and "superuser" not in new.limited_by


def test_a_short_lived_key_cannot_renew_itself_by_rotating(users, make_api_key):
    key = make_api_key(users["own_keys"], "five-seconds", expiration="5s")
    for _ in range(3):
        created = rotate_api_key(authenticate_api_key(header(key.id, key.secret)), key.id)
        key, key.secret = created.api_key, created.secret

    assert key.expiration - ApiKey.objects.order_by("created").first().created == timedelta(seconds=5)
    shift_back(key, timedelta(seconds=5))
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(key.id, key.secret))


def test_a_key_rotating_itself_may_not_choose_an_expiration(users, make_api_key):
    key = make_api_key(users["own_keys"], "self", expiration="1d")
    caller = authenticate_api_key(header(key.id, key.secret))

    with pytest.raises(ValidationError, match="keeps its expiration when it rotates itself"):
        rotate_api_key(caller, key.id, expiration="365d")

    assert ApiKey.objects.get().invalidated is None


@pytest.mark.parametrize("admin", ["api_key_admin", "security_admin", "superuser"])
def test_administrator_cannot_rotate_someone_elses_key_because_its_new_secret_would_be_theirs(
    users, make_api_key, admin
):
    old = make_api_key(users["own_keys"], "theirs", role_descriptors=READ_LOGS)

    with pytest.raises(PermissionDenied, match="only the owner"):
        rotate_api_key(Principal(users[admin]), old.id)

    assert ApiKey.objects.get().invalidated is None


def test_rotation_is_audited_once_with_the_old_and_new_ids(users, make_api_key):
    old = make_api_key(users["own_keys"], "ci")
    AuditEvent.objects.all().delete()

    new = rotate_api_key(Principal(users["own_keys"]), old.id).api_key

    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.target) == ("api_key_rotated", users["own_keys"], "ci")
    assert event.api_key_ids == [old.id, new.id]
    assert event.detail == {"rotated_from": old.id, "replacement": new.id}


# Who may rotate what


def test_user_managing_own_keys_cannot_rotate_someone_elses_key_and_is_told_it_is_not_found(
    users, make_api_key
):
    theirs = make_api_key(users["api_key_admin"], "theirs")

    with pytest.raises(NotFound, match=f"api key \\[{theirs.id}\\] not found"):
        rotate_api_key(Principal(users["own_keys"]), theirs.id)
    assert ApiKey.objects.get(pk=theirs.id).invalidated is None


def test_unknown_key_is_not_found(users):
    with pytest.raises(NotFound):
        rotate_api_key(Principal(users["own_keys"]), "x" * 20)


def test_read_only_viewer_sees_the_key_but_cannot_rotate_it(users, make_api_key):
    key = make_api_key(users["own_keys"], "seen")
    with pytest.raises(PermissionDenied, match="only the owner"):
        rotate_api_key(Principal(users["security_reader"]), key.id)
    assert ApiKey.objects.count() == 1


def test_user_without_api_key_privileges_cannot_rotate(users, make_api_key):
    key = make_api_key(users["own_keys"], "unseen")
    with pytest.raises(PermissionDenied):
        rotate_api_key(Principal(users["monitor_only"]), key.id)


def test_an_api_key_may_rotate_itself(users, make_api_key):
    key = make_api_key(users["own_keys"], "self")
    caller = authenticate_api_key(header(key.id, key.secret))

    assert rotate_api_key(caller, key.id).api_key.name == "self"


def test_an_api_key_may_not_rotate_another_key_whose_privileges_may_be_wider(users, make_api_key):
    narrow = make_api_key(
        users["own_keys"], "narrow", role_descriptors={"keys": {"cluster": ["manage_own_api_key"]}}
    )
    wide = make_api_key(users["own_keys"], "wide")
    caller = authenticate_api_key(header(narrow.id, narrow.secret))

    with pytest.raises(PermissionDenied, match=f"API key \\[{narrow.id}\\] may rotate only itself"):
        rotate_api_key(caller, wide.id)
    assert ApiKey.objects.get(pk=wide.id).invalidated is None


@pytest.mark.parametrize(
    ("state", "reason"), [("invalidated", "has been invalidated"), ("expired", "has expired")]
)
def test_invalidated_or_expired_key_cannot_be_rotated(users, make_api_key, state, reason):
    key = make_api_key(users["own_keys"], "dead", state=state)

    with pytest.raises(ValidationError) as caught:
        rotate_api_key(Principal(users["own_keys"]), key.id)

    assert caught.value.reason == f"api key [{key.id}] {reason} and cannot be rotated"
    assert ApiKey.objects.count() == 1


# All or nothing


def _fail(*args, **kwargs):
    raise RuntimeError("storage failed")


def test_failure_while_creating_the_replacement_leaves_the_old_key_valid_and_nothing_new(
    users, make_api_key, monkeypatch
):
    old = make_api_key(users["own_keys"], "ci")
    monkeypatch.setattr(services, "make_api_key_hash", _fail)

    with pytest.raises(RuntimeError):
        rotate_api_key(Principal(users["own_keys"]), old.id)

    assert list(ApiKey.objects.values_list("id", flat=True)) == [old.id]
    assert authenticate_api_key(header(old.id, old.secret)).api_key.id == old.id
    assert not AuditEvent.objects.filter(action="api_key_rotated").exists()


def test_failure_while_saving_the_replacement_leaves_the_old_key_valid(users, make_api_key, monkeypatch):
    old = make_api_key(users["own_keys"], "ci")
    monkeypatch.setattr(ApiKey, "save", _fail)

    with pytest.raises(RuntimeError):
        rotate_api_key(Principal(users["own_keys"]), old.id)

    assert ApiKey.objects.get().invalidated is None


# The lifetime policy


def test_key_without_expiration_cannot_be_rotated_once_keys_must_expire(users, make_api_key, settings):
    key = make_api_key(users["own_keys"], "forever")
    settings.API_KEY_MAX_EXPIRATION = "90d"

    with pytest.raises(ValidationError) as caught:
        rotate_api_key(Principal(users["own_keys"]), key.id)

    assert caught.value.reason == (
        f"api key [{key.id}] cannot be rotated: it has no expiration, and the maximum lifetime of an "
        "API key is [90d]; create a new key with an expiration instead"
    )
    assert ApiKey.objects.get().invalidated is None


def test_key_longer_lived_than_the_maximum_cannot_be_rotated(users, make_api_key, settings):
    key = make_api_key(users["own_keys"], "yearly", expiration="365d")
    settings.API_KEY_MAX_EXPIRATION = "90d"

    with pytest.raises(ValidationError, match=r"it has a lifetime of \[365d\]"):
        rotate_api_key(Principal(users["own_keys"]), key.id)


def test_key_within_the_maximum_lifetime_rotates(users, make_api_key, settings):
    settings.API_KEY_MAX_EXPIRATION = "90d"
    key = make_api_key(users["own_keys"], "quarterly", expiration="90d")

    new = rotate_api_key(Principal(users["own_keys"]), key.id).api_key

    assert new.expiration - new.created == timedelta(days=90)


# The REST endpoint


@pytest.fixture
def cron(make_user):
    return make_user("cron", "manage_own_api_key", password=PASSWORD)


def basic(username="cron"):
    return "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()


def rotate(client, key_id, authorization=None, secure=True, data="", **extra):
    """A bodiless POST, as curl and the Elasticsearch client send it: no Content-Type either."""
    return client.generic(
        "POST",
        f"/_security/api_key/{key_id}/_rotate",
        data,
        secure=secure,
        HTTP_AUTHORIZATION=authorization or basic(),
        **extra,
    )


def test_rotate_endpoint_returns_the_new_credential_once_and_the_old_id(client, cron, make_api_key):
    old = make_api_key(cron, "ci", expiration="7d")

    response = rotate(client, old.id)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "name", "api_key", "encoded", "expiration", "rotated_from"}
    assert (body["name"], body["rotated_from"]) == ("ci", old.id)
    assert base64.b64decode(body["encoded"]).decode() == f"{body['id']}:{body['api_key']}"
    assert body["expiration"] == int(ApiKey.objects.get(pk=body["id"]).expiration.timestamp() * 1000)
    assert response["Cache-Control"] == "no-store"
    assert response["X-Elastic-Product"] == "Elasticsearch"


def test_rotate_endpoint_leaves_out_expiration_for_a_key_that_never_expires(client, cron, make_api_key):
    old = make_api_key(cron, "forever")
    assert "expiration" not in rotate(client, old.id).json()


def test_rotate_endpoint_answers_not_found_for_a_key_the_caller_may_not_see(
    client, cron, users, make_api_key
):
    theirs = make_api_key(users["api_key_admin"], "theirs")

    response = rotate(client, theirs.id)

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "resource_not_found_exception"
    assert ApiKey.objects.get(pk=theirs.id).invalidated is None


def test_rotate_endpoint_refuses_an_invalidated_key_with_the_reason(client, cron, make_api_key):
    old = make_api_key(cron, "gone", state="invalidated")

    response = rotate(client, old.id)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "illegal_argument_exception"
    assert error["reason"] == f"api key [{old.id}] has been invalidated and cannot be rotated"


def test_rotate_endpoint_takes_an_expiration_from_the_owner(client, cron, make_api_key):
    old = make_api_key(cron, "ci", expiration="1d")

    response = rotate(client, old.id, data=json.dumps({"expiration": "7d"}), content_type="application/json")

    assert response.status_code == 200
    new = ApiKey.objects.get(pk=response.json()["id"])
    assert new.expiration - new.created == timedelta(days=7)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "other"}, "unknown field [name] in rotate api key request"),
        ({"expiration": 7}, "expiration must be a string such as [30d]"),
        ({"expiration": "soon"}, "failed to parse expiration [soon] as a time value"),
        ([], "request body must be a JSON object"),
    ],
)
def test_rotate_endpoint_refuses_a_body_other_than_an_expiration(client, cron, make_api_key, body, reason):
    old = make_api_key(cron, "ci")

    response = rotate(client, old.id, data=json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["reason"].startswith(reason)
    assert list(ApiKey.objects.values_list("id", "invalidated")) == [(old.id, None)]


def test_rotate_endpoint_refuses_an_expiration_from_the_key_itself(client, cron, make_api_key):
    old = make_api_key(cron, "self", expiration="1d")

    response = rotate(
        client, old.id, authorization=header(old.id, old.secret),
        data=json.dumps({"expiration": "365d"}), content_type="application/json",
    )

    assert response.status_code == 400
    assert "keeps its expiration when it rotates itself" in response.json()["error"]["reason"]
    assert list(ApiKey.objects.values_list("id", "invalidated")) == [(old.id, None)]


def test_rotate_endpoint_with_the_key_itself_as_credential(client, cron, make_api_key):
    old = make_api_key(cron, "self")

    response = rotate(client, old.id, authorization=header(old.id, old.secret))

    assert response.status_code == 200 and response.json()["rotated_from"] == old.id


def test_rotate_endpoint_needs_https(client, cron, make_api_key):
    old = make_api_key(cron, "ci")

    response = rotate(client, old.id, secure=False)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "feature_not_enabled_exception"
    assert ApiKey.objects.get().invalidated is None


def test_rotate_endpoint_answers_only_post(client, cron, make_api_key):
    old = make_api_key(cron, "ci")
    response = client.get(f"/_security/api_key/{old.id}/_rotate", secure=True, HTTP_AUTHORIZATION=basic())
    assert response.status_code == 405


def test_rotate_endpoint_is_described_as_keywards_own_in_the_openapi_document(client):
    document = client.get("/api/schema/", {"format": "json"}, secure=True).json()

    operation = document["paths"]["/_security/api_key/{api_key_id}/_rotate"]["post"]

    assert "Keyward's own" in operation["description"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "404"}
