"""SPEC §3's abuse limits in a real browser against a real server with its limits on: bad API keys
and another username's wrong passwords from the same address never lock the right person out of
the login page, and the username under attack is refused however its spelling is varied."""

import base64

import pytest

from tests.browser import log_in
from tests.server import start_keyward_server

pytestmark = pytest.mark.browser

USERNAME_LIMIT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    limits = {
        "KEYWARD_AUTH_FAILURE_LIMIT_PER_IP": "20",
        "KEYWARD_AUTH_FAILURE_LIMIT_PER_USERNAME": str(USERNAME_LIMIT),
        "KEYWARD_AUTH_FAILURE_WINDOW": "1d",
    }
    with start_keyward_server(tmp_path_factory, **limits) as running:
        yield running


def send_malformed_api_keys(server, count: int) -> list[int]:
    connection = server.connection()
    statuses = []
    try:
        for number in range(count):
            header = "ApiKey " + base64.b64encode(f"no-colon-{number}".encode()).decode()
            connection.request("GET", "/_security/_authenticate", headers={"Authorization": header})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        connection.close()
    return statuses


def try_login(page, server, username, password) -> str:
    page.goto(server.base_url + "/login")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page.inner_text("#login-error")


def test_bad_api_keys_and_another_users_guesses_never_lock_elastic_out(new_page, server):
    statuses = send_malformed_api_keys(server, 60)
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}

    page = new_page()
    log_in(page, server, "elastic", server.password)
    assert page.inner_text("#current-user").startswith("elastic")

    guesser = new_page()
    for _ in range(USERNAME_LIMIT):
        assert "correct username and password" in try_login(guesser, server, "mal", "guess")
    for spelling in ("mal", " mal", "mal ", "\u3000mal"):
        assert try_login(guesser, server, spelling, "guess").startswith("Too many failed attempts.")

    again = new_page()
    log_in(again, server, "elastic", server.password)
    assert again.inner_text("#current-user").startswith("elastic")
