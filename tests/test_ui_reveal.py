"""SPEC §6: a new key is shown once, on the page the create and rotate forms redirect to; reload,
Back, another browser or a late visit get a page saying so, and never a second key. The form's
role descriptors errors speak to a person."""

import re
import threading

import pytest
from django.core.cache import cache
from django.test import Client

from apikeys import reveal
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from tests.test_ui_api_keys import CREATE, details_url, text

pytestmark = pytest.mark.django_db


def create(client, name="reveal-me"):
    """POST the create form; returns the redirect."""
    posted = client.post(CREATE, {"name": name}, secure=True)
    assert posted.status_code == 303, posted.content
    return posted


def secret_on(response) -> str:
    return re.search(r'"api_key": "([^"]+)"', text(response)).group(1)


def test_create_redirects_to_a_page_that_shows_the_key_once(alice, client_for):
    client = client_for(alice)
    posted = create(client)
    key = ApiKey.objects.get()
    assert posted["Location"] == f"{details_url(key)}/reveal"
    assert "no-store" in posted["Cache-Control"]

    first = client.get(posted["Location"], secure=True)
    assert first.status_code == 200 and "no-store" in first["Cache-Control"]
    secret = secret_on(first)
    again = client.get(posted["Location"], secure=True)

    assert again.status_code == 410 and "no-store" in again["Cache-Control"]
    page = text(again)
    assert secret not in page
    assert "This API key was shown once" in page
    assert f'id="shown-once-details" href="{details_url(key)}"' in page
    assert 'id="shown-once-create"' in page
    assert ApiKey.objects.count() == 1


def test_the_cookie_that_opens_the_secret_is_strict_and_cleared_by_the_page(alice, client_for):
    client = client_for(alice)
    posted = create(client)
    cookie = posted.cookies[reveal.COOKIE]
    assert cookie["path"] == posted["Location"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["max-age"] == reveal.HELD_SECONDS

    shown = client.get(posted["Location"], secure=True)

    assert shown.cookies[reveal.COOKIE].value == ""
    assert shown.cookies[reveal.COOKIE]["path"] == posted["Location"]


def test_another_browser_of_the_same_user_neither_sees_nor_spoils_the_secret(alice, client_for):
    client, other = client_for(alice), client_for(alice)
    posted = create(client)

    assert other.get(posted["Location"], secure=True).status_code == 410

    assert client.get(posted["Location"], secure=True).status_code == 200


def test_another_user_with_the_cookie_cannot_open_it(alice, users, client_for):
    client = client_for(alice)
    posted = create(client)
    thief = client_for(users["superuser"])
    thief.cookies[reveal.COOKIE] = client.cookies[reveal.COOKIE].value

    response = thief.get(posted["Location"], secure=True)

    assert response.status_code == 410
    assert '"api_key"' not in text(response)


def test_an_expired_entry_says_the_key_was_shown(alice, client_for):
    client = client_for(alice)
    posted = create(client)
    cache.clear()  # what the entry's timeout does after HELD_SECONDS

    response = client.get(posted["Location"], secure=True)

    assert response.status_code == 410 and "This API key was shown once" in text(response)


def test_head_does_not_use_the_secret_up(alice, client_for):
    client = client_for(alice)
    posted = create(client)

    assert client.head(posted["Location"], secure=True).status_code == 405

    assert client.get(posted["Location"], secure=True).status_code == 200


def test_the_cache_holds_the_secret_sealed_only(alice, client_for, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    client = client_for(alice)
    posted = create(client)
    held = b"".join(value for value in cache._cache.values())  # locmem holds pickled values
    secret = secret_on(client.get(posted["Location"], secure=True))
    assert held and secret.encode() not in held
    cache.clear()


def test_of_two_views_at_once_one_shows_the_secret(alice):
    """The shared cache's delete decides: whoever removed the entry shows it, the other does not."""
    for round_ in range(40):
        cookie = reveal.hold("k" * 20, alice.pk, {"secret": f"s{round_}"})
        start, results = threading.Barrier(2), []

        def view():
            start.wait()
            results.append(reveal.take("k" * 20, alice.pk, cookie))

        threads = [threading.Thread(target=view) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results, key=bool) == [None, {"secret": f"s{round_}"}], round_


def test_rotation_redirects_and_shows_the_new_key_once(alice, make_api_key, client_for):
    old = make_api_key(alice, "rotated")
    client = client_for(alice)
    posted = client.post(f"{details_url(old)}/rotate", secure=True)
    new = ApiKey.objects.exclude(pk=old.pk).get()
    assert posted.status_code == 303 and posted["Location"] == f"{details_url(new)}/reveal"

    assert client.get(posted["Location"], secure=True).status_code == 200
    assert client.get(posted["Location"], secure=True).status_code == 410
    assert ApiKey.objects.count() == 2


def test_a_page_of_no_key_says_it_was_shown_and_links_to_the_list(alice, client_for):
    response = client_for(alice).get(f"{CREATE[: -len('create')]}{'x' * 20}/reveal", secure=True)
    assert response.status_code == 410
    assert 'id="shown-once-list"' in text(response)


@pytest.mark.parametrize(
    ("descriptors", "message"),
    [
        (
            '{"r": {"cluster": ["manage_apikey"]}}',
            "Unknown cluster privilege 'manage_apikey' (did you mean manage_api_key, manage_own_api_key",
        ),
        (
            '{"r": {"indices": [{"names": ["logs"], "privileges": ["raed", "wirte"]}]}}',
            "Unknown index privileges 'raed' (did you mean read?), 'wirte' (did you mean write?).",
        ),
    ],
)
def test_an_unknown_privilege_is_named_with_the_closest_known_ones(descriptors, message, alice, client_for):
    response = client_for(alice).post(CREATE, {"name": "x", "role_descriptors": descriptors}, secure=True)
    assert response.status_code == 400
    shown = re.search(r'id="role-descriptors-errors">([^<]*)<', text(response)).group(1)
    assert message in shown
    assert "cross_cluster_replication" not in shown  # not the whole catalog
    assert not ApiKey.objects.exists()


def test_the_api_keeps_elasticsearchs_words_for_an_unknown_privilege(alice, make_api_key):
    key = make_api_key(alice, "caller")
    credential = encode_credential(key.id, key.secret)
    response = Client().post(
        "/_security/api_key", {"name": "x", "role_descriptors": {"r": {"cluster": ["manage_apikey"]}}},
        content_type="application/json", secure=True, headers={"Authorization": f"ApiKey {credential}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["reason"].startswith(
        "unknown cluster privilege [manage_apikey]. a privilege must be either one of the predefined"
    )
