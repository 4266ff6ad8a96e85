"""SPEC §6 navigation: the menu offers exactly the pages the user may open, the home page, the
error pages in the product's layout (while the REST API keeps Elasticsearch's answers), the logout
page, dates that state their time zone, and the audit log's key names."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import audit
from accounts.principals import Principal
from apikeys.services import invalidate_api_keys

pytestmark = pytest.mark.django_db

SECURITY = "/app/management/security"
ALL_ENTRIES = {
    "menu-api-keys": f"{SECURITY}/api_keys",
    "menu-roles": f"{SECURITY}/roles",
    "menu-application-privileges": f"{SECURITY}/application_privileges",
    "menu-users": f"{SECURITY}/users",
    "menu-tokens": f"{SECURITY}/tokens",
    "menu-audit-log": f"{SECURITY}/audit",
    "menu-console": "/app/dev_tools#/console",
}
MENU_OF = {
    "superuser": set(ALL_ENTRIES),
    "own_keys": {"menu-api-keys", "menu-console"},
    "security_reader": {
        "menu-api-keys", "menu-roles", "menu-application-privileges", "menu-users", "menu-console",
    },
    "monitor_only": {"menu-console"},
}
ENTRY = re.compile(r'<a class="dropdown-item" href="([^"]+)" id="(menu-[a-z-]+)">')


def menu(page: str) -> dict[str, str]:
    return {entry: href for href, entry in ENTRY.findall(page)}


def text(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("holder", MENU_OF)
def test_the_menu_offers_exactly_the_pages_the_user_may_open_and_each_opens(users, client_for, holder):
    client = client_for(users[holder])

    entries = menu(text(client.get("/app/dev_tools", secure=True)))

    assert set(entries) == MENU_OF[holder]
    assert all(href == ALL_ENTRIES[entry] for entry, href in entries.items())
    for href in entries.values():
        assert client.get(href.split("#")[0], secure=True).status_code == 200, href


def test_a_user_without_security_pages_sees_no_stack_management_section(users, client_for):
    page = text(client_for(users["monitor_only"]).get("/app/dev_tools", secure=True))
    assert "Stack Management" not in page and "Dev Tools" in page


def test_the_page_and_its_menu_read_the_users_roles_once(users, client_for):
    client = client_for(users["security_reader"])
    with CaptureQueriesContext(connection) as with_menu:
        client.get(f"{SECURITY}/roles", secure=True)
    role_reads = [query for query in with_menu.captured_queries if "accounts_user_roles" in query["sql"]]
    assert len(role_reads) == 1


@pytest.mark.parametrize("holder", ("superuser", "own_keys", "security_reader"))
def test_the_home_page_of_a_user_with_key_privileges_is_the_api_keys_list(users, client_for, holder):
    response = client_for(users[holder]).get("/", secure=True)
    assert response.status_code == 302 and response["Location"] == f"{SECURITY}/api_keys"


def test_the_home_page_stays_for_a_user_without_key_privileges_and_anonymous_users_log_in(
    users, client_for, client
):
    response = client_for(users["monitor_only"]).get("/", secure=True)
    assert response.status_code == 200 and "API keys let programs" in text(response)
    assert client.get(f"{SECURITY}/api_keys", secure=True)["Location"].startswith("/login")


def test_an_unknown_page_is_a_404_page_in_the_layout_with_a_way_back(users, client_for):
    response = client_for(users["own_keys"]).get("/app/nowhere", secure=True)

    page = text(response)
    assert response.status_code == 404
    assert "<h1 class=\"h4\">Page not found</h1>" in page and "/app/nowhere" in page
    assert 'id="menu-api-keys"' in page and 'id="error-home">Go to the home page</a>' in page


def test_unknown_api_paths_keep_elasticsearchs_and_kibanas_answers(users, client_for):
    client = client_for(users["superuser"])

    elasticsearch = client.get("/_security/nowhere", secure=True)
    kibana = client.get("/api/security/nowhere", secure=True)

    assert elasticsearch.status_code == 404
    assert elasticsearch.json()["error"]["type"] == "resource_not_found_exception"
    assert elasticsearch["X-Elastic-Product"] == "Elasticsearch"
    assert kibana.status_code == 404 and kibana.json()["error"] == "Not Found"


def test_a_page_refusing_a_method_says_which_ones_it_accepts(users, client_for):
    response = client_for(users["own_keys"]).delete(f"{SECURITY}/api_keys", secure=True)

    page = text(response)
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert "This page does not accept DELETE requests" in page
    assert '<span id="allowed-methods">GET, HEAD</span>' in page and 'id="menu-api-keys"' in page


def test_an_api_route_refusing_a_method_keeps_elasticsearchs_answer(users, client_for):
    response = client_for(users["superuser"]).put("/_security/_authenticate", secure=True)

    assert response.status_code == 405
    assert response.json()["error"].startswith("Incorrect HTTP method for uri [/_security/_authenticate]")


def test_a_django_permission_denied_is_a_403_page_on_pages_and_json_on_api_paths(rf):
    from django.core.exceptions import PermissionDenied

    from restapi.wire import api_forbidden

    page = api_forbidden(rf.get("/app/somewhere"), PermissionDenied("no"))
    api = api_forbidden(rf.get("/_security/somewhere"), PermissionDenied("no"))

    assert page.status_code == 403 and b"You do not have permission to open this page" in page.content
    assert api.status_code == 403 and b'"type": "security_exception"' in api.content


def test_get_logout_asks_with_a_log_out_button_that_logs_out(users, client_for):
    client = client_for(users["own_keys"])

    page = text(client.get("/logout", secure=True))
    form = re.search(r'<form method="post" action="/logout" class="d-inline">(.*?)</form>', page, re.S)

    assert form and 'name="csrfmiddlewaretoken"' in form[1] and ">Log out</button>" in form[1]
    assert client.post("/logout", secure=True)["Location"] == "/login"
    assert client.get("/logout", secure=True)["Location"] == "/login"


def test_dates_state_their_time_zone(users, client_for, make_api_key):
    key = make_api_key(users["own_keys"], "dated")

    page = text(client_for(users["own_keys"]).get(f"{SECURITY}/api_keys/{key.pk}", secure=True))

    created = f"{key.created:%Y-%m-%d %H:%M}"
    assert f'data-local-time title="{key.created:%Y-%m-%d %H:%M:%S} UTC">{created} UTC</time>' in page


def test_the_audit_log_names_keys_and_links_those_that_still_exist_in_one_query(
    users, client_for, make_api_key
):
    owner = users["own_keys"]
    kept, removed = make_api_key(owner, "kept-key"), make_api_key(owner, "removed-key")
    invalidate_api_keys(Principal(owner), ids=[kept.pk])
    removed_id = removed.pk
    removed.delete()
    client = client_for(users["security_admin"])

    statements = []

    def record(execute, sql, *args):
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        page = text(client.get(f"{SECURITY}/audit", {"action": audit.API_KEYS_INVALIDATED}, secure=True))
    created = text(client.get(f"{SECURITY}/audit", {"action": audit.API_KEY_CREATED}, secure=True))

    link = f'<a href="{SECURITY}/api_keys/{kept.pk}" class="audit-key">kept-key</a> <code>{kept.pk}</code>'
    assert link in page and link in created
    assert (
        f'<span class="audit-key">removed-key</span> <code>{removed_id}</code> '
        '<span class="badge text-bg-light border">removed</span>'
    ) in created
    assert len([sql for sql in statements if 'FROM "apikeys_apikey"' in sql]) == 1
