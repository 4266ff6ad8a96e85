"""SPEC §2, §5 and §6 on the API Keys pages: last use, expiry warnings, the retention note,
rotation, the maximum lifetime, the effective privileges preview and the overview chart."""

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.exceptions import AuthenticationFailed
from accounts.principals import Principal
from accounts.privileges import privileges_of, validate_role_descriptors
from apikeys.charts import WEEKS, api_key_overview, first_week
from apikeys.models import ApiKey
from apikeys.periods import in_words
from apikeys.preview import NoEffect, privileges_without_effect
from apikeys.services import authenticate_api_key, invalidate_api_keys, purge_api_keys, rotate_api_key
from tests.test_ui_api_keys import CREATE, INVALIDATE, LIST, details_url, messages_of, names, text

pytestmark = pytest.mark.django_db


def rotate_url(key) -> str:
    return f"{details_url(key)}/rotate"




def set_times(key, **fields) -> None:
    """Moves a key's times, given as ages (``last_used=timedelta(days=3)`` = three days ago)."""
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(**{name: now - age for name, age in fields.items()})


def badges(page: str) -> dict[str, str]:
    """``{key name: status label}`` as the table shows them."""
    rows = re.findall(r'api-key-name" href="[^"]+">([^<]+)</a>.*?status-badge[^"]*">([^<]+)<', page, re.S)
    return dict(rows)


# ---------------------------------------------------------------------------------------------
# Last used


def test_last_used_column_says_never_or_how_long_ago_with_the_exact_time_on_hover(
    alice, make_api_key, client_for
):
    used = make_api_key(alice, "used")
    make_api_key(alice, "unused")
    set_times(used, last_used=timedelta(days=3, hours=2))
    page = text(client_for(alice).get(LIST, secure=True))
    assert ">Last used</a>" in page
    stamp = ApiKey.objects.get(pk=used.pk).last_used
    exact = f'title="{stamp:%Y-%m-%d %H:%M:%S} UTC"'
    assert f'<time datetime="{stamp.isoformat()}" data-local-title {exact}>3 days ago</time>' in page
    assert '<td class="text-nowrap" data-label="Last used">Never</td>' in page


def test_a_key_used_by_a_request_shows_just_now(alice, make_api_key, client_for):
    key = make_api_key(alice, "busy")
    authenticate_api_key(f"ApiKey {base64.b64encode(f'{key.pk}:{key.secret}'.encode()).decode()}")
    assert "just now</time>" in text(client_for(alice).get(LIST, secure=True))


@pytest.fixture
def keys_by_last_use(alice, make_api_key):
    """Used 2 days ago, 40 days ago, never (x2); created 100 days ago so that "never" is old."""
    keys = {name: make_api_key(alice, name) for name in ("recent", "stale", "never-a", "never-b")}
    for key in keys.values():
        set_times(key, created=timedelta(days=100))
    set_times(keys["recent"], last_used=timedelta(days=2))
    set_times(keys["stale"], last_used=timedelta(days=40))
    return keys


@pytest.mark.parametrize(
    ("sort", "used_first"),
    [("last_used", ["stale", "recent"]), ("-last_used", ["recent", "stale"])],
)
def test_last_used_sorts_both_ways_with_never_used_keys_last(
    sort, used_first, alice, keys_by_last_use, client_for
):
    shown = names(client_for(alice).get(LIST, {"sort": sort}, secure=True))
    assert shown[:2] == used_first
    assert sorted(shown[2:]) == ["never-a", "never-b"]


@pytest.mark.parametrize(
    ("unused", "expected"),
    [
        ("", ["never-a", "never-b", "recent", "stale"]),
        ("7", ["never-a", "never-b", "stale"]),
        ("30", ["never-a", "never-b", "stale"]),
        ("90", ["never-a", "never-b"]),
        # Refused rather than ignored: a filter left out would select more keys than asked for.
        ("no-such-choice", []),
    ],
)
def test_unused_filter_keeps_keys_not_used_since_the_cutoff(
    unused, expected, alice, keys_by_last_use, client_for
):
    response = client_for(alice).get(LIST, {"unused": unused}, secure=True)
    assert response.status_code == (400 if unused == "no-such-choice" else 200)
    assert sorted(names(response)) == expected


def test_a_never_used_key_younger_than_the_cutoff_is_not_unused_yet(alice, make_api_key, client_for):
    make_api_key(alice, "brand-new")
    assert names(client_for(alice).get(LIST, {"unused": "7"}, secure=True)) == []


def test_unused_filter_offers_7_30_and_90_days_and_survives_an_invalidation(
    alice, keys_by_last_use, client_for
):
    client = client_for(alice)
    page = text(client.get(LIST, secure=True))
    for days in (7, 30, 90):
        assert f'<option value="{days}">Unused for {days} days</option>' in page
    key = keys_by_last_use["stale"]
    response = client.post(INVALIDATE, {"id": [key.pk], "back": "unused=30&sort=-last_used"}, secure=True)
    assert response["Location"] == f"{LIST}?unused=30&sort=-last_used"


def test_details_show_when_the_key_was_last_used(alice, keys_by_last_use, client_for):
    page = text(client_for(alice).get(details_url(keys_by_last_use["stale"]), secure=True))
    assert re.search(
        r'id="last-used"><time [^>]+>1 month ago</time> '
        r'<span[^>]*>\(<time [^>]+>\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>\)',
        page,
    )
    never = text(client_for(alice).get(details_url(keys_by_last_use["never-a"]), secure=True))
    assert 'id="last-used">Never<' in never


# ---------------------------------------------------------------------------------------------
# Expiry warnings and retention


def test_expires_in_n_days_follows_the_expiry_warning_setting(alice, make_api_key, client_for, settings):
    make_api_key(alice, "ten-days", expiration="10d")
    make_api_key(alice, "three-days", expiration="3d")
    client = client_for(alice)
    assert badges(text(client.get(LIST, secure=True))) == {
        "ten-days": "Active",
        "three-days": "Expires in 3 days",
    }
    settings.API_KEY_EXPIRY_WARNING = "14d"
    shown = badges(text(client.get(LIST, secure=True)))
    assert shown == {"ten-days": "Expires in 10 days", "three-days": "Expires in 3 days"}
    settings.API_KEY_EXPIRY_WARNING = "12h"
    shown = badges(text(client.get(LIST, secure=True)))
    assert shown == {"ten-days": "Active", "three-days": "Active"}


def test_a_key_expiring_within_a_day_expires_in_1_day(alice, make_api_key, client_for):
    make_api_key(alice, "hours-left", expiration="5h")
    assert badges(text(client_for(alice).get(LIST, secure=True))) == {"hours-left": "Expires in 1 day"}


@pytest.mark.parametrize(("setting", "words"), [("7d", "7 days"), ("1d", "1 day"), ("36h", "36 hours")])
def test_list_page_states_the_retention_period_in_words(
    setting, words, alice, make_api_key, client_for, settings
):
    settings.API_KEY_RETENTION_PERIOD = setting
    make_api_key(alice, "any")
    page = text(client_for(alice).get(LIST, secure=True))
    assert f'id="retention-note">Invalidated and expired keys are deleted after {words}.</p>' in page


def test_retention_note_shows_on_the_empty_page_and_in_the_invalidation_confirmation(
    alice, make_api_key, client_for
):
    client = client_for(alice)
    assert "Invalidated and expired keys are deleted after 7 days." in text(client.get(LIST, secure=True))
    key = make_api_key(alice, "doomed")
    assert "invalidated keys are\n            deleted after 7 days." in text(
        client.get(INVALIDATE, {"id": [key.pk]}, secure=True)
    )


@pytest.mark.parametrize(
    ("period", "words"),
    [
        (timedelta(days=90), "90 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(seconds=90), "90 seconds"),
        (timedelta(milliseconds=1500), "1500 milliseconds"),
        (timedelta(microseconds=3), "3 microseconds"),
    ],
)
def test_periods_are_said_in_the_largest_unit_that_states_them_exactly(period, words):
    assert in_words(period) == words


# ---------------------------------------------------------------------------------------------
# Rotate


def encoded_of(page: str) -> str:
    return re.search(r'id="key-encoded">([^<]+)<', page).group(1)


def test_details_of_an_own_active_key_offer_rotate(alice, make_api_key, client_for):
    key = make_api_key(alice, "rotatable")
    page = text(client_for(alice).get(details_url(key), secure=True))
    assert f'id="rotate-api-key" href="{rotate_url(key)}"' in page


@pytest.mark.parametrize("state", ["expired", "invalidated"])
def test_details_of_an_inactive_key_offer_no_rotate(state, alice, make_api_key, client_for):
    key = make_api_key(alice, "inactive", state=state)
    assert 'id="rotate-api-key"' not in text(client_for(alice).get(details_url(key), secure=True))


def test_read_only_viewer_gets_no_rotate_button_and_may_not_rotate(users, alice, make_api_key, client_for):
    key = make_api_key(alice, "watched")
    client = client_for(users["security_reader"])
    assert 'id="rotate-api-key"' not in text(client.get(details_url(key), secure=True))
    for method in ("get", "post"):
        response = getattr(client, method)(rotate_url(key), secure=True)
        assert response.status_code == 403
        assert "You need permission to manage API keys" in text(response)
    assert ApiKey.objects.get().invalidated is None


def test_confirmation_explains_rotation_and_changes_nothing(alice, make_api_key, client_for):
    key = make_api_key(alice, "nightly", expiration="30d")
    response = client_for(alice).get(rotate_url(key), secure=True)
    assert response.status_code == 200
    page = text(response)
    assert "Rotate API key 'nightly'?" in page
    assert (
        "A new key with the same name, privileges and lifetime replaces this one; "
        "the old key stops working immediately."
    ) in page
    assert re.search(r'id="rotate-lifetime">30 days, from now<', page)
    assert 'name="csrfmiddlewaretoken"' in page
    assert ApiKey.objects.get().invalidated is None


def test_rotation_reveals_the_new_key_once_and_the_old_one_stops_working(alice, make_api_key, client_for):
    descriptors = {"reader": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}
    old = make_api_key(alice, "ci", expiration="30d", role_descriptors=descriptors, metadata={"team": "ci"})
    client = client_for(alice)
    posted = client.post(rotate_url(old), secure=True)
    assert posted.status_code == 303 and posted["Location"].endswith("/reveal")
    response = client.get(posted["Location"], secure=True)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = text(response)
    assert "Rotated API key 'ci'" in page
    assert f"This key replaced key <code>{old.pk}</code>, which no longer works." in page
    assert "Copy this key now. You will not be able to view it again" in page
    assert client.get(posted["Location"], secure=True).status_code == 410
    encoded = encoded_of(page)
    new = authenticate_api_key(f"ApiKey {encoded}").api_key
    assert new.pk != old.pk
    assert (new.name, new.owner, new.metadata) == ("ci", alice, {"team": "ci"})
    assert new.role_descriptors == ApiKey.objects.get(pk=old.pk).role_descriptors
    assert new.expiration - new.created == timedelta(days=30)
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(f"ApiKey {base64.b64encode(f'{old.pk}:{old.secret}'.encode()).decode()}")
    assert ApiKey.objects.get(pk=old.pk).invalidated is not None


def test_rotation_with_a_chosen_expiration(alice, make_api_key, client_for):
    old = make_api_key(alice, "weekly", expiration="1d")
    client = client_for(alice)
    posted = client.post(rotate_url(old), {"expiration": "7d"}, secure=True)
    response = client.get(posted["Location"], secure=True)
    assert response.status_code == 200
    new = authenticate_api_key(f"ApiKey {encoded_of(text(response))}").api_key
    assert new.expiration - new.created == timedelta(days=7)


@pytest.mark.parametrize(
    ("expiration", "error"),
    [("soon", "failed to parse expiration [soon] as a time value"), ("-1d", "expiration must be positive")],
)
def test_rotation_with_a_bad_expiration_says_why_and_changes_nothing(
    alice, make_api_key, client_for, expiration, error
):
    old = make_api_key(alice, "weekly", expiration="1d")
    response = client_for(alice).post(rotate_url(old), {"expiration": expiration}, secure=True)
    assert response.status_code == 400
    assert error in text(response) and 'id="rotate-expiration-errors"' in text(response)
    assert list(ApiKey.objects.values_list("pk", "invalidated")) == [(old.pk, None)]


def test_administrator_may_invalidate_but_not_rotate_someone_elses_key(
    users, alice, make_api_key, client_for
):
    key = make_api_key(alice, "shared")
    client = client_for(users["api_key_admin"])
    details = text(client.get(details_url(key), secure=True))
    assert 'id="rotate-api-key"' not in details
    response = client.post(rotate_url(key), secure=True, follow=True)
    assert "only the owner" in text(response)
    assert ApiKey.objects.get().invalidated is None and ApiKey.objects.count() == 1


def test_manage_own_api_key_user_cannot_rotate_someone_elses_key(alice, bob, make_api_key, client_for):
    bobs = make_api_key(bob, "bobs")
    client = client_for(alice)
    for method in ("get", "post"):
        response = getattr(client, method)(rotate_url(bobs), secure=True)
        assert response.status_code == 404
        assert "bobs" not in text(response)
    assert ApiKey.objects.get().invalidated is None and ApiKey.objects.count() == 1


@pytest.mark.parametrize("key_id", ["short", "x" * 300, "ABCDEFGHIJKLMNOPQRS%00", "ABCDEFGHIJKLMNOPQRST"])
def test_rotating_a_malformed_or_unknown_id_is_not_found(key_id, alice, make_api_key, client_for):
    make_api_key(alice, "mine")
    response = client_for(alice).post(f"{LIST}/{key_id}/rotate", secure=True)
    assert response.status_code == 404
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().invalidated is None


def test_rotation_without_a_csrf_token_is_refused(alice, make_api_key, client_for):
    key = make_api_key(alice, "guarded")
    response = client_for(alice, enforce_csrf_checks=True).post(rotate_url(key), secure=True)
    assert response.status_code == 403
    assert ApiKey.objects.get().invalidated is None


@pytest.mark.parametrize("state", ["expired", "invalidated"])
def test_rotating_an_inactive_key_says_why_on_the_details_page(state, alice, make_api_key, client_for):
    key = make_api_key(alice, "done", state=state)
    client = client_for(alice)
    confirmation = client.get(rotate_url(key), secure=True)
    assert confirmation["Location"] == details_url(key)
    assert messages_of(client.get(details_url(key), secure=True)) == [
        f"API key 'done' cannot be rotated: it is {state}."
    ]
    response = client.post(rotate_url(key), secure=True)
    assert response["Location"] == details_url(key)
    [message] = messages_of(client.get(details_url(key), secure=True))
    assert message.startswith("Could not rotate API key 'done': ") and "cannot be rotated" in message
    assert ApiKey.objects.count() == 1


def test_rotation_refused_by_the_lifetime_policy_says_why_on_the_details_page(
    alice, make_api_key, client_for, settings
):
    key = make_api_key(alice, "forever")
    settings.API_KEY_MAX_EXPIRATION = "90d"
    client = client_for(alice)
    response = client.post(rotate_url(key), secure=True)
    assert response["Location"] == details_url(key)
    [message] = messages_of(client.get(details_url(key), secure=True))
    assert "cannot be rotated" in message and "[90d]" in message
    assert ApiKey.objects.get().invalidated is None


def test_rotation_over_plain_http_shows_the_https_page_and_changes_nothing(alice, make_api_key, client_for):
    key = make_api_key(alice, "plain")
    response = client_for(alice).post(rotate_url(key), secure=False)
    assert response.status_code == 403
    assert "API keys require HTTPS" in text(response)
    assert ApiKey.objects.get().invalidated is None


# ---------------------------------------------------------------------------------------------
# Maximum lifetime


def test_without_a_maximum_lifetime_the_expiration_is_optional(alice, client_for):
    page = text(client_for(alice).get(CREATE, secure=True))
    assert '(optional)</span></label>\n          <input type="text" name="expiration"' in page
    assert "must expire within" not in page and "data-max-lifetime-ms" not in page


def test_with_a_maximum_lifetime_the_page_says_keys_must_expire_within_it(alice, client_for, settings):
    settings.API_KEY_MAX_EXPIRATION = "90d"
    page = text(client_for(alice).get(CREATE, secure=True))
    assert "API keys must expire within 90 days" in page
    assert 'data-max-lifetime-ms="7776000000" data-max-lifetime-words="90 days"' in page
    assert 'for="id_expiration">Expiration</label>' in page


@pytest.mark.parametrize(
    ("expiration", "message"),
    [
        ("", "API keys must expire"),
        ("91d", "expiration [91d] exceeds the maximum allowed lifetime of an API key [90d]"),
    ],
)
def test_with_a_maximum_lifetime_the_servers_refusal_shows_next_to_the_expiration(
    expiration, message, alice, client_for, settings
):
    settings.API_KEY_MAX_EXPIRATION = "90d"
    response = client_for(alice).post(CREATE, {"name": "bounded", "expiration": expiration}, secure=True)
    assert response.status_code == 400
    shown = re.search(r'id="expiration-errors">([^<]*)<', text(response)).group(1)
    assert message in shown
    assert not ApiKey.objects.exists()


def test_with_a_maximum_lifetime_a_key_within_it_is_created(alice, client_for, settings):
    settings.API_KEY_MAX_EXPIRATION = "90d"
    response = client_for(alice).post(CREATE, {"name": "bounded", "expiration": "90d"}, secure=True)
    assert response.status_code == 303
    key = ApiKey.objects.get()
    assert key.expiration - key.created == timedelta(days=90)


# ---------------------------------------------------------------------------------------------
# Effective privileges preview


OWNER_ROLE = {
    "owner": {
        "cluster": ["manage_own_api_key", "monitor"],
        "indices": [
            {"names": ["logs-*"], "privileges": ["read", "write"]},
            {"names": ["metrics-app"], "privileges": ["read"]},
        ],
    }
}


def no_effect(requested: dict, owner: dict = OWNER_ROLE) -> NoEffect:
    return privileges_without_effect(validate_role_descriptors(requested), privileges_of(owner))


def test_preview_names_exactly_the_requested_privileges_the_owner_lacks():
    requested = {
        "a": {
            "cluster": ["monitor", "manage_security", "monitor_ml"],
            "indices": [{"names": ["logs-*", "metrics-*"], "privileges": ["read", "delete_index"]}],
        },
        "b": {"cluster": ["manage_security"], "indices": [{"names": "metrics-app", "privileges": ["read"]}]},
    }
    assert no_effect(requested) == NoEffect(
        # monitor implies monitor_ml; the second role's manage_security is listed once.
        cluster=["manage_security"],
        indices={"logs-*": ["delete_index"], "metrics-*": ["read", "delete_index"]},
    )


def test_preview_applies_implications_and_patterns_the_owner_holds():
    requested = {
        "narrow": {
            "cluster": ["manage_own_api_key"],
            # write implies index and create_doc; logs-* covers logs-app-* and logs-2024.
            "indices": [
                {"names": ["logs-app-*", "logs-2024"], "privileges": ["index", "create_doc", "read"]}
            ],
        }
    }
    assert not no_effect(requested)
    assert no_effect({"wide": {"indices": [{"names": ["*"], "privileges": ["read"]}]}}).indices == {
        "*": ["read"]
    }
    superuser = {"su": {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"]}]}}
    assert not no_effect({"any": {"cluster": ["manage_security"]}}, owner=superuser)


def test_preview_lists_what_would_have_no_effect_and_creates_nothing(make_user, client_for):
    carol = make_user("carol", "manage_own_api_key", indices=[{"names": ["logs-*"], "privileges": ["read"]}])
    descriptors = (
        '{"r": {"cluster": ["manage_own_api_key", "manage_security"],'
        ' "indices": [{"names": ["logs-*", "secret-*"], "privileges": ["read", "write"]}]}}'
    )
    response = client_for(carol).post(
        CREATE,
        {"name": "", "expiration": "soon", "role_descriptors": descriptors, "preview": "1"},
        secure=True,
    )
    assert response.status_code == 200
    page = text(response)
    assert "These parts will have no effect:" in page
    assert re.search(r'id="no-effect-cluster">Cluster privileges <code>manage_security</code></li>', page)
    items = re.findall(r'class="no-effect-index">Index privileges (.*?) on <code[^>]*>([^<]+)</code>', page)
    assert items == [("<code>write</code>", "logs-*"), ("<code>read</code>, <code>write</code>", "secret-*")]
    # Nothing is created, and the other fields are kept as typed without complaint.
    assert not ApiKey.objects.exists()
    assert "api key name is required" not in page and 'id="expiration-errors"' not in page
    assert 'value="soon"' in page


@pytest.mark.parametrize(
    ("descriptors", "shown"),
    [
        ("", "No role descriptors"),
        ('{"r": {"cluster": ["manage_own_api_key"]}}', "Every requested privilege takes effect"),
    ],
)
def test_preview_without_excess_says_so(descriptors, shown, alice, client_for):
    response = client_for(alice).post(
        CREATE, {"name": "x", "role_descriptors": descriptors, "preview": "1"}, secure=True
    )
    assert response.status_code == 200
    assert shown in text(response) and "These parts will have no effect" not in text(response)
    assert not ApiKey.objects.exists()


def test_preview_shows_the_application_privileges_asked_for(alice, client_for):
    descriptors = (
        '{"a": {"applications": [{"application": "myapp", "privileges": ["read", "data:write/*"],'
        ' "resources": ["invoice/*"]}]},'
        ' "b": {"applications": [{"application": "kibana-.kibana", "privileges": ["all"],'
        ' "resources": ["*"]}]}}'
    )
    response = client_for(alice).post(
        CREATE, {"name": "x", "role_descriptors": descriptors, "preview": "1"}, secure=True
    )

    assert response.status_code == 200
    items = re.findall(r'class="requested-application">(.*?)</li>', text(response))
    plain = [re.sub(r"<[^>]+>", "", item) for item in items]
    assert plain == ["myapp: read, data:write/* on invoice/*", "kibana-.kibana: all on *"]
    assert not ApiKey.objects.exists()


def test_preview_names_the_application_privileges_the_owner_lacks_through_the_stored_definitions():
    owner = {
        "o": {"applications": [{"application": "myapp", "privileges": ["read"], "resources": ["doc/*"]}]}
    }
    definitions = {"myapp": {"read": ["data:read/*"], "write": ["data:write/*"]}}
    requested = {
        "k": {
            "applications": [
                # read is held on doc/*, and so is an action it covers; write is not, nor anything on img/1.
                {
                    "application": "myapp",
                    "privileges": ["read", "data:read/x", "write"],
                    "resources": ["doc/1", "img/1"],
                },
                # Another application the owner has nothing of; a pattern over applications gets no verdict.
                {"application": "other", "privileges": ["read"], "resources": ["*"]},
                {"application": "my*", "privileges": ["write"], "resources": ["*"]},
            ]
        }
    }

    requested, owner = validate_role_descriptors(requested), privileges_of(owner)
    beyond = privileges_without_effect(requested, owner, definitions)

    assert beyond.applications == [
        {"application": "myapp", "resource": "doc/1", "privileges": ["write"]},
        {"application": "myapp", "resource": "img/1", "privileges": ["read", "data:read/x", "write"]},
        {"application": "other", "resource": "*", "privileges": ["read"]},
    ]
    assert not (beyond.cluster or beyond.indices)


def test_preview_page_lists_application_privileges_without_effect(make_user, client_for):
    from application_privileges.models import ApplicationPrivilege

    ApplicationPrivilege.objects.create(application="myapp", name="read", actions=["data:read/*"])
    carol = make_user("carol", "manage_own_api_key")
    role = carol.roles.first()
    role.applications = [{"application": "myapp", "privileges": ["read"], "resources": ["*"]}]
    role.save()
    descriptors = (
        '{"r": {"applications": [{"application": "myapp", "privileges": ["read", "data:write/x"],'
        ' "resources": ["doc/1"]}]}}'
    )

    response = client_for(carol).post(
        CREATE, {"name": "x", "role_descriptors": descriptors, "preview": "1"}, secure=True
    )

    assert response.status_code == 200
    items = re.findall(r'class="no-effect-application">(.*?)</li>', text(response))
    assert [re.sub(r"<[^>]+>", "", item) for item in items] == [
        "Application privileges data:write/x of myapp on doc/1"
    ]
    assert not ApiKey.objects.exists()


def test_preview_of_invalid_role_descriptors_shows_the_error_next_to_them(alice, client_for):
    response = client_for(alice).post(
        CREATE, {"name": "", "role_descriptors": '{"r": {"cluster": ["fly"]}}', "preview": "1"}, secure=True
    )
    assert response.status_code == 400
    page = text(response)
    assert re.search(r"id=\"role-descriptors-errors\">[^<]*Unknown cluster privilege 'fly'", page)
    assert 'id="privileges-preview"' not in page and 'id="name-errors"' not in page


def test_the_create_button_comes_before_the_preview_button_so_enter_creates(alice, client_for):
    page = text(client_for(alice).get(CREATE, secure=True))
    assert page.index('id="create-submit"') < page.index('id="preview-submit"')


# ---------------------------------------------------------------------------------------------
# Overview chart


def chart_counts(page: str) -> dict[str, int]:
    return {state: int(count) for state, count in re.findall(r'data-state="(\w+)" data-count="(\d+)"', page)}


def week_counts(page: str) -> dict[str, int]:
    return {week: int(count) for week, count in re.findall(r'data-week="([\d-]+)" data-count="(\d+)"', page)}


@pytest.fixture
def keys_in_every_state(alice, bob, make_api_key):
    for owner in (alice, bob):
        prefix = owner.username
        make_api_key(owner, f"{prefix}-active-1")
        make_api_key(owner, f"{prefix}-active-2", expiration="60d")
        make_api_key(owner, f"{prefix}-expiring", expiration="2d")
        make_api_key(owner, f"{prefix}-expired", state="expired")
        make_api_key(owner, f"{prefix}-invalidated", state="invalidated")
    make_api_key(bob, "bob-invalidated-2", state="invalidated")


def test_overview_counts_the_keys_in_each_state_that_the_viewer_may_see(
    users, alice, keys_in_every_state, client_for
):
    own = text(client_for(alice).get(LIST, secure=True))
    assert chart_counts(own) == {"active": 2, "expiring": 1, "expired": 1, "invalidated": 1}
    assert "5 API keys: 2 active · 1 expiring soon · 1 expired · 1 invalidated" in own
    every = text(client_for(users["security_reader"]).get(LIST, secure=True))
    assert chart_counts(every) == {"active": 4, "expiring": 2, "expired": 2, "invalidated": 3}


def test_overview_counts_do_not_follow_the_table_filters(alice, keys_in_every_state, client_for):
    page = text(client_for(alice).get(LIST, {"q": "nothing-matches"}, secure=True))
    assert chart_counts(page) == {"active": 2, "expiring": 1, "expired": 1, "invalidated": 1}


def test_overview_expiring_soon_follows_the_expiry_warning_setting(
    alice, keys_in_every_state, client_for, settings
):
    settings.API_KEY_EXPIRY_WARNING = "90d"
    page = text(client_for(alice).get(LIST, secure=True))
    assert chart_counts(page) == {"active": 1, "expiring": 2, "expired": 1, "invalidated": 1}


@pytest.fixture
def cached_overviews(settings):
    """The overview cache as deployed, in a cache of this test's own."""
    settings.API_KEY_OVERVIEW_MAX_AGE = "1m"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}
    }


def test_overview_is_cached_per_scope_until_a_key_changes(
    users, alice, keys_in_every_state, client_for, make_api_key, cached_overviews,
    django_capture_on_commit_callbacks,
):
    reader, own = client_for(users["security_reader"]), client_for(alice)
    assert chart_counts(text(reader.get(LIST, secure=True)))["active"] == 4
    assert chart_counts(text(own.get(LIST, secure=True)))["active"] == 2
    # A row written behind the services' back is not seen until the cache forgets: it is cached.
    ApiKey.objects.filter(name="bob-active-1").update(invalidated=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert chart_counts(text(reader.get(LIST, secure=True)))["active"] == 4
    assert not [query for query in queries if "COUNT(" in query["sql"].upper()]
    # Every change through the services is seen at once, by every scope, once it commits.
    with django_capture_on_commit_callbacks(execute=True):
        make_api_key(alice, "alice-active-3")
    assert chart_counts(text(reader.get(LIST, secure=True)))["active"] == 4
    assert chart_counts(text(own.get(LIST, secure=True)))["active"] == 3


def test_overview_cache_is_forgotten_by_invalidation_rotation_and_purge(
    users, alice, keys_in_every_state, client_for, cached_overviews, django_capture_on_commit_callbacks
):
    reader = client_for(users["security_reader"])

    def counts():
        return chart_counts(text(reader.get(LIST, secure=True)))

    def committed(write):
        with django_capture_on_commit_callbacks(execute=True):
            return write()

    before = counts()
    first = ApiKey.objects.get(name="alice-active-1")
    committed(lambda: invalidate_api_keys(Principal(alice), ids=[first.pk]))
    after_invalidation = counts()
    assert after_invalidation["invalidated"] == before["invalidated"] + 1
    # Uncommitted, a write leaves the cached overview as it was.
    rotate_api_key(Principal(alice), ApiKey.objects.get(name="alice-active-2").pk)
    assert counts() == after_invalidation
    purged = committed(lambda: purge_api_keys(now=timezone.now() + timedelta(days=30))).deleted
    assert purged and counts().get("invalidated", 0) == 0


def test_overview_counts_keys_created_per_week_for_the_last_twelve_weeks(
    alice, bob, make_api_key, client_for
):
    now = timezone.now()
    monday = first_week(now, weeks=1)
    ages = {
        "this-week": now - monday,
        "last-week-a": timedelta(days=7),
        "last-week-b": timedelta(days=7),
        "ten-weeks": timedelta(weeks=10),
        "too-old": timedelta(weeks=13),
    }
    for name, age in ages.items():
        set_times(make_api_key(alice, name), created=age)
    set_times(make_api_key(bob, "not-alices"), created=timedelta(days=7))
    weeks = week_counts(text(client_for(alice).get(LIST, secure=True)))
    assert len(weeks) == WEEKS
    assert list(weeks) == sorted(weeks)
    assert list(weeks)[-1] == f"{monday:%Y-%m-%d}"
    assert sum(weeks.values()) == 4
    assert weeks[f"{monday - timedelta(weeks=1):%Y-%m-%d}"] == 2
    assert weeks[f"{monday - timedelta(weeks=10):%Y-%m-%d}"] == 1
    assert weeks[f"{monday:%Y-%m-%d}"] == 1


def test_weeks_start_on_monday_and_a_sunday_key_belongs_to_the_week_before(alice, make_api_key):
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday
    assert first_week(now) == datetime(2026, 9, 7, tzinfo=UTC)
    sunday = make_api_key(alice, "sunday")
    monday = make_api_key(alice, "monday")
    ApiKey.objects.filter(pk=sunday.pk).update(created=datetime(2026, 11, 22, 23, 59, tzinfo=UTC))
    ApiKey.objects.filter(pk=monday.pk).update(created=datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    weeks = {bar.week.isoformat(): bar.count for bar in api_key_overview(ApiKey.objects.all(), now).weeks}
    assert weeks["2026-11-16"] == 1 and weeks["2026-11-23"] == 1


def test_overview_bars_scale_to_the_busiest_week_and_the_status_bar_fills_its_width(alice, make_api_key):
    for number in range(4):
        make_api_key(alice, f"key-{number}")
    make_api_key(alice, "gone", state="invalidated")
    overview = api_key_overview(ApiKey.objects.all())
    busiest = max(overview.weeks, key=lambda bar: bar.count)
    assert busiest.count == 5 and busiest.y + busiest.height == overview.baseline
    assert all(bar.height == 1 for bar in overview.weeks if not bar.count)
    assert round(sum(state.width for state in overview.states), 6) == 100
    active, _, _, invalidated = overview.states
    assert active.width == pytest.approx(80) and invalidated.x == pytest.approx(80)


def test_an_empty_page_has_no_overview(alice, client_for):
    assert 'id="overview"' not in text(client_for(alice).get(LIST, secure=True))


def test_overview_is_inline_svg_without_style_attributes(alice, keys_in_every_state, client_for):
    page = text(client_for(alice).get(LIST, secure=True))
    overview = page[page.index('id="overview"') : page.index("</details>")]
    assert "<svg" in overview and "style=" not in overview and "<script" not in overview
