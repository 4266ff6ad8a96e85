"""The Audit log page (Stack Management > Security): security administrators only, filtered,
newest first, paged without counting the rows and in a constant number of queries."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from accounts import audit
from accounts.models import AuditEvent
from accounts.principals import Principal
from tests.browser import log_in

AUDIT = "/app/management/security/audit"
SEE_IT = ("superuser", "security_admin")
REFUSED = ("security_reader", "api_key_admin", "own_keys", "monitor_only")


def browse(user):
    client = Client()
    client.force_login(user)
    return lambda path=AUDIT, data=None: client.get(path, data, secure=True)


def shown_actions(response) -> list[str]:
    return re.findall(r'<tr data-action="([a-z_]+)"', response.content.decode())


def event_at(time, action=audit.ROLE_CHANGED, **fields):
    event = audit.record(action, **fields)
    AuditEvent.objects.filter(pk=event.pk).update(time=time)
    return event


# --- Who may see it ---------------------------------------------------------------------------


def test_every_audited_action_has_a_label_and_a_colour():
    from accounts.filtersets import AUDIT_ACTIONS
    from accounts.tables import AUDIT_ACTION_COLOURS

    actions = {
        value for name, value in vars(audit).items() if name.isupper() and isinstance(value, str)
    }
    assert actions == set(AUDIT_ACTIONS) == set(AUDIT_ACTION_COLOURS)


def test_anonymous_visitors_are_sent_to_the_login_page(db):
    response = Client().get(AUDIT, secure=True)
    assert response.status_code == 302
    assert response["Location"].startswith("/login?next=")


@pytest.mark.parametrize("holder", SEE_IT + REFUSED)
def test_only_manage_security_opens_the_audit_log_and_everyone_else_gets_the_permission_denied_page(
    users, holder
):
    audit.record(audit.ROLE_DELETED, target="ops")
    response = browse(users[holder])()
    if holder in SEE_IT:
        assert response.status_code == 200
        assert shown_actions(response) == [audit.ROLE_DELETED]
    else:
        assert response.status_code == 403
        assert b'id="permission-denied"' in response.content
        assert b"You need permission to view the audit log" in response.content
        assert b"ops" not in response.content


@pytest.mark.parametrize("holder, offered", (("own_keys", False), ("security_admin", True)))
def test_the_navigation_links_the_audit_log_for_those_it_lets_in(users, holder, offered):
    page = browse(users[holder])("/app/management/security/api_keys").content.decode()
    assert (f'href="{AUDIT}" id="menu-audit-log">Audit log</a>' in page) is offered


# --- What a row shows -------------------------------------------------------------------------


def test_rows_show_time_action_outcome_actor_with_realm_and_key_target_count_and_details(
    users, make_api_key
):
    admin = users["api_key_admin"]
    key = make_api_key(admin, "ci")
    AuditEvent.objects.all().delete()
    audit.record(
        audit.API_KEYS_INVALIDATED, principal=Principal(admin, api_key=key), target="nightly",
        api_key_ids=["a" * 20, "b" * 20, "c" * 20, "d" * 20, "e" * 20],
    )
    row = browse(users["superuser"])().content.decode().split('data-action="api_keys_invalidated"')[1]
    row = row.split("</tr>")[0]
    assert "<time datetime=" in row
    assert "API keys invalidated" in row and "text-bg-warning" in row
    assert "Success" in row and "text-bg-success" in row
    assert ">api_key_admin</a>" in row and "(default_native)" in row
    assert f"via API key <code>{key.id}</code>" in row
    assert "nightly" in row and f"<code>{'a' * 20}</code>" in row and "and 2 more" in row
    assert '<td class="text-end">5</td>' in row


def test_failed_authentication_is_unauthenticated_and_a_command_is_the_system(users):
    audit.record(
        audit.AUTHENTICATION_FAILED, outcome=AuditEvent.FAILURE, target="mallory",
        realm=None, username="mallory", reason="unknown user",
    )
    audit.record(audit.ROLE_CHANGED, target="ops", change="created")
    page = browse(users["superuser"])().content.decode()
    changed, failed = page.split('data-action="role_changed"')[1].split('data-action="authentication_failed"')
    assert "System" in changed and "change:</span> created" in changed
    assert "Authentication failed" in failed and "text-bg-danger" in failed and "Failure" in failed
    assert "Unauthenticated" in failed
    assert "reason:</span> unknown user" in failed and "realm:</span> —" in failed


def test_an_actor_who_was_deleted_since_keeps_their_name_without_a_link(users, make_user):
    gone = make_user("gone", "manage_security")
    audit.record(audit.ROLE_DELETED, user=gone, target="ops")
    gone.delete()
    page = browse(users["superuser"])().content.decode()
    assert '<span class="fw-semibold">gone</span>' in page
    assert "/users/default_native/gone" not in page


def test_newest_first_and_oldest_first_on_request(users):
    now = timezone.now()
    event_at(now - timedelta(hours=2), audit.ROLE_DELETED)
    event_at(now - timedelta(hours=1), audit.USER_DELETED)
    event_at(now, audit.ROLE_CHANGED)
    get = browse(users["superuser"])
    assert shown_actions(get()) == [audit.ROLE_CHANGED, audit.USER_DELETED, audit.ROLE_DELETED]
    assert shown_actions(get(AUDIT, {"sort": "time"})) == [
        audit.ROLE_DELETED, audit.USER_DELETED, audit.ROLE_CHANGED
    ]


# --- Filters ----------------------------------------------------------------------------------


@pytest.fixture
def history(users, make_user):
    """Events of every kind, by alice, by the system, and a failed login claiming to be alice."""
    alice = make_user("alice", "manage_security")
    now = timezone.now()
    event_at(now - timedelta(days=30), audit.ROLE_CHANGED, user=alice, target="old-role")
    event_at(now - timedelta(days=3), audit.USER_DELETED, user=alice, target="bob")
    event_at(now - timedelta(hours=5), audit.API_KEY_CREATED, target="ci-pipeline")
    event_at(
        now - timedelta(minutes=10), audit.AUTHENTICATION_FAILED, outcome=AuditEvent.FAILURE,
        target="alice", realm="default_native", username="alice", reason="wrong password",
    )
    event_at(now - timedelta(minutes=5), audit.ROLE_DELETED, user=users["superuser"], target="ci-role")
    return browse(users["superuser"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["role_deleted", "authentication_failed", "api_key_created", "user_deleted", "role_changed"]),
        ({"action": "user_deleted"}, ["user_deleted"]),
        ({"outcome": "failure"}, ["authentication_failed"]),
        ({"outcome": "success", "action": "role_deleted"}, ["role_deleted"]),
        ({"actor": "alice"}, ["authentication_failed", "user_deleted", "role_changed"]),
        ({"actor": "elastic"}, ["role_deleted"]),
        ({"actor": "nobody"}, []),
        ({"since": "hour"}, ["role_deleted", "authentication_failed"]),
        ({"since": "day"}, ["role_deleted", "authentication_failed", "api_key_created"]),
        ({"since": "week"}, ["role_deleted", "authentication_failed", "api_key_created", "user_deleted"]),
        ({"q": "CI-"}, ["role_deleted", "api_key_created"]),
        ({"q": "ci", "since": "hour", "actor": "elastic"}, ["role_deleted"]),
    ],
)
def test_filters_by_action_outcome_user_time_and_target(history, query, expected):
    response = history(AUDIT, query)
    assert response.status_code == 200
    assert shown_actions(response) == expected


def test_filter_form_offers_every_action_by_its_label(history):
    page = history().content.decode()
    assert '<option value="authentication_failed">Authentication failed</option>' in page
    assert '<option value="authentication_throttled">Authentication throttled</option>' in page
    assert '<option value="api_key_rotated">API key rotated</option>' in page
    assert '<option value="week">Last 7 days</option>' in page


@pytest.mark.parametrize("query", [{"action": "drop_table"}, {"since": "century"}, {"outcome": "maybe"}])
def test_an_unknown_filter_value_is_an_error_on_the_form_not_a_crash(history, query):
    response = history(AUDIT, query)
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content


def test_no_match_shows_the_empty_text(history):
    assert b"No audit events match your search." in history(AUDIT, {"q": "no-such-target"}).content


# --- Pages and queries ------------------------------------------------------------------------


def make_events(count):
    AuditEvent.objects.bulk_create(
        AuditEvent(action=audit.ROLE_CHANGED, target=f"role-{number:03}") for number in range(count)
    )


def test_pages_of_25_are_read_without_counting_the_rows(users):
    make_events(60)
    get = browse(users["superuser"])
    with CaptureQueriesContext(connection) as queries:
        first = get()
    assert len(shown_actions(first)) == 25
    assert not [query for query in queries if "COUNT(" in query["sql"].upper()]
    assert len(shown_actions(get(AUDIT, {"page": 3}))) == 10
    assert shown_actions(get(AUDIT, {"page": "not-a-number"})) == shown_actions(first)
    assert len(shown_actions(get(AUDIT, {"page": 99}))) == 10  # an old link lands on the last page


def test_a_per_page_parameter_cannot_make_a_page_read_the_whole_log(users):
    make_events(30)
    assert len(shown_actions(browse(users["superuser"])(AUDIT, {"per_page": 100000}))) == 25


def test_query_count_does_not_grow_with_the_rows_shown(users, make_user, make_api_key):
    owner = make_user("owner", "manage_own_api_key")
    key = make_api_key(owner, "k")
    get = browse(users["superuser"])

    def queries_for_a_page_of(rows):
        AuditEvent.objects.all().delete()
        for number in range(rows):
            audit.record(audit.API_KEY_CREATED, principal=Principal(owner, api_key=key), target=f"k{number}")
        with CaptureQueriesContext(connection) as queries:
            response = get()
        assert len(shown_actions(response)) == rows
        return len(queries)

    assert queries_for_a_page_of(2) == queries_for_a_page_of(20)


# --- In a browser -----------------------------------------------------------------------------
# Last in the module, without the test database: Playwright's event loop must not meet the ORM.


@pytest.mark.browser
def test_audit_log_in_a_browser_after_a_failed_login_and_a_change(new_page, keyward_server):
    keyward_server.manage("seed_demo")
    page = new_page()
    page.goto(keyward_server.base_url + "/login")
    page.fill("#id_username", "mallory")
    page.fill("#id_password", "not-a-password-anyone-has")
    page.click("button[type=submit]")
    log_in(page, keyward_server, "elastic", keyward_server.password)
    page.goto(keyward_server.base_url + "/app/management/security/users/default_native/victor")
    page.click("#disable-user")
    page.click("text=Stack Management")
    page.click("a.dropdown-item:has-text('Audit log')")
    page.wait_for_url(keyward_server.base_url + AUDIT)
    expect(page.locator("tr[data-action=user_changed]").first).to_contain_text("elastic")
    expect(page.locator("tr[data-action=user_changed]").first).to_contain_text("disabled")
    expect(page.locator("tr[data-action=authentication_failed]").first).to_contain_text("mallory")
    expect(page.locator("tr[data-action=authentication_failed]").first).to_contain_text("unknown user")
