"""The Console, Roles and Users pages in a real browser against the real server: their scripts run
under the strict Content-Security-Policy (the ``new_page`` fixture fails on any violation)."""

import pytest
from playwright.sync_api import expect

from apikeys.console import EXAMPLES
from tests.browser import log_in

pytestmark = pytest.mark.browser

SECURITY = "/app/management/security"


@pytest.fixture(scope="module")
def server(keyward_server):
    """The real server, with the demo users, roles and keys to fill the pages."""
    keyward_server.manage("seed_demo")
    return keyward_server


@pytest.fixture(scope="module")
def elastic_cookies(browser, server):
    """One login as elastic for the whole module: its session and CSRF cookies."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        log_in(context.new_page(), server, "elastic", server.password)
        return context.cookies()
    finally:
        context.close()


@pytest.fixture
def elastic_page(new_page, elastic_cookies):
    page = new_page()
    page.context.add_cookies(elastic_cookies)
    return page


def example_value(path: str) -> str:
    return str([example.path for example in EXAMPLES].index(path))


def test_console_creates_an_api_key_and_says_who_is_logged_in(elastic_page, server):
    page = elastic_page
    page.goto(server.base_url + "/app/dev_tools#/console")
    editor = page.locator("#console-request")
    assert editor.input_value().startswith("POST /_security/api_key\n")
    page.click("#console-send")
    expect(page.locator("#console-status")).to_have_text("200 OK")
    expect(page.locator("#console-response")).to_contain_text('"encoded": "')
    expect(page.locator("#console-response")).to_contain_text('"name": "my-key"')

    page.select_option("#console-examples", example_value("/_security/_authenticate"))
    assert editor.input_value() == "GET /_security/_authenticate"
    page.click("#console-send")
    expect(page.locator("#console-response")).to_contain_text('"username": "elastic"')
    expect(page.locator("#console-status")).to_have_text("200 OK")


BAD_REQUESTS = {
    "GET": "The first line must be METHOD /path",
    "FETCH /_security/role": "Unknown method FETCH",
    "GET https://example.com/_security/role": "is an absolute URL",
    "GET //example.com/_security/role": "is an absolute URL",
    'POST /_security/api_key\n{"name": ': "The request body is not valid JSON",
    'GET /_security/api_key\n{"name": "x"}': "cannot send a body with GET",
}


def test_console_refuses_a_bad_request_without_sending_it(elastic_page, server):
    page = elastic_page
    page.goto(server.base_url + "/app/dev_tools")
    sent = []
    page.on("request", lambda request: sent.append(request.url) if "/_security" in request.url else None)
    for request_text, message in BAD_REQUESTS.items():
        page.fill("#console-request", request_text)
        page.click("#console-send")
        expect(page.locator("#console-error")).to_contain_text(message)
    assert sent == []
    assert page.locator("#console-status").is_hidden()


def test_console_shows_an_error_response_with_its_status(elastic_page, server):
    page = elastic_page
    page.goto(server.base_url + "/app/dev_tools")
    page.fill("#console-request", 'POST /_security/api_key\n{"name": "_reserved"}')
    page.focus("#console-request")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#console-status")).to_have_text("400 Bad Request")
    expect(page.locator("#console-response")).to_contain_text('"type": "illegal_argument_exception"')
    expect(page.locator("#console-error")).to_be_hidden()


def test_role_editor_adds_index_rows_and_suggests_privileges(elastic_page, server):
    page = elastic_page
    page.goto(server.base_url + f"{SECURITY}/roles/create")
    page.fill("#id_name", "browser_made")
    page.check("input[name=cluster][value=monitor]")
    page.fill("#id_indices-0-names", "logs-*")
    page.click("[data-index-row] >> nth=0 >> [data-privilege=read]")
    page.click("[data-index-row] >> nth=0 >> [data-privilege=view_index_metadata]")
    assert page.input_value("#id_indices-0-privileges") == "read, view_index_metadata"
    page.click("#add-index-row")
    page.fill("#id_indices-1-names", "metrics-*")
    page.click("[data-index-row] >> nth=1 >> [data-privilege=write]")
    page.click("#save-role")
    page.wait_for_url(server.base_url + f"{SECURITY}/roles")
    row = page.locator("tr[data-role=browser_made]")
    expect(row).to_contain_text("logs-* · read, view_index_metadata")
    expect(row).to_contain_text("metrics-* · write")


def test_role_editor_adds_and_removes_application_rows(elastic_page, server):
    page = elastic_page
    page.goto(server.base_url + f"{SECURITY}/roles/create")
    page.fill("#id_name", "browser_apps")
    page.fill("#id_applications-0-application", "kibana-.kibana")
    page.fill("#id_applications-0-privileges", "read")
    page.fill("#id_applications-0-resources", "*")
    page.click("#add-application-row")
    page.fill("#id_applications-1-application", "dropped")
    page.click("[data-application-row] >> nth=1 >> [data-remove-row]")
    page.click("#add-application-row")
    page.fill("#id_applications-2-application", "myapp")
    page.fill("#id_applications-2-privileges", "admin, data:read/*")
    page.fill("#id_applications-2-resources", "invoice/*")
    page.click("#save-role")
    page.wait_for_url(server.base_url + f"{SECURITY}/roles")
    page.goto(server.base_url + f"{SECURITY}/roles/browser_apps")
    rows = page.locator("#application-privileges tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("kibana-.kibana")
    expect(rows.nth(1)).to_contain_text("invoice/*")


def test_roles_and_users_pages(elastic_page, server):
    page = elastic_page
    page.goto(server.base_url + f"{SECURITY}/roles")
    expect(page.locator("tr[data-role=superuser]")).to_contain_text("Reserved")
    page.goto(server.base_url + f"{SECURITY}/users/default_native/victor")
    page.click("#disable-user")
    expect(page.locator(".alert-success")).to_contain_text("User 'victor' disabled.")
    page.goto(server.base_url + f"{SECURITY}/users")
    expect(page.locator("tr[data-user='default_native/victor']")).to_contain_text("Disabled")
    expect(page.locator("tr[data-user='default_file/bob']")).to_be_visible()
    expect(page.locator("tr[data-user='default_native/elastic']")).to_contain_text("You")
