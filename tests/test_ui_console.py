"""Dev Tools > Console (SPEC §6): the page, its TLS gate, and the session + CSRF contract with the
REST API that its script relies on."""

import json
import re

import pytest
from django.test import Client

from apikeys.console import EXAMPLES

pytestmark = pytest.mark.django_db

CONSOLE = "/app/dev_tools"


@pytest.fixture
def elastic(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["superuser"])
    return client


def console_token(client) -> str:
    """The CSRF token the Console page hands its script."""
    html = client.get(CONSOLE, secure=True).content.decode()
    return re.search(r'data-csrf-token="([^"]+)"', html).group(1)


def test_console_renders_the_editor_with_the_create_key_example(elastic):
    response = elastic.get(CONSOLE, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    editor = re.search(r'<textarea id="console-request"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    method_line, _, body = editor.partition("\n")
    assert method_line == "POST /_security/api_key"
    assert json.loads(body.replace("&quot;", '"')) == {"name": "my-key", "expiration": "1d"}
    for example in (
        "GET /_security/_authenticate", "GET /_security/api_key", "POST /_security/_query/api_key",
        "DELETE /_security/api_key", "GET /_security/role",
    ):
        assert f">{example}</option>" in html
    assert re.search(r'id="console" data-csrf-token="[A-Za-z0-9]{64}"', html)
    assert 'src="/static/js/console.js"' in html
    assert 'id="https-required"' not in html


def test_console_page_has_no_inline_script_or_style(elastic):
    html = elastic.get(CONSOLE, secure=True).content.decode()
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert " style=" not in html and "<style" not in html


def test_console_over_plain_http_shows_the_https_required_callout_and_no_editor(elastic):
    response = elastic.get(CONSOLE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="https-required"' in html
    assert 'id="console-request"' not in html and "console.js" not in html


def test_console_needs_a_login():
    response = Client().get(CONSOLE, secure=True)
    assert response.status_code == 302
    assert response["Location"].startswith("/login?next=")


def test_example_requests_are_request_lines_followed_by_json():
    for example in EXAMPLES:
        line, _, body = example.text.partition("\n")
        method, path = line.split(" ")
        assert method in {"GET", "POST", "PUT", "DELETE"} and path.startswith("/_security/")
        assert not body or isinstance(json.loads(body), dict)
        assert not (body and method == "GET"), "browsers cannot send a GET body"


def test_the_rest_api_accepts_the_consoles_session_request_only_with_its_csrf_token(elastic):
    """What console.js sends: the session cookie, X-CSRFToken from the page, same-origin."""
    token = console_token(elastic)
    body = json.dumps({"name": "console-key", "expiration": "1d"})
    send = {"content_type": "application/json", "secure": True}
    origin = {"Origin": "https://testserver"}
    without = elastic.post("/_security/api_key", body, **send, headers=origin)
    assert without.status_code == 403
    created = elastic.post("/_security/api_key", body, **send, headers={**origin, "X-CSRFToken": token})
    assert created.status_code == 200
    assert created.json()["name"] == "console-key" and created.json()["encoded"]
    authenticate = elastic.get("/_security/_authenticate", secure=True)
    assert authenticate.json()["username"] == "elastic"


def test_every_example_request_is_answered_with_success_as_elastic(elastic):
    headers = {"Origin": "https://testserver", "X-CSRFToken": console_token(elastic)}
    for example in EXAMPLES:
        body = "" if example.body is None else json.dumps(example.body)
        response = elastic.generic(
            example.method, example.path, body, content_type="application/json", secure=True, headers=headers
        )
        assert response.status_code == 200, (example.label, response.content)
