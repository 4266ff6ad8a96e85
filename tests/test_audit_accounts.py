"""User and role changes, and failed authentications, in the audit log: the same event with the
right actor whether the change came from the UI, the REST API or a command, and never a password."""

import base64
import json
import logging
from io import StringIO
from urllib.parse import quote

import bcrypt
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import audit, services
from accounts.exceptions import ValidationError
from accounts.models import AuditEvent, User
from accounts.realms import authenticate_realm_chain
from apikeys.credentials import encode_credential

pytestmark = pytest.mark.django_db

ROLES = "/app/management/security/roles"
USERS = "/app/management/security/users"
PASSWORD = "a-long-test-password"
NEW_PASSWORD = "another-long-password"
# What someone typed at a login prompt: it must never be written anywhere.
TYPED_PASSWORD = "Tr0ub4dor&3-typed-at-the-prompt"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def events(action=None) -> list[AuditEvent]:
    rows = AuditEvent.objects.order_by("id")
    return list(rows if action is None else rows.filter(action=action))


def only_event(action) -> AuditEvent:
    (event,) = events(action)
    return event


def assert_acted_by(event, user):
    assert event.actor == user
    assert (event.actor_username, event.actor_realm) == (user.username, user.realm.name)


def assert_acted_by_the_system(event):
    assert event.actor is None and event.actor_username == "" and event.actor_realm == ""


# --- UI ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_browser(users):
    client = Client()
    client.force_login(users["security_admin"])
    return lambda path, data=None: client.post(path, data or {}, secure=True)


def user_path(username, action):
    return f"{USERS}/default_native/{quote(username)}/{action}"


def test_ui_user_changes_are_audited_as_the_logged_in_administrator(admin_browser, users, make_api_key):
    admin = users["security_admin"]
    created = admin_browser(f"{USERS}/create", {
        "username": "alice", "full_name": "Alice", "email": "", "password": PASSWORD,
        "password_confirm": PASSWORD,
    })
    assert created.status_code == 302
    edit = admin_browser(user_path("alice", "edit"), {"full_name": "Alice L.", "enabled": "on"})
    assert edit.status_code == 302
    password_form = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    assert admin_browser(user_path("alice", "password"), password_form).status_code == 302
    assert admin_browser(user_path("alice", "enabled"), {"enabled": "false"}).status_code == 302
    assert admin_browser(user_path("alice", "enabled"), {"enabled": "true"}).status_code == 302
    changes = events(audit.USER_CHANGED)
    assert [event.detail["change"] for event in changes] == [
        "created", "updated", "password_changed", "disabled", "enabled"
    ]
    for event in changes:
        assert_acted_by(event, admin)
        assert event.target == "alice" and event.detail["realm"] == "default_native"
        assert event.outcome == AuditEvent.SUCCESS
    assert PASSWORD not in json.dumps([event.detail for event in changes])


def test_ui_user_deletion_is_audited_with_the_number_of_keys_that_went_with_the_user(
    admin_browser, users, make_user, make_api_key
):
    bob = make_user("bob", "manage_own_api_key")
    make_api_key(bob, "bob-1")
    make_api_key(bob, "bob-2", state="invalidated")
    assert admin_browser(user_path("bob", "delete")).status_code == 302
    event = only_event(audit.USER_DELETED)
    assert_acted_by(event, users["security_admin"])
    assert event.target == "bob" and event.count == 2


def test_ui_role_changes_are_audited(admin_browser, users):
    form = {
        "name": "ops", "cluster": ["monitor"], "other_cluster": "", "run_as": "", "metadata": "",
        "indices-TOTAL_FORMS": "0", "indices-INITIAL_FORMS": "0",
        "indices-MIN_NUM_FORMS": "0", "indices-MAX_NUM_FORMS": "100",
        "applications-TOTAL_FORMS": "0", "applications-INITIAL_FORMS": "0",
        "applications-MIN_NUM_FORMS": "0", "applications-MAX_NUM_FORMS": "100",
    }
    assert admin_browser(f"{ROLES}/create", form).status_code == 302
    assert admin_browser(f"{ROLES}/ops/edit", {**form, "cluster": ["monitor", "manage"]}).status_code == 302
    assert admin_browser(f"{ROLES}/ops/delete").status_code == 302
    changed = events(audit.ROLE_CHANGED)
    assert [(event.target, event.detail) for event in changed] == [
        ("ops", {"change": "created"}), ("ops", {"change": "updated"})
    ]
    deleted = only_event(audit.ROLE_DELETED)
    assert deleted.target == "ops"
    for event in [*changed, deleted]:
        assert_acted_by(event, users["security_admin"])


def test_a_refused_change_writes_no_event(admin_browser, users):
    refused = admin_browser(f"{USERS}/create", {
        "username": "alice", "password": "short", "password_confirm": "short",
    })
    assert refused.status_code == 400
    assert admin_browser(user_path("security_admin", "delete")).status_code == 400
    assert events() == []


# --- REST API ---------------------------------------------------------------------------------


def basic(username, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def api_admin(make_user):
    return make_user("api_admin", "manage_security", password=PASSWORD)


@pytest.fixture
def api(client, api_admin):
    def call(method, path, body=None, authorization=None, **headers):
        return client.generic(
            method, path, data=json.dumps(body) if body is not None else "",
            content_type="application/json", secure=True,
            headers={"Authorization": authorization or basic("api_admin"), **headers},
        )

    return call


def test_api_user_changes_are_audited_as_the_authenticated_caller(api, api_admin, make_role, make_api_key):
    make_role("own", cluster=["manage_own_api_key"])
    assert api("PUT", "/_security/user/jane", {"password": PASSWORD, "roles": ["own"]}).status_code == 200
    assert api("PUT", "/_security/user/jane", {"roles": ["own"], "full_name": "Jane"}).status_code == 200
    assert api("PUT", "/_security/user/jane/_password", {"password": NEW_PASSWORD}).status_code == 200
    assert api("PUT", "/_security/user/jane/_disable").status_code == 200
    assert api("PUT", "/_security/user/jane/_enable").status_code == 200
    assert [event.detail["change"] for event in events(audit.USER_CHANGED)] == [
        "created", "updated", "password_changed", "disabled", "enabled"
    ]
    make_api_key(User.objects.get(username="jane"), "jane-key")
    assert api("DELETE", "/_security/user/jane").status_code == 200
    deleted = only_event(audit.USER_DELETED)
    assert deleted.target == "jane" and deleted.count == 1
    for event in events():
        if event.action in (audit.USER_CHANGED, audit.USER_DELETED):
            assert_acted_by(event, api_admin)


def test_api_and_kibana_role_changes_are_audited(api, api_admin):
    assert api("PUT", "/_security/role/ops", {"cluster": ["monitor"]}).status_code == 200
    assert api("DELETE", "/_security/role/ops").status_code == 200
    kibana = {"elasticsearch": {"cluster": ["monitor"], "indices": [], "run_as": []}, "kibana": []}
    assert api("PUT", "/api/security/role/dev", kibana, **{"kbn-xsrf": "true"}).status_code == 204
    assert api("DELETE", "/api/security/role/dev", **{"kbn-xsrf": "true"}).status_code == 204
    assert [(event.action, event.target) for event in events()] == [
        (audit.ROLE_CHANGED, "ops"), (audit.ROLE_DELETED, "ops"),
        (audit.ROLE_CHANGED, "dev"), (audit.ROLE_DELETED, "dev"),
    ]
    for event in events():
        assert_acted_by(event, api_admin)


def test_a_change_made_with_an_api_key_is_audited_as_the_keys_owner(api, api_admin, make_api_key):
    key = make_api_key(api_admin, "automation")
    authorization = "ApiKey " + encode_credential(key.id, key.secret)
    assert api("PUT", "/_security/role/ops", {"cluster": []}, authorization=authorization).status_code == 200
    assert_acted_by(only_event(audit.ROLE_CHANGED), api_admin)


def test_a_refused_api_change_writes_no_event(api, api_admin):
    assert api("PUT", "/_security/role/superuser", {"cluster": []}).status_code == 400
    assert api("DELETE", "/_security/user/api_admin").status_code == 400
    assert api("DELETE", "/_security/role/no-such-role").status_code == 404
    assert events() == []


# --- Commands ---------------------------------------------------------------------------------


def test_commands_are_audited_as_the_system(monkeypatch):
    monkeypatch.setenv("NEW_USER_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("create_role", "ops", "--cluster", "monitor", stdout=out)
    call_command("create_user", "carol", "--roles", "ops", "--password-env", "NEW_USER_PASSWORD", stdout=out)
    role, user = events()
    assert (role.action, role.target, role.detail) == (audit.ROLE_CHANGED, "ops", {"change": "created"})
    assert (user.action, user.target, user.detail["change"]) == (audit.USER_CHANGED, "carol", "created")
    assert_acted_by_the_system(role)
    assert_acted_by_the_system(user)


def test_services_called_without_an_acting_user_are_the_system(make_user):
    make_user("dave")
    services.set_user_enabled("dave", False)
    services.delete_user("dave")
    services.put_role("ops", cluster=["monitor"])
    services.delete_role("ops")
    assert [event.action for event in events()] == [
        audit.USER_CHANGED, audit.USER_DELETED, audit.ROLE_CHANGED, audit.ROLE_DELETED
    ]
    for event in events():
        assert_acted_by_the_system(event)


def test_a_service_refusal_writes_no_event(make_user):
    make_user("erin")
    with pytest.raises(ValidationError):
        services.change_password("erin", "short")
    with pytest.raises(ValidationError):
        services.delete_role("superuser")
    assert events() == []


# --- Authentication ---------------------------------------------------------------------------


@pytest.fixture
def audit_log_lines(caplog):
    """Every log line, the audit logger's included (it does not propagate to the root logger)."""
    audit_logger = logging.getLogger("keyward.audit")
    audit_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield caplog
    audit_logger.removeHandler(caplog.handler)


def assert_password_written_nowhere(caplog, password=TYPED_PASSWORD):
    for event in AuditEvent.objects.all():
        stored = [getattr(event, field.attname) for field in AuditEvent._meta.concrete_fields]
        assert password not in json.dumps(stored, default=str)
    assert password not in caplog.text
    assert caplog.records  # the refusal was logged: the check above looked at something


def login(username, password):
    return Client().post("/login", {"username": username, "password": password}, secure=True)


def test_a_wrong_password_at_login_is_audited_with_realm_and_reason_but_never_the_password(
    make_user, audit_log_lines
):
    make_user("alice", password=PASSWORD)
    assert login("alice", TYPED_PASSWORD).status_code == 200  # the form again, with its error
    event = only_event(audit.AUTHENTICATION_FAILED)
    assert event.outcome == AuditEvent.FAILURE and event.target == "alice"
    assert event.detail == {"realm": "default_native", "username": "alice", "reason": "wrong password"}
    assert_acted_by_the_system(event)
    assert_password_written_nowhere(audit_log_lines)


def test_an_unknown_username_is_audited_as_known_to_no_realm(db, audit_log_lines):
    login("mallory", TYPED_PASSWORD)
    event = only_event(audit.AUTHENTICATION_FAILED)
    assert event.detail == {"realm": None, "username": "mallory", "reason": "unknown user"}
    assert_password_written_nowhere(audit_log_lines)


def test_a_disabled_user_is_audited_as_disabled(make_user, audit_log_lines):
    frozen = make_user("frozen", password=TYPED_PASSWORD)
    frozen.enabled = False
    frozen.save()
    login("frozen", TYPED_PASSWORD)
    assert only_event(audit.AUTHENTICATION_FAILED).detail["reason"] == "user is disabled"
    assert_password_written_nowhere(audit_log_lines)


def test_a_file_realm_refusal_names_the_file_realm(tmp_path, settings, db, audit_log_lines):
    settings.FILE_REALM_USERS = tmp_path / "users"
    settings.FILE_REALM_USERS_ROLES = tmp_path / "users_roles"
    stored = bcrypt.hashpw(b"the-file-password", bcrypt.gensalt(rounds=4)).decode()
    settings.FILE_REALM_USERS.write_text(f"frank:{stored}\n")
    assert authenticate_realm_chain("frank", TYPED_PASSWORD) is None
    assert only_event(audit.AUTHENTICATION_FAILED).detail == {
        "realm": "default_file", "username": "frank", "reason": "wrong password"
    }
    assert_password_written_nowhere(audit_log_lines)


def test_a_failed_basic_authentication_on_the_api_is_audited(client, make_user, audit_log_lines):
    make_user("alice", "manage_security", password=PASSWORD)
    response = client.get(
        "/_security/_authenticate", secure=True, headers={"Authorization": basic("alice", TYPED_PASSWORD)}
    )
    assert response.status_code == 401
    assert only_event(audit.AUTHENTICATION_FAILED).detail["reason"] == "wrong password"
    assert_password_written_nowhere(audit_log_lines)


def test_a_failed_authentication_costs_one_insert(make_user):
    make_user("alice", password=PASSWORD)
    with CaptureQueriesContext(connection) as queries:
        authenticate_realm_chain("alice", TYPED_PASSWORD)
    writes = [query["sql"] for query in queries if not query["sql"].lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1 and writes[0].upper().startswith("INSERT INTO \"ACCOUNTS_AUDITEVENT\"")


def test_a_successful_login_or_basic_request_writes_no_event(client, make_user):
    make_user("alice", "manage_security", password=PASSWORD)
    assert login("alice", PASSWORD).status_code == 302
    response = client.get("/_security/_authenticate", secure=True, headers={"Authorization": basic("alice")})
    assert response.status_code == 200
    assert events() == []
