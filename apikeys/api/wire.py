"""The Elasticsearch wire format, in one place: media types, the product header, error bodies.

API views raise the domain errors of ``accounts.exceptions`` (or DRF's own); this module renders
them the way Elasticsearch does, so that the official client understands every answer.
"""

from rest_framework import exceptions as drf
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import SecurityError

PRODUCT_HEADER = ("X-Elastic-Product", "Elasticsearch")
COMPATIBLE_MEDIA_TYPE = "application/vnd.elasticsearch+json"


class ElasticsearchJSONParser(JSONParser):
    """``application/vnd.elasticsearch+json; compatible-with=N``, as the official client sends."""

    media_type = COMPATIBLE_MEDIA_TYPE


class ElasticsearchJSONRenderer(JSONRenderer):
    media_type = COMPATIBLE_MEDIA_TYPE


def error_body(error_type: str, reason: str, status: int) -> dict:
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def authenticate_header() -> dict:
    return {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8", ApiKey'}


_DRF_TYPES = {
    drf.ParseError: "parse_exception",
    drf.NotAuthenticated: "security_exception",
    drf.AuthenticationFailed: "security_exception",
    drf.PermissionDenied: "security_exception",
    drf.NotFound: "resource_not_found_exception",
    drf.UnsupportedMediaType: "media_type_header_exception",
    drf.NotAcceptable: "media_type_header_exception",
    drf.ValidationError: "action_request_validation_exception",
}


def exception_handler(exc, context):
    """DRF's exception hook: every error leaves as an Elasticsearch error body."""
    request = context.get("request")
    if isinstance(exc, SecurityError):
        headers = authenticate_header() if exc.status == 401 else {}
        return Response(error_body(exc.type, exc.reason, exc.status), status=exc.status, headers=headers)
    if isinstance(exc, drf.MethodNotAllowed):
        allowed = ",".join(context["view"].allowed_methods) if context.get("view") else ""
        reason = (
            f"Incorrect HTTP method for uri [{request.path}] and method [{request.method}], "
            f"allowed: [{allowed}]"
        )
        return Response({"error": reason, "status": 405}, status=405)
    if isinstance(exc, drf.APIException):
        error_type = next((name for cls, name in _DRF_TYPES.items() if isinstance(exc, cls)), "exception")
        if isinstance(exc, drf.NotAuthenticated):
            reason = f"missing authentication credentials for REST request [{request.path}]"
        else:
            reason = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = authenticate_header() if exc.status_code == 401 else {}
        return Response(
            error_body(error_type, str(reason), exc.status_code), status=exc.status_code, headers=headers
        )
    return None


class ElasticsearchAPIView(APIView):
    """Base of every Elasticsearch-compatible endpoint: its media types and product header."""

    parser_classes = [JSONParser, ElasticsearchJSONParser]
    renderer_classes = [JSONRenderer, ElasticsearchJSONRenderer]

    def get_exception_handler(self):
        return exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[PRODUCT_HEADER[0]] = PRODUCT_HEADER[1]
        return response
