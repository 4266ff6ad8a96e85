"""The API key service's audit trail: every create, invalidation, rotation, purge and failed
authentication is one AuditEvent saying who acted, in which realm and through which key; no
secret ever reaches the table or the log."""

import base64
import json
import logging
from datetime import timedelta

import pytest
from django.core import serializers
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.principals import Principal
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from apikeys.services import (
    authenticate_api_key,
    create_api_key,
    invalidate_api_keys,
    purge_api_keys,
    rotate_api_key,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def header(key_id, secret):
    return "ApiKey " + encode_credential(key_id, secret)


def events(action):
    return list(AuditEvent.objects.filter(action=action))


# Each event, and who it names


def test_key_creation_is_recorded_with_the_actor_and_realm(users):
    key = create_api_key(Principal(users["own_keys"]), name="ci").api_key

    [event] = events("api_key_created")
    assert (event.outcome, event.actor, event.actor_username, event.actor_realm) == (
        "success",
        users["own_keys"],
        "own_keys",
        "default_native",
    )
    assert (event.via_api_key, event.target, event.api_key_ids, event.count) == ("", "ci", [key.id], 1)


def test_key_created_through_an_api_key_names_that_key(users, make_api_key):
    parent = make_api_key(users["own_keys"], "parent")
    caller = authenticate_api_key(header(parent.id, parent.secret))

    child = create_api_key(caller, name="child", role_descriptors={"none": {}}).api_key

    event = AuditEvent.objects.get(action="api_key_created", target="child")
    assert (event.actor, event.via_api_key, event.api_key_ids) == (users["own_keys"], parent.id, [child.id])


def test_invalidation_is_recorded_with_the_ids_and_counts(users, make_api_key):
    fresh = make_api_key(users["own_keys"], "fresh")
    gone = make_api_key(users["own_keys"], "gone", state="invalidated")

    invalidate_api_keys(Principal(users["api_key_admin"]), ids=[fresh.id, gone.id])

    [event] = events("api_keys_invalidated")
    assert (event.actor, event.actor_username) == (users["api_key_admin"], "api_key_admin")
    assert (event.api_key_ids, event.count) == ([fresh.id], 1)
    assert event.detail == {"previously_invalidated": 1}


def test_invalidation_that_changes_nothing_is_not_recorded(users, make_api_key):
    gone = make_api_key(users["own_keys"], "gone", state="invalidated")
    invalidate_api_keys(Principal(users["own_keys"]), ids=[gone.id])
    assert events("api_keys_invalidated") == []


def test_rotation_through_an_api_key_is_recorded_with_that_key(users, make_api_key):
    key = make_api_key(users["own_keys"], "self")
    caller = authenticate_api_key(header(key.id, key.secret))

    new = rotate_api_key(caller, key.id).api_key

    [event] = events("api_key_rotated")
    assert (event.actor, event.actor_realm) == (users["own_keys"], "default_native")
    assert event.via_api_key == key.id
    assert event.api_key_ids == [key.id, new.id]


def test_purge_is_recorded_as_done_by_the_system(users, make_api_key):
    key = make_api_key(users["own_keys"], "old", state="invalidated")

    purge_api_keys(now=timezone.now() + timedelta(days=30))

    [event] = events("api_keys_purged")
    assert (event.actor, event.actor_username, event.actor_realm, event.via_api_key) == (None, "", "", "")
    assert (event.api_key_ids, event.count) == ([key.id], 1)


# Failed authentication: the real reason, never the secret


def refused(value):
    """The audit row of a request refused with this ``Authorization`` header, which is written
    where the throttle decides whether the refusal counts on its own."""
    response = Client().get("/_security/_authenticate", secure=True, HTTP_AUTHORIZATION=value)
    assert response.status_code == 401, response.content
    return AuditEvent.objects.filter(action="authentication_failed").get()


@pytest.mark.parametrize(
    ("state", "reason"),
    [("invalidated", "has been invalidated"), ("expired", "has expired")],
)
def test_failed_authentication_with_a_dead_key_records_why(users, make_api_key, state, reason):
    key = make_api_key(users["own_keys"], "dead", state=state)

    event = refused(header(key.id, key.secret))

    assert (event.outcome, event.actor, event.via_api_key) == ("failure", None, "")
    assert event.detail == {"reason": f"api key [{key.id}] {reason}", "api_key_id": key.id}


def test_failed_authentication_with_a_wrong_secret_records_why(users, make_api_key):
    key = make_api_key(users["own_keys"], "alive")
    event = refused(header(key.id, "A" * 22))
    assert event.detail == {"reason": f"api key [{key.id}] secret does not match", "api_key_id": key.id}


def test_failed_authentication_with_an_unknown_id_records_why(db):
    event = refused(header("Z" * 20, "A" * 22))
    assert event.detail == {"reason": f"api key [{'Z' * 20}] does not exist", "api_key_id": "Z" * 20}


def test_failed_authentication_of_a_disabled_owners_key_records_why(users, make_api_key):
    key = make_api_key(users["own_keys"], "disabled")
    users["own_keys"].enabled = False
    users["own_keys"].save(update_fields=["enabled"])

    event = refused(header(key.id, key.secret))

    assert event.detail["reason"] == f"api key [{key.id}] belongs to disabled user [own_keys]"


def test_malformed_header_is_recorded_without_an_id_or_the_header(db):
    value = "ApiKey " + base64.b64encode(b"no-colon-here").decode()

    event = refused(value)

    assert event.detail == {"reason": "decoded ApiKey credential has no ':' between id and secret"}
    assert "no-colon-here" not in str(event.detail) and value not in str(event.detail)


# No secret anywhere


def test_no_secret_reaches_the_audit_table_or_the_log_through_the_whole_lifecycle(
    client, make_user, make_api_key, caplog
):
    make_user("cron", "manage_own_api_key", password=PASSWORD)
    basic = "Basic " + base64.b64encode(f"cron:{PASSWORD}".encode()).decode()

    def call(method, path, authorization, body=None):
        data = json.dumps(body) if body is not None else ""
        return client.generic(
            method, path, data, content_type="application/json", secure=True, HTTP_AUTHORIZATION=authorization
        )

    def authenticates(authorization):
        return call("GET", "/_security/_authenticate", authorization).status_code == 200

    with caplog.at_level(logging.INFO, logger="keyward.audit"):
        created = call("POST", "/_security/api_key", basic, {"name": "ci"}).json()
        first = "ApiKey " + created["encoded"]
        assert authenticates(first)
        rotated = call("POST", f"/_security/api_key/{created['id']}/_rotate", first).json()
        assert not authenticates(first)
        second = "ApiKey " + rotated["encoded"]
        call("DELETE", "/_security/api_key", second, {"ids": [rotated["id"]]})
        assert not authenticates(second)
        purge_api_keys(now=timezone.now() + timedelta(days=30))

    rows = serializers.serialize("json", AuditEvent.objects.all())
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert actions == {
        "api_key_created",
        "api_key_rotated",
        "api_keys_invalidated",
        "authentication_failed",
        "api_keys_purged",
    }
    assert not ApiKey.objects.exists()
    for secret in (created["api_key"], created["encoded"], rotated["api_key"], rotated["encoded"]):
        assert secret not in rows
        assert secret not in caplog.text
