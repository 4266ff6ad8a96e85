"""The home page in a real browser: Debian's Chromium driven by Playwright, against the real server."""

import os
from pathlib import Path

import pytest

from tests.server import keyward_server_fixture  # noqa: F401  (provides the keyward_server fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "home.png"


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium: skipped where it is not installed, but a failure in CI, which installs it."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.mark.browser
def test_home_page_renders_in_chromium(chromium, keyward_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
            response = page.goto(keyward_server.base_url + "/")
            title = page.title()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)
        finally:
            browser.close()

    assert response.ok
    assert "Keyward" in title
