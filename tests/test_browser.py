"""Pages in a real browser: Debian's Chromium driven by Playwright, against the real server."""

import pytest

from tests.browser import log_in

pytestmark = pytest.mark.browser


def test_home_page_renders_in_chromium(new_page, keyward_server):
    page = new_page()
    response = page.goto(keyward_server.base_url + "/")
    assert response.ok
    assert "Keyward" in page.title()


def test_login_with_the_elastic_superuser_shows_who_is_logged_in(new_page, keyward_server):
    page = new_page()
    log_in(page, keyward_server, "elastic", keyward_server.password)
    assert page.inner_text("#current-user").startswith("elastic")
    assert "default_native" in page.inner_text("#current-user")


def test_wrong_password_gets_one_message_that_does_not_reveal_whether_the_user_exists(
    new_page, keyward_server
):
    page = new_page()
    messages = []
    for username in ("elastic", "nobody-by-this-name"):
        page.goto(keyward_server.base_url + "/login")
        page.fill("#id_username", username)
        page.fill("#id_password", "not-the-password")
        page.click("button[type=submit]")
        messages.append(page.inner_text("#login-error"))
    assert messages[0] == messages[1]
    assert "correct username and password" in messages[0]
