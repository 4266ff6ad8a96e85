"""SPEC §6 in a real browser: creating an API key. The optional sections open like switches, the
privilege picker writes the role descriptors, the new key is shown once with a snippet per tool and
copy buttons that announce themselves, and reload or Back neither show it again nor make another."""

import base64
import json

import pytest
from playwright.sync_api import expect

from tests.browser import log_in

pytestmark = pytest.mark.browser

LIST = "/app/management/security/api_keys"
NAME = "browser-create"


def keys_named(server, name: str) -> list[dict]:
    """The keys with that name, as the REST API lists them to ``elastic``."""
    basic = base64.b64encode(f"elastic:{server.password}".encode()).decode()
    connection = server.connection()
    try:
        status, body = server.request(connection, "GET", f"/_security/api_key?name={name}", f"Basic {basic}")
    finally:
        connection.close()
    assert status == 200, body
    return body["api_keys"]


def click_and_wait(page, selector):
    with page.expect_navigation():
        page.click(selector)


def test_create_shows_the_key_once_with_snippets_and_back_makes_no_second_key(new_page, keyward_server):
    server = keyward_server
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    log_in(page, server, "elastic", server.password)
    page.goto(server.base_url + f"{LIST}/create")

    # The expiration's placeholder reads as an example; a wrong value is said in red.
    assert page.get_attribute("#id_expiration", "placeholder") == "e.g. 30d"
    page.fill("#id_expiration", "soon")
    hint = page.locator("#expiration-hint")
    expect(hint).to_have_css("color", "rgb(220, 53, 69)")
    page.fill("#id_expiration", "30d")
    expect(hint).not_to_have_css("color", "rgb(220, 53, 69)")

    # The optional sections are closed until switched on, and close again.
    descriptors = page.locator("#id_role_descriptors")
    expect(descriptors).to_be_hidden()
    expect(page.locator("#id_metadata")).to_be_hidden()
    page.click("#privileges-toggle")
    expect(descriptors).to_be_visible()
    page.click("#metadata-toggle")
    expect(page.locator("#id_metadata")).to_be_visible()
    page.click("#metadata-toggle")
    expect(page.locator("#id_metadata")).to_be_hidden()

    # The picker writes a role, then replaces it.
    page.check("#picker-cluster-monitor")
    page.fill("#picker-indices", "logs-*, metrics-*")
    page.check("#picker-index-read")
    page.click("#picker-write")
    status = page.locator("#picker-status")
    expect(status).to_have_text("Added role 'api-key-role' in the role descriptors.")
    role = {"cluster": ["monitor"], "indices": [{"names": ["logs-*", "metrics-*"], "privileges": ["read"]}]}
    assert json.loads(descriptors.input_value()) == {"api-key-role": role}
    page.check("#picker-index-view_index_metadata")
    page.click("#picker-write")
    expect(status).to_have_text("Replaced role 'api-key-role' in the role descriptors.")
    assert json.loads(descriptors.input_value())["api-key-role"]["indices"][0]["privileges"] == [
        "read", "view_index_metadata",
    ]

    page.fill("#id_name", NAME)
    click_and_wait(page, "#create-submit")

    # The reveal page, reached by a redirect: the secret with a snippet for each tool.
    assert page.url.endswith("/reveal")
    encoded = page.inner_text("#key-encoded").strip()
    key_id, secret = base64.b64decode(encoded).decode().split(":", 1)
    snippets = {
        name: page.locator(f"#key-{name}").text_content() for name in ("curl", "beats", "logstash", "python")
    }
    authenticate = f"{server.base_url}/_security/_authenticate"
    assert f'curl -H "Authorization: ApiKey {encoded}" "{authenticate}"' == snippets["curl"]
    assert f'output.elasticsearch.api_key: "{key_id}:{secret}"' in snippets["beats"]
    assert f'api_key => "{key_id}:{secret}"' in snippets["logstash"]
    assert f'Elasticsearch("{server.base_url}", api_key="{encoded}")' in snippets["python"]
    page.click("#copy-encoded")
    expect(page.locator("#copy-status")).to_have_text("Copied to clipboard")
    assert page.evaluate("navigator.clipboard.readText()") == encoded
    page.click("#tab-curl")
    page.click("#copy-curl")
    assert page.evaluate("navigator.clipboard.readText()") == snippets["curl"]

    # Reload: shown once. Back from the key's details: shown once. Back again: the empty form.
    page.reload()
    expect(page.locator("#api-key-shown-once")).to_be_visible()
    assert secret not in page.content()
    click_and_wait(page, "#shown-once-details")
    assert page.inner_text("#api-key-name") == NAME
    page.go_back()
    expect(page.locator("#api-key-shown-once")).to_be_visible()
    assert secret not in page.content()
    page.go_back()
    expect(page.locator("#create-api-key-form")).to_be_visible()
    assert secret not in page.content()
    assert [key["id"] for key in keys_named(server, NAME)] == [key_id]
