"""SPEC §6 in a real browser: the API Keys pages as an administrator, a user who manages only
their own keys and a user without privileges see them, against the real server and its demo data.

Each test makes the keys it changes, so the tests hold in any order and on any worker.
"""

import json
import re

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.browser

LIST = "/app/management/security/api_keys"


# Some weeks of history for the demo keys: (name, created days ago, last used days ago or None).
# Expirations stay as seeded, so every key keeps its state.
HISTORY = [
    ("backup-cron", 100, 2),
    ("old-migration-script", 71, None),
    ("legacy-ingest", 64, 40),
    ("ops-dashboard", 50, 1),
    ("filebeat-prod", 43, 0),
    ("quarterly-report", 36, 33),
    ("logstash-pipeline", 29, 3),
    ("nightly-reindex", 22, 1),
    ("ci-release", 15, 9),
]
HISTORY_SCRIPT = f"""
from datetime import timedelta
from django.utils import timezone
from apikeys.models import ApiKey
now = timezone.now()
for name, created, used in {HISTORY!r}:
    last_used = None if used is None else now - timedelta(days=used, hours=2)
    ApiKey.objects.filter(name=name).update(created=now - timedelta(days=created), last_used=last_used)
"""


@pytest.fixture(scope="module")
def demo_password(keyward_server):
    """Fills the module's server with seed_demo: alice (manage_api_key), bob and carol (their own
    keys), sam (read_security), victor (no API key privilege), with some weeks of history; returns
    their shared password."""
    output = keyward_server.manage("seed_demo")
    keyward_server.manage("shell", "-c", HISTORY_SCRIPT)
    return re.search(r"share the password: (\S+)", output).group(1)


def click_and_wait(page, selector):
    """Click something that loads another page, and wait for that page."""
    with page.expect_navigation():
        page.click(selector)


def row_names(page) -> list[str]:
    return page.locator("#api-keys-table a.api-key-name").all_inner_texts()


def header_texts(page) -> list[str]:
    return [text.strip() for text in page.locator("#api-keys-table thead th").all_inner_texts()]


def authenticate(server, encoded: str) -> tuple[int, dict]:
    connection = server.connection()
    try:
        connection.request("GET", "/_security/_authenticate", headers={"Authorization": f"ApiKey {encoded}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_administrator_sees_every_owner_filters_and_invalidates_three_keys_after_confirming(
    new_page, keyward_server, demo_password
):
    page = new_page()
    log_in(page, keyward_server, "alice", demo_password)
    page.goto(keyward_server.base_url + LIST)
    assert "You are an API key administrator" in page.inner_text("#callout-admin")
    assert {"Owner", "Realm", "Last used"} <= set(header_texts(page))
    names = row_names(page)
    assert {"ops-dashboard", "filebeat-prod", "jupyter-notebook", "backup-cron"} <= set(names)
    assert "legacy-ingest" not in names  # invalidated keys are hidden until asked for
    assert "Invalidated and expired keys are deleted after 7 days." in page.inner_text("#retention-note")
    invalidated = page.locator("#chart-status rect[data-state='invalidated']").get_attribute("data-count")
    assert int(invalidated) >= 2
    created = page.locator("#chart-weeks rect").evaluate_all("bars => bars.map(bar => +bar.dataset.count)")
    assert len(created) == 12 and sum(created) >= 10  # all of the demo but backup-cron, 100 days old
    page.click("#overview > summary")
    assert not page.is_visible("#chart-weeks") and page.is_visible("#overview-summary")

    with page.expect_navigation():  # a filter applies as it is picked
        page.select_option("#id_unused", "30")
    assert sorted(row_names(page)) == ["quarterly-report"]
    # Both bobs, most recently used first and never used last.
    page.goto(keyward_server.base_url + f"{LIST}?sort=-last_used&owner=bob")
    assert row_names(page) == [
        "filebeat-prod", "backup-cron", "logstash-pipeline", "ci-release", "filebeat-staging"
    ]

    page.fill("#id_owner", "bob")
    with page.expect_navigation():
        page.select_option("#id_status", "expired")
    assert row_names(page) == ["ci-release"]

    for name in ("bulk-one", "bulk-two", "bulk-three"):
        keyward_server.manage("create_api_key", "--user", "carol", "--name", name)
    page.goto(keyward_server.base_url + f"{LIST}?owner=carol&q=bulk")
    assert sorted(row_names(page)) == ["bulk-one", "bulk-three", "bulk-two"]
    button = page.locator("#invalidate-selected")
    assert button.is_disabled()
    for name in ("bulk-one", "bulk-two", "bulk-three"):
        page.check(f"input[aria-label='Select {name}']")
    assert button.inner_text() == "Invalidate 3 API keys"
    assert page.is_checked("#select-all")
    click_and_wait(page, "#invalidate-selected")

    page.wait_for_selector("#invalidate-confirm")
    assert page.inner_text("h1") == "Invalidate 3 API keys?"
    assert sorted(page.locator("#selected-keys .fw-semibold").all_inner_texts()) == [
        "bulk-one",
        "bulk-three",
        "bulk-two",
    ]
    click_and_wait(page, "#confirm-invalidate")

    page.wait_for_selector(".alert-success")
    assert "Invalidated 3 API keys." in page.inner_text(".alert-success")
    assert "owner=carol" in page.url and "q=bulk" in page.url
    assert row_names(page) == []
    with page.expect_navigation():
        page.select_option("#id_status", "invalidated")
    assert sorted(row_names(page)) == ["bulk-one", "bulk-three", "bulk-two"]


def test_select_all_selects_every_row_and_updates_the_button(new_page, keyward_server, demo_password):
    page = new_page()
    log_in(page, keyward_server, "alice", demo_password)
    page.goto(keyward_server.base_url + f"{LIST}?owner=bob")
    rows = len(row_names(page))
    assert rows >= 2
    page.check("#select-all")
    assert page.inner_text("#invalidate-selected") == f"Invalidate {rows} API keys"
    page.uncheck(f"input[aria-label='Select {row_names(page)[0]}']")
    assert page.inner_text("#invalidate-selected") == f"Invalidate {rows - 1} API keys"
    assert page.evaluate("document.getElementById('select-all').indeterminate")
    page.click("#select-all")  # from indeterminate to every row
    assert page.inner_text("#invalidate-selected") == f"Invalidate {rows} API keys"
    page.click("#select-all")
    assert page.locator("#invalidate-selected").is_disabled()
    assert page.locator("input.api-key-select:checked").count() == 0


def test_user_managing_own_keys_sees_only_them_without_owner_column(new_page, keyward_server, demo_password):
    page = new_page()
    log_in(page, keyward_server, "bob", demo_password)
    page.goto(keyward_server.base_url + LIST)
    assert "You only have permission to manage your own API keys" in page.inner_text("#callout-own")
    assert "Owner" not in header_texts(page) and "Realm" not in header_texts(page)
    names = row_names(page)
    # backup-cron belongs to the file realm's bob: another person with the same username.
    assert sorted(names) == ["ci-release", "filebeat-prod", "filebeat-staging", "logstash-pipeline"]
    assert page.locator("input.api-key-select").count() == len(names)
    assert page.locator("#owner, #id_owner, #id_realm").count() == 0


def test_read_only_viewer_sees_every_key_without_controls(new_page, keyward_server, demo_password):
    page = new_page()
    log_in(page, keyward_server, "sam", demo_password)
    page.goto(keyward_server.base_url + LIST)
    assert "You only have permission to view API keys" in page.inner_text("#callout-read-only")
    assert "Owner" in header_texts(page)
    assert page.locator("input[type=checkbox]").count() == 0
    assert page.locator("#create-api-key, #invalidate-selected").count() == 0


def test_user_without_api_key_privileges_gets_the_permission_denied_page(
    new_page, keyward_server, demo_password
):
    page = new_page()
    log_in(page, keyward_server, "victor", demo_password)
    response = page.goto(keyward_server.base_url + LIST)
    assert response.status == 403
    assert "You need permission to manage API keys" in page.inner_text("#permission-denied")
    assert page.locator("table, #create-api-key").count() == 0


def test_created_key_is_shown_once_and_its_copied_encoded_value_authenticates(
    new_page, keyward_server, demo_password
):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=keyward_server.base_url)
    log_in(page, keyward_server, "carol", demo_password)
    page.goto(keyward_server.base_url + LIST)
    click_and_wait(page, "#create-api-key")

    page.fill("#id_name", "notebook-export")
    page.fill("#id_expiration", "soon")
    assert "positive number" in page.inner_text("#expiration-hint")
    page.fill("#id_expiration", "30d")
    assert page.inner_text("#expiration-hint").startswith("This API key will expire on ")
    page.click("#privileges-toggle")
    page.click("#boilerplate-read-only")
    assert "read-only-role" in page.input_value("#id_role_descriptors")
    page.click("#metadata-toggle")
    page.fill("#id_metadata", '{"purpose": "weekly export"}')
    click_and_wait(page, "#create-submit")

    page.wait_for_selector("#api-key-created")
    assert "Copy this key now. You will not be able to view it again" in page.inner_text("#api-key-created")
    encoded = page.inner_text("#key-encoded").strip()
    page.click("#copy-encoded")
    assert page.evaluate("navigator.clipboard.readText()") == encoded
    status, body = authenticate(keyward_server, encoded)
    assert status == 200, body
    assert body["username"] == "carol" and body["api_key"]["name"] == "notebook-export"

    page.click("#tab-json")
    shown = json.loads(page.inner_text("#key-json"))
    key_id, secret = shown["id"], shown["api_key"]
    assert body["api_key"]["id"] == key_id

    # Reloading shows the key no more, and posts nothing again.
    page.reload()
    page.wait_for_selector("#api-key-shown-once")
    assert secret not in page.content() and encoded not in page.content()
    page.goto(keyward_server.base_url + LIST)
    assert secret not in page.content()

    page.goto(keyward_server.base_url + f"{LIST}/{key_id}")
    assert page.inner_text("#api-key-name") == "notebook-export"
    assert "read-only-role" in page.inner_text("#role-descriptors")
    assert "weekly export" in page.inner_text("#metadata")
    assert "analyst" in page.inner_text("#limited-by")
    assert secret not in page.content()


def test_create_form_shows_server_validation_next_to_the_fields(new_page, keyward_server, demo_password):
    page = new_page()
    log_in(page, keyward_server, "carol", demo_password)
    page.goto(keyward_server.base_url + f"{LIST}/create")
    page.fill("#id_name", "_reserved")
    page.fill("#id_expiration", "12 parsecs")
    page.click("#metadata-toggle")
    page.fill("#id_metadata", "{not json")
    click_and_wait(page, "#create-submit")
    assert "must not start with [_]" in page.inner_text("#name-errors")
    assert "failed to parse expiration [12 parsecs] as a time value" in page.inner_text("#expiration-errors")
    assert "not valid JSON" in page.inner_text("#metadata-errors")
    assert page.input_value("#id_metadata") == "{not json"


def test_preview_names_the_requested_privileges_the_user_lacks_before_creating(
    new_page, keyward_server, demo_password
):
    page = new_page()
    log_in(page, keyward_server, "carol", demo_password)
    page.goto(keyward_server.base_url + f"{LIST}/create")
    page.fill("#id_name", "reporting")
    page.fill("#id_expiration", "90d")
    descriptors = {
        "reporting": {
            "cluster": ["monitor"],
            "indices": [
                {"names": ["logs-*"], "privileges": ["read"]},
                {"names": ["metrics-*"], "privileges": ["read", "write"]},
            ],
        }
    }
    page.click("#privileges-toggle")
    page.fill("#id_role_descriptors", json.dumps(descriptors, indent=2))
    click_and_wait(page, "#preview-submit")

    preview = page.locator("#privileges-preview")
    assert preview.locator(".callout-title").inner_text() == "These parts will have no effect:"
    assert page.inner_text("#no-effect-cluster") == "Cluster privileges monitor"
    assert page.locator(".no-effect-index").all_inner_texts() == ["Index privileges read, write on metrics-*"]
    assert page.input_value("#id_name") == "reporting" and page.input_value("#id_expiration") == "90d"
    assert page.url.endswith("#privileges-preview")

    click_and_wait(page, "#create-submit")
    page.wait_for_selector("#api-key-created")
    assert "Created API key 'reporting'" in page.inner_text("#api-key-created")
