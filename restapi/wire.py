"""The Elasticsearch wire format, in one place: media types, the product header, error bodies.

API views raise the domain errors of ``accounts.exceptions`` (or DRF's own); this module renders
them the way Elasticsearch does, so that the official client understands every answer. Kibana's
routes (``/api/...``) get Kibana's error shape instead.
"""

import json

from django.conf import settings
from django.http import JsonResponse
from django.views.defaults import page_not_found, permission_denied, server_error
from rest_framework import exceptions as drf
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import SecurityError, TokenRequestRefused, TooManyRequests

PRODUCT_HEADER = ("X-Elastic-Product", "Elasticsearch")
COMPATIBLE_MEDIA_TYPE = "application/vnd.elasticsearch+json"
# Deep enough for any role descriptor or bool query; shallow enough to never exhaust the stack.
MAX_JSON_DEPTH = 64

HTTP_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class BodyTooLarge(drf.APIException):
    status_code = 413
    default_detail = "request body is too large"


def _refuse_constant(name):
    raise ValueError(f"[{name}] is not valid JSON")


def _object_without_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"Duplicate field '{key}'")
        result[key] = value
    return result


def _storable(text: str) -> bool:
    """No NUL and no lone surrogate: neither can be stored in PostgreSQL or shown in a page."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_structure(value) -> None:
    """Bounded depth and storable strings throughout parsed JSON, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > MAX_JSON_DEPTH:
            raise drf.ParseError(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str) and not _storable(item):
            raise drf.ParseError("request body contains a NUL character or an unpaired surrogate")
        if isinstance(item, dict):
            if not all(_storable(key) for key in item):
                raise drf.ParseError("request body contains a NUL character or an unpaired surrogate")
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)


def parse_json(raw: bytes):
    """Strict JSON as Elasticsearch reads it: UTF-8, no duplicate fields, no NaN, bounded depth."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_object_without_duplicate_keys, parse_constant=_refuse_constant
        )
    except UnicodeDecodeError:
        raise drf.ParseError("request body is not valid UTF-8") from None
    except RecursionError:
        raise drf.ParseError(f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:
        raise drf.ParseError(f"request body is not valid JSON: {error}") from None
    _check_structure(value)
    return value


class JSONBodyParser(BaseParser):
    """``application/json``, bounded in size and depth."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"request body is larger than {limit} bytes")
        return parse_json(raw) if raw.strip() else {}


class ElasticsearchJSONParser(JSONBodyParser):
    """``application/vnd.elasticsearch+json; compatible-with=N``, as the official client sends."""

    media_type = COMPATIBLE_MEDIA_TYPE


class ElasticsearchJSONRenderer(JSONRenderer):
    media_type = COMPATIBLE_MEDIA_TYPE


def error_body(error_type: str, reason: str, status: int) -> dict:
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def kibana_error_body(status: int, message: str) -> dict:
    return {"statusCode": status, "error": HTTP_ERRORS.get(status, "Error"), "message": message}


def authenticate_header() -> dict:
    return {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8", Bearer realm="security", ApiKey'}


def is_kibana_path(path: str) -> bool:
    return path.startswith("/api/")


def is_api_path(path: str) -> bool:
    """Elasticsearch's routes (``/_security``, ``/_xpack``, ...) and Kibana's: JSON, never a page."""
    return path.startswith("/_") or is_kibana_path(path)


_DRF_TYPES = {
    drf.ParseError: "parse_exception",
    drf.NotAuthenticated: "security_exception",
    drf.AuthenticationFailed: "security_exception",
    drf.PermissionDenied: "security_exception",
    drf.NotFound: "resource_not_found_exception",
    drf.UnsupportedMediaType: "media_type_header_exception",
    drf.NotAcceptable: "media_type_header_exception",
    drf.ValidationError: "action_request_validation_exception",
    BodyTooLarge: "content_too_long_exception",
}


def _describe(exc, request) -> tuple[str, str, int]:
    """(Elasticsearch error type, reason, status) of any exception an API view may raise."""
    if isinstance(exc, SecurityError):
        return exc.type, exc.reason, exc.status
    error_type = next((name for cls, name in _DRF_TYPES.items() if isinstance(exc, cls)), "exception")
    if isinstance(exc, drf.NotAuthenticated):
        return error_type, f"missing authentication credentials for REST request [{request.path}]", 401
    if isinstance(exc, drf.MethodNotAllowed):
        return (
            error_type,
            f"Incorrect HTTP method for uri [{request.path}] and method [{request.method}]",
            405,
        )
    if isinstance(exc, drf.ValidationError):
        return error_type, _flatten(exc.detail), exc.status_code
    return error_type, str(exc.detail), exc.status_code


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_flatten(value)}" for field, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    """DRF's exception hook: every error leaves as an Elasticsearch (or Kibana) error body."""
    if not isinstance(exc, SecurityError | drf.APIException):
        return None
    request = context["request"]
    if isinstance(exc, TokenRequestRefused):
        # The token endpoint answers its refusals as OAuth 2.0 does (RFC 6749 §5.2), as Elasticsearch.
        return Response({"error": exc.type, "error_description": exc.reason}, status=exc.status)
    error_type, reason, status = _describe(exc, request)
    headers = authenticate_header() if status == 401 else {}
    if getattr(exc, "www_authenticate", None):
        # A challenge of its own, e.g. the expired access token's, which tells a client to refresh.
        headers["WWW-Authenticate"] = exc.www_authenticate
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if is_kibana_path(request.path):
        return Response(kibana_error_body(status, reason), status=status, headers=headers)
    if isinstance(exc, drf.MethodNotAllowed):
        allowed = ",".join(context["view"].allowed_methods)
        return Response(
            {"error": f"{reason}, allowed: [{allowed}]", "status": 405}, status=405, headers=headers
        )
    return Response(error_body(error_type, reason, status), status=status, headers=headers)


class ElasticsearchAPIView(APIView):
    """Base of every Elasticsearch-compatible endpoint: its media types and product header."""

    parser_classes = [JSONBodyParser, ElasticsearchJSONParser]
    renderer_classes = [JSONRenderer, ElasticsearchJSONRenderer]

    def get_exception_handler(self):
        return exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[PRODUCT_HEADER[0]] = PRODUCT_HEADER[1]
        return response


def _plain_error(request, status: int, error_type: str, reason: str):
    """403/404/500 outside any view: JSON for API paths, None for pages (Django renders those)."""
    if is_kibana_path(request.path):
        return JsonResponse(kibana_error_body(status, reason), status=status)
    if is_api_path(request.path):
        response = JsonResponse(error_body(error_type, reason, status), status=status)
        response[PRODUCT_HEADER[0]] = PRODUCT_HEADER[1]
        return response
    return None


def api_not_found(request, exception=None):
    reason = f"no handler found for uri [{request.path}] and method [{request.method}]"
    return _plain_error(request, 404, "resource_not_found_exception", reason) or page_not_found(
        request, exception
    )


def api_forbidden(request, exception=None):
    reason = str(exception) or f"action [{request.method} {request.path}] is unauthorized"
    return _plain_error(request, 403, "security_exception", reason) or permission_denied(request, exception)


def api_server_error(request):
    return _plain_error(request, 500, "exception", "internal server error") or server_error(request)
