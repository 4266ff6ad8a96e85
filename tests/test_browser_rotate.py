"""SPEC §1, §5 and §6 in a real browser against the real server, which enforces a maximum lifetime of
90 days: rotating an API key from its details page gives a new credential that works while the old
one is refused on the very next request, updating it keeps its credential, and the create page holds
new keys to the maximum."""

import base64
import http.client
import json

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.browser

LIST = "/app/management/security/api_keys"


@pytest.fixture(scope="module")
def server(max_lifetime_environment, keyward_server):
    return keyward_server


@pytest.fixture(scope="module")
def max_lifetime_environment():
    """The server of this module starts with ``KEYWARD_API_KEY_MAX_EXPIRATION=90d``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEYWARD_API_KEY_MAX_EXPIRATION", "90d")
        yield


def authenticate(server, encoded: str) -> int:
    """The status of ``GET /_security/_authenticate`` with this credential, over a fresh connection."""
    connection = http.client.HTTPSConnection(
        server.host, server.port, context=server.ssl_context(), timeout=30
    )
    try:
        connection.request("GET", "/_security/_authenticate", headers={"Authorization": f"ApiKey {encoded}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def click_and_wait(page, selector):
    with page.expect_navigation():
        page.click(selector)


def test_rotating_from_the_details_page_replaces_the_credential(new_page, server):
    created = json.loads(
        server.manage(
            "create_api_key",
            "--user",
            "elastic",
            "--name",
            "nightly-export",
            "--expiration",
            "30d",
            "--metadata",
            '{"schedule": "0 2 * * *"}',
        )
    )
    old_encoded = created["encoded"]
    assert authenticate(server, old_encoded) == 200

    page = new_page()
    log_in(page, server, "elastic", server.password)
    page.goto(server.base_url + f"{LIST}/{created['id']}")
    click_and_wait(page, "#rotate-api-key")

    page.wait_for_selector("#rotate-confirm")
    assert page.inner_text("h1") == "Rotate API key 'nightly-export'?"
    assert (
        "A new key with the same name, privileges and lifetime replaces this one; "
        "the old key stops working immediately."
    ) in page.inner_text("#rotate-explanation")
    assert page.inner_text("#rotate-lifetime") == "30 days, from now"
    click_and_wait(page, "#confirm-rotate")

    page.wait_for_selector("#api-key-created")
    assert page.inner_text("h1") == "API key rotated"
    assert created["id"] in page.inner_text("#replaced-key")
    new_encoded = page.inner_text("#key-encoded").strip()
    new_id = base64.b64decode(new_encoded).decode().split(":", 1)[0]
    assert new_id != created["id"]

    assert authenticate(server, old_encoded) == 401
    assert authenticate(server, new_encoded) == 200

    page.click("#view-details")
    page.wait_for_selector("#api-key-name")
    assert page.inner_text("#api-key-name") == "nightly-export"
    assert "0 2 * * *" in page.inner_text("#metadata")
    # Back to the rotated key's page: it is shown no more, and nothing is rotated again.
    page.go_back()
    page.wait_for_selector("#api-key-shown-once")
    assert new_encoded not in page.content()
    assert authenticate(server, new_encoded) == 200
    page.goto(server.base_url + f"{LIST}/{created['id']}")
    assert page.locator("#rotate-api-key, #invalidate-api-key").count() == 0
    assert "Invalidated" in page.inner_text(".status-badge")


def test_create_page_holds_new_keys_to_the_maximum_lifetime(new_page, server):
    page = new_page()
    log_in(page, server, "elastic", server.password)
    page.goto(server.base_url + f"{LIST}/create")
    assert page.inner_text("#max-lifetime .callout-title") == "API keys must expire within 90 days"
    hint = page.locator("#expiration-hint")
    assert hint.inner_text() == "Enter an expiration: API keys must expire within 90 days."
    page.fill("#id_expiration", "91d")
    assert hint.inner_text() == "That is longer than the maximum of 90 days."
    page.fill("#id_expiration", "2160h")
    assert hint.inner_text().startswith("This API key will expire on ")

    page.fill("#id_name", "unbounded")
    page.fill("#id_expiration", "")
    click_and_wait(page, "#create-submit")
    assert "API keys must expire" in page.inner_text("#expiration-errors")
    page.fill("#id_expiration", "100d")
    click_and_wait(page, "#create-submit")
    assert "exceeds the maximum allowed lifetime of an API key [90d]" in page.inner_text("#expiration-errors")
    page.fill("#id_expiration", "90d")
    click_and_wait(page, "#create-submit")
    page.wait_for_selector("#api-key-created")
    assert authenticate(server, page.inner_text("#key-encoded").strip()) == 200


def get_api_key(server, key_id: str) -> dict:
    """The key as ``GET /_security/api_key?id=`` shows it to ``elastic``."""
    credentials = base64.b64encode(f"elastic:{server.password}".encode()).decode()
    connection = server.connection()
    try:
        connection.request(
            "GET", f"/_security/api_key?id={key_id}", headers={"Authorization": f"Basic {credentials}"}
        )
        [key] = json.loads(connection.getresponse().read())["api_keys"]
        return key
    finally:
        connection.close()


def test_rotating_with_a_new_expiration_held_to_the_maximum_lifetime(new_page, server):
    created = json.loads(
        server.manage("create_api_key", "--user", "elastic", "--name", "weekly-sync", "--expiration", "1d")
    )
    page = new_page()
    log_in(page, server, "elastic", server.password)
    page.goto(server.base_url + f"{LIST}/{created['id']}/rotate")
    assert "Leave empty to keep the current lifetime" in page.inner_text("#rotate-expiration-help")

    page.fill("#id_expiration", "100d")
    click_and_wait(page, "#confirm-rotate")
    assert "exceeds the maximum allowed lifetime of an API key [90d]" in page.inner_text(
        "#rotate-expiration-errors"
    )
    assert authenticate(server, created["encoded"]) == 200

    page.fill("#id_expiration", "7d")
    click_and_wait(page, "#confirm-rotate")
    page.wait_for_selector("#api-key-created")
    new_encoded = page.inner_text("#key-encoded").strip()
    new_id = base64.b64decode(new_encoded).decode().split(":", 1)[0]
    new = get_api_key(server, new_id)
    assert new["expiration"] - new["creation"] == 7 * 24 * 3600 * 1000
    assert authenticate(server, new_encoded) == 200
    assert authenticate(server, created["encoded"]) == 401


def test_updating_from_the_details_page_keeps_the_credential_and_shows_the_new_values(new_page, server):
    created = json.loads(
        server.manage(
            "create_api_key", "--user", "elastic", "--name", "log-shipper", "--expiration", "1d",
            "--metadata", '{"team": "ops"}',
        )
    )
    page = new_page()
    log_in(page, server, "elastic", server.password)
    page.goto(server.base_url + f"{LIST}/{created['id']}")
    click_and_wait(page, "#update-api-key")

    assert page.input_value("#id_metadata") == json.dumps({"team": "ops"}, indent=2)
    assert page.inner_text("#expiration-hint") == "The key keeps its current expiration."
    page.click("#privileges-toggle")
    page.click("#boilerplate-read-only")
    page.fill("#id_metadata", '{"team": "sre"}')
    page.fill("#id_expiration", "30d")
    click_and_wait(page, "#update-submit")

    page.wait_for_selector("#api-key-name")
    assert "Updated API key 'log-shipper'." in page.inner_text(".alert")
    assert json.loads(page.inner_text("#metadata")) == {"team": "sre"}
    assert list(json.loads(page.inner_text("#role-descriptors"))) == ["read-only-role"]
    key = get_api_key(server, created["id"])
    assert abs(key["expiration"] - key["creation"] - 30 * 24 * 3600 * 1000) < 120_000
    assert authenticate(server, created["encoded"]) == 200
