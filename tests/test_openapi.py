"""The OpenAPI document of the REST API (SPEC §4) and the page that renders it."""

import re

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.validation import validate_schema

# Every operation of SPEC §4; path parameters are compared by position, not by name.
SPEC_OPERATIONS = {
    ("POST", "/_security/api_key"),
    ("PUT", "/_security/api_key"),
    ("GET", "/_security/api_key"),
    ("DELETE", "/_security/api_key"),
    ("POST", "/_security/_query/api_key"),
    ("GET", "/_security/_query/api_key"),
    ("GET", "/_security/_authenticate"),
    ("POST", "/_security/user/_has_privileges"),
    ("GET", "/_security/user/_has_privileges"),
    ("GET", "/_security/user"),
    ("PUT", "/_security/user/{}"),
    ("POST", "/_security/user/{}"),
    ("GET", "/_security/user/{}"),
    ("DELETE", "/_security/user/{}"),
    ("GET", "/_security/role"),
    ("PUT", "/_security/role/{}"),
    ("POST", "/_security/role/{}"),
    ("GET", "/_security/role/{}"),
    ("DELETE", "/_security/role/{}"),
    ("POST", "/_security/role"),
    ("DELETE", "/_security/role"),
    ("POST", "/_security/role/{}/_clear_cache"),
    ("POST", "/_security/_query/role"),
    ("GET", "/_security/_query/role"),
    ("POST", "/_security/_query/user"),
    ("GET", "/_security/_query/user"),
    ("GET", "/api/security/role"),
    ("GET", "/api/security/role/{}"),
    ("PUT", "/api/security/role/{}"),
    ("DELETE", "/api/security/role/{}"),
    ("POST", "/_security/oauth2/token"),
    ("DELETE", "/_security/oauth2/token"),
    # Keyward's own endpoints beside them: Elasticsearch has no rotate API and no forward authentication.
    ("POST", "/_security/api_key/{}/_rotate"),
    ("GET", "/_security/_forward_auth"),
    # The cluster's: Elasticsearch's root info and cluster health, and Keyward's health probes.
    ("GET", "/"),
    ("GET", "/_cluster/health"),
    ("GET", "/_health"),
    ("GET", "/_health/ready"),
}
# The probes answer anyone: a load balancer has no credentials.
PUBLIC_OPERATIONS = {("GET", "/_health"), ("GET", "/_health/ready")}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture
def document(client):
    response = client.get("/api/schema/", {"format": "json"}, secure=True)
    assert response.status_code == 200
    return response.json()


def test_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate_schema(document)


def test_document_describes_every_operation_of_the_rest_api_and_nothing_else(document):
    documented = operations(document)

    assert SPEC_OPERATIONS - documented == set()
    # Further Elasticsearch security endpoints may be described; pages and internals never.
    elsewhere = {path for _, path in documented if not path.startswith(("/_security/", "/api/security/"))}
    assert elsewhere == {"/", "/_cluster/health", "/_health", "/_health/ready"}


def test_document_describes_the_api_key_bearer_basic_and_session_schemes(document):
    schemes = document["components"]["securitySchemes"]

    api_key = schemes["apiKeyAuth"]
    assert (api_key["type"], api_key["in"], api_key["name"]) == ("apiKey", "header", "Authorization")
    assert "ApiKey" in api_key["description"]
    assert schemes["basicAuth"]["type"] == "http" and schemes["basicAuth"]["scheme"] == "basic"
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"]["in"] == "cookie"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) in PUBLIC_OPERATIONS:
                assert operation.get("security", []) in ([], [{}]), f"{method.upper()} {path}"
            else:
                assert {"apiKeyAuth": []} in operation["security"], f"{method.upper()} {path}"


def test_document_generates_without_warnings_or_errors(tmp_path):
    """Every view's request and response shapes are declared, so spectacular guesses nothing."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_document_is_served_as_yaml_too(client, document):
    response = client.get("/api/schema/", {"format": "yaml"}, secure=True)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi;")
    assert yaml.safe_load(response.content) == document


def test_document_is_public_even_with_bad_credentials(client):
    """It describes the wire format only, which Elasticsearch and Kibana document publicly."""
    response = client.get(
        "/api/schema/", {"format": "json"}, secure=True, headers={"Authorization": "ApiKey not-a-key"}
    )

    assert response.status_code == 200


def test_docs_page_lists_every_operation_under_the_content_security_policy(client, document):
    response = client.get("/api/docs/", secure=True)

    page = response.content.decode()
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script would be blocked by the CSP"
    assert not re.search(r"\sstyle=", page), "inline styles would be blocked by the CSP"
    for path, item in document["paths"].items():
        assert f"<code>{path}</code>" in page or f'<code class="fs-6">{path}</code>' in page
        for operation in item.values():
            assert f'id="{operation["operationId"]}"' in page


@pytest.mark.browser
def test_docs_page_renders_in_chromium_without_content_security_policy_violations(new_page, keyward_server):
    page = new_page()
    # Registered by the browser itself, so the page's own policy does not apply to it.
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " event => window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));"
    )

    response = page.goto(keyward_server.base_url + "/api/docs/", wait_until="networkidle")

    assert response.ok
    assert page.locator("article.api-operation").count() >= len(SPEC_OPERATIONS)
    badge_colour = page.locator(".api-method").first.evaluate("element => getComputedStyle(element).color")
    assert badge_colour == "rgb(255, 255, 255)", "static/api_docs.css was not applied"
    assert page.evaluate("window.cspViolations") == []
