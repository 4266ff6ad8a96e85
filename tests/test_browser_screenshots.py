"""The README's screenshots, taken of what a newcomer sees after `make demo`: the real server filled
by ``seed_demo``, in a real browser, logged in through the login page as ``elastic`` or as the demo
users. Each step checks what the page shows before it is photographed, and this module is the only
place that writes docs/screenshots/.

The pages that change the demo data come last, so every screenshot shows the demo as seeded.
"""

import base64
import json

import pytest
from playwright.sync_api import expect

from apikeys.console import EXAMPLES
from tests.browser import PHONE, log_in, screenshot

pytestmark = pytest.mark.browser

LIST = "/app/management/security/api_keys"
SECURITY = "/app/management/security"

# The keys seed_demo leaves active or expired: what the list shows before any filter. Keys created
# in the same millisecond may come in either order, so lists of names are compared sorted.
SHOWN_BY_DEFAULT = [
    "backup-cron", "ci-release", "filebeat-prod", "filebeat-staging", "jupyter-notebook",
    "logstash-pipeline", "nightly-reindex", "ops-dashboard", "quarterly-report",
]
NATIVE_BOBS = ["ci-release", "filebeat-prod", "filebeat-staging", "logstash-pipeline"]
DEMO_USERS = ["alice", "bob", "carol", "sam", "victor"]
DEMO_ROLES = ["analyst", "api_key_admin", "ingest_writer", "security_auditor", "viewer"]


@pytest.fixture(scope="module")
def demo_password(keyward_server):
    """Runs ``seed_demo`` as ``make demo`` does; returns the password it prints for its users."""
    output = keyward_server.manage("seed_demo")
    assert "Seeded 5 native users, 1 file user and 11 keys." in output
    return output.split("share the password: ", 1)[1].split()[0]


@pytest.fixture
def page_as(new_page, keyward_server, demo_password):
    """page_as(username) — a new browser logged in through the login page; ``elastic`` with the
    server's password, the demo users with theirs."""

    def make(username):
        page = new_page()
        password = keyward_server.password if username == "elastic" else demo_password
        log_in(page, keyward_server, username, password)
        return page

    return make


def click_and_wait(page, selector):
    with page.expect_navigation():
        page.click(selector)


def on_a_phone(page, name):
    """Photograph the page as a 390 px wide phone shows it, then give it back its desktop width."""
    desktop = page.viewport_size
    page.set_viewport_size(PHONE)
    screenshot(page, name)
    page.set_viewport_size(desktop)


def row_names(page) -> list[str]:
    return page.locator("#api-keys-table a.api-key-name").all_inner_texts()


def test_home_after_logging_in(page_as, keyward_server):
    """Those with key privileges start on the API keys page; the home page offers anyone else
    what their roles open: for the demo's ``monitor`` user, the console alone."""
    assert page_as("elastic").url == keyward_server.base_url + LIST
    page = page_as("victor")
    assert page.url == keyward_server.base_url + "/"
    assert "Keyward" in page.title()
    assert page.inner_text("#current-user").startswith("victor")
    expect(page.locator("#https-ok")).to_contain_text("the API key service is enabled")
    expect(page.locator("#home-links a")).to_have_count(1)
    expect(page.locator("#home-menu-console")).to_be_visible()
    expect(page.locator("#home-no-security")).to_be_visible()
    screenshot(page, "home.png")


def test_api_docs(new_page, keyward_server):
    page = new_page()
    response = page.goto(keyward_server.base_url + "/api/docs/", wait_until="networkidle")
    assert response.ok
    assert page.locator("article.api-operation").count() >= 10
    expect(page.locator("body")).to_contain_text("/_security/api_key")
    screenshot(page, "api_docs.png", full_page=False)  # the first screenful: the page is long


def test_api_keys_as_an_administrator(page_as, keyward_server):
    page = page_as("elastic")
    page.goto(keyward_server.base_url + LIST)
    assert "You are an API key administrator" in page.inner_text("#callout-admin")
    assert sorted(row_names(page)) == SHOWN_BY_DEFAULT
    # backup-cron belongs to the file realm's bob.
    assert page.locator("#api-keys-table tbody tr", has_text="default_file").count() == 1
    assert page.inner_text("#overview-summary") == (
        "11 API keys: 5 active · 2 expiring soon · 2 expired · 2 invalidated"
    )
    screenshot(page, "api_keys_admin.png")
    on_a_phone(page, "phone_api_keys.png")


def test_api_keys_of_a_user_who_manages_only_their_own(page_as, keyward_server):
    page = page_as("bob")
    page.goto(keyward_server.base_url + LIST)
    assert "You only have permission to manage your own API keys" in page.inner_text("#callout-own")
    # The file realm's bob is another person: his backup-cron is not shown.
    assert sorted(row_names(page)) == NATIVE_BOBS
    assert page.inner_text("#overview-summary") == (
        "5 API keys: 2 active · 1 expiring soon · 1 expired · 1 invalidated"
    )
    screenshot(page, "api_keys_own.png")


def test_key_details(page_as, keyward_server):
    page = page_as("bob")
    page.goto(keyward_server.base_url + LIST)
    click_and_wait(page, "#api-keys-table a.api-key-name:text-is('filebeat-prod')")
    assert page.inner_text("#api-key-name") == "filebeat-prod"
    assert json.loads(page.inner_text("#metadata")) == {"environment": "production", "beat": "filebeat"}
    assert "write_only" in page.inner_text("#role-descriptors")
    assert "ingest_writer" in page.inner_text("#limited-by")
    assert page.inner_text("#last-used") == "Never"
    expect(page.locator("#rotate-api-key")).to_be_visible()
    screenshot(page, "api_key_details.png")
    on_a_phone(page, "phone_api_key_details.png")


def test_update_page(page_as, keyward_server):
    page = page_as("bob")
    page.goto(keyward_server.base_url + LIST)
    click_and_wait(page, "#api-keys-table a.api-key-name:text-is('filebeat-prod')")
    click_and_wait(page, "#update-api-key")
    page.wait_for_selector("#update-api-key-form")
    assert "filebeat-prod" in page.inner_text("h1")
    assert "write_only" in page.input_value("#id_role_descriptors")
    screenshot(page, "api_key_update.png")


def test_rotate_confirmation(page_as, keyward_server):
    page = page_as("alice")
    page.goto(keyward_server.base_url + LIST + "?owner=alice")
    click_and_wait(page, "#api-keys-table a.api-key-name:text-is('nightly-reindex')")
    click_and_wait(page, "#rotate-api-key")
    page.wait_for_selector("#rotate-confirm")
    assert page.inner_text("h1") == "Rotate API key 'nightly-reindex'?"
    assert page.inner_text("#rotate-lifetime") == "90 days, from now"
    screenshot(page, "api_key_rotate.png")


def test_invalidate_confirmation(page_as, keyward_server):
    page = page_as("elastic")
    page.goto(keyward_server.base_url + LIST + "?owner=bob&realm=default_native")
    assert sorted(row_names(page)) == NATIVE_BOBS
    for name in ("filebeat-staging", "logstash-pipeline", "ci-release"):
        page.check(f"input[aria-label='Select {name}']")
    assert page.inner_text("#invalidate-selected") == "Invalidate 3 API keys"
    click_and_wait(page, "#invalidate-selected")
    page.wait_for_selector("#invalidate-confirm")
    assert page.inner_text("h1") == "Invalidate 3 API keys?"
    assert sorted(page.locator("#selected-keys .fw-semibold").all_inner_texts()) == [
        "ci-release", "filebeat-staging", "logstash-pipeline"
    ]
    screenshot(page, "api_keys_invalidate_confirm.png")


def test_roles(page_as, keyward_server):
    page = page_as("elastic")
    page.goto(keyward_server.base_url + f"{SECURITY}/roles")
    expect(page.locator("tr[data-role=superuser]")).to_contain_text("Reserved")
    for role in DEMO_ROLES:
        expect(page.locator(f"tr[data-role={role}]")).to_be_visible()
    expect(page.locator("tr[data-role=ingest_writer]")).to_contain_text("logs-*, metrics-*")
    screenshot(page, "roles.png")


def test_users(page_as, keyward_server):
    page = page_as("elastic")
    page.goto(keyward_server.base_url + f"{SECURITY}/users")
    for username in DEMO_USERS:
        expect(page.locator(f"tr[data-user='default_native/{username}']")).to_contain_text("Enabled")
    expect(page.locator("tr[data-user='default_native/carol']")).to_contain_text("Carol Analyst")
    expect(page.locator("tr[data-user='default_file/bob']")).to_be_visible()
    expect(page.locator("tr[data-user='default_native/elastic']")).to_contain_text("You")
    screenshot(page, "users.png")


def test_reserved_user(page_as, keyward_server):
    page = page_as("elastic")
    page.goto(keyward_server.base_url + f"{SECURITY}/users/default_native/elastic")
    assert page.inner_text("#reserved-user") == "Reserved"
    assert "elastic is a reserved user" in page.inner_text("#reserved-user-note")
    assert page.locator("#delete-user, #edit-user").count() == 0
    assert page.inner_text("#user-roles") == "superuser"
    screenshot(page, "reserved_user.png")


def test_console(page_as, keyward_server):
    page = page_as("elastic")
    page.goto(keyward_server.base_url + "/app/dev_tools#/console")
    # Who am I? changes nothing, so the other screenshots keep the demo as seeded.
    page.select_option("#console-examples", str([example.path for example in EXAMPLES].index(
        "/_security/_authenticate"
    )))
    page.click("#console-send")
    expect(page.locator("#console-status")).to_have_text("200 OK")
    expect(page.locator("#console-response")).to_contain_text('"username": "elastic"')
    expect(page.locator("#console-response")).to_contain_text('"superuser"')
    screenshot(page, "console.png")


def test_audit_log_after_a_mistyped_password(new_page, page_as, keyward_server):
    mistyped = new_page()
    mistyped.goto(keyward_server.base_url + "/login")
    mistyped.fill("#id_username", "alice")
    mistyped.fill("#id_password", "not-the-demo-password")
    mistyped.click("button[type=submit]")
    expect(mistyped.locator("#login-error")).to_be_visible()

    page = page_as("elastic")
    page.goto(keyward_server.base_url + f"{SECURITY}/audit")
    newest = page.locator("tbody tr").first
    expect(newest).to_have_attribute("data-action", "authentication_failed")
    expect(newest).to_contain_text("alice")
    # What seed_demo did: the roles, the users, and their keys in the owners' names.
    assert page.locator("tr[data-action=api_key_created]").count() == 11
    assert page.locator("tr[data-action=api_keys_invalidated]").count() == 2
    assert page.locator("tr[data-action=role_changed]").count() == len(DEMO_ROLES)
    for username in DEMO_USERS:
        expect(page.locator("tr[data-action=user_changed]", has_text=username)).to_contain_text("created")
    expect(page.locator("tr[data-action=api_key_created]", has_text="backup-cron")).to_contain_text(
        "bob (default_file)"
    )
    screenshot(page, "audit_log.png")


# From here on the demo data changes: a key is created.


def test_create_preview_and_created_key(page_as, keyward_server):
    page = page_as("carol")
    page.goto(keyward_server.base_url + LIST)
    click_and_wait(page, "#create-api-key")
    on_a_phone(page, "phone_api_key_create.png")
    page.fill("#id_name", "notebook-export")
    page.fill("#id_expiration", "30d")
    assert page.inner_text("#expiration-hint").startswith("This API key will expire on ")
    page.click("#privileges-toggle")
    page.click("#boilerplate-read-only")
    assert "read-only-role" in page.input_value("#id_role_descriptors")
    page.click("#metadata-toggle")
    page.fill("#id_metadata", '{"purpose": "weekly export"}')
    page.locator("#id_metadata").blur()
    screenshot(page, "api_key_create.png")

    descriptors = {
        "reporting": {
            "cluster": ["monitor"],
            "indices": [
                {"names": ["logs-*"], "privileges": ["read"]},
                {"names": ["metrics-*"], "privileges": ["read", "write"]},
            ],
        }
    }
    page.fill("#id_role_descriptors", json.dumps(descriptors, indent=2))
    click_and_wait(page, "#preview-submit")
    assert page.inner_text("#no-effect-cluster") == "Cluster privileges monitor"
    assert page.locator(".no-effect-index").all_inner_texts() == ["Index privileges read, write on metrics-*"]
    assert page.input_value("#id_name") == "notebook-export"
    page.locator("#privileges-preview").scroll_into_view_if_needed()
    screenshot(page, "api_key_preview.png")

    page.click("#boilerplate-read-only")
    click_and_wait(page, "#create-submit")
    page.wait_for_selector("#api-key-created")
    assert "Created API key 'notebook-export'" in page.inner_text("#api-key-created")
    assert "Copy this key now. You will not be able to view it again" in page.inner_text("#api-key-created")
    screenshot(page, "api_key_created.png")
    page.goto(keyward_server.base_url + LIST)
    assert row_names(page)[0] == "notebook-export"


def test_access_tokens(page_as, keyward_server, demo_password):
    """Tokens minted through the token API as programs would, one refreshed and one invalidated."""
    elastic = "Basic " + base64.b64encode(f"elastic:{keyward_server.password}".encode()).decode()
    client = keyward_server.connection()

    def token_api(method, body):
        status, answer = keyward_server.request(client, method, "/_security/oauth2/token", elastic, body)
        assert status == 200, answer
        return answer

    try:
        minted = {
            username: token_api(
                "POST", {"grant_type": "password", "username": username, "password": demo_password}
            )
            for username in ("alice", "carol", "sam")
        }
        token_api("POST", {"grant_type": "client_credentials"})
        token_api("POST", {"grant_type": "refresh_token", "refresh_token": minted["carol"]["refresh_token"]})
        token_api("DELETE", {"token": minted["sam"]["access_token"]})
    finally:
        client.close()

    page = page_as("elastic")
    page.goto(keyward_server.base_url + SECURITY + "/users")
    page.click("text=Stack Management")
    click_and_wait(page, "#menu-tokens")
    rows = page.locator("#tokens-table tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("#tokens-table tr[data-state=refresh_used]")).to_contain_text("carol")
    expect(page.locator("#tokens-table tr[data-state=invalidated]")).to_contain_text("sam")
    # Sam's refresh token still works: invalidating an access token leaves it, as in Elasticsearch.
    expect(page.locator("#active-token-count")).to_have_text("5")
    alice = page.locator("#tokens-table tr[data-state=active]", has_text="alice")
    alice.locator("input.token-select").check()
    expect(page.locator("#invalidate-selected")).to_have_text("Invalidate 1 token")
    screenshot(page, "tokens.png")


def test_application_privileges_defined_through_the_form(page_as, keyward_server):
    page = page_as("elastic")
    page.click("text=Stack Management")
    click_and_wait(page, "#menu-application-privileges")
    expect(page.locator("#application-privileges-table")).to_contain_text("No application privileges")
    privileges = [
        ("inventory", "read", "data:read/*\naction:login", '{"description": "Read stock levels"}'),
        ("inventory", "write", "data:write/*", ""),
        ("billing", "invoice_admin", "invoice:*\nreport:read", '{"owner": "finance"}'),
    ]
    for application, name, actions, metadata in privileges:
        click_and_wait(page, "#define-privilege")
        page.fill("#id_application", application)
        page.fill("#id_name", name)
        page.fill("#id_actions", actions)
        page.fill("#id_metadata", metadata)
        click_and_wait(page, "#save-privilege")
        expect(page.locator(".alert-success")).to_contain_text(f"Privilege '{application}:{name}' defined.")
    rows = page.locator("#application-privileges-table tbody tr")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.privilege)") == [
        "billing:invoice_admin", "inventory:read", "inventory:write",
    ]
    expect(page.locator("tr[data-privilege='inventory:read']")).to_contain_text("action:login")
    screenshot(page, "application_privileges.png")
