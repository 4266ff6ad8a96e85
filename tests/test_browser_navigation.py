"""SPEC §6 navigation in a real browser: the skip link, the menu button of a phone, dates in the
browser's time zone, and the 404 page in the product's layout."""

import re

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.browser

ELASTIC = "/app/management/security/users/default_native/elastic"


def focused(page) -> dict:
    return page.evaluate(
        "() => ({id: document.activeElement.id, text: document.activeElement.textContent.trim(),"
        " top: document.activeElement.getBoundingClientRect().top})"
    )


def test_skip_link_phone_menu_local_dates_and_the_404_page(new_page, keyward_server):
    page = new_page()
    log_in(page, keyward_server, "elastic", keyward_server.password)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})

    missing = page.goto(keyward_server.base_url + "/app/nowhere")
    assert missing.status == 404
    assert page.inner_text("#error-page h1") == "Page not found"
    assert page.is_visible("#current-user") and page.is_visible("#error-home")

    page.goto(keyward_server.base_url + ELASTIC)
    created = page.locator("time[data-local-time]").first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", created.inner_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", created.get_attribute("title"))

    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["text"] == "Skip to main content" and skip["top"] >= 0
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.is_visible(".navbar-toggler") and not page.is_visible("#current-user")
    page.click(".navbar-toggler")
    page.wait_for_selector("#current-user", state="visible")
    page.click("text=Stack Management")
    assert page.is_visible("#menu-users")
