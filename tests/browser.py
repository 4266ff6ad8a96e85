"""Debian's Chromium driven by Playwright against the real server, and what browser tests share."""

from pathlib import Path

import pytest

from tests.server import missing_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# axe-core's impacts that fail a page; "minor" and "moderate" ones are left to judgement.
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium: skipped where it is not installed, but a failure in CI, which installs it.
    One per module, not per session: Playwright's synchronous API keeps an event loop running in the
    thread while it is started, and Django refuses database calls from a thread with a running loop."""
    if not CHROMIUM.exists():
        missing_service(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser):
    """new_page() — a fresh browser context (own cookies) that fails the test on any CSP violation.

    The context asks for reduced motion, which Bootstrap honours by dropping its transitions: axe
    otherwise measured a button's contrast halfway through its colour change, now and then."""
    contexts, violations = [], []

    def make():
        context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP, reduced_motion="reduce")
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


def log_in(page, server, username, password):
    page.goto(server.base_url + "/login")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#current-user")


def screenshot(page, name, full_page=True):
    """Save the page as docs/screenshots/<name>, at the page's viewport width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=full_page)


def assert_accessible(page):
    """Fail on axe-core's serious or critical violations on the page as it is, one line per element."""
    from axe_playwright_python.sync_playwright import Axe

    violations = [
        violation for violation in Axe().run(page).response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
    found = [
        f"{violation['impact']} {violation['id']} ({violation['help']}): {' '.join(node['target'])}"
        f" — {node['failureSummary'].splitlines()[-1].strip()}"
        for violation in violations
        for node in violation["nodes"]
    ]
    if found:
        pytest.fail(f"accessibility violations on {page.url}:\n" + "\n".join(found), pytrace=False)
