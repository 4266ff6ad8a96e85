"""Updating a key from its details page (SPEC §1, §6): only its owner, with manage_own_api_key, gets
the Update button; the page is filled in with the key as it is, previews privileges as the create
page does, and answers with the REST API's rules and messages."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.privileges import validate_role_descriptors
from apikeys.models import ApiKey
from tests.test_ui_api_keys import details_url, messages_of, text

pytestmark = pytest.mark.django_db

READ_LOGS = {"reader": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}


def update_url(key) -> str:
    return f"{details_url(key)}/update"


def textarea(page: str, name: str) -> str:
    return re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S).group(1)


def form(role_descriptors="", metadata="", expiration="", **extra) -> dict:
    return {"role_descriptors": role_descriptors, "metadata": metadata, "expiration": expiration, **extra}


def test_the_owner_gets_an_update_button_and_a_page_filled_in_with_the_key(alice, make_api_key, client_for):
    key = make_api_key(alice, "ci", role_descriptors=READ_LOGS, metadata={"team": "ops"}, expiration="30d")
    client = client_for(alice)

    details = text(client.get(details_url(key), secure=True))
    response = client.get(update_url(key), secure=True)

    assert f'id="update-api-key" href="{update_url(key)}"' in details
    assert response.status_code == 200
    page = text(response)
    assert "Update API key 'ci'" in page
    assert json.loads(textarea(page, "role_descriptors")) == validate_role_descriptors(READ_LOGS)
    assert json.loads(textarea(page, "metadata")) == {"team": "ops"}
    assert 'data-empty-hint="The key keeps its current expiration."' in page


@pytest.mark.parametrize("state", ["expired", "invalidated"])
def test_an_inactive_key_offers_no_update_and_the_page_sends_back_with_the_reason(
    state, alice, make_api_key, client_for
):
    key = make_api_key(alice, "old", state=state)
    client = client_for(alice)

    details = text(client.get(details_url(key), secure=True))
    response = client.post(update_url(key), form(metadata='{"x": 1}'), secure=True, follow=True)

    assert 'id="update-api-key"' not in details
    assert messages_of(response) == [f"API key 'old' cannot be updated: it is {state}."]
    assert ApiKey.objects.get().metadata == {}


@pytest.mark.parametrize("holder", ["superuser", "api_key_admin"])
def test_an_administrator_sees_no_update_button_and_may_not_update_someone_elses_key(
    holder, users, alice, make_api_key, client_for
):
    key = make_api_key(alice, "alices")
    client = client_for(users[holder])

    details = text(client.get(details_url(key), secure=True))
    response = client.post(update_url(key), form(metadata='{"x": 1}'), secure=True, follow=True)

    assert 'id="update-api-key"' not in details and 'id="invalidate-api-key"' in details
    refusal = "API key 'alices' cannot be updated: only its owner, alice, can update it."
    assert messages_of(response) == [refusal]
    assert ApiKey.objects.get().metadata == {}


def test_someone_elses_key_is_not_found_for_a_user_managing_own_keys(alice, bob, make_api_key, client_for):
    key = make_api_key(bob, "bobs")

    response = client_for(alice).post(update_url(key), form(metadata='{"x": 1}'), secure=True)

    assert response.status_code == 404
    assert ApiKey.objects.get().metadata == {}


def test_a_read_only_viewer_is_denied(users, alice, make_api_key, client_for):
    key = make_api_key(alice, "watched")

    response = client_for(users["security_reader"]).get(update_url(key), secure=True)

    assert response.status_code == 403
    assert "manage_own_api_key" in text(response)


def test_updating_sets_what_the_page_shows_and_a_new_expiration(alice, make_api_key, client_for):
    key = make_api_key(alice, "ci", role_descriptors=READ_LOGS, metadata={"team": "ops"}, expiration="1d")

    response = client_for(alice).post(
        update_url(key), form(metadata='{"team": "sre"}', expiration="7d"), secure=True, follow=True
    )

    assert messages_of(response) == ["Updated API key 'ci'."]
    after = ApiKey.objects.get()
    assert (after.name, after.role_descriptors, after.metadata) == ("ci", {}, {"team": "sre"})
    assert abs(after.expiration - timezone.now() - timedelta(days=7)) < timedelta(minutes=1)
    assert AuditEvent.objects.filter(action="api_key_updated", target="ci").count() == 1


def test_sending_the_page_unchanged_changes_nothing_and_says_so(alice, make_api_key, client_for):
    key = make_api_key(alice, "ci", metadata={"team": "ops"}, expiration="1d")

    response = client_for(alice).post(
        update_url(key), form(metadata=json.dumps({"team": "ops"})), secure=True, follow=True
    )

    assert messages_of(response) == ["API key 'ci' already was as you asked: nothing changed."]
    assert ApiKey.objects.get().expiration == key.expiration
    assert not AuditEvent.objects.filter(action="api_key_updated").exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (form(metadata='{"_x": 1}'), "metadata keys may not start with [_]"),
        (form(metadata="[1]"), "the value must be a JSON object"),
        (form(role_descriptors='{"r": {"cluster": ["bogus"]}}'), "bogus"),
        (form(expiration="soon"), "failed to parse expiration [soon] as a time value"),
    ],
)
def test_bad_fields_are_shown_next_to_the_field_and_change_nothing(
    alice, make_api_key, client_for, data, error
):
    key = make_api_key(alice, "ci", metadata={"team": "ops"})

    response = client_for(alice).post(update_url(key), data, secure=True)

    assert response.status_code == 400
    assert error in text(response)
    assert ApiKey.objects.get().metadata == {"team": "ops"}


def test_an_expiration_beyond_the_maximum_lifetime_is_refused(alice, make_api_key, client_for, settings):
    settings.API_KEY_MAX_EXPIRATION = "30d"
    key = make_api_key(alice, "ci", expiration="7d")

    response = client_for(alice).post(update_url(key), form(expiration="31d"), secure=True)

    assert response.status_code == 400
    assert "exceeds the maximum allowed lifetime of an API key [30d]" in text(response)
    assert ApiKey.objects.get().expiration == key.expiration


def test_preview_names_what_would_have_no_effect_and_saves_nothing(alice, make_api_key, client_for):
    key = make_api_key(alice, "ci")
    asked = json.dumps({"admin": {"cluster": ["manage_security"]}})

    response = client_for(alice).post(update_url(key), form(role_descriptors=asked, preview="1"), secure=True)

    assert response.status_code == 200
    assert 'id="no-effect-cluster"' in text(response) and "manage_security" in text(response)
    assert ApiKey.objects.get().role_descriptors == {}


def test_the_create_page_no_longer_says_a_key_cannot_change(alice, client_for):
    page = text(client_for(alice).get("/app/management/security/api_keys/create", secure=True))

    assert "cannot be modified" not in page
    assert "can be updated later" in page
