"""The Roles and Users pages (SPEC §6): who may read and change what (§2), forms that save
through the services the REST API uses, errors beside their fields that change nothing (§7)."""

import re
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import Role, User
from apikeys.models import ApiKey
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

ROLES = "/app/management/security/roles"
USERS = "/app/management/security/users"
READERS = ("superuser", "security_admin", "security_reader")
MANAGERS = ("superuser", "security_admin")
NEITHER = ("api_key_admin", "own_keys", "monitor_only")
PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "new-secret-pass"
NEW_PASSWORD_FORM = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}


class Browser:
    """A logged-in Django test client whose every request arrives over HTTPS."""

    def __init__(self, user, client=None):
        self.client = client or Client()
        if user is not None:
            self.client.force_login(user)

    def get(self, path, data=None):
        return self.client.get(path, data, secure=True)

    def post(self, path, data=None, **kwargs):
        return self.client.post(path, data or {}, secure=True, **kwargs)


@pytest.fixture
def as_user(users):
    """as_user("security_reader") — a Browser logged in as one of the privileged users."""
    return lambda name: Browser(users[name])


def user_url(user, action=""):
    return f"{USERS}/{user.realm.name}/{quote(user.username)}" + (f"/{action}" if action else "")


def errors_for(response, field) -> list[str]:
    """The error messages shown beside one field."""
    html = response.content.decode()
    pattern = rf'data-error-for="{field}">(.*?)</div>'
    return [re.sub(r"\s+", " ", message) for message in re.findall(pattern, html, re.S)]


def role_form(name="ops", cluster=("monitor",), other_cluster="", rows=(), run_as="", metadata="", **extra):
    """POST data for the role form; each row is (names, privileges) or a dict of row fields."""
    data = {
        "name": name,
        "cluster": list(cluster),
        "other_cluster": other_cluster,
        "run_as": run_as,
        "metadata": metadata,
        "indices-TOTAL_FORMS": str(len(rows)),
        "indices-INITIAL_FORMS": "0",
        "indices-MIN_NUM_FORMS": "0",
        "indices-MAX_NUM_FORMS": "100",
    }
    for index, row in enumerate(rows):
        fields = row if isinstance(row, dict) else {"names": row[0], "privileges": row[1]}
        for field, value in fields.items():
            data[f"indices-{index}-{field}"] = value
    data.update(extra)
    return data


def user_form(username="alice", password=PASSWORD, confirm=None, roles=(), **extra):
    return {
        "username": username,
        "full_name": "Alice Liddell",
        "email": "alice@example.com",
        "password": password,
        "password_confirm": password if confirm is None else confirm,
        "roles": list(roles),
        **extra,
    }


# --- Who may do what --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ROLES, USERS, f"{ROLES}/create", f"{USERS}/create"])
def test_pages_send_anonymous_visitors_to_the_login_page(path):
    response = Browser(None).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login?next=")


@pytest.mark.parametrize("holder", READERS + NEITHER)
@pytest.mark.parametrize("path", [ROLES, USERS, f"{ROLES}/superuser"])
def test_read_security_opens_the_pages_and_everyone_else_gets_the_permission_denied_page(
    as_user, holder, path
):
    response = as_user(holder).get(path)
    if holder in READERS:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert b'id="permission-denied"' in response.content
        assert b"You need permission to view" in response.content


@pytest.mark.parametrize("holder", READERS + NEITHER)
@pytest.mark.parametrize("path", [f"{ROLES}/create", f"{USERS}/create"])
def test_only_manage_security_opens_the_create_forms(as_user, holder, path):
    response = as_user(holder).get(path)
    assert response.status_code == (200 if holder in MANAGERS else 403)


@pytest.mark.parametrize("holder", ("security_reader",) + NEITHER)
def test_posts_without_manage_security_are_refused_and_change_nothing(as_user, users, make_role, holder):
    make_role("existing", cluster=["monitor"])
    target = users["monitor_only"] if holder != "monitor_only" else users["own_keys"]
    browser = as_user(holder)
    before = security_state()
    responses = [
        browser.post(f"{ROLES}/create", role_form(name="sneaky")),
        browser.post(f"{ROLES}/existing/edit", role_form(name="existing", cluster=["all"])),
        browser.post(f"{ROLES}/existing/delete"),
        browser.post(f"{USERS}/create", user_form(username="sneaky")),
        browser.post(user_url(target, "edit"), {"full_name": "changed", "enabled": ""}),
        browser.post(user_url(target, "enabled"), {"enabled": "false"}),
        browser.post(user_url(target, "password"), {"password": PASSWORD, "password_confirm": PASSWORD}),
        browser.post(user_url(target, "delete")),
    ]
    assert [response.status_code for response in responses] == [403] * len(responses)
    assert security_state() == before


def test_read_security_sees_read_only_pages_without_controls(as_user, users, make_role):
    make_role("ops", cluster=["monitor"])
    browser = as_user("security_reader")
    pages = {
        "roles": browser.get(ROLES).content.decode(),
        "role": browser.get(f"{ROLES}/ops").content.decode(),
        "users": browser.get(USERS).content.decode(),
        "user": browser.get(user_url(users["monitor_only"])).content.decode(),
    }
    for name, html in pages.items():
        assert 'id="read-only"' in html, name
        for control in ("create-role", "create-user", "edit-role", "delete-role", "edit-user", "delete-user",
                        "disable-user", "reset-password", "/edit", "/delete"):
            assert control not in html, (name, control)


def test_manage_security_sees_the_controls(as_user, users, make_role):
    make_role("ops", cluster=["monitor"])
    browser = as_user("security_admin")
    assert b'id="create-role"' in browser.get(ROLES).content
    assert f'href="{ROLES}/ops/edit"'.encode() in browser.get(ROLES).content
    user_page = browser.get(user_url(users["monitor_only"])).content
    for control in (b'id="edit-user"', b'id="reset-password"', b'id="disable-user"', b'id="delete-user"'):
        assert control in user_page


# --- Roles ------------------------------------------------------------------------------------


def test_role_list_shows_privileges_as_badges_reserved_roles_and_searches_by_name(as_user, make_role):
    make_role("logs_reader", cluster=["monitor"], indices=[{"names": ["logs-*"], "privileges": ["read"]}])
    make_role("ingest", cluster=["manage_own_api_key"])
    browser = as_user("security_admin")
    html = browser.get(ROLES).content.decode()
    assert "logs-*" in html and ">monitor<" in html
    reserved_row = re.search(r'<tr[^>]*data-role="superuser".*?</tr>', html, re.S).group(0)
    assert "Reserved" in reserved_row and "/edit" not in reserved_row
    found = browser.get(ROLES, {"q": "LOGS"}).content.decode()
    assert 'data-role="logs_reader"' in found
    assert 'data-role="ingest"' not in found


def test_role_is_created_through_put_role_descriptor(as_user, users, monkeypatch):
    calls = []
    real = services.put_role_descriptor
    monkeypatch.setattr(
        services, "put_role_descriptor", lambda *a, **k: calls.append((a, k)) or real(*a, **k)
    )
    response = as_user("security_admin").post(f"{ROLES}/create", role_form(
        name="logs_writer",
        cluster=["monitor", "manage_own_api_key"],
        other_cluster="cluster:monitor/main",
        rows=[
            ("logs-*, metrics-*", "create_doc, view_index_metadata"),
            {"names": "audit-*", "privileges": "read", "granted_fields": "@timestamp, message",
             "query": '{"term": {"team": "ops"}}', "allow_restricted_indices": "on"},
            ("", ""),
        ],
        run_as="ingest_bot",
        metadata='{"team": "ops"}',
    ))
    assert response.status_code == 302 and response["Location"] == ROLES
    assert calls[0][1]["create_only"] is True and calls[0][1]["acting_user"] == users["security_admin"]
    role = Role.objects.get(name="logs_writer")
    assert role.cluster == ["manage_own_api_key", "monitor", "cluster:monitor/main"]
    assert role.indices == [
        {"names": ["logs-*", "metrics-*"], "privileges": ["create_doc", "view_index_metadata"],
         "allow_restricted_indices": False},
        {"names": ["audit-*"], "privileges": ["read"], "allow_restricted_indices": True,
         "field_security": {"grant": ["@timestamp", "message"]}, "query": {"term": {"team": "ops"}}},
    ]
    assert role.run_as == ["ingest_bot"]
    assert role.metadata == {"team": "ops"}


def test_role_edit_form_shows_the_role_and_replaces_it_but_never_renames_it(as_user, make_role):
    make_role("ops", cluster=["monitor", "cluster:monitor/main"],
              indices=[{"names": ["logs-*"], "privileges": ["read"], "field_security": {"grant": ["a"]}}])
    browser = as_user("security_admin")
    html = browser.get(f"{ROLES}/ops/edit").content.decode()
    assert re.search(r'value="monitor"[^>]*checked', html)
    assert 'value="cluster:monitor/main"' in html
    assert 'value="logs-*"' in html and 'value="read"' in html
    data = role_form(name="renamed", cluster=["manage"], rows=[("metrics-*", "read, monitor")])
    response = browser.post(f"{ROLES}/ops/edit", {**data, "indices-INITIAL_FORMS": "1"})
    assert response.status_code == 302
    role = Role.objects.get(name="ops")
    assert role.cluster == ["manage"]
    assert role.indices == [{"names": ["metrics-*"], "privileges": ["read", "monitor"],
                             "allow_restricted_indices": False}]
    assert not Role.objects.filter(name="renamed").exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (role_form(other_cluster="manage_all"), "other_cluster", "unknown cluster privilege [manage_all]"),
        (role_form(rows=[("logs-*", "read, reed")]), "privileges", "unknown index privilege [reed]"),
        (role_form(rows=[("logs-*", "")]), "privileges", "Enter at least one privilege."),
        (role_form(rows=[("", "read")]), "names", "Enter at least one index name or pattern."),
        (role_form(rows=[{"granted_fields": "message"}]), "names", "Enter at least one index name"),
        (role_form(rows=[("/[/", "read")]), "names", "invalid index name pattern [/[/]"),
        (
            role_form(rows=[("/logs-~debug/", "read")]),
            "names",
            "invalid index name pattern [/logs-~debug/]: the complement operator [~] is not supported",
        ),
        (role_form(rows=[{"names": "a", "privileges": "read", "query": "[]"}]), "query", "JSON object"),
        (role_form(metadata="{not json"), "metadata", "metadata is not valid JSON"),
        (role_form(metadata='{"_reserved": 1}'), "metadata", "metadata keys may not start with [_]"),
        (role_form(name="_hidden"), "name", "must not start with [_]"),
        (role_form(name=" padded"), "name", "must not begin or end with whitespace"),
    ],
)
def test_invalid_role_shows_the_error_beside_its_field_and_saves_nothing(as_user, data, field, message):
    browser = as_user("security_admin")
    before = security_state()
    response = browser.post(f"{ROLES}/create", data)
    assert response.status_code == 400
    assert any(message in error for error in errors_for(response, field)), errors_for(response, field)
    assert security_state() == before


def test_invalid_edit_keeps_the_submitted_values_and_leaves_the_role_unchanged(as_user, make_role):
    make_role("ops", cluster=["monitor"])
    browser = as_user("security_admin")
    before = security_state()
    response = browser.post(
        f"{ROLES}/ops/edit", role_form(name="ops", cluster=["manage"], rows=[("logs-*", "raed")])
    )
    assert response.status_code == 400
    assert b'value="raed"' in response.content
    assert security_state() == before


def test_creating_a_role_that_exists_is_a_conflict_shown_on_the_name(as_user, make_role):
    make_role("ops", cluster=["monitor"])
    browser = as_user("security_admin")
    before = security_state()
    response = browser.post(f"{ROLES}/create", role_form(name="ops", cluster=["all"]))
    assert response.status_code == 409
    assert "already exists" in " ".join(errors_for(response, "name"))
    assert security_state() == before


def test_a_tampered_formset_is_a_clear_error_not_a_crash(as_user):
    data = role_form(name="ops")
    del data["indices-TOTAL_FORMS"]
    browser = as_user("security_admin")
    before = security_state()
    response = browser.post(f"{ROLES}/create", data)
    assert response.status_code == 400
    assert security_state() == before


def test_role_is_deleted_after_a_confirmation_that_counts_its_users(as_user, make_role, make_user):
    make_role("ops", cluster=["monitor"])
    make_user("alice", roles=["ops"])
    make_user("bob", roles=["ops"])
    browser = as_user("security_admin")
    confirmation = browser.get(f"{ROLES}/ops/delete")
    assert b"2 users</strong> have this role" in confirmation.content
    response = browser.post(f"{ROLES}/ops/delete")
    assert response.status_code == 302
    assert not Role.objects.filter(name="ops").exists()
    assert User.objects.filter(username="alice").exists()


def test_role_names_with_slashes_and_spaces_have_working_pages(as_user, make_role):
    make_role("team/ops admins", cluster=["monitor"])
    browser = as_user("security_admin")
    assert browser.get(ROLES).status_code == 200
    assert browser.get(f"{ROLES}/{quote('team/ops admins')}").status_code == 200
    assert browser.get(f"{ROLES}/{quote('team/ops admins')}/edit").status_code == 200


def test_unknown_role_is_not_found(as_user):
    assert as_user("security_admin").get(f"{ROLES}/nope").status_code == 404


def test_built_in_role_is_read_only(as_user):
    browser = as_user("superuser")
    page = browser.get(f"{ROLES}/superuser").content.decode()
    assert "Reserved" in page and "edit-role" not in page and "delete-role" not in page
    assert browser.get(f"{ROLES}/superuser/edit").status_code == 403
    before = security_state()
    edit = browser.post(f"{ROLES}/superuser/edit", role_form(name="superuser", cluster=["monitor"]))
    assert edit.status_code == 403
    assert browser.post(f"{ROLES}/superuser/delete").status_code == 403
    assert security_state() == before
    role = Role.objects.get(name="superuser")
    assert role.built_in and role.cluster == ["all"]


# --- Users ------------------------------------------------------------------------------------


def test_user_list_shows_realm_roles_and_status_and_filters(as_user, make_user, make_role, file_realm):
    make_role("viewer", cluster=["monitor"])
    make_user("alice", roles=["viewer"])
    disabled = make_user("dave")
    disabled.enabled = False
    disabled.save()
    make_user("alice", realm=file_realm)
    browser = as_user("security_admin")
    html = browser.get(USERS).content.decode()
    alice = re.search(r'<tr[^>]*data-user="default_native/alice".*?</tr>', html, re.S).group(0)
    assert ">viewer<" in alice and "Enabled" in alice and "default_native" in alice
    assert "Disabled" in re.search(r'<tr[^>]*data-user="default_native/dave".*?</tr>', html, re.S).group(0)
    only_file = browser.get(USERS, {"realm": "default_file"}).content.decode()
    assert 'data-user="default_file/alice"' in only_file
    assert 'data-user="default_native/alice"' not in only_file
    searched = browser.get(USERS, {"q": "DAV"}).content.decode()
    assert 'data-user="default_native/dave"' in searched and "alice" not in searched
    disabled_only = browser.get(USERS, {"status": "disabled"}).content.decode()
    assert 'data-user="default_native/dave"' in disabled_only
    assert 'data-user="default_native/alice"' not in disabled_only


def test_an_unknown_realm_filter_is_an_error_on_the_form_not_a_crash(as_user):
    response = as_user("security_admin").get(USERS, {"realm": "nope"})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content


def test_user_is_created_in_the_native_realm_with_roles(as_user, make_role, monkeypatch):
    make_role("viewer", cluster=["monitor"])
    calls = []
    real = services.create_user
    monkeypatch.setattr(services, "create_user", lambda *a, **k: calls.append(a) or real(*a, **k))
    response = as_user("security_admin").post(f"{USERS}/create", user_form(roles=["viewer"]))
    assert response.status_code == 302
    assert calls
    alice = User.objects.get(username="alice")
    assert alice.realm.name == "default_native"
    assert alice.check_password(PASSWORD)
    assert alice.full_name == "Alice Liddell" and alice.email == "alice@example.com" and alice.enabled
    assert [role.name for role in alice.roles.all()] == ["viewer"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (user_form(confirm="something-else-entirely"), "password_confirm", "Passwords do not match."),
        (user_form(password="short", confirm="short"), "password", "too short"),
        (user_form(password="password", confirm="password"), "password", "too common"),
        (user_form(username="_system"), "username", "must not start with [_]"),
        (user_form(username=" alice"), "username", "must not begin or end with whitespace"),
        (user_form(username="ålice"), "username", "printable characters"),
        (user_form(email="not-an-email"), "email", "valid email"),
        (user_form(roles=["no_such_role"]), "roles", "Select a valid choice"),
    ],
)
def test_invalid_user_shows_the_error_beside_its_field_and_creates_nobody(as_user, data, field, message):
    browser = as_user("security_admin")
    before = security_state()
    response = browser.post(f"{USERS}/create", data)
    assert response.status_code == 400
    assert any(message in error for error in errors_for(response, field)), errors_for(response, field)
    assert security_state() == before


def test_creating_a_user_that_exists_is_a_conflict_shown_on_the_username(as_user, make_user):
    make_user("alice")
    browser = as_user("security_admin")
    before = security_state()
    response = browser.post(f"{USERS}/create", user_form())
    assert response.status_code == 409
    assert "already exists" in " ".join(errors_for(response, "username"))
    assert security_state() == before


def test_user_is_edited_through_put_user_and_keeps_metadata_and_password(as_user, make_user, make_role):
    make_role("viewer", cluster=["monitor"])
    alice = make_user("alice", password=PASSWORD)
    alice.metadata = {"team": "ops"}
    alice.save()
    browser = as_user("security_admin")
    assert b'value="Alice"' in browser.get(user_url(alice, "edit")).content
    response = browser.post(user_url(alice, "edit"), {
        "full_name": "Alice Liddell", "email": "alice@example.org", "roles": ["viewer"], "enabled": "",
    })
    assert response.status_code == 302 and response["Location"] == user_url(alice)
    alice.refresh_from_db()
    assert (alice.full_name, alice.email, alice.enabled) == ("Alice Liddell", "alice@example.org", False)
    assert [role.name for role in alice.roles.all()] == ["viewer"]
    assert alice.metadata == {"team": "ops"} and alice.check_password(PASSWORD)


def test_role_names_no_role_has_are_shown_as_not_defined_and_kept_by_the_edit_form(
    as_user, make_user, make_role
):
    make_role("viewer", cluster=["monitor"])
    alice = make_user("alice", roles=["viewer"])
    services.put_user("alice", roles=["viewer", "auditor"])
    browser = as_user("security_admin")
    edit = {"full_name": "", "email": "", "enabled": "on"}

    listed = browser.get(USERS).content.decode()
    row = re.search(r'<tr[^>]*data-user="default_native/alice".*?</tr>', listed, re.S).group(0)
    detail = browser.get(user_url(alice)).content.decode()
    form = browser.get(user_url(alice, "edit")).content.decode()
    kept = browser.post(user_url(alice, "edit"), {**edit, "roles": ["viewer", "auditor"]})

    for html in (row, detail):
        assert ">viewer</a>" in html
        assert re.search(r"<span [^>]*data-pending-role[^>]*>auditor \(not defined\)</span>", html)
    assert re.search(r'value="auditor"[^>]*checked', form) and "auditor (not defined)" in form
    assert kept.status_code == 302
    assert User.objects.get(username="alice").role_names() == ["viewer", "auditor"]
    dropped = browser.post(user_url(alice, "edit"), {**edit, "roles": ["viewer"]})
    assert dropped.status_code == 302 and User.objects.get(username="alice").pending_roles == []


def test_password_is_reset_for_a_native_user(as_user, make_user):
    alice = make_user("alice", password=PASSWORD)
    browser = as_user("security_admin")
    mismatch = browser.post(user_url(alice, "password"), {"password": NEW_PASSWORD, "password_confirm": "x"})
    assert mismatch.status_code == 400
    response = browser.post(user_url(alice, "password"), NEW_PASSWORD_FORM)
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_a_user_without_manage_security_may_change_only_their_own_password(users, make_user):
    own = users["own_keys"]
    browser = Browser(own)
    other = make_user("alice", password=PASSWORD)
    response = browser.post(user_url(own, "password"), NEW_PASSWORD_FORM)
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.check_password(NEW_PASSWORD)
    assert browser.get(ROLES).status_code == 403  # still logged in, and still without read_security
    before = security_state()
    refused = browser.post(user_url(other, "password"), NEW_PASSWORD_FORM)
    assert refused.status_code == 403
    assert security_state() == before
    other.refresh_from_db()
    assert other.check_password(PASSWORD)


def test_users_are_enabled_and_disabled_with_a_button(as_user, make_user):
    alice = make_user("alice")
    browser = as_user("security_admin")
    assert browser.post(user_url(alice, "enabled"), {"enabled": "false"}).status_code == 302
    alice.refresh_from_db()
    assert not alice.enabled
    assert b'id="enable-user"' in browser.get(user_url(alice)).content
    assert browser.post(user_url(alice, "enabled"), {"enabled": "true"}).status_code == 302
    alice.refresh_from_db()
    assert alice.enabled


def test_you_cannot_disable_or_delete_yourself(users):
    me = users["security_admin"]
    browser = Browser(me)
    page = browser.get(user_url(me)).content.decode()
    assert "disable-user" not in page and "delete-user" not in page
    before = security_state()
    refused = browser.post(user_url(me, "enabled"), {"enabled": "false"})
    assert refused.status_code == 400
    assert b"may not update the enabled status of their own account" in refused.content
    assert b"cannot delete your own account" in browser.get(user_url(me, "delete")).content
    assert browser.post(user_url(me, "delete")).status_code == 400
    assert security_state() == before
    # The enabled checkbox of one's own edit form is disabled: a forged "off" is ignored.
    own_role = "security_admin_default_native_role"
    edit = browser.post(user_url(me, "edit"), {"full_name": "Me", "roles": [own_role]})
    assert edit.status_code == 302
    me.refresh_from_db()
    assert me.enabled and User.objects.filter(pk=me.pk).exists()


def test_user_is_deleted_with_their_api_keys_after_a_confirmation_that_counts_them(
    as_user, make_user, make_api_key
):
    bob = make_user("bob", "manage_own_api_key")
    make_api_key(bob, "bob-1")
    make_api_key(bob, "bob-2")
    make_api_key(bob, "bob-old", state="invalidated")
    browser = as_user("security_admin")
    confirmation = browser.get(user_url(bob, "delete")).content.decode()
    assert "3 API keys</strong> bob owns (2 of them active)" in confirmation
    response = browser.post(user_url(bob, "delete"))
    assert response.status_code == 302 and response["Location"] == USERS
    assert not User.objects.filter(username="bob").exists()
    assert not ApiKey.objects.filter(name__startswith="bob-").exists()


def test_file_realm_users_are_read_only(as_user, make_user, file_realm):
    frank = make_user("frank", realm=file_realm)
    browser = as_user("superuser")
    page = browser.get(user_url(frank)).content.decode()
    assert 'id="file-realm-note"' in page and "users file" in page
    for control in ("edit-user", "reset-password", "disable-user", "delete-user"):
        assert control not in page
    assert browser.get(user_url(frank, "edit")).status_code == 403
    before = security_state()
    responses = [
        browser.post(user_url(frank, "edit"), {"full_name": "changed"}),
        browser.post(user_url(frank, "password"), {"password": PASSWORD, "password_confirm": PASSWORD}),
        browser.post(user_url(frank, "enabled"), {"enabled": "false"}),
        browser.post(user_url(frank, "delete")),
    ]
    assert [response.status_code for response in responses] == [403] * 4
    assert security_state() == before


def test_unknown_user_is_not_found(as_user):
    assert as_user("security_admin").get(f"{USERS}/default_native/nobody").status_code == 404


# --- CSRF and query counts --------------------------------------------------------------------


def test_forms_enforce_csrf(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["security_admin"])
    browser = Browser(None, client)
    before = security_state()
    forged = browser.post(f"{ROLES}/create", role_form(name="forged"))
    assert forged.status_code == 403
    assert security_state() == before
    browser.get(f"{ROLES}/create")
    token = client.cookies["csrftoken"].value
    accepted = browser.post(
        f"{ROLES}/create", {**role_form(name="genuine"), "csrfmiddlewaretoken": token},
        headers={"Origin": "https://testserver"},
    )
    assert accepted.status_code == 302
    assert Role.objects.filter(name="genuine").exists()


def count_queries(browser, path) -> int:
    with CaptureQueriesContext(connection) as context:
        assert browser.get(path).status_code == 200
    return len(context.captured_queries)


def test_lists_make_the_same_number_of_queries_for_few_and_many_rows(as_user, make_user, make_role):
    browser = as_user("security_admin")
    make_role("r0", cluster=["monitor"], indices=[{"names": ["a"], "privileges": ["read"]}])
    make_user("u0", roles=["r0"])
    few = {path: count_queries(browser, path) for path in (ROLES, USERS)}
    for number in range(1, 15):
        make_role(f"r{number}", cluster=["monitor"], indices=[{"names": ["a"], "privileges": ["read"]}])
        make_user(f"u{number}", roles=[f"r{number}", "r0"])
    many = {path: count_queries(browser, path) for path in (ROLES, USERS)}
    assert many == few
