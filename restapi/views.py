"""The base of every Elasticsearch-compatible endpoint: how it authenticates, reads URL
parameters and bodies with Elasticsearch's rules and messages, and describes its errors in the
OpenAPI document. ``apikeys.api`` and ``accounts.api`` both build on it."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.permissions import IsAuthenticated

from accounts.exceptions import FeatureNotEnabled, ValidationError
from restapi.authentication import (
    ApiKeyAuthentication,
    BearerTokenAuthentication,
    RealmBasicAuthentication,
    SessionPrincipalAuthentication,
)
from restapi.query.dsl import storable_text
from restapi.serializers import ElasticsearchErrorSerializer
from restapi.tls import api_key_service_enabled
from restapi.wire import ElasticsearchAPIView

# Parameters every Elasticsearch endpoint accepts; none changes these endpoints' answers.
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace"})


# ---------------------------------------------------------------------------------------------
# URL parameters, read as Elasticsearch reads them


def _similarity(left: str, right: str) -> float:
    """Lucene's Levenshtein similarity, with which Elasticsearch suggests parameter names."""
    previous = list(range(len(right) + 1))
    for row, left_char in enumerate(left, 1):
        current = [row]
        for column, right_char in enumerate(right, 1):
            substitution = previous[column - 1] + (left_char != right_char)
            current.append(min(previous[column] + 1, current[-1] + 1, substitution))
        previous = current
    return 1 - previous[-1] / max(len(left), len(right), 1)


def _unrecognized(path: str, unknown: list[str], candidates: frozenset) -> ValidationError:
    """Elasticsearch's refusal, with its "did you mean" for names close to a known one."""
    described = []
    for name in unknown:
        scored = sorted((-_similarity(name, candidate), candidate) for candidate in candidates)
        close = [candidate for score, candidate in scored if -score > 0.5]
        suggestion = f"[{close[0]}]" if len(close) == 1 else f"any of [{', '.join(close)}]"
        described.append(f"[{name}]" + (f" -> did you mean {suggestion}?" if close else ""))
    noun = "parameters" if len(unknown) > 1 else "parameter"
    return ValidationError(f"request [{path}] contains unrecognized {noun}: {', '.join(described)}")


def refuse_unknown_params(path: str, names, allowed: frozenset) -> None:
    """A URL parameter the endpoint at ``path`` does not know is refused, never ignored."""
    unknown = sorted(name for name in names if name not in allowed | COMMON_PARAMS)
    if unknown:
        raise _unrecognized(path, unknown, allowed | COMMON_PARAMS)


def url_params(request, allowed: frozenset) -> dict[str, str]:
    """The URL parameters, each once (the last given), all known to the endpoint."""
    params = request.query_params
    refuse_unknown_params(request.path, params, allowed)
    return {name: storable_text(name, params[name]) for name in params}


def flag(params: dict, name: str) -> bool:
    """A boolean parameter: ``true``, ``false``, or present without a value, which means true."""
    raw = params.get(name)
    if raw in ("", "true"):
        return True
    if raw in (None, "false"):
        return False
    raise ValidationError(f"Failed to parse value [{raw}] as only [true] or [false] are allowed.")


# ---------------------------------------------------------------------------------------------
# OpenAPI


def flag_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.BOOL, OpenApiParameter.QUERY, description=description)


def string_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=description)


ERRORS = {
    400: OpenApiResponse(ElasticsearchErrorSerializer, description="Malformed request, or plain HTTP."),
    401: OpenApiResponse(ElasticsearchErrorSerializer, description="Missing or wrong credentials."),
    403: OpenApiResponse(ElasticsearchErrorSerializer, description="The caller lacks the privilege."),
}


# ---------------------------------------------------------------------------------------------
# Views


class SecurityAPIView(ElasticsearchAPIView):
    authentication_classes = [
        ApiKeyAuthentication,
        BearerTokenAuthentication,
        RealmBasicAuthentication,
        SessionPrincipalAuthentication,
    ]
    permission_classes = [IsAuthenticated]


class ApiKeyServiceView(SecurityAPIView):
    """An endpoint of the API key service, which answers only over HTTPS (SPEC §3)."""

    not_enabled = "api keys are not enabled"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not api_key_service_enabled(request):
            raise FeatureNotEnabled(self.not_enabled)


class TokenServiceView(ApiKeyServiceView):
    """An endpoint of the token service, behind the same TLS gate as API keys, as Elasticsearch's."""

    not_enabled = "security tokens are not enabled"


def json_object(body) -> dict:
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body
