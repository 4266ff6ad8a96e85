"""The authentication hot path: a request that only asks "is this key good, and who is it?".

Programs ask it on every request they make (``GET /_security/_authenticate``), and reverse
proxies on every request they pass on (``/_security/_forward_auth``), so it is answered here, right
after the middleware that adds the security headers to every response, without the session, CSRF,
messages or DRF machinery that it would not use. It authenticates through the same service as
every other endpoint (``apikeys.services.verified_api_key``), evaluates forward authentication's
requirements with the view's own functions, and answers with the same bytes and headers as the
views do, which tests/test_fast_path.py holds.

Only the common case takes this path: an ``ApiKey`` header that verifies, over HTTPS; for
``_authenticate`` a GET with no query string and an ordinary Accept header; for forward
authentication a well-formed query whose privileges the key holds. Anything else, a refused key
above all, goes on down the ordinary path, which answers it as before, with its audit row and
throttling, and counts it in the metrics: here only the answers given here are counted.
"""

import functools
from time import perf_counter

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, QueryDict
from django.utils.csp import CSP, build_policy
from django.utils.module_loading import import_string
from rest_framework.renderers import JSONRenderer

from accounts.exceptions import ValidationError
from apikeys.api.forward_auth import identity_headers, missing, parse_requirements
from apikeys.credentials import is_api_key_header
from apikeys.services import ApiKeyRefused, verified_api_key
from metrics import registry as metrics
from restapi.tls import api_key_service_enabled
from restapi.wire import COMPATIBLE_MEDIA_TYPE, PRODUCT_HEADER

JSON = "application/json"
# What DRF's negotiation picks for the Accept headers clients send; any other goes the long way.
ACCEPTED = {None: JSON, "": JSON, "*/*": JSON, JSON: JSON}
# Answers remembered per key and forward-auth query string, at most this many per key.
MAX_QUERIES_PER_KEY = 16


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


def _good_key(request):
    """The remembered key an ``ApiKey`` header over HTTPS proves, or None for the ordinary path."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if not is_api_key_header(header) or not api_key_service_enabled(request):
        return None
    try:
        return verified_api_key(header)
    except (ApiKeyRefused, DatabaseError):
        return None


def authenticate(request) -> HttpResponse | None:
    """``GET /_security/_authenticate`` with a good key, or None for the ordinary path."""
    if request.method != "GET" or request.META.get("QUERY_STRING"):
        return None
    media_type = response_media_type(request.META.get("HTTP_ACCEPT"))
    if media_type is None:
        return None
    started = perf_counter()
    entry = _good_key(request)
    if entry is None:
        return None
    metrics.authenticated("api_key", "success", perf_counter() - started)
    body = entry.derived.get("authenticate")
    if body is None:
        body = entry.derived["authenticate"] = _authenticate_body(entry)
    return _response(body, media_type, _view_headers("apikeys.api.views.AuthenticateView"))


def forward_auth(request) -> HttpResponse | None:
    """``/_security/_forward_auth`` with a good key holding what the query requires, any method;
    None for the ordinary path, which also explains a malformed query or a missing privilege."""
    query = request.META.get("QUERY_STRING", "")
    requirements = _requirements(query)
    if requirements is None:
        return None
    started = perf_counter()
    entry = _good_key(request)
    if entry is None:
        return None
    seconds = perf_counter() - started
    cached = ("forward_auth", query)
    headers = entry.derived.get(cached)
    if headers is None:
        principal = entry.principal()
        headers = {} if missing(principal, requirements) else identity_headers(principal)
        if len(entry.derived) < MAX_QUERIES_PER_KEY:
            entry.derived[cached] = headers
    if not headers:
        return None
    metrics.authenticated("api_key", "success", seconds)
    return _response(b"", None, {**headers, **_view_headers("apikeys.api.forward_auth.ForwardAuthView")})


@functools.lru_cache(maxsize=256)
def _requirements(query: str):
    """A query string's requirements, or None when the view must explain what is wrong with it."""
    try:
        return parse_requirements(QueryDict(query), FORWARD_AUTH)
    except ValidationError:
        return None


def _response(body: bytes, media_type: str | None, headers: dict) -> HttpResponse:
    response = HttpResponse(body, content_type=media_type)
    if media_type is None:  # DRF's answer without content has no type
        del response.headers["Content-Type"]
    for name, value in headers.items():
        response.headers[name] = value
    response.headers["Content-Length"] = str(len(body))
    # The policy the CSP middleware would build for this response, built once: it holds no nonce.
    response.headers[CSP.HEADER_ENFORCE] = _content_security_policy()
    return response


@functools.cache
def _view_headers(view: str) -> dict:
    """The headers the view's DRF response carries besides its content type and length; the view
    is named, since the views' module imports this module's neighbours."""
    instance = import_string(view)()
    instance.setup(None)  # where Django adds HEAD beside GET
    allowed = instance.allowed_methods
    return {"Vary": "Accept", "Allow": ", ".join(allowed), PRODUCT_HEADER[0]: PRODUCT_HEADER[1]}


@functools.cache
def _content_security_policy() -> str:
    return build_policy(settings.SECURE_CSP)


def _authenticate_body(entry) -> bytes:
    from apikeys.api.views import authentication_of  # the view's own answer; it imports this app

    return JSONRenderer().render(authentication_of(entry.principal()))


FORWARD_AUTH = "/_security/_forward_auth"
FAST_PATHS = {"/_security/_authenticate": authenticate, FORWARD_AUTH: forward_auth}


class AuthenticationFastPathMiddleware:
    """Answers the hot path's requests itself; every other request goes on unchanged."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        answer = FAST_PATHS.get(request.path_info)
        if answer is not None:
            response = answer(request)
            if response is not None:
                return response
        return self.get_response(request)
