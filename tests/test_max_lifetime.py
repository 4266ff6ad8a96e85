"""The maximum lifetime policy: with ``API_KEY_MAX_EXPIRATION`` set, every new key must expire, and no
later than that. A key without an expiration is refused, never quietly given the maximum."""

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apikeys.models import ApiKey
from restapi.query.dsl import epoch_millis

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
MUST_EXPIRE = "API keys must expire: the maximum lifetime is [90d]; give an expiration of at most [90d]"


@pytest.fixture
def owner(make_user):
    return make_user("cron", "manage_own_api_key", password=PASSWORD)


@pytest.fixture
def ninety_days(settings):
    settings.API_KEY_MAX_EXPIRATION = "90d"


def create(client, body):
    return client.post(
        "/_security/api_key",
        data=json.dumps(body),
        content_type="application/json",
        secure=True,
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"cron:{PASSWORD}".encode()).decode(),
    )


def refusal(response) -> str:
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "illegal_argument_exception"
    return body["error"]["reason"]


def test_key_without_expiration_is_refused_when_keys_must_expire(client, owner, ninety_days):
    assert refusal(create(client, {"name": "forever"})) == MUST_EXPIRE
    assert not ApiKey.objects.exists()


def test_key_living_longer_than_the_maximum_is_refused(client, owner, ninety_days):
    reason = refusal(create(client, {"name": "too-long", "expiration": "91d"}))

    assert reason == "expiration [91d] exceeds the maximum allowed lifetime of an API key [90d]"
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("expiration", ["90d", "2160h", "1d"])
def test_key_living_at_most_the_maximum_is_created(client, owner, ninety_days, expiration):
    response = create(client, {"name": "fits", "expiration": expiration})

    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert response.json()["expiration"] == epoch_millis(key.expiration)


def test_without_the_setting_a_key_may_never_expire(client, owner, settings):
    settings.API_KEY_MAX_EXPIRATION = None

    response = create(client, {"name": "forever"})

    assert response.status_code == 200 and "expiration" not in response.json()
    assert ApiKey.objects.get().expiration is None


def test_create_command_refuses_a_key_without_expiration_with_the_same_message(owner, ninety_days):
    with pytest.raises(CommandError) as caught:
        call_command("create_api_key", "--user", "cron", "--name", "forever", stdout=StringIO())
    assert str(caught.value) == MUST_EXPIRE
    assert not ApiKey.objects.exists()
