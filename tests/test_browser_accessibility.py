"""Every page passes axe-core without serious or critical violations, at a desktop width and at a
phone's, and no page needs horizontal scrolling on a phone. One browser per user visits its pages
in turn, each checked at both widths; a failure names the page.
"""

import re

import pytest

from tests.browser import DESKTOP, PHONE, assert_accessible, log_in

pytestmark = pytest.mark.browser

LIST = "/app/management/security/api_keys"
SECURITY = "/app/management/security"
# "newcomer" may create keys but has none yet; carol gets two keys to invalidate with the keyboard.
SETUP_SCRIPT = """
from accounts.models import User
from accounts.principals import Principal
from accounts.services import create_user
from apikeys.services import create_api_key
create_user("newcomer", {password!r}, roles=["analyst"])
carol = Principal(User.objects.get(username="carol", realm__name="default_native"))
for name in ("keyboard-one", "keyboard-two"):
    create_api_key(carol, name=name, expiration=None, role_descriptors={{}}, metadata={{}})
"""


@pytest.fixture(scope="module")
def demo_password(keyward_server):
    """seed_demo's users and keys, and SETUP_SCRIPT's."""
    output = keyward_server.manage("seed_demo")
    password = re.search(r"share the password: (\S+)", output).group(1)
    keyward_server.manage("shell", "-c", SETUP_SCRIPT.format(password=password))
    return password


def assert_fits_a_phone(page):
    """Nothing wider than a 390 px screen: the page never scrolls sideways."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"scrolls sideways: {scroll} px wide for {client} px"


CHECKS = ((DESKTOP, (assert_accessible,)), (PHONE, (assert_accessible, assert_fits_a_phone)))


def check_pages(page, server, paths):
    """Open each page and check it at both widths; the checks of every page run before any fails."""
    failures = []
    for path in paths:
        response = page.goto(server.base_url + path)
        assert response.status < 500, f"{path} answered {response.status}"
        for viewport, checks in CHECKS:
            page.set_viewport_size(viewport)
            for check in checks:
                try:
                    check(page)
                except (AssertionError, pytest.fail.Exception) as error:
                    failures.append(f"{path} at {viewport['width']} px: {error}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_pages_an_administrator_sees(new_page, keyward_server, demo_password):
    """Every page, then on the same page object: the sorted column, the phone cards and the focus
    after a form error."""
    page = new_page()
    check_pages(page, keyward_server, ["/login"])
    page.set_viewport_size(DESKTOP)
    log_in(page, keyward_server, "elastic", keyward_server.password)
    page.goto(keyward_server.base_url + f"{LIST}?owner=alice")
    details = page.locator("#api-keys-table a.api-key-name", has_text="nightly-reindex").get_attribute("href")
    key_id = details.rstrip("/").rsplit("/", 1)[1]
    check_pages(page, keyward_server, [
        "/",
        LIST,
        f"{LIST}/create",
        details,
        f"{details}/update",
        f"{details}/rotate",
        f"{LIST}/invalidate?id={key_id}",
        f"{SECURITY}/roles",
        f"{SECURITY}/roles/ingest_writer",
        f"{SECURITY}/roles/ingest_writer/edit",
        f"{SECURITY}/users",
        f"{SECURITY}/users/default_native/carol",
        f"{SECURITY}/users/default_native/carol/edit",
        f"{SECURITY}/application_privileges",
        f"{SECURITY}/tokens",
        f"{SECURITY}/audit",
        "/app/dev_tools",
        "/no/such/page",
    ])

    # The sorted column says so; on a phone each key is a card: its name, then status, expiry and
    # owner, each value named.
    page.set_viewport_size(PHONE)
    page.goto(keyward_server.base_url + f"{LIST}?sort=name")
    sorted_column = page.locator("#api-keys-table th[aria-sort]")
    assert sorted_column.count() == 1 and sorted_column.inner_text() == "Name"
    assert sorted_column.get_attribute("aria-sort") == "ascending"
    assert sorted_column.locator("a").get_attribute("aria-describedby") == "sort-descending"
    assert page.locator("#sort-descending").is_hidden()  # read only as the link's description
    fits = "table => table.scrollWidth <= table.parentElement.clientWidth"
    assert page.locator("#api-keys-table").evaluate(fits)
    card = page.locator("#api-keys-table tbody tr").first
    tops = [card.locator(cell).bounding_box()["y"] for cell in (
        "td.name-column", "td[data-label=Status]", "td[data-label=Expires]", "td[data-label=Owner]"
    )]
    assert tops == sorted(tops) and len(set(tops)) == 4, tops
    assert card.locator("td[data-label=Owner]").evaluate(
        "cell => getComputedStyle(cell, '::before').content"
    ) == '"Owner"'

    # After a form error the first invalid field has the focus, in a form Django renders (set a
    # password) and in one rendered by hand (create an API key).
    page.goto(keyward_server.base_url + f"{SECURITY}/users/default_native/carol/password")
    page.fill("#id_password", "a-new-password")
    page.fill("#id_password_confirm", "another-password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "id_password_confirm"

    page.goto(keyward_server.base_url + f"{LIST}/create")
    page.fill("#id_name", "_reserved")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "id_name"
    assert page.get_attribute("#id_name", "aria-invalid") == "true"


def test_pages_users_with_fewer_privileges_see(new_page, keyward_server, demo_password):
    """The own-keys list, the empty state and the permission-denied page."""
    shown = {"bob": "#callout-own", "newcomer": "#empty-state", "victor": "#permission-denied"}
    for username, expected in shown.items():
        page = new_page()
        log_in(page, keyward_server, username, demo_password)
        check_pages(page, keyward_server, [LIST])
        assert page.locator(expected).count() == 1


def focus_with(page, key, selector, limit=80):
    """Press ``key`` (Tab or Shift+Tab) until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("selector => document.activeElement.matches(selector)", selector):
            return
    pytest.fail(f"{selector} never had the focus after {limit} presses of {key}", pytrace=False)


def test_rows_are_selected_by_a_click_anywhere_and_invalidated_with_the_keyboard_alone(
    new_page, keyward_server, demo_password
):
    page = new_page()
    log_in(page, keyward_server, "carol", demo_password)
    page.goto(keyward_server.base_url + LIST)
    one = page.locator("input[aria-label='Select keyboard-one']")
    row = page.locator("#api-keys-table tbody tr", has=one)
    row.locator("td[data-label=Status]").click()
    assert one.is_checked()
    row.locator("td[data-label=Created]").click()
    assert not one.is_checked()
    # The checkbox answers a click anywhere in a 24 px square around its centre (WCAG 2.5.8).
    box = one.bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-12, -12), (11.5, 11.5)):
        page.mouse.click(centre_x + dx, centre_y + dy)
    assert not one.is_checked()  # toggled twice
    page.mouse.click(centre_x + 11.5, centre_y - 12)
    assert one.is_checked()
    page.mouse.click(centre_x, centre_y)
    assert not one.is_checked()

    focus_with(page, "Tab", "input[aria-label='Select keyboard-one']")
    page.keyboard.press("Space")
    focus_with(page, "Tab", "input[aria-label='Select keyboard-two']")
    page.keyboard.press("Space")
    focus_with(page, "Shift+Tab", "#invalidate-selected")
    assert page.inner_text("#invalidate-selected") == "Invalidate 2 API keys"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert sorted(page.locator("#selected-keys .fw-semibold").all_inner_texts()) == [
        "keyboard-one", "keyboard-two"
    ]
    focus_with(page, "Tab", "#confirm-invalidate")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Invalidated 2 API keys." in page.inner_text(".alert-success")

