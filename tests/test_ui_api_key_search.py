"""SPEC §6: the API Keys page's search box and filters, run by the query API's engine; "N matching";
and the administrators' "Invalidate all N matching"."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEvent
from apikeys.hashers import make_api_key_hash
from apikeys.models import ApiKey
from apikeys.search_bar import KNOWN_FIELDS
from tests.snapshots import security_state
from tests.test_ui_api_keys import LIST, names, text

pytestmark = pytest.mark.django_db

MATCHING = f"{LIST}/invalidate_matching"
SEARCH_ERROR = re.compile(r'id="search-error">([^<]*)<')


@pytest.fixture
def keys(users, alice, bob, make_user, file_realm, make_api_key):
    """Keys of alice (native), Alice (file realm) and bob, in each state and type of metadata."""
    file_alice = make_user("Alice", "manage_own_api_key", realm=file_realm)
    made = {
        "filebeat-prod": make_api_key(alice, "filebeat-prod", metadata={"team": "ops"}),
        "Filebeat-staging": make_api_key(file_alice, "Filebeat-staging", metadata={"team": "dev"}),
        "logstash": make_api_key(bob, "logstash", metadata={"team": "ops"}),
        "soon": make_api_key(bob, "soon", expiration="3d"),
        "my key": make_api_key(alice, "my key", state="expired"),
        "gone": make_api_key(bob, "gone", state="invalidated"),
    }
    return made


def shown(client, **params) -> list[str]:
    response = client.get(LIST, params, secure=True)
    assert response.status_code == 200, SEARCH_ERROR.findall(response.content.decode())
    return sorted(names(response))


@pytest.fixture
def admin(users, client_for):
    return client_for(users["api_key_admin"])


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("FILEBEAT", ["Filebeat-staging", "filebeat-prod"]),
        ('"my key"', ["my key"]),
        ("name:filebeat*", ["Filebeat-staging", "filebeat-prod"]),
        ("owner:ALICE", ["Filebeat-staging", "filebeat-prod", "my key"]),
        ("owner:ali*", ["Filebeat-staging", "filebeat-prod", "my key"]),
        ("realm:default_file", ["Filebeat-staging"]),
        ("metadata.team:ops", ["filebeat-prod", "logstash"]),
        ("-owner:bob", ["Filebeat-staging", "filebeat-prod", "my key"]),
        ("-owner:bob -metadata.team:dev", ["filebeat-prod", "my key"]),
        ("logstash OR owner:alice realm:default_file", ["Filebeat-staging", "logstash"]),
        ("(logstash OR soon) -status:expiring", ["logstash"]),
        ("status:expiring", ["soon"]),
        ("status:active", ["Filebeat-staging", "filebeat-prod", "logstash", "soon"]),
        ("status:expired", ["my key"]),
        ("status:invalidated", ["gone"]),
        ("type:rest status:invalidated", ["gone"]),
        ("type:cross_cluster", []),
    ],
)
def test_search_box(q, expected, keys, admin):
    """A search that names a status takes the place of the Status filter's default, which leaves
    invalidated keys out."""
    assert shown(admin, q=q) == expected


def test_filters_are_clauses_of_the_same_query(keys, admin):
    assert shown(admin, q="filebeat", owner="alice") == ["Filebeat-staging", "filebeat-prod"]
    assert shown(admin, q="filebeat", owner="alice", realm="default_native") == ["filebeat-prod"]
    assert shown(admin, status="expiring") == ["soon"]
    assert shown(admin, q="status:expired", status="all") == ["my key"]


def test_owner_filter_ignores_case_and_takes_several_owners(keys, admin):
    assert shown(admin, owner="BOB") == ["logstash", "soon"]
    both = shown(admin, owner="bob, alice", q="-realm:default_file")
    assert both == ["filebeat-prod", "logstash", "my key", "soon"]
    repeated = admin.get(f"{LIST}?owner=bob&owner=Alice&q=-realm:default_native", secure=True)
    assert sorted(names(repeated)) == ["Filebeat-staging"]


def test_unused_filter_reads_last_used_through_the_engine(keys, admin):
    now = timezone.now()
    ApiKey.objects.update(created=now - timedelta(days=100))
    ApiKey.objects.filter(name__in=["logstash", "soon"]).update(last_used=now - timedelta(days=1))
    assert shown(admin, unused="30") == ["Filebeat-staging", "filebeat-prod", "my key"]


@pytest.mark.parametrize(
    ("q", "error"),
    [
        ('"unclosed', "A quote is not closed: add the closing \" or remove the opening one."),
        ("colour:blue", f"Unknown field \u201ccolour\u201d: search by {KNOWN_FIELDS}."),
        ("status:gone", "Unknown status \u201cgone\u201d: use active, expiring, expired or invalidated."),
        ("a OR", "Put a search term on each side of \u201cOR\u201d."),
        ("a\x00b", "Null characters are not allowed."),
    ],
)
def test_a_bad_search_is_explained_under_the_box_and_matches_nothing(q, error, keys, admin):
    response = admin.get(LIST, {"q": q}, secure=True)
    assert response.status_code == 400
    page = response.content.decode()
    (shown_error,) = SEARCH_ERROR.findall(page)
    assert html.unescape(shown_error) == error
    assert names(response) == []
    assert 'id="invalidate-matching"' not in page
    assert 'aria-invalid="true"' in page


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(q=st.text(max_size=40) | st.text(alphabet='abo:wner-()" ORAND*\\?.metadta', max_size=40))
def test_any_text_in_the_box_is_a_page_never_a_server_error(q, users, client_for):
    response = client_for(users["superuser"]).get(LIST, {"q": q}, secure=True)
    assert response.status_code in (200, 400)


def test_owner_suggestions_are_the_usernames_of_visible_keys(keys, admin, alice, client_for):
    page = admin.get(LIST, secure=True).content.decode()
    suggestions = re.search(r'<datalist id="owner-suggestions">(.*?)</datalist>', page).group(1)
    assert re.findall(r'<option value="([^"]*)">', suggestions) == ["Alice", "alice", "bob"]
    assert "owner-suggestions" not in client_for(alice).get(LIST, secure=True).content.decode()


def test_matching_count_is_exact_to_10000_and_more_than_10000_beyond(users, alice, admin):
    page = text(admin.get(LIST, secure=True))
    assert "0 matching" not in page
    now = timezone.now()
    hashed = make_api_key_hash("x" * 22)
    ApiKey.objects.bulk_create(
        ApiKey(id=f"bulk{number:016d}", name=f"bulk-{number}", hash=hashed, owner=alice,
               realm_name="default_native", realm_type="native", created=now - timedelta(seconds=number))
        for number in range(10_001)
    )
    page = text(admin.get(LIST, secure=True))
    assert re.search(r'id="matching-count">More than 10,000 matching<', page)
    assert "Invalidate all (more than 10,000) matching" in page
    assert "10,001 API keys" in page  # the overview
    assert "Showing 1–20" in page
    page = text(admin.get(LIST, {"q": "bulk-1000"}, secure=True))  # bulk-1000 and bulk-10000
    assert re.search(r'id="matching-count">2 matching<', page)
    page = text(admin.get(LIST, {"q": "bulk-1", "per_page": 10, "page": 2}, secure=True))
    assert re.search(r'id="matching-count">1,112 matching<', page)
    assert "Invalidate all 1,112 matching" in page


# ---------------------------------------------------------------------------------------------
# Invalidate all matching


def test_invalidate_all_matching_confirms_with_the_count_and_first_names_then_invalidates_them(
    keys, admin, users, bob, make_api_key
):
    """Keys already invalidated may match; they are left as they are."""
    page = text(admin.get(LIST, {"owner": "bob", "status": "all"}, secure=True))
    link = html.unescape(re.search(r'id="invalidate-matching" href="([^"]+)"', page).group(1))
    assert "Invalidate all 3 matching" in page
    before = security_state()
    confirmation = text(admin.get(link, secure=True))
    assert security_state() == before
    assert "Invalidate 2 matching API keys?" in confirmation
    sample = re.findall(r'<span class="fw-semibold text-break">([^<]*)</span>', confirmation)
    assert sample == ["soon", "logstash"]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', confirmation))
    # Evaluated again when confirmed: a key made since matches too.
    make_api_key(bob, "later")
    gone = ApiKey.objects.get(name="gone").invalidated
    response = admin.post(MATCHING, fields, secure=True)
    assert response.status_code == 302 and response["Location"] == f"{LIST}?status=all&owner=bob"
    assert ApiKey.objects.get(name="gone").invalidated == gone
    invalidated = set(ApiKey.objects.filter(invalidated__isnull=False).values_list("name", flat=True))
    assert invalidated == {"gone", "soon", "logstash", "later"}
    event = AuditEvent.objects.get(action="api_keys_invalidated", actor=users["api_key_admin"])
    expected = ApiKey.objects.filter(name__in=["soon", "logstash", "later"]).values_list("pk", flat=True)
    assert sorted(event.api_key_ids) == sorted(expected)
    followed = text(admin.get(response["Location"], secure=True))
    assert "Invalidated 3 API keys." in followed and "already invalidated" not in followed


def test_invalidate_all_matching_is_only_for_administrators(keys, users, client_for):
    for holder in ("own_keys", "security_reader"):
        client = client_for(users[holder])
        page = text(client.get(LIST, secure=True))
        assert 'id="invalidate-matching"' not in page
        before = security_state()
        assert client.get(MATCHING, {"owner": "bob"}, secure=True).status_code == 403
        assert client.post(MATCHING, {"owner": "bob"}, secure=True).status_code == 403
        assert security_state() == before


def test_invalidate_all_matching_refuses_a_bad_search_and_changes_nothing(keys, admin):
    before = security_state()
    response = admin.post(MATCHING, {"q": "owner:"}, secure=True)
    assert response.status_code == 302 and response["Location"] == LIST
    assert security_state() == before
