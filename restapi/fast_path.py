"""The authentication hot path: a request that only asks "is this key good, and who is it?".

Programs ask it on every request they make (``GET /_security/_authenticate``, and reverse proxies
through the forward-auth endpoint), so it is answered here, right after the middleware that adds
the security headers to every response, without the session, CSRF, messages or DRF machinery
that it would not use. It authenticates through the same service as every other endpoint
(``apikeys.services.verified_api_key``), and answers with the same bytes and headers as the view
does, which tests/test_fast_path.py holds.

Only the common case takes this path: a GET with an ``ApiKey`` header that verifies, over HTTPS,
with no query string and an ordinary Accept header. Anything else, a refused key above all, goes
on down the ordinary path, which answers it as before, with its audit row and throttling.
"""

import functools

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.utils.csp import CSP, build_policy
from rest_framework.renderers import JSONRenderer

from apikeys.credentials import is_api_key_header
from apikeys.services import ApiKeyRefused, verified_api_key
from restapi.tls import api_key_service_enabled
from restapi.wire import COMPATIBLE_MEDIA_TYPE, PRODUCT_HEADER

JSON = "application/json"
# What DRF's negotiation picks for the Accept headers clients send; any other goes the long way.
ACCEPTED = {None: JSON, "": JSON, "*/*": JSON, JSON: JSON}
# The headers the view's DRF response carries besides its content type and length.
VIEW_HEADERS = {"Vary": "Accept", "Allow": "GET, HEAD, OPTIONS", PRODUCT_HEADER[0]: PRODUCT_HEADER[1]}


def response_media_type(accept: str | None) -> str | None:
    """The content type of the answer to this Accept header, or None to leave it to DRF."""
    if accept in ACCEPTED:
        return ACCEPTED[accept]
    media_type, semicolon, parameter = accept.partition(";")
    name, equals, version = parameter.strip().partition("=")
    if (
        media_type == COMPATIBLE_MEDIA_TYPE
        and semicolon
        and (name, equals) == ("compatible-with", "=")
        and version.isascii()
        and version.isdigit()
    ):
        return COMPATIBLE_MEDIA_TYPE
    return None


def authenticate(request) -> HttpResponse | None:
    """``GET /_security/_authenticate`` with a good key, or None for the ordinary path."""
    meta = request.META
    header = meta.get("HTTP_AUTHORIZATION")
    if meta.get("QUERY_STRING") or not is_api_key_header(header) or not api_key_service_enabled(request):
        return None
    media_type = response_media_type(meta.get("HTTP_ACCEPT"))
    if media_type is None:
        return None
    try:
        entry = verified_api_key(header)
    except (ApiKeyRefused, DatabaseError):
        return None
    body = entry.derived.get("authenticate")
    if body is None:
        body = entry.derived["authenticate"] = _authenticate_body(entry)
    response = HttpResponse(body, content_type=media_type)
    for name, value in VIEW_HEADERS.items():
        response.headers[name] = value
    response.headers["Content-Length"] = str(len(body))
    # The policy the CSP middleware would build for this response, built once: it holds no nonce.
    response.headers[CSP.HEADER_ENFORCE] = _content_security_policy()
    return response


@functools.cache
def _content_security_policy() -> str:
    return build_policy(settings.SECURE_CSP)


def _authenticate_body(entry) -> bytes:
    from apikeys.api.views import authentication_of  # the view's own answer; it imports this app

    return JSONRenderer().render(authentication_of(entry.principal()))


FAST_PATHS = {"/_security/_authenticate": authenticate}


class AuthenticationFastPathMiddleware:
    """Answers the hot path's requests itself; every other request goes on unchanged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        answer = FAST_PATHS.get(request.path_info)
        if answer is not None and request.method == "GET":
            response = answer(request)
            if response is not None:
                return response
        return self.get_response(request)
