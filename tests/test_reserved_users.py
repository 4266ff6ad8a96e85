"""Reserved users and login sessions (SPEC §1, §4, §6): `elastic` is reserved as in Elasticsearch
(never deleted or replaced, only its password and enabled status change), no change leaves the
installation without an enabled native superuser, and disabling a user ends their sessions for good.
Refused changes leave the whole user row as it was and write no audit event."""

import base64
import json
import threading
from io import StringIO
from urllib.parse import quote

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client
from django.utils.crypto import salted_hmac

from accounts import audit, services
from accounts.exceptions import ValidationError
from accounts.models import AuditEvent, User

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
NEW_PASSWORD = "another-long-password"
USERS = "/app/management/security/users"
API_KEYS_PAGE = "/app/management/security/api_keys"
RESERVED_PUT = "Validation Failed: 1: user [elastic] is reserved and only the password can be changed;"
RESERVED_DELETE = "user [elastic] is reserved and cannot be deleted"
NO_ADMINISTRATOR = (
    "no other enabled user of realm [default_native] holds the [superuser] role, "
    "and the installation would be left without an administrator"
)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def elastic(make_user):
    return make_user("elastic", roles=["superuser"], password=PASSWORD)


@pytest.fixture
def admin(make_user):
    """A security administrator who is not a superuser: the rules below bind whoever asks."""
    return make_user("admin", "manage_security", password=PASSWORD)


@pytest.fixture
def root(make_user):
    """A second native superuser."""
    return make_user("root", roles=["superuser"], password=PASSWORD)


def basic(username, password=PASSWORD):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def api(method, path, body=None, as_user="admin"):
    return Client().generic(
        method, path, data=json.dumps(body) if body is not None else "", content_type="application/json",
        secure=True, headers={"Authorization": basic(as_user)},
    )


def assert_error(response, status, error_type, reason):
    assert response.status_code == status, response.content
    cause = {"type": error_type, "reason": reason}
    assert response.json() == {"error": {"root_cause": [cause], **cause}, "status": status}


def row(user) -> dict:
    """Everything stored about a user, roles included: what a refused change must leave alone."""
    fresh = User.objects.get(pk=user.pk)
    fields = {field.attname: getattr(fresh, field.attname) for field in User._meta.concrete_fields}
    return {**fields, "roles": sorted(fresh.roles.values_list("name", flat=True))}


def disable(user):
    User.objects.filter(pk=user.pk).update(enabled=False)


# --- elastic is reserved (REST API) -----------------------------------------------------------


@pytest.mark.parametrize("caller", ["admin", "elastic", "root"])
def test_delete_elastic_is_refused_as_reserved_whoever_asks(elastic, admin, root, caller):
    before = row(elastic)

    response = api("DELETE", "/_security/user/elastic", as_user=caller)

    assert_error(response, 400, "illegal_argument_exception", RESERVED_DELETE)
    assert row(elastic) == before
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("body", [
    {"roles": []},
    {"roles": ["superuser"], "full_name": "Renamed"},
    {"roles": ["superuser"], "enabled": False},
    {"roles": ["superuser"], "password": NEW_PASSWORD},
])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_put_user_on_elastic_is_refused_whatever_it_would_change(elastic, admin, root, method, body):
    before = row(elastic)

    response = api(method, "/_security/user/elastic", body)

    assert_error(response, 400, "action_request_validation_exception", RESERVED_PUT)
    assert row(elastic) == before
    assert not AuditEvent.objects.exists()


def test_no_one_creates_a_user_named_elastic_but_bootstrap(admin, monkeypatch):
    response = api("PUT", "/_security/user/elastic", {"roles": ["superuser"], "password": PASSWORD})
    assert_error(response, 400, "action_request_validation_exception", RESERVED_PUT)
    monkeypatch.setenv("ELASTIC_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match=r"user \[elastic\] is reserved and only the password can"):
        call_command("create_user", "elastic", "--password-env", "ELASTIC_PASSWORD", stdout=StringIO())
    form = Client()
    form.force_login(admin)
    refused = form.post(f"{USERS}/create", {
        "username": "elastic", "password": PASSWORD, "password_confirm": PASSWORD, "roles": ["superuser"],
    }, secure=True)
    assert refused.status_code == 400
    assert "user [elastic] is reserved and only the password can be changed" in refused.content.decode()
    assert not User.objects.filter(username="elastic").exists()

    call_command("bootstrap", stdout=StringIO())

    created = User.objects.get(username="elastic", realm__name="default_native")
    assert created.check_password(PASSWORD) and row(created)["roles"] == ["superuser"]


def test_elastics_password_can_still_be_changed(elastic, admin):
    before = row(elastic)

    response = api("POST", "/_security/user/elastic/_password", {"password": NEW_PASSWORD})

    assert response.status_code == 200 and response.json() == {}
    after = row(elastic)
    assert after.pop("password") != before.pop("password")
    assert after == before
    authorization = {"Authorization": basic("elastic", NEW_PASSWORD)}
    me = Client().get("/_security/_authenticate", secure=True, headers=authorization)
    assert me.status_code == 200 and me.json()["roles"] == ["superuser"]
    (event,) = AuditEvent.objects.all()
    assert (event.action, event.target) == (audit.USER_CHANGED, "elastic")
    assert event.detail["change"] == "password_changed"


# --- Never without an enabled superuser -------------------------------------------------------


def test_disabling_elastic_is_refused_while_no_other_superuser_is_enabled(
    elastic, admin, root, make_user, file_realm
):
    disable(root)
    make_user("file_root", realm=file_realm, roles=["superuser"])  # file realm users do not count
    before = row(elastic)

    response = api("POST", "/_security/user/elastic/_disable")

    reason = f"user [elastic] cannot be disabled: {NO_ADMINISTRATOR}"
    assert_error(response, 400, "illegal_argument_exception", reason)
    assert row(elastic) == before
    assert not AuditEvent.objects.exists()


def test_disabling_elastic_is_allowed_while_another_superuser_is_enabled(elastic, admin, root):
    response = api("PUT", "/_security/user/elastic/_disable")

    assert response.status_code == 200
    assert not User.objects.get(pk=elastic.pk).enabled
    (event,) = AuditEvent.objects.all()
    assert (event.target, event.detail["change"]) == ("elastic", "disabled")
    assert api("PUT", "/_security/user/elastic/_enable").status_code == 200
    assert User.objects.get(pk=elastic.pk).enabled


@pytest.mark.parametrize(("method", "path", "body", "change"), [
    ("POST", "/_security/user/root/_disable", None, "disabled"),
    ("DELETE", "/_security/user/root", None, "deleted"),
    ("PUT", "/_security/user/root", {"roles": []}, "removed from the [superuser] role"),
    ("PUT", "/_security/user/root", {"roles": ["superuser"], "enabled": False}, "disabled"),
])
def test_the_last_enabled_superuser_is_kept_when_elastic_is_disabled(
    elastic, admin, root, method, path, body, change
):
    disable(elastic)
    before = row(root)

    response = api(method, path, body)

    reason = f"user [root] cannot be {change}: {NO_ADMINISTRATOR}"
    assert_error(response, 400, "illegal_argument_exception", reason)
    assert row(root) == before
    assert not AuditEvent.objects.exists()


def test_the_last_superuser_may_be_changed_in_every_other_way(elastic, admin, root, make_role):
    disable(elastic)
    make_role("viewer", cluster=["monitor"])

    response = api("PUT", "/_security/user/root", {"roles": ["superuser", "viewer"], "full_name": "Root"})

    assert response.status_code == 200
    assert row(root)["roles"] == ["superuser", "viewer"]


def test_a_superuser_may_be_disabled_and_deleted_while_another_stays_enabled(elastic, admin, root):
    assert api("POST", "/_security/user/root/_disable").status_code == 200
    assert api("DELETE", "/_security/user/root").json() == {"found": True}
    assert not User.objects.filter(username="root").exists()


def test_disabled_superusers_do_not_count(elastic, admin, root, make_user):
    disable(make_user("spare", roles=["superuser"]))
    assert api("POST", "/_security/user/root/_disable").status_code == 200

    response = api("POST", "/_security/user/elastic/_disable")

    assert response.status_code == 400
    assert User.objects.get(pk=elastic.pk).enabled


def test_elastic_may_always_be_enabled_again(elastic, admin):
    disable(elastic)

    assert api("POST", "/_security/user/elastic/_enable").status_code == 200
    assert User.objects.get(pk=elastic.pk).enabled


# --- Disabling ends login sessions ------------------------------------------------------------


def logged_in(username) -> Client:
    """A browser that logged in on the login page."""
    client = Client()
    response = client.post("/login", {"username": username, "password": PASSWORD}, secure=True)
    assert response.status_code == 302, response.content
    assert client.get(API_KEYS_PAGE, secure=True).status_code == 200
    return client


def assert_sent_to_login(client):
    response = client.get(API_KEYS_PAGE, secure=True)
    assert response.status_code == 302 and response["Location"].startswith("/login?next=")


def test_disabling_a_user_ends_their_session_at_once_and_enabling_does_not_revive_it(admin, make_user):
    make_user("alice", "manage_own_api_key", password=PASSWORD)
    session = logged_in("alice")

    assert api("POST", "/_security/user/alice/_disable").status_code == 200
    assert_sent_to_login(session)
    assert api("POST", "/_security/user/alice/_enable").status_code == 200
    assert_sent_to_login(session)
    logged_in("alice")


def test_put_user_that_disables_a_user_ends_their_session(admin, make_user):
    make_user("alice", "manage_own_api_key", password=PASSWORD)
    session = logged_in("alice")

    assert api("PUT", "/_security/user/alice", {"roles": [], "enabled": False}).status_code == 200
    assert api("PUT", "/_security/user/alice", {"roles": []}).status_code == 200
    assert_sent_to_login(session)


def test_other_changes_keep_the_session(admin, make_user, make_role):
    make_role("viewer", cluster=["monitor"])
    make_user("alice", "manage_own_api_key", password=PASSWORD)
    session = logged_in("alice")

    roles = {"roles": ["viewer", "alice_default_native_role"]}
    assert api("PUT", "/_security/user/alice", roles).status_code == 200
    assert api("POST", "/_security/user/alice/_enable").status_code == 200  # already enabled: no change

    assert session.get(API_KEYS_PAGE, secure=True).status_code == 200


def test_a_session_made_before_session_generations_existed_stays_valid_until_the_user_is_disabled(
    admin, make_user
):
    alice = make_user("alice", "manage_own_api_key", password=PASSWORD)
    session = Client()
    session.force_login(alice)
    # What an earlier version stored: Django's own HMAC of the password hash.
    stored = session.session
    django_salt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
    stored[HASH_SESSION_KEY] = salted_hmac(django_salt, alice.password, algorithm="sha256").hexdigest()
    stored.save()
    assert session.get(API_KEYS_PAGE, secure=True).status_code == 200

    assert api("POST", "/_security/user/alice/_disable").status_code == 200
    assert api("POST", "/_security/user/alice/_enable").status_code == 200
    assert_sent_to_login(session)


# --- The same through the Users pages ---------------------------------------------------------


def page_url(username, action=""):
    return f"{USERS}/default_native/{quote(username)}" + (f"/{action}" if action else "")


@pytest.fixture
def as_admin(admin):
    client = Client()
    client.force_login(admin)
    return client


def test_elastics_page_says_it_is_reserved_and_offers_no_delete_or_edit(as_admin, elastic):
    page = as_admin.get(page_url("elastic"), secure=True).content.decode()

    assert 'id="reserved-user"' in page and 'id="reserved-user-note"' in page
    assert "is a reserved user" in page
    assert 'id="delete-user"' not in page and 'id="edit-user"' not in page
    assert 'id="reset-password"' in page and 'id="disable-user"' in page


def test_other_users_pages_are_not_marked_reserved(as_admin, root):
    page = as_admin.get(page_url("root"), secure=True).content.decode()

    assert "reserved-user" not in page
    assert 'id="delete-user"' in page and 'id="edit-user"' in page


def test_elastics_edit_form_explains_and_a_submitted_one_is_refused(as_admin, elastic, root):
    form = as_admin.get(page_url("elastic", "edit"), secure=True).content.decode()
    assert 'id="reserved-user-note"' in form and 'id="save-user"' not in form
    before = row(elastic)

    refused = as_admin.post(page_url("elastic", "edit"), {"full_name": "Renamed", "roles": []}, secure=True)

    assert refused.status_code == 400
    assert "user [elastic] is reserved and only the password can be changed" in refused.content.decode()
    assert row(elastic) == before
    assert not AuditEvent.objects.exists()


def test_elastics_delete_page_refuses(as_admin, elastic, root):
    confirmation = as_admin.get(page_url("elastic", "delete"), secure=True).content.decode()
    assert "elastic is a reserved user and cannot be deleted" in confirmation
    assert 'id="confirm-delete"' not in confirmation
    before = row(elastic)

    refused = as_admin.post(page_url("elastic", "delete"), secure=True)

    assert refused.status_code == 400 and RESERVED_DELETE in refused.content.decode()
    assert row(elastic) == before
    assert not AuditEvent.objects.exists()


def test_the_disable_button_shows_why_elastic_stays_enabled(as_admin, elastic):
    before = row(elastic)

    refused = as_admin.post(page_url("elastic", "enabled"), {"enabled": "false"}, secure=True)

    assert refused.status_code == 400
    assert NO_ADMINISTRATOR in refused.content.decode()
    assert row(elastic) == before
    assert not AuditEvent.objects.exists()


def test_the_pages_keep_the_last_enabled_superuser(as_admin, elastic, root):
    disable(elastic)
    before = row(root)

    form = {"full_name": "Root", "roles": [], "enabled": "on"}
    edit = as_admin.post(page_url("root", "edit"), form, secure=True)
    delete = as_admin.post(page_url("root", "delete"), secure=True)

    assert edit.status_code == 400
    assert "user [root] cannot be removed from the [superuser] role" in edit.content.decode()
    assert delete.status_code == 400 and "user [root] cannot be deleted" in delete.content.decode()
    assert row(root) == before
    assert not AuditEvent.objects.exists()


def test_elastic_is_disabled_and_enabled_with_its_buttons_while_another_superuser_is_enabled(
    as_admin, elastic, root
):
    assert as_admin.post(page_url("elastic", "enabled"), {"enabled": "false"}, secure=True).status_code == 302
    assert not User.objects.get(pk=elastic.pk).enabled
    assert as_admin.post(page_url("elastic", "enabled"), {"enabled": "true"}, secure=True).status_code == 302
    assert User.objects.get(pk=elastic.pk).enabled
    changes = AuditEvent.objects.order_by("id").values_list("detail__change", flat=True)
    assert list(changes) == ["disabled", "enabled"]


def test_a_user_disabled_on_their_page_is_logged_out_and_stays_out_after_being_enabled(as_admin, make_user):
    make_user("alice", "manage_own_api_key", password=PASSWORD)
    session = logged_in("alice")

    assert as_admin.post(page_url("alice", "enabled"), {"enabled": "false"}, secure=True).status_code == 302
    assert_sent_to_login(session)
    assert as_admin.post(page_url("alice", "enabled"), {"enabled": "true"}, secure=True).status_code == 302
    assert_sent_to_login(session)
    logged_in("alice")


def test_a_user_disabled_with_the_edit_form_is_logged_out_for_good(as_admin, make_user):
    make_user("alice", "manage_own_api_key", password=PASSWORD)
    session = logged_in("alice")
    form = {"full_name": "Alice", "roles": ["alice_default_native_role"]}

    assert as_admin.post(page_url("alice", "edit"), form, secure=True).status_code == 302
    assert as_admin.post(page_url("alice", "edit"), {**form, "enabled": "on"}, secure=True).status_code == 302

    assert User.objects.get(username="alice").enabled
    assert_sent_to_login(session)


# --- Two changes at once ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_disable_waits_for_a_change_in_flight_and_then_keeps_the_last_superuser(elastic, root):
    """Another transaction that is disabling elastic holds the superuser role's lock; disabling root
    meanwhile waits for it, sees elastic disabled, and is refused: never two disables that each saw
    the other superuser still enabled."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time (BEGIN IMMEDIATE): there is no race")
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    outcome = []

    def disable_root():
        try:
            services.set_user_enabled("root", False)
            outcome.append("disabled")
        except ValidationError as error:
            outcome.append(error.reason)
        finally:
            connection.close()

    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM accounts_role WHERE name = 'superuser' FOR UPDATE")
            cursor.execute("UPDATE accounts_user SET enabled = false WHERE id = %s", [elastic.pk])
            racer = threading.Thread(target=disable_root)
            racer.start()
            racer.join(timeout=1)
            waited = racer.is_alive()
            cursor.execute("COMMIT")
    finally:
        other.close()  # rolls back whatever a failure left open
    racer.join(timeout=30)

    assert waited, outcome
    assert outcome == [f"user [root] cannot be disabled: {NO_ADMINISTRATOR}"]
    assert User.objects.get(pk=root.pk).enabled


def test_elastic_is_shown_reserved_as_elasticsearch_marks_it(elastic, admin):
    response = api("GET", "/_security/user/elastic,admin")

    assert response.json()["elastic"]["metadata"] == {"_reserved": True}
    assert response.json()["admin"]["metadata"] == {}


def test_bootstrap_gives_elastic_back_a_superuser_role_lost_before_it_was_reserved(elastic):
    elastic.roles.clear()

    out = StringIO()
    call_command("bootstrap", stdout=out)

    assert "restored" in out.getvalue()
    assert list(elastic.roles.values_list("name", flat=True)) == ["superuser"]
