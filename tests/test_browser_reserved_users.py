"""SPEC §6 in a real browser against the real server: `elastic`'s page says it is reserved and
offers neither Delete nor role editing, a refused change explains itself on the page, and a user
an administrator disables is logged out at once and stays out after being enabled again."""

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.browser

USERS = "/app/management/security/users/default_native"
API_KEYS = "/app/management/security/api_keys"


@pytest.fixture(scope="module")
def server(keyward_server):
    """The bootstrapped server, with a security administrator who is not a superuser and a user who
    manages her own keys; both share elastic's password."""
    keyward_server.manage("create_role", "security_admin", "--cluster", "manage_security")
    keyward_server.manage("create_role", "own_keys", "--cluster", "manage_own_api_key")
    for username, role in (("sec-admin", "security_admin"), ("carol", "own_keys")):
        keyward_server.manage("create_user", username, "--roles", role, "--password-env", "ELASTIC_PASSWORD")
    return keyward_server


def click_and_wait(page, selector):
    with page.expect_navigation():
        page.click(selector)


def is_enabled(server, username) -> bool:
    (enabled,) = server.query("SELECT enabled FROM accounts_user WHERE username = %s", username)[0]
    return bool(enabled)


def test_elastics_page_says_it_is_reserved_and_refuses_to_leave_no_superuser(new_page, server):
    page = new_page()
    log_in(page, server, "sec-admin", server.password)
    page.goto(server.base_url + f"{USERS}/elastic")

    assert page.inner_text("#reserved-user") == "Reserved"
    assert "elastic is a reserved user" in page.inner_text("#reserved-user-note")
    assert page.locator("#delete-user, #edit-user").count() == 0
    assert page.locator("#reset-password").is_visible() and page.locator("#disable-user").is_visible()

    click_and_wait(page, "#disable-user")
    assert "user [elastic] cannot be disabled" in page.inner_text("#form-errors")
    assert page.locator("#disable-user").is_visible()
    assert is_enabled(server, "elastic")

    page.goto(server.base_url + f"{USERS}/elastic/edit")
    assert "cannot be edited" in page.inner_text("#reserved-user-note")
    assert page.locator("#save-user").count() == 0
    assert page.locator("#role-picker input:not([disabled])").count() == 0

    page.goto(server.base_url + f"{USERS}/elastic/delete")
    assert page.inner_text("#delete-consequences") == "elastic is a reserved user and cannot be deleted."
    assert page.locator("#confirm-delete").count() == 0


def test_a_user_disabled_on_their_page_is_logged_out_at_once_and_stays_out_once_enabled(new_page, server):
    carol = new_page()
    log_in(carol, server, "carol", server.password)
    admin = new_page()
    log_in(admin, server, "sec-admin", server.password)
    admin.goto(server.base_url + f"{USERS}/carol")

    click_and_wait(admin, "#disable-user")
    assert not is_enabled(server, "carol")
    carol.goto(server.base_url + API_KEYS)
    assert carol.url.startswith(server.base_url + "/login")

    click_and_wait(admin, "#enable-user")
    assert is_enabled(server, "carol")
    carol.goto(server.base_url + API_KEYS)
    assert carol.url.startswith(server.base_url + "/login")

    log_in(carol, server, "carol", server.password)
    carol.goto(server.base_url + API_KEYS)
    assert carol.url == server.base_url + API_KEYS
