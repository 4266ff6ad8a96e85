"""Plain HTTP in a real browser: the API key pages explain that HTTPS is required (SPEC §3 TLS gate).

gunicorn only speaks TLS, so this runs against Django's plain-HTTP live server instead.
"""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



@pytest.fixture(scope="module", autouse=True)
def allow_database_next_to_playwrights_event_loop():
    """Playwright's sync API runs an event loop in this thread; the live server's database is ours."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


PAGES = [
    "/app/management/security/api_keys",
    "/app/management/security/api_keys/create",
]


@pytest.mark.parametrize("path", PAGES)
def test_api_key_pages_over_plain_http_show_https_required_and_no_controls(new_page, live_server, path):
    page = new_page()
    response = page.goto(live_server.url + path)
    assert response.status == 403
    assert "API keys require HTTPS" in page.inner_text("#https-required")
    assert page.locator("form[method=post]").count() == 0
    assert page.get_by_role("button", name="Create API key").count() == 0
