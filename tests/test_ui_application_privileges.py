"""The Application privileges pages: who sees the list and its menu entry, who may define, edit and
delete (as the privileges API decides), the service's messages beside their fields, and refusals
that change nothing; the role page shows what the names it grants stand for."""

import re
from html import unescape

import pytest
from django.test import Client

from accounts import audit
from accounts.models import AuditEvent, Role
from application_privileges.models import ApplicationPrivilege
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

PAGE = "/app/management/security/application_privileges"
READERS = ("superuser", "security_admin", "security_reader")
WRITERS = ("superuser", "security_admin")
NEITHER = ("api_key_admin", "own_keys", "monitor_only")
MENU_ENTRY = 'id="menu-application-privileges"'


@pytest.fixture
def stored(db):
    ApplicationPrivilege.objects.create(
        application="inventory", name="read", actions=["data:read/*"], metadata={"owner": "ops"}
    )
    ApplicationPrivilege.objects.create(application="inventory", name="write", actions=["data:write/*"])
    ApplicationPrivilege.objects.create(application="billing", name="read", actions=["invoice:read"])


@pytest.fixture
def as_user(users):
    def login(name):
        client = Client()
        client.force_login(users[name] if isinstance(name, str) else name)
        return client

    return login


def get(client, path, data=None):
    return client.get(path, data, secure=True)


def post(client, path, data=None):
    return client.post(path, data or {}, secure=True)


def rows(response) -> list[str]:
    return re.findall(r'data-privilege="([^"]+)"', response.content.decode())


def errors_for(response, field) -> list[str]:
    return re.findall(rf'data-error-for="{field}">(.*?)</div>', response.content.decode(), re.S)


def form(application="inventory", name="delete", actions="data:delete/*", metadata=""):
    return {"application": application, "name": name, "actions": actions, "metadata": metadata}


# ---------------------------------------------------------------------------------------------
# Who sees the list, and the menu entry that leads to it


@pytest.mark.parametrize("name", READERS)
def test_security_readers_see_every_defined_privilege_and_the_menu_entry(as_user, stored, name):
    client = as_user(name)

    response = get(client, PAGE)

    assert response.status_code == 200
    assert rows(response) == ["billing:read", "inventory:read", "inventory:write"]
    text = response.content.decode()
    assert "data:read/*" in text and "{&quot;owner&quot;: &quot;ops&quot;}" in text
    assert MENU_ENTRY in get(client, "/app/dev_tools").content.decode()


@pytest.mark.parametrize("name", NEITHER)
def test_others_are_refused_the_list_and_are_not_offered_it(as_user, stored, name):
    client = as_user(name)
    before = security_state()

    response = get(client, PAGE)

    assert response.status_code == 403
    assert "You need permission to view application privileges" in response.content.decode()
    assert MENU_ENTRY not in get(client, "/app/dev_tools").content.decode()
    assert security_state() == before


def test_a_reader_gets_no_controls_and_a_writer_gets_them(as_user, stored):
    reader = get(as_user("security_reader"), PAGE).content.decode()
    writer = get(as_user("security_admin"), PAGE).content.decode()

    assert 'id="read-only"' in reader and 'id="define-privilege"' not in reader
    assert "/inventory/read/edit" not in reader and "/inventory/read/delete" not in reader
    assert 'id="read-only"' not in writer and 'id="define-privilege"' in writer
    assert "/inventory/read/edit" in writer and "/inventory/read/delete" in writer


def test_the_put_action_alone_offers_edit_but_not_delete(as_user, make_user, stored):
    """The buttons follow the API's rule per action: a granted action pattern counts, by itself."""
    putter = as_user(make_user("putter", "read_security", "cluster:admin/xpack/security/privilege/put"))

    text = get(putter, PAGE).content.decode()

    assert "/inventory/read/edit" in text and "/inventory/read/delete" not in text
    assert get(putter, f"{PAGE}/inventory/read/edit").status_code == 200
    assert get(putter, f"{PAGE}/inventory/read/delete").status_code == 403


def test_the_list_is_filtered_by_application_searched_sorted_and_paged(as_user, stored):
    client = as_user("security_reader")
    ApplicationPrivilege.objects.bulk_create(
        ApplicationPrivilege(application="many", name=f"p{number:02}", actions=["a:b"])
        for number in range(30)
    )

    assert rows(get(client, PAGE, {"application": "inventory"})) == ["inventory:read", "inventory:write"]
    assert rows(get(client, PAGE, {"q": "writ"})) == ["inventory:write"]
    assert rows(get(client, PAGE, {"q": "bill"})) == ["billing:read"]
    assert rows(get(client, PAGE, {"application": "billing", "sort": "-name"})) == ["billing:read"]
    by_name = rows(get(client, PAGE, {"application": "inventory", "sort": "-name"}))
    assert by_name == ["inventory:write", "inventory:read"]
    first, second = rows(get(client, PAGE)), rows(get(client, PAGE, {"page": 2}))
    assert len(first) == 25 and len(second) == 8 and not set(first) & set(second)
    assert 'value="inventory"' in get(client, PAGE).content.decode()  # offered in the filter


# ---------------------------------------------------------------------------------------------
# Define, edit, delete


def test_a_security_admin_defines_a_privilege_through_the_service(as_user, stored):
    response = post(as_user("security_admin"), f"{PAGE}/create", form(
        actions="data:delete/*\n\n  data:purge  \n", metadata='{"tier": 2}',
    ))

    assert response.status_code == 302 and response["Location"] == PAGE
    defined = ApplicationPrivilege.objects.get(application="inventory", name="delete")
    assert (defined.actions, defined.metadata) == (["data:delete/*", "data:purge"], {"tier": 2})
    event = AuditEvent.objects.get(action=audit.APPLICATION_PRIVILEGES_CHANGED)
    assert (event.actor_username, event.target) == ("security_admin", "inventory")


def test_editing_replaces_actions_and_metadata_but_never_the_name(as_user, stored):
    client = as_user("security_admin")
    shown = get(client, f"{PAGE}/inventory/read/edit").content.decode()

    response = post(client, f"{PAGE}/inventory/read/edit", form(
        application="billing", name="other", actions="data:read/*\ndata:list", metadata="",
    ))

    assert "data:read/*" in shown and "disabled" in shown
    assert response.status_code == 302
    privilege = ApplicationPrivilege.objects.get(application="inventory", name="read")
    assert (privilege.actions, privilege.metadata) == (["data:read/*", "data:list"], {})
    assert not ApplicationPrivilege.objects.filter(name="other").exists()
    assert ApplicationPrivilege.objects.count() == 3


def test_the_services_messages_are_shown_beside_their_fields_and_nothing_changes(as_user, stored):
    client = as_user("security_admin")
    before = security_state()

    response = post(client, f"{PAGE}/create", form(
        application="_app", name="Read", actions="read\ndata:ok", metadata='{"_hidden": 1}',
    ))

    assert response.status_code == 400
    shown = {field: [unescape(error) for error in errors_for(response, field)] for field in form()}
    assert shown == {
        "application": ["An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found '')"],
        "name": ["Application privilege names must match the pattern ^[a-z][a-zA-Z0-9_.-]*$ (found 'Read')"],
        "actions": ["action [read] must contain one of [ '/' , '*' , ':' ]"],
        "metadata": ["metadata keys may not start with [_] (in privilege _app Read)"],
    }
    assert security_state() == before


def test_a_privilege_needs_an_action_and_metadata_must_be_an_object(as_user, stored):
    client = as_user("security_admin")
    before = security_state()

    no_action = post(client, f"{PAGE}/create", form(actions="  \n"))
    not_object = post(client, f"{PAGE}/create", form(metadata="[1]"))

    assert errors_for(no_action, "actions") == ["Application privileges must have at least one action"]
    assert errors_for(not_object, "metadata") == ["metadata must be a JSON object"]
    assert security_state() == before


def test_the_delete_confirmation_lists_what_goes_and_deleting_is_audited(as_user, stored):
    client = as_user("security_admin")

    confirmation = get(client, f"{PAGE}/inventory/read/delete").content.decode()
    response = post(client, f"{PAGE}/inventory/read/delete")

    assert "data:read/*" in confirmation and "owner" in confirmation
    assert response.status_code == 302
    assert list(ApplicationPrivilege.objects.values_list("application", "name")) == [
        ("billing", "read"), ("inventory", "write"),
    ]
    event = AuditEvent.objects.get(action=audit.APPLICATION_PRIVILEGES_DELETED)
    assert event.detail["privileges"] == {"inventory": ["read"]}


@pytest.mark.parametrize("name", ("security_reader", *NEITHER))
def test_those_who_may_not_write_are_refused_every_form_and_nothing_changes(as_user, stored, name):
    client = as_user(name)
    before = security_state()

    responses = [
        get(client, f"{PAGE}/create"),
        post(client, f"{PAGE}/create", form()),
        get(client, f"{PAGE}/inventory/read/edit"),
        post(client, f"{PAGE}/inventory/read/edit", form(name="read", actions="x:y")),
        get(client, f"{PAGE}/inventory/read/delete"),
        post(client, f"{PAGE}/inventory/read/delete"),
    ]

    assert [response.status_code for response in responses] == [403] * 6
    assert security_state() == before


def test_an_unknown_privilege_is_not_found(as_user, stored):
    client = as_user("security_admin")

    assert get(client, f"{PAGE}/inventory/nothing/edit").status_code == 404
    assert post(client, f"{PAGE}/inventory/nothing/delete").status_code == 404


# ---------------------------------------------------------------------------------------------
# The role page


def test_the_role_page_shows_what_granted_names_stand_for_and_marks_undefined_ones(as_user, stored):
    Role.objects.create(name="clerk", applications=[
        {"application": "inventory", "privileges": ["read", "audit", "data:list"], "resources": ["*"]},
        {"application": "bill*", "privileges": ["read"], "resources": ["*"]},
    ])

    text = get(as_user("security_reader"), "/app/management/security/roles/clerk").content.decode()

    table = text[text.index('id="application-privileges"'):]
    inventory, pattern = table.split("<tr>")[2:4]
    assert re.search(r'data-privilege="read">.*?data-actions>data:read/\*<', inventory, re.S)
    assert re.search(r'data-privilege="audit">.*?data-undefined', inventory, re.S)
    assert "data-undefined" not in inventory.split('data-privilege="data:list"')[1]
    assert "data-undefined" not in pattern and "data-actions" not in pattern
