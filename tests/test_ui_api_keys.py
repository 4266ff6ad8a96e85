"""SPEC §6 and §7: the API Keys pages — list, filters, sorting, pagination, invalidation, create,
details — as each privilege of §2 sees them, over HTTPS and over plain HTTP."""

import base64
import html
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.privileges import validate_role_descriptors
from apikeys.forms import ROLE_DESCRIPTOR_BOILERPLATES
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

LIST = "/app/management/security/api_keys"
CREATE = f"{LIST}/create"
INVALIDATE = f"{LIST}/invalidate"
NAME_LINK = re.compile(r'class="fw-semibold api-key-name" href="[^"]+">([^<]*)</a>')
ADMINS = ["superuser", "security_admin", "api_key_admin"]


def details_url(key) -> str:
    return f"{LIST}/{key.pk}"


def names(response) -> list[str]:
    """The key names in the table, in the order shown."""
    return [html.unescape(name) for name in NAME_LINK.findall(response.content.decode())]


def text(response) -> str:
    return html.unescape(response.content.decode())


def post_and_follow(client, url, data):
    """POST over HTTPS, then GET where it redirects to (over HTTPS too): (location, page)."""
    response = client.post(url, data, secure=True)
    assert response.status_code == 302, response.status_code
    return response["Location"], client.get(response["Location"], secure=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]




@pytest.fixture
def keys_of_two_owners(alice, bob, make_api_key):
    return {
        "alice-active": make_api_key(alice, "alice-active"),
        "alice-expired": make_api_key(alice, "alice-expired", state="expired"),
        "alice-invalidated": make_api_key(alice, "alice-invalidated", state="invalidated"),
        "bob-active": make_api_key(bob, "bob-active"),
        "bob-expired": make_api_key(bob, "bob-expired", state="expired"),
        "bob-invalidated": make_api_key(bob, "bob-invalidated", state="invalidated"),
    }


def backdate(key, **delta):
    ApiKey.objects.filter(pk=key.pk).update(created=timezone.now() - timedelta(**delta))


# ---------------------------------------------------------------------------------------------
# Who sees what


@pytest.mark.parametrize("holder", ADMINS)
def test_api_key_administrator_sees_every_owners_keys_with_owner_and_realm_columns(
    holder, users, keys_of_two_owners, client_for
):
    response = client_for(users[holder]).get(LIST, secure=True)
    assert response.status_code == 200
    assert sorted(names(response)) == ["alice-active", "alice-expired", "bob-active", "bob-expired"]
    page = text(response)
    assert ">Owner</a>" in page and ">Realm</a>" in page
    assert "You are an API key administrator" in page
    assert page.count('name="id"') == 4
    assert 'id="create-api-key"' in page


def test_manage_own_api_key_user_sees_only_own_keys_without_owner_column(
    alice, keys_of_two_owners, client_for
):
    response = client_for(alice).get(LIST, secure=True)
    assert response.status_code == 200
    assert sorted(names(response)) == ["alice-active", "alice-expired"]
    page = text(response)
    assert ">Owner</a>" not in page and ">Realm</a>" not in page
    assert "You only have permission to manage your own API keys" in page
    assert 'name="owner"' not in page and 'name="realm"' not in page
    assert page.count('name="id"') == 2
    assert 'id="create-api-key"' in page


def test_read_security_user_sees_every_key_but_no_checkbox_invalidate_or_create_control(
    users, keys_of_two_owners, client_for
):
    response = client_for(users["security_reader"]).get(LIST, secure=True)
    assert response.status_code == 200
    assert sorted(names(response)) == ["alice-active", "alice-expired", "bob-active", "bob-expired"]
    page = text(response)
    assert ">Owner</a>" in page
    assert "You only have permission to view API keys" in page
    assert 'type="checkbox"' not in page
    assert "invalidate-row" not in page and 'id="invalidate-selected"' not in page
    assert 'id="create-api-key"' not in page


def test_user_with_read_security_and_manage_own_api_key_gets_checkboxes_on_own_keys_only(
    make_user, alice, bob, make_api_key, client_for
):
    carol = make_user("carol", "read_security", "manage_own_api_key")
    own = make_api_key(carol, "carol-key")
    make_api_key(alice, "alice-key")
    page = text(client_for(carol).get(LIST, secure=True))
    assert "You can view all API keys but only manage your own" in page
    assert re.findall(r'name="id" value="([^"]+)"', page) == [own.pk]


def test_user_without_api_key_privileges_gets_the_permission_denied_page(
    users, keys_of_two_owners, client_for
):
    client = client_for(users["monitor_only"])
    before = security_state()
    for url in (LIST, CREATE, details_url(keys_of_two_owners["alice-active"]), f"{INVALIDATE}?id=x"):
        response = client.get(url, secure=True)
        assert response.status_code == 403, url
        page = text(response)
        assert "You need permission to manage API keys" in page
        assert "<code>manage_own_api_key</code>" in page and "<code>manage_api_key</code>" in page
        assert "alice-active" not in page
    assert security_state() == before


def test_read_security_user_cannot_open_the_create_form(users, client_for):
    response = client_for(users["security_reader"]).get(CREATE, secure=True)
    assert response.status_code == 403
    assert "You need permission to manage API keys" in text(response)
    assert "<code>read_security</code>" not in text(response)


def test_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(LIST, secure=True)
    assert response.status_code == 302
    assert response["Location"].startswith("/login?next=")


def test_empty_state_invites_to_create_the_first_api_key(alice, client_for):
    page = text(client_for(alice).get(LIST, secure=True))
    assert "Create your first API key" in page
    assert 'id="create-first-api-key"' in page
    assert 'id="api-keys-table"' not in page


def test_empty_state_of_a_read_only_viewer_offers_no_create_button(users, client_for):
    page = text(client_for(users["security_reader"]).get(LIST, secure=True))
    assert "Create your first API key" not in page
    assert "No API keys" in page
    assert 'href="/app/management/security/api_keys/create"' not in page


def test_no_match_is_not_the_empty_state(alice, make_api_key, client_for):
    make_api_key(alice, "present")
    page = text(client_for(alice).get(LIST, {"q": "absent"}, secure=True))
    assert "No API keys match your search." in page
    assert "Create your first API key" not in page


def test_status_column_shows_active_expires_in_n_days_expired_and_invalidated(
    alice, make_api_key, client_for
):
    make_api_key(alice, "long-lived", expiration="30d")
    make_api_key(alice, "short-lived", expiration="3d")
    make_api_key(alice, "expired", state="expired")
    make_api_key(alice, "invalidated", state="invalidated")
    page = text(client_for(alice).get(LIST, {"status": "all"}, secure=True))
    badges = re.findall(r'status-badge text-bg-(\w+)">([^<]+)<', page)
    assert ("success", "Active") in badges
    assert ("warning", "Expires in 3 days") in badges
    assert ("danger", "Expired") in badges
    assert ("secondary", "Invalidated") in badges


def test_expires_column_says_never_for_keys_without_expiration(alice, make_api_key, client_for):
    make_api_key(alice, "forever")
    page = text(client_for(alice).get(LIST, secure=True))
    assert '<td data-label="Expires">Never</td>' in page


def test_invalidated_keys_have_no_checkbox_and_no_invalidate_action(alice, make_api_key, client_for):
    make_api_key(alice, "gone", state="invalidated")
    page = text(client_for(alice).get(LIST, {"status": "invalidated"}, secure=True))
    assert names_in(page) == ["gone"]
    assert 'name="id"' not in page and "invalidate-row" not in page


def names_in(page: str) -> list[str]:
    return [html.unescape(name) for name in NAME_LINK.findall(page)]


# ---------------------------------------------------------------------------------------------
# Filters


def test_name_search_is_a_case_insensitive_substring_match(alice, make_api_key, client_for):
    for name in ("Filebeat-Prod", "filebeat-staging", "logstash"):
        make_api_key(alice, name)
    response = client_for(alice).get(LIST, {"q": "FILEBEAT"}, secure=True)
    assert sorted(names(response)) == ["Filebeat-Prod", "filebeat-staging"]
    assert names(client_for(alice).get(LIST, {"q": "eat-st"}, secure=True)) == ["filebeat-staging"]


def test_name_search_treats_like_wildcards_literally(alice, make_api_key, client_for):
    make_api_key(alice, "a_b")
    make_api_key(alice, "axb")
    assert names(client_for(alice).get(LIST, {"q": "a_b"}, secure=True)) == ["a_b"]
    assert names(client_for(alice).get(LIST, {"q": "%"}, secure=True)) == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, ["alice-active", "alice-expired"]),
        ("", ["alice-active", "alice-expired"]),
        ("active", ["alice-active"]),
        ("expired", ["alice-expired"]),
        ("invalidated", ["alice-invalidated"]),
        ("all", ["alice-active", "alice-expired", "alice-invalidated"]),
        ("no-such-status", []),
    ],
)
def test_status_filter_hides_invalidated_keys_by_default(
    status, expected, alice, keys_of_two_owners, client_for
):
    query = {} if status is None else {"status": status}
    response = client_for(alice).get(LIST, query, secure=True)
    assert response.status_code == (400 if status == "no-such-status" else 200)
    assert sorted(names(response)) == expected


def test_administrator_filters_by_owner_and_realm(
    users, alice, make_user, file_realm, make_api_key, client_for
):
    make_api_key(alice, "native-alice")
    file_alice = make_user("alice", "manage_own_api_key", realm=file_realm)
    make_api_key(file_alice, "file-alice")
    make_api_key(users["own_keys"], "someone-else")
    admin = client_for(users["api_key_admin"])
    assert sorted(names(admin.get(LIST, {"owner": "alice"}, secure=True))) == ["file-alice", "native-alice"]
    assert names(admin.get(LIST, {"owner": "alice", "realm": "default_file"}, secure=True)) == ["file-alice"]
    assert names(admin.get(LIST, {"realm": "default_native", "q": "alice"}, secure=True)) == [
        "native-alice"
    ]
    assert names(admin.get(LIST, {"owner": "nobody"}, secure=True)) == []


def test_owner_and_realm_filters_are_ignored_for_a_user_who_sees_only_own_keys(
    alice, keys_of_two_owners, client_for
):
    response = client_for(alice).get(LIST, {"owner": "bob", "realm": "default_file"}, secure=True)
    assert sorted(names(response)) == ["alice-active", "alice-expired"]


def test_unknown_realm_is_a_filter_error_not_a_server_error(users, keys_of_two_owners, client_for):
    response = client_for(users["superuser"]).get(LIST, {"realm": "<script>"}, secure=True)
    assert response.status_code == 400
    assert names(response) == []
    assert "<script>" not in response.content.decode()


def test_filters_with_nul_characters_or_huge_values_are_no_server_error(alice, make_api_key, client_for):
    make_api_key(alice, "key")
    for query in ({"q": "a\x00b"}, {"q": "x" * 10_000}, {"owner": "\x00"}, {"status": "\x00"}):
        assert client_for(alice).get(LIST, query, secure=True).status_code in (200, 400)


# ---------------------------------------------------------------------------------------------
# Sorting


@pytest.fixture
def sortable_keys(users, alice, bob, make_user, file_realm, make_api_key):
    """Four keys whose every column sorts differently."""
    zed = make_user("zed", "manage_own_api_key", realm=file_realm)
    keys = {
        "b-key": make_api_key(bob, "b-key", expiration="3d"),  # active, expires soon
        "d-key": make_api_key(alice, "d-key"),  # active, never expires
        "a-key": make_api_key(zed, "a-key", state="expired"),
        "c-key": make_api_key(alice, "c-key", expiration="30d", state="invalidated"),
    }
    for days, name in enumerate(["a-key", "c-key", "b-key", "d-key"]):
        backdate(keys[name], days=10 - days)
    return keys


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["a-key", "b-key", "c-key", "d-key"]),
        ("-name", ["d-key", "c-key", "b-key", "a-key"]),
        ("created", ["a-key", "c-key", "b-key", "d-key"]),
        ("-created", ["d-key", "b-key", "c-key", "a-key"]),
        (None, ["d-key", "b-key", "c-key", "a-key"]),
        # Keys that never expire come after every date, on every database.
        ("expiration", ["a-key", "b-key", "c-key", "d-key"]),
        ("-expiration", ["d-key", "c-key", "b-key", "a-key"]),
        # Active (soonest expiry first), then expired, then invalidated.
        ("status", ["b-key", "d-key", "a-key", "c-key"]),
        ("-status", ["c-key", "a-key", "d-key", "b-key"]),
        ("evil", ["d-key", "b-key", "c-key", "a-key"]),
        ("name);DROP TABLE apikeys_apikey;--", ["d-key", "b-key", "c-key", "a-key"]),
    ],
)
def test_every_column_sorts_both_ways(sort, expected, users, sortable_keys, client_for):
    query = {"status": "all"} | ({"sort": sort} if sort else {})
    response = client_for(users["superuser"]).get(LIST, query, secure=True)
    assert response.status_code == 200
    assert names(response) == expected


def test_owner_and_realm_columns_sort_both_ways(users, sortable_keys, client_for):
    admin = client_for(users["superuser"])
    by_owner = names(admin.get(LIST, {"status": "all", "sort": "owner"}, secure=True))
    assert by_owner[:2] == ["d-key", "c-key"] or by_owner[:2] == ["c-key", "d-key"]
    assert by_owner[2:] == ["b-key", "a-key"]
    assert names(admin.get(LIST, {"status": "all", "sort": "-owner"}, secure=True))[0] == "a-key"
    # default_file before default_native
    assert names(admin.get(LIST, {"status": "all", "sort": "realm"}, secure=True))[0] == "a-key"
    assert names(admin.get(LIST, {"status": "all", "sort": "-realm"}, secure=True))[-1] == "a-key"


def test_sorting_ties_are_broken_by_id_so_pages_never_overlap(alice, make_api_key, client_for):
    keys = [make_api_key(alice, f"same-{number:02}") for number in range(25)]
    ApiKey.objects.filter(pk__in=[key.pk for key in keys]).update(created=timezone.now())
    client = client_for(alice)
    seen = []
    for page in (1, 2, 3):
        seen += names(client.get(LIST, {"per_page": 10, "page": page}, secure=True))
    assert sorted(seen) == sorted(key.name for key in keys)


# ---------------------------------------------------------------------------------------------
# Pagination


@pytest.fixture
def twenty_five_keys(alice, make_api_key):
    keys = [make_api_key(alice, f"key-{number:02}") for number in range(25)]
    for age, key in enumerate(reversed(keys)):
        backdate(key, minutes=age)
    return keys


def test_pages_split_the_keys_newest_first(alice, twenty_five_keys, client_for):
    client = client_for(alice)
    first = client.get(LIST, {"per_page": 10}, secure=True)
    assert names(first) == [f"key-{number:02}" for number in range(24, 14, -1)]
    assert 'rel="next"' in text(first) and 'rel="prev"' not in text(first)
    assert "Showing 1–10" in text(first)
    last = client.get(LIST, {"per_page": 10, "page": 3}, secure=True)
    assert names(last) == [f"key-{number:02}" for number in range(4, -1, -1)]
    assert 'rel="next"' not in text(last) and 'rel="prev"' in text(last)
    assert "Showing 21–25" in text(last)


def test_pagination_links_keep_filters_and_sorting(alice, twenty_five_keys, client_for):
    page = text(client_for(alice).get(LIST, {"per_page": 10, "q": "key", "sort": "name"}, secure=True))
    next_link = re.search(r'rel="next" href="([^"]+)"', page).group(1)
    assert "q=key" in next_link and "sort=name" in next_link and "page=2" in next_link


@pytest.mark.parametrize(
    ("page", "expected_first"),
    [
        ("4", "key-04"),  # just past the end: the last page
        ("999999", "key-04"),
        ("9" * 40, "key-04"),
        ("abc", "key-24"),
        ("0", "key-24"),
        ("-3", "key-24"),
        ("1.5", "key-24"),
        ("", "key-24"),
    ],
)
def test_page_numbers_out_of_range_or_malformed_never_fail(
    page, expected_first, alice, twenty_five_keys, client_for
):
    response = client_for(alice).get(LIST, {"per_page": 10, "page": page}, secure=True)
    assert response.status_code == 200
    assert names(response)[0] == expected_first


@pytest.mark.parametrize("per_page", ["0", "-1", "7", "1000000", "abc", "9" * 40])
def test_only_the_offered_page_sizes_are_used(per_page, alice, twenty_five_keys, client_for):
    response = client_for(alice).get(LIST, {"per_page": per_page}, secure=True)
    assert response.status_code == 200
    assert len(names(response)) == 20


def row_counts(client, params: dict) -> list[str]:
    """The COUNT(*) statements of one page view that count keys rather than group them: the
    overview's and the owner suggestions' aggregates are not the table's."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST, params, secure=True).status_code == 200
    return [
        query["sql"] for query in queries
        if "COUNT(*)" in query["sql"].upper() and "GROUP BY" not in query["sql"].upper()
    ]


def test_a_page_view_counts_its_matches_at_most_once_and_no_further_than_10001(
    users, twenty_five_keys, client_for
):
    """The table is paged without counting its rows; "N matching" is one COUNT over at most 10,001
    rows, and none at all when the first page holds every match."""
    client = client_for(users["superuser"])
    (count,) = row_counts(client, {"per_page": 10, "page": 2})
    assert "LIMIT 10001" in count
    assert row_counts(client, {"per_page": 50}) == []


@pytest.mark.parametrize("holder", ["superuser", "own_keys", "security_reader"])
def test_query_count_does_not_grow_with_the_number_of_rows(
    holder, users, make_user, make_api_key, client_for
):
    owners = [users["own_keys"], make_user("other", "manage_own_api_key")]
    client = client_for(users[holder])

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST, {"per_page": 50}, secure=True).status_code == 200
        return len(queries)

    for number in range(2):
        make_api_key(owners[number % 2], f"few-{number}")
    few = count_queries()
    for number in range(40):
        make_api_key(owners[number % 2], f"many-{number}")
    assert count_queries() == few
    # Session, user and roles; the page and its owners; realm choices; the overview's two aggregates;
    # the owner suggestions' aggregate.
    assert few <= 11


# ---------------------------------------------------------------------------------------------
# Invalidation


def test_confirmation_lists_the_selected_names_and_changes_nothing(alice, keys_of_two_owners, client_for):
    chosen = [keys_of_two_owners["alice-active"], keys_of_two_owners["alice-expired"]]
    client = client_for(alice)
    before = security_state()
    response = client.get(INVALIDATE, {"id": [key.pk for key in chosen]}, secure=True)
    assert response.status_code == 200
    page = text(response)
    assert "Invalidate 2 API keys?" in page
    assert "alice-active" in page and "alice-expired" in page
    assert 'id="confirm-invalidate"' in page
    assert security_state() == before


def test_bulk_invalidation_invalidates_the_selected_keys_and_returns_to_the_filtered_list(
    alice, keys_of_two_owners, client_for
):
    chosen = [keys_of_two_owners["alice-active"], keys_of_two_owners["alice-expired"]]
    client = client_for(alice)
    location, response = post_and_follow(
        client,
        INVALIDATE,
        {"id": [key.pk for key in chosen], "back": "q=alice&status=all&sort=-name&evil=1"},
    )
    assert location == f"{LIST}?q=alice&status=all&sort=-name"
    assert "Invalidated 2 API keys." in messages_of(response)
    assert ApiKey.objects.filter(pk__in=[key.pk for key in chosen], invalidated__isnull=False).count() == 2


def test_back_parameter_cannot_redirect_elsewhere(alice, keys_of_two_owners, client_for):
    response = client_for(alice).post(
        INVALIDATE,
        {"id": [keys_of_two_owners["alice-active"].pk], "back": "//evil.example/"},
        secure=True,
    )
    assert response["Location"] == LIST


def test_already_invalidated_keys_are_reported_as_such(alice, keys_of_two_owners, client_for):
    ids = [keys_of_two_owners["alice-active"].pk, keys_of_two_owners["alice-invalidated"].pk]
    _, response = post_and_follow(client_for(alice), INVALIDATE, {"id": ids})
    assert "Invalidated 1 API key; 1 was already invalidated." in messages_of(response)


def test_tampered_post_with_someone_elses_key_changes_nothing_and_says_so(
    alice, keys_of_two_owners, client_for
):
    bobs = keys_of_two_owners["bob-active"]
    client = client_for(alice)
    before = security_state()
    _, response = post_and_follow(client, INVALIDATE, {"id": [bobs.pk]})
    assert response.status_code == 200
    assert security_state() == before
    [message] = messages_of(response)
    assert f"Could not invalidate 1 API key ({bobs.pk})" in message
    assert "not found, or you do not have permission to invalidate it. Nothing was changed" in message


def test_tampered_id_among_own_ids_invalidates_only_the_own_ones(alice, keys_of_two_owners, client_for):
    own, bobs = keys_of_two_owners["alice-active"], keys_of_two_owners["bob-active"]
    _, response = post_and_follow(client_for(alice), INVALIDATE, {"id": [own.pk, bobs.pk]})
    assert ApiKey.objects.get(pk=own.pk).invalidated is not None
    assert ApiKey.objects.get(pk=bobs.pk).invalidated is None
    assert "Invalidated 1 API key." in messages_of(response)


def test_confirmation_shows_a_tampered_id_as_not_found_without_naming_the_key(
    alice, keys_of_two_owners, client_for
):
    bobs = keys_of_two_owners["bob-active"]
    page = text(client_for(alice).get(INVALIDATE, {"id": [bobs.pk]}, secure=True))
    assert "Nothing to invalidate" in page
    assert bobs.pk in page and "bob-active" not in page
    assert "do not exist, or you do not have permission to invalidate them" in page
    assert 'id="confirm-invalidate"' not in page


def test_administrator_invalidates_anyones_key(users, keys_of_two_owners, client_for):
    ids = [keys_of_two_owners["alice-active"].pk, keys_of_two_owners["bob-active"].pk]
    _, response = post_and_follow(client_for(users["api_key_admin"]), INVALIDATE, {"id": ids})
    assert "Invalidated 2 API keys." in messages_of(response)
    assert ApiKey.objects.filter(pk__in=ids, invalidated__isnull=True).count() == 0


def test_read_security_user_cannot_invalidate(users, keys_of_two_owners, client_for):
    key = keys_of_two_owners["alice-active"]
    client = client_for(users["security_reader"])
    before = security_state()
    response = client.post(INVALIDATE, {"id": [key.pk]}, secure=True)
    assert response.status_code == 403
    assert "You need permission to manage API keys" in text(response)
    assert security_state() == before


def test_invalidation_without_a_csrf_token_is_refused(alice, keys_of_two_owners, client_for):
    key = keys_of_two_owners["alice-active"]
    client = client_for(alice, enforce_csrf_checks=True)
    before = security_state()
    response = client.post(INVALIDATE, {"id": [key.pk]}, secure=True)
    assert response.status_code == 403
    assert security_state() == before


def test_invalidation_with_nothing_selected_goes_back_with_a_message(alice, client_for):
    for data in ({}, {"id": ["", "  "]}):
        location, response = post_and_follow(client_for(alice), INVALIDATE, data)
        assert location == LIST
        assert "Select the API keys to invalidate." in messages_of(response)


def test_too_many_ids_are_refused_before_anything_is_looked_up(alice, client_for):
    ids = [f"{number:020}" for number in range(501)]
    _, response = post_and_follow(client_for(alice), INVALIDATE, {"id": ids})
    assert "Select at most 500 API keys to invalidate at a time." in messages_of(response)


def test_single_row_action_uses_the_same_confirmation(alice, keys_of_two_owners, client_for):
    key = keys_of_two_owners["alice-active"]
    client = client_for(alice)
    page = text(client.get(LIST, {"q": "active"}, secure=True))
    link = re.search(r'href="([^"]+)" aria-label="Invalidate alice-active"', page).group(1)
    confirmation = text(client.get(link, secure=True))
    assert "Invalidate API key 'alice-active'?" in confirmation
    back = re.search(r'name="back" value="([^"]*)"', confirmation).group(1)
    response = client.post(INVALIDATE, {"id": [key.pk], "back": back}, secure=True)
    assert response["Location"] == f"{LIST}?q=active"


# ---------------------------------------------------------------------------------------------
# Create


def test_create_form_offers_every_field_and_the_boilerplates(alice, client_for):
    response = client_for(alice).get(CREATE, secure=True)
    assert response.status_code == 200
    page = text(response)
    for field in ("name", "expiration", "role_descriptors", "metadata"):
        assert f'name="{field}"' in page
    assert 'id="boilerplate-read-only"' in page and 'id="boilerplate-write-only"' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_boilerplates_are_valid_role_descriptors():
    for descriptors in ROLE_DESCRIPTOR_BOILERPLATES.values():
        validate_role_descriptors(descriptors)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "api key name is required"),
        ({"name": "_reserved"}, "name", "api key name [_reserved] must not start with [_]"),
        ({"name": " padded"}, "name", "api key name [ padded] must not begin or end with whitespace"),
        ({"name": "x" * 257}, "name", "api key name may not be more than 256 characters long"),
        (
            {"name": "ok", "expiration": "soon"},
            "expiration",
            "failed to parse expiration [soon] as a time value",
        ),
        ({"name": "ok", "expiration": "-1d"}, "expiration", "expiration must be positive, got [-1d]"),
        ({"name": "ok", "expiration": "0d"}, "expiration", "expiration must be positive"),
        ({"name": "ok", "role_descriptors": "{"}, "role_descriptors", "the value is not valid JSON"),
        ({"name": "ok", "role_descriptors": "[]"}, "role_descriptors", "the value must be a JSON object"),
        (
            {"name": "ok", "role_descriptors": '{"r": {"cluster": ["fly"]}}'},
            "role_descriptors",
            "Unknown cluster privilege 'fly'",
        ),
        (
            {"name": "ok", "role_descriptors": "[" * 100 + "]" * 100},
            "role_descriptors",
            "nested deeper than",
        ),
        ({"name": "ok", "metadata": '{"_internal": 1}'}, "metadata", "metadata keys may not start with [_]"),
        ({"name": "ok", "metadata": '{"a": NaN}'}, "metadata", "the value is not valid JSON"),
        ({"name": "ok", "metadata": '{"a": 1, "a": 2}'}, "metadata", "Duplicate field"),
        # PostgreSQL's jsonb cannot hold U+0000: refused on every database alike.
        ({"name": "ok", "metadata": '{"a": "\\u0000"}'}, "metadata", "contains a NUL character"),
        ({"name": "ok", "role_descriptors": '{"r\\u0000": {}}'}, "role_descriptors", "a NUL character"),
    ],
)
def test_create_form_shows_each_error_next_to_its_field_and_creates_nothing(
    data, field, message, alice, client_for
):
    client = client_for(alice)
    before = security_state()
    response = client.post(CREATE, data, secure=True)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    shown = re.search(rf'id="{field.replace("_", "-")}-errors">([^<]*)<', response.content.decode()).group(1)
    assert message in html.unescape(shown)
    assert security_state() == before


def test_create_with_a_name_in_use_says_so_next_to_the_name(alice, bob, make_api_key, client_for):
    make_api_key(bob, "taken")
    client = client_for(alice)
    before = security_state()
    response = client.post(CREATE, {"name": "taken"}, secure=True)
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == ["an active API key with name [taken] already exists"]
    assert security_state() == before


def test_created_key_is_revealed_once_in_every_format_and_never_cached(alice, client_for):
    client = client_for(alice)
    descriptors = {"ci": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}
    posted = client.post(
        CREATE,
        {
            "name": "ci-release",
            "expiration": "30d",
            "role_descriptors": json.dumps(descriptors),
            "metadata": '{"team": "release"}',
        },
        secure=True,
    )
    key = ApiKey.objects.get(name="ci-release")
    assert posted.status_code == 303 and posted["Location"] == f"{details_url(key)}/reveal"
    response = client.get(posted["Location"], secure=True)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = text(response)
    encoded = re.search(r'id="key-encoded">([^<]+)<', page).group(1)
    key_id, secret = base64.b64decode(encoded).decode().split(":", 1)
    assert key_id == key.pk
    assert f'output.elasticsearch.api_key: "{key.pk}:{secret}"' in page
    assert f'api_key => "{key.pk}:{secret}"' in page
    assert f'curl -H "Authorization: ApiKey {encoded}" "https://testserver/_security/_authenticate"' in page
    assert f'Elasticsearch("https://testserver", api_key="{encoded}")' in page
    assert f'"api_key": "{secret}"' in page and f'"encoded": "{encoded}"' in page
    assert "Copy this key now. You will not be able to view it again" in page
    assert authenticate_api_key(f"ApiKey {encoded}").api_key.pk == key.pk
    assert key.expiration is not None and key.metadata == {"team": "release"}
    assert list(key.role_descriptors) == ["ci"]
    # Shown in that one response only: nothing else, the same page included, shows it again.
    for url in (LIST, details_url(key), CREATE, f"{INVALIDATE}?id={key.pk}", posted["Location"]):
        later = client.get(url, secure=True)
        assert secret not in later.content.decode() and encoded not in later.content.decode(), url


def test_create_form_is_never_cached_either(alice, client_for):
    assert "no-store" in client_for(alice).get(CREATE, secure=True)["Cache-Control"]


def test_create_without_a_csrf_token_is_refused(alice, client_for):
    client = client_for(alice, enforce_csrf_checks=True)
    before = security_state()
    response = client.post(CREATE, {"name": "x"}, secure=True)
    assert response.status_code == 403
    assert security_state() == before


def test_created_key_with_empty_optional_fields_never_expires(alice, client_for):
    response = client_for(alice).post(
        CREATE, {"name": "plain", "expiration": " ", "metadata": ""}, secure=True
    )
    assert response.status_code == 303
    key = ApiKey.objects.get(name="plain")
    assert key.expiration is None and key.role_descriptors == {} and key.metadata == {}


# ---------------------------------------------------------------------------------------------
# Details


def test_details_show_every_field_but_the_secret(alice, make_api_key, client_for):
    key = make_api_key(
        alice,
        "detailed",
        expiration="30d",
        metadata={"team": "ops"},
        role_descriptors={
            "reader": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}
        },
    )
    response = client_for(alice).get(details_url(key), secure=True)
    assert response.status_code == 200
    page = text(response)
    for shown in (
        key.pk,
        "detailed",
        "alice",
        "default_native",
        "native",
        "rest",
        "Active",
        '"team": "ops"',
        '"reader"',
        '"logs-*"',
        "alice_default_native_role",
        "manage_own_api_key",
    ):
        assert shown in page, shown
    assert "Last used" in page and re.search(r"Last used</dt><dd[^>]*>Never<", page)
    assert key.secret not in page and key.hash not in page
    assert 'id="invalidate-api-key"' in page


def test_details_of_someone_elses_key_look_like_a_missing_key(alice, keys_of_two_owners, client_for):
    client = client_for(alice)
    hidden = client.get(details_url(keys_of_two_owners["bob-active"]), secure=True)
    missing = client.get(f"{LIST}/ABCDEFGHIJKLMNOPQRST", secure=True)
    assert hidden.status_code == missing.status_code == 404
    assert "bob-active" not in text(hidden)
    assert "does not exist, or you do not have permission to view it" in text(hidden)


@pytest.mark.parametrize(
    "key_id", ["short", "x" * 300, "ABCDEFGHIJKLMNOPQRS%00", "ABCDEFGHIJKLMNOPQR%3Cb%3E"]
)
def test_details_of_malformed_ids_are_not_found(key_id, alice, client_for):
    response = client_for(alice).get(f"{LIST}/{key_id}", secure=True)
    assert response.status_code == 404
    assert "<b>" not in response.content.decode()


def test_invalidation_of_ids_with_null_characters_is_refused_cleanly(alice, keys_of_two_owners, client_for):
    key = keys_of_two_owners["alice-active"]
    client = client_for(alice)
    before = security_state()
    for method in ("get", "post"):
        response = getattr(client, method)(INVALIDATE, {"id": [key.pk, "a\x00b"]}, secure=True)
        assert response.status_code == 302
    assert security_state() == before


def test_details_of_an_invalidated_key_show_when_and_offer_no_invalidate_button(
    alice, keys_of_two_owners, client_for
):
    page = text(client_for(alice).get(details_url(keys_of_two_owners["alice-invalidated"]), secure=True))
    assert "Invalidated</span>" in page
    assert 'id="invalidate-api-key"' not in page


def test_read_only_viewer_sees_details_without_an_invalidate_button(users, keys_of_two_owners, client_for):
    page = text(
        client_for(users["security_reader"]).get(details_url(keys_of_two_owners["bob-active"]), secure=True)
    )
    assert "bob-active" in page
    assert 'id="invalidate-api-key"' not in page


# ---------------------------------------------------------------------------------------------
# Plain HTTP


@pytest.mark.parametrize("path", [LIST, CREATE, INVALIDATE, f"{LIST}/ABCDEFGHIJKLMNOPQRST"])
def test_over_plain_http_every_page_explains_that_https_is_required_and_shows_no_controls(
    path, users, keys_of_two_owners, client_for
):
    for client in (client_for(users["superuser"]), Client()):
        response = client.get(path, secure=False)
        assert response.status_code == 403
        page = text(response)
        assert "API keys require HTTPS" in page
        assert "alice-active" not in page and "<table" not in page
        assert "Create API key" not in page and 'name="id"' not in page and "<textarea" not in page


def test_posts_over_plain_http_change_nothing(users, keys_of_two_owners, client_for):
    key = keys_of_two_owners["alice-active"]
    client = client_for(users["superuser"])
    before = security_state()
    assert client.post(INVALIDATE, {"id": [key.pk]}, secure=False).status_code == 403
    assert client.post(CREATE, {"name": "over-http"}, secure=False).status_code == 403
    assert security_state() == before


def test_the_home_page_of_a_user_who_may_open_the_api_keys_page_is_that_page(alice, client_for):
    response = client_for(alice).get("/", secure=True)
    assert response.status_code == 302 and response["Location"] == LIST
