"""Forward authentication: ``GET /_security/_forward_auth`` tells a reverse proxy (nginx
``auth_request``, Traefik ``ForwardAuth``, Caddy ``forward_auth``, Envoy's HTTP ``ext_authz``)
whether the ``Authorization`` header of the request it holds is good, who it names, and whether
they hold the privileges the URL asks for.

The answer is made of plain functions of a query and a principal, so that a path serving it
without DRF can reuse them: ``parse_requirements`` reads the URL, ``missing`` tells what the
principal lacks with ``_has_privileges``' own evaluation, ``identity_headers`` says who it is.

Header values are percent-encoded UTF-8 (RFC 3986 §2.1) wherever a byte is not printable ASCII,
and for ``%`` and ``,``: any name fits in a header, ``urllib.parse.unquote`` gives it back, and
``X-Keyward-Roles`` splits on ``,`` before each name is decoded.
"""

from dataclasses import dataclass
from urllib.parse import quote

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.exceptions import PermissionDenied, ValidationError
from accounts.principals import Principal
from accounts.selectors import held_privileges, privileges_check
from restapi.authentication import (
    ApiKeyAuthentication,
    BearerTokenAuthentication,
    RealmBasicAuthentication,
    principal_of,
)
from restapi.query.dsl import storable_text
from restapi.views import ERRORS, ApiKeyServiceView, refuse_unknown_params

PATH = "/_security/_forward_auth"
PARAMS = frozenset({"cluster", "index"})
# Whose check a refused requirement's message names, where has-privileges names the user.
CHECK_NAME = "forward_auth"
USER = "X-Keyward-User"
REALM = "X-Keyward-Realm"
API_KEY_ID = "X-Keyward-Api-Key-Id"
API_KEY_NAME = "X-Keyward-Api-Key-Name"
ROLES = "X-Keyward-Roles"
# Printable ASCII but "%", the escape, and ",", the separator of X-Keyward-Roles.
HEADER_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in "%,")
INDEX_SYNTAX = "<index name or pattern>:<privilege>[,<privilege>...]"


@dataclass(frozen=True)
class Requirements:
    """The privileges a request must hold to pass, as ``privileges_check`` normalised them: a
    has-privileges request's ``cluster`` and ``indices``. None when the URL asks for none."""

    requested: dict | None = None

    def __bool__(self) -> bool:
        return self.requested is not None


def parse_requirements(query, path: str = PATH) -> Requirements:
    """The requirements of a URL query (a ``QueryDict``): ``cluster=<privilege>[,<privilege>...]``
    and ``index=<pattern>:<privilege>[,<privilege>...]``, each repeatable. Unknown parameters,
    malformed values and unknown privilege names are refused as ``_has_privileges`` refuses them."""
    refuse_unknown_params(path, query, PARAMS)
    cluster = [name for value in _values(query, "cluster") for name in value.split(",")]
    indices = [_index_requirement(value) for value in _values(query, "index")]
    if not (cluster or indices):
        return Requirements()
    return Requirements(privileges_check(CHECK_NAME, cluster=cluster, index=indices))


def _values(query, name: str) -> list[str]:
    return [storable_text(name, value) for value in query.getlist(name)]


def _index_requirement(value: str) -> dict:
    """One ``index`` value as a has-privileges index entry. The pattern ends at the first colon,
    since index names hold none; a ``/regex/`` pattern, which may, ends at its closing ``/:``."""
    end = value.find("/:", 1) + 1 if value.startswith("/") else value.find(":")
    if end <= 0:
        raise ValidationError(f"failed to parse [index] value [{value}]: expected [{INDEX_SYNTAX}]")
    return {"names": [value[:end]], "privileges": value[end + 1 :].split(",")}


def missing(principal: Principal, requirements: Requirements) -> dict:
    """What the principal lacks of the requirements, evaluated as ``_has_privileges`` evaluates them
    (for an API key: its descriptors ∩ ``limited_by``): ``{"cluster": [privilege], "index":
    {pattern: [privilege]}}`` with only what is lacking, and empty when everything is held."""
    if not requirements:
        return {}
    answer = held_privileges(principal, requirements.requested)
    lacking = {}
    cluster = [name for name, held in answer["cluster"].items() if not held]
    if cluster:
        lacking["cluster"] = cluster
    index = {
        name: lacked
        for name, privileges in answer["index"].items()
        if (lacked := [privilege for privilege, held in privileges.items() if not held])
    }
    if index:
        lacking["index"] = index
    return lacking


def effective_roles(principal: Principal) -> list[str]:
    """The roles whose privileges the principal acts with, sorted. A key's own role descriptors when
    it has some (they narrow its ``limited_by``), otherwise the roles of its ``limited_by``
    snapshot; for a user or an access token, the user's roles, without the names assigned that no
    role defines (they grant nothing, and a key made now would not carry them either)."""
    if principal.api_key is not None and principal.api_key.role_descriptors:
        return sorted(principal.api_key.role_descriptors)
    return sorted(principal.role_descriptors)


def header_value(text: str) -> str:
    """``text`` as a header value any proxy passes on unchanged (see the module's docstring)."""
    return quote(text, safe=HEADER_SAFE)


def identity_headers(principal: Principal) -> dict[str, str]:
    """Who the principal is, for the proxy to hand to the application behind it. An API key's
    user and realm are its owner's."""
    headers = {USER: header_value(principal.user.username), REALM: header_value(principal.realm_name)}
    if principal.api_key is not None:
        headers[API_KEY_ID] = header_value(principal.api_key.id)
        headers[API_KEY_NAME] = header_value(principal.api_key.name)
    headers[ROLES] = ",".join(header_value(role) for role in effective_roles(principal))
    return headers


def refusal(principal: Principal, lacking: dict) -> PermissionDenied:
    """The 403 of a principal lacking required privileges, naming what it lacks, in the words of
    Elasticsearch's refusals."""
    user = principal.user.username
    who = (
        f"user [{user}]"
        if principal.api_key is None
        else f"API key id [{principal.api_key.id}] of user [{user}]"
    )
    parts = []
    if "cluster" in lacking:
        parts.append(f"cluster privileges [{','.join(lacking['cluster'])}]")
    parts.extend(
        f"index privileges [{','.join(privileges)}] on [{name}]"
        for name, privileges in lacking.get("index", {}).items()
    )
    return PermissionDenied(
        f"forward authentication is unauthorized for {who} with effective roles "
        f"[{','.join(effective_roles(principal))}], lacking {'; '.join(parts)}"
    )


class ForwardAuthView(ApiKeyServiceView):
    """``GET /_security/_forward_auth``, or any other method: 200 with identity headers, 401, 403 or
    429.

    Only the ``Authorization`` header counts: a browser's Keyward login session is no credential
    here, so that an application served on the same host cannot ride it."""

    authentication_classes = [ApiKeyAuthentication, BearerTokenAuthentication, RealmBasicAuthentication]
    not_enabled = "forward authentication is not enabled: it requires HTTPS"

    @extend_schema(
        operation_id="security_forward_auth",
        summary="Forward authentication for a reverse proxy",
        description=(
            "Keyward's own, for nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth` and "
            "Envoy's HTTP `ext_authz`: the proxy sends the client's `Authorization` header (an API key, "
            "an access token, or HTTP Basic through the realm chain). A 200 has an empty body and the "
            f"headers `{USER}`, `{REALM}` (for an API key, its owner's realm), `{API_KEY_ID}` and "
            f"`{API_KEY_NAME}` (API keys only) and `{ROLES}`: a key's own role descriptors' names, or "
            "without any, those of its limited_by; a user's roles that exist. Values are percent-encoded "
            "UTF-8 for every byte outside printable ASCII and for `%` and `,`; roles are comma-separated. "
            "Required privileges are evaluated as `_has_privileges` evaluates them; a principal lacking "
            "any gets 403 naming them. Every method answers the same (Envoy's `ext_authz` sends the "
            "client's own); the body is never read. HTTPS only."
        ),
        parameters=[
            OpenApiParameter(
                "cluster",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                many=True,
                description="Required cluster privileges, comma-separated and/or repeated, e.g. `monitor`.",
            ),
            OpenApiParameter(
                "index",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                many=True,
                description=f"Required index privileges, `{INDEX_SYNTAX}`, repeated for more patterns, "
                "e.g. `logs-*:read,view_index_metadata`. The pattern ends at the first colon; a "
                "`/regex/` pattern at its closing `/:`. As in any query string, a `+` is sent as `%2B`.",
            ),
        ],
        responses={
            200: OpenApiResponse(description="Authenticated, holding every required privilege."),
            **ERRORS,
            429: OpenApiResponse(
                ERRORS[401].response,
                description="Too many failed attempts from this address; see Retry-After.",
            ),
        },
        tags=["Authentication"],
    )
    def get(self, request):
        requirements = parse_requirements(request.query_params, request.path)
        principal = principal_of(request)
        lacking = missing(principal, requirements)
        if lacking:
            raise refusal(principal, lacking)
        return Response(headers=identity_headers(principal))

    # Envoy's HTTP ext_authz sends the client's own method; the answer never depends on it, and a
    # body is never read. The OpenAPI document describes GET alone.
    @extend_schema(exclude=True)
    def any_method(self, request):
        return self.get(request)

    post = put = patch = delete = options = any_method
