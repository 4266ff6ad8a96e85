"""Dev Tools > Console (SPEC §6): send ``METHOD /path`` and a JSON body to the REST API as the
logged-in user, and read the response.

The page only renders the editor; ``static/js/console.js`` sends the request from the browser to
this same origin with the session cookie and the CSRF token, so the REST API applies exactly the
privileges it applies to any other caller.
"""

import json
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from restapi.tls import api_key_service_enabled


@dataclass(frozen=True)
class ExampleRequest:
    label: str
    method: str
    path: str
    body: dict | None = None

    @property
    def text(self) -> str:
        """The request as typed in the editor: the request line, then the body."""
        line = f"{self.method} {self.path}"
        return line if self.body is None else f"{line}\n{json.dumps(self.body, indent=2)}"


EXAMPLES = [
    ExampleRequest("Create an API key", "POST", "/_security/api_key", {"name": "my-key", "expiration": "1d"}),
    ExampleRequest("Who am I?", "GET", "/_security/_authenticate"),
    ExampleRequest("Get API keys", "GET", "/_security/api_key"),
    ExampleRequest(
        "Query API keys", "POST", "/_security/_query/api_key",
        {"query": {"match_all": {}}, "sort": [{"creation": "desc"}], "size": 10},
    ),
    ExampleRequest("Invalidate an API key", "DELETE", "/_security/api_key", {"name": "my-key"}),
    ExampleRequest("Get roles", "GET", "/_security/role"),
    ExampleRequest(
        "Check privileges", "POST", "/_security/user/_has_privileges", {"cluster": ["manage_api_key"]},
    ),
]


@require_GET
@login_required
def console(request):
    """The request editor; over plain HTTP, the HTTPS-required explanation instead."""
    return render(request, "console.html", {
        "section": "dev_tools",
        "examples": EXAMPLES,
        "default_request": EXAMPLES[0].text,
        "api_key_service_enabled": api_key_service_enabled(request),
    })
