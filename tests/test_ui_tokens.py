"""The Access tokens page (Stack Management > Security): who may open it and see it in the menu,
what it lists (public ids, never a secret or a digest), its filters, and invalidation through the
same service as the REST API, confirmed first, seen by the very next request."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Realm
from accounts.principals import Principal
from tests.snapshots import security_state
from tokens.models import Token
from tokens.services import get_token

pytestmark = pytest.mark.django_db

TOKENS = "/app/management/security/tokens"
INVALIDATE = TOKENS + "/invalidate"
USER_PAGE = "/app/management/security/users/default_native/carol"
MAY_MANAGE = ("superuser", "security_admin", "token_admin")
MAY_NOT = ("api_key_admin", "security_reader", "own_keys", "monitor_only")


class Browser:
    """A logged-in Django test client whose every request arrives over HTTPS."""

    def __init__(self, user):
        self.client = Client()
        self.client.force_login(user)

    def get(self, path, data=None):
        return self.client.get(path, data, secure=True)

    def post(self, path, data=None):
        return self.client.post(path, data, secure=True)


@pytest.fixture
def people(users, make_user):
    return {**users, "token_admin": make_user("token_admin", "manage_token")}


@pytest.fixture
def carol(make_user):
    return make_user("carol", "monitor")


@pytest.fixture
def mint(people):
    """mint(user, state="active") — a password-grant pair for ``user``, made by the token service and
    put in ``state``; returns the token strings with the row."""

    def make(user, state="active"):
        issued = get_token(Principal(people["superuser"]), lambda username, password: user, "password",
                           user.username, "unused")
        token = issued.token
        now = timezone.now()
        if state == "expired":
            token.expiration = now - timedelta(minutes=1)
        elif state == "invalidated":
            token.invalidated = token.refresh_invalidated = now
        elif state == "refresh_used":
            token.refreshed = now
        token.save()
        return issued

    return make


def whoami(access_token):
    headers = {"Authorization": f"Bearer {access_token}"}
    return Client().get("/_security/_authenticate", secure=True, headers=headers)


def row_ids(response) -> list[str]:
    return [token.pk for token in response.context["table"].page.object_list.data]


def states_shown(response) -> dict[str, str]:
    return {row.record.pk: row.record.state() for row in response.context["table"].page.object_list}


@pytest.mark.parametrize("name", MAY_MANAGE + MAY_NOT)
def test_only_those_who_may_invalidate_tokens_open_the_page_and_see_it_in_the_menu(people, name):
    browser = Browser(people[name])
    allowed = name in MAY_MANAGE

    page = browser.get(TOKENS)
    elsewhere = browser.get("/app/dev_tools")

    assert page.status_code == (200 if allowed else 403)
    assert ('id="menu-tokens"' in elsewhere.content.decode()) is allowed
    if not allowed:
        assert "You need permission to manage access tokens" in page.content.decode()


def test_the_page_lists_each_pair_by_its_public_id_with_its_user_realm_grant_type_and_state(
    people, carol, mint
):
    states = ("active", "refresh_used", "expired", "invalidated")
    made = {state: mint(carol, state).token.pk for state in states}

    response = Browser(people["token_admin"]).get(TOKENS)

    assert response.status_code == 200
    assert states_shown(response) == {pk: state for state, pk in made.items()}
    text = response.content.decode()
    row = text.split(f'data-id="{made["active"]}"', 1)[1].split("</tr>", 1)[0]
    assert "carol" in row and "default_native" in row and "password" in row and "Active" in row
    # Active counts every pair of which a part works: the one whose access token still works though
    # its refresh token was used, and the expired one, whose refresh token still works.
    assert response.context["active_count"] == 3
    assert 'id="active-token-count">3<' in text
    assert [count for _, _, count in response.context["states"]] == [1, 1, 1, 1]
    expired_row = text.split(f'data-id="{made["expired"]}"', 1)[1].split("</tr>", 1)[0]
    assert "refresh token still works" in expired_row
    # A checkbox only where invalidating would change something.
    for state, pk in made.items():
        assert (f'name="id" value="{pk}"' in text) is (state != "invalidated")


def test_the_list_filters_by_user_and_state_sorts_and_pages(people, carol, make_user, mint):
    dave = make_user("dave", "monitor")
    carols = [mint(carol).token.pk for _ in range(26)]
    daves_expired = mint(dave, "expired").token.pk
    browser = Browser(people["token_admin"])

    by_user = browser.get(TOKENS, {"user": "dave"})
    by_state = browser.get(TOKENS, {"state": "expired"})
    first, second = browser.get(TOKENS, {"user": "carol"}), browser.get(TOKENS, {"user": "carol", "page": 2})
    by_state_order = browser.get(TOKENS, {"sort": "-state"})

    assert row_ids(by_user) == [daves_expired]
    assert row_ids(by_state) == [daves_expired]
    assert len(row_ids(first)) == 25 and len(row_ids(second)) == 1
    assert set(row_ids(first) + row_ids(second)) == set(carols)
    assert row_ids(by_state_order)[0] == daves_expired
    assert browser.get(TOKENS, {"state": "nonsense"}).status_code == 200


def test_selected_tokens_are_invalidated_after_a_confirmation_and_refused_by_the_very_next_request(
    people, carol, mint
):
    chosen, spared = mint(carol), mint(carol)
    assert whoami(chosen.access_token).status_code == 200
    browser = Browser(people["token_admin"])
    before = security_state()

    confirmation = browser.get(INVALIDATE, {"id": [chosen.token.pk]})

    assert confirmation.status_code == 200
    assert chosen.token.pk in confirmation.content.decode()
    assert spared.token.pk not in confirmation.content.decode()
    assert security_state() == before  # asking changes nothing

    done = browser.post(INVALIDATE, {"id": [chosen.token.pk]})

    assert done.status_code == 302 and done["Location"] == TOKENS
    assert whoami(chosen.access_token).status_code == 401
    assert whoami(spared.access_token).status_code == 200
    event = AuditEvent.objects.get(action="tokens_invalidated")
    assert event.actor_username == "token_admin" and event.detail["token_ids"] == [chosen.token.pk]
    # Its refresh token went with it.
    assert Token.objects.get(pk=chosen.token.pk).refresh_invalidated is not None


def test_the_user_page_counts_active_tokens_and_leads_to_invalidating_all_of_them(
    people, carol, make_user, mint
):
    own = [mint(carol), mint(carol)]
    mint(carol, "invalidated")
    namesake = make_user("carol", "monitor", realm=Realm.objects.get(name="default_file"))
    other = mint(namesake)
    browser = Browser(people["security_admin"])

    user_page = browser.get(USER_PAGE).content.decode()

    assert 'id="active-token-count">2 active<' in user_page
    assert f'href="{TOKENS}?user=carol&amp;realm=default_native"' in user_page
    filtered = browser.get(TOKENS, {"user": "carol", "realm": "default_native"})
    assert filtered.context["filtered_user"] == carol
    assert len(row_ids(filtered)) == 3
    confirmation = browser.get(INVALIDATE, {"user": "carol", "realm": "default_native"})
    assert confirmation.status_code == 200 and confirmation.context["count"] == 2

    done = browser.post(INVALIDATE, {"user": "carol", "realm": "default_native"})

    assert done.status_code == 302 and done["Location"] == f"{TOKENS}?user=carol&realm=default_native"
    assert [whoami(issued.access_token).status_code for issued in own] == [401, 401]
    assert whoami(other.access_token).status_code == 200  # the file realm's carol is someone else
    assert 'id="active-token-count">0 active<' in browser.get(USER_PAGE).content.decode()


def test_the_user_page_of_a_reader_counts_tokens_but_offers_nothing(people, carol, mint):
    mint(carol)

    text = Browser(people["security_reader"]).get(USER_PAGE).content.decode()

    assert 'id="active-token-count">1 active<' in text
    assert "view-user-tokens" not in text and "invalidate-user-tokens" not in text


@pytest.mark.parametrize("name", MAY_NOT)
@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("get", None),
        ("get", "ids"),
        ("post", "ids"),
        ("post", {"user": "carol", "realm": "default_native"}),
    ],
)
def test_those_who_may_not_invalidate_tokens_are_refused_and_nothing_changes(
    people, carol, mint, name, method, data
):
    issued = mint(carol)
    path = TOKENS if data is None else INVALIDATE
    form = {"id": [issued.token.pk]} if data == "ids" else data
    browser = Browser(people[name])
    before = security_state()

    response = getattr(browser, method)(path, form)

    assert response.status_code == 403
    assert security_state() == before
    assert whoami(issued.access_token).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"id": ["not-a-token-id"]},
        {"id": ["x" * 19 + "\x00"]},
        {"id": [f"{n:020d}" for n in range(101)]},
        {"id": ["a" * 20], "user": "carol", "realm": "default_native"},
        {"user": "carol"},
    ],
    ids=["nothing", "not an id", "null character", "too many", "ids and a user", "user without realm"],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_bad_selection_goes_back_to_the_list_with_an_error_and_changes_nothing(
    people, carol, mint, form, method
):
    issued = mint(carol)
    browser = Browser(people["token_admin"])
    before = security_state()

    response = getattr(browser, method)(INVALIDATE, form)

    assert response.status_code == 302 and response["Location"] == "/app/management/security/tokens"
    assert security_state() == before
    assert whoami(issued.access_token).status_code == 200


def test_a_user_that_does_not_exist_is_not_found_and_nothing_changes(people, carol, mint):
    mint(carol)
    browser = Browser(people["token_admin"])
    before = security_state()

    response = browser.post(INVALIDATE, {"user": "nobody", "realm": "default_native"})

    assert response.status_code == 404
    assert security_state() == before


def test_no_page_ever_shows_a_token_or_its_digest(people, carol, mint):
    pairs = [mint(carol), mint(carol, "refresh_used"), mint(carol, "expired")]
    browser = Browser(people["superuser"])
    secrets = []
    for issued in pairs:
        row = Token.objects.get(pk=issued.token.pk)
        for string in (issued.access_token, issued.refresh_token):
            secrets += [string, string[20:]]  # the whole token, and its secret part alone
        secrets += [row.access_hash, row.refresh_hash]
    ids = [issued.token.pk for issued in pairs]

    pages = [
        browser.get(TOKENS),
        browser.get(TOKENS, {"user": "carol", "realm": "default_native"}),
        browser.get(TOKENS, {"sort": "state"}),
        browser.get(INVALIDATE, {"id": ids}),
        browser.get(INVALIDATE, {"user": "carol", "realm": "default_native"}),
        browser.get(USER_PAGE),
        browser.post(INVALIDATE, {"id": ids}),
    ]
    pages.append(browser.get(TOKENS))  # with the message the invalidation left

    assert [response.status_code for response in pages] == [200] * 6 + [302, 200]
    for response in pages:
        text = response.content.decode()
        for secret in secrets:
            assert secret not in text
