"""SPEC §6 in a real browser: the API Keys page's search box and filters, and "Invalidate all N
matching", as an administrator of the demo data, in one page."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.browser

LIST = "/app/management/security/api_keys"


def row_names(page) -> list[str]:
    return page.locator("#api-keys-table a.api-key-name").all_inner_texts()


def url_parameters(page) -> dict:
    return parse_qs(urlsplit(page.url).query)


def test_search_filters_and_invalidate_all_matching(new_page, keyward_server):
    output = keyward_server.manage("seed_demo")
    password = re.search(r"share the password: (\S+)", output).group(1)
    for number in range(3):
        keyward_server.manage("create_api_key", "--user", "carol", "--name", f"sweep-{number}")
    page = new_page()
    log_in(page, keyward_server, "alice", password)
    page.goto(keyward_server.base_url + LIST)

    options = page.locator("#owner-suggestions option")
    suggestions = options.evaluate_all("options => options.map(option => option.value)")
    assert {"bob", "carol"} <= set(suggestions)
    assert page.get_attribute("#id_owner", "list") == "owner-suggestions"

    page.fill("#id_q", "name:FILEBEAT* -owner:nobody")
    with page.expect_navigation():
        page.press("#id_q", "Enter")
    assert url_parameters(page)["q"] == ["name:FILEBEAT* -owner:nobody"]
    names = row_names(page)
    assert names and all(name.lower().startswith("filebeat") for name in names)
    assert page.inner_text("#matching-count") == f"{len(names)} matching"

    # A select applies as it is picked, without the Apply button.
    with page.expect_navigation():
        page.select_option("#id_status", "all")
    assert url_parameters(page)["status"] == ["all"]
    assert url_parameters(page)["q"] == ["name:FILEBEAT* -owner:nobody"]

    page.fill("#id_q", "owner:")
    with page.expect_navigation():
        page.press("#id_q", "Enter")
    assert page.inner_text("#search-error") == "Give a value after \u201cowner:\u201d."
    assert row_names(page) == []

    page.goto(keyward_server.base_url + f"{LIST}?q=sweep-")
    assert sorted(row_names(page)) == ["sweep-0", "sweep-1", "sweep-2"]
    with page.expect_navigation():
        page.click("#invalidate-matching")
    assert page.inner_text("h1") == "Invalidate 3 matching API keys?"
    assert sorted(page.locator("#matching-sample .fw-semibold").all_inner_texts()) == [
        "sweep-0", "sweep-1", "sweep-2"
    ]
    with page.expect_navigation():
        page.click("#confirm-invalidate")
    assert "Invalidated 3 API keys." in page.inner_text(".alert-success")
    assert url_parameters(page) == {"q": ["sweep-"]}
    assert row_names(page) == []
