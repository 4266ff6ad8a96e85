"""Kibana's role management API, ``/api/security/role`` (SPEC §4), in Kibana's shapes.

Kibana's rules apply: once the caller is authenticated, every request but GET needs a
``kbn-xsrf`` (or ``kbn-version``) header; PUT and DELETE answer 204 No Content; errors are
``{statusCode, error, message}``, which ``restapi.wire`` renders for every ``/api/`` path.
Deciding and writing go through the same selectors and services as Elasticsearch's role API.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.serializers import KibanaPutRoleSerializer, KibanaRoleSerializer
from accounts.api.views import DELETE_ROLE, GET_ROLES, PUT_ROLE, has_body, require
from accounts.exceptions import NotFound, ValidationError
from accounts.kibana_privileges import from_kibana
from restapi.authentication import principal_of
from restapi.views import SecurityAPIView

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
XSRF_HEADERS = ("HTTP_KBN_XSRF", "HTTP_KBN_VERSION")
PUT_FIELDS = frozenset({"description", "metadata", "elasticsearch", "kibana"})
ELASTICSEARCH_FIELDS = frozenset({"cluster", "indices", "run_as", "remote_indices", "remote_cluster"})
JSON_TYPES = {dict: "Object", list: "Array", str: "string", bool: "boolean", int: "number", float: "number"}


def _type(value) -> str:
    return "null" if value is None else JSON_TYPES.get(type(value), type(value).__name__)


def _object(where: str, value) -> dict:
    if not isinstance(value, dict):
        found = _type(value)
        raise ValidationError(f"[{where}]: expected a plain object value, but found [{found}] instead.")
    return value


def _no_unknown_keys(where: str, value: dict, allowed: frozenset) -> None:
    for key in value:
        if key not in allowed:
            raise ValidationError(f"[{where}.{key}]: definition for this key is missing")


def role_descriptor(body, kept_applications: list[dict]) -> dict:
    """Kibana's PUT body as the Elasticsearch role descriptor it stands for: Kibana privileges
    become ``kibana-.kibana`` application privileges; those of other applications are kept."""
    body = _object("request body", body)
    _no_unknown_keys("request body", body, PUT_FIELDS)
    elasticsearch = _object("request body.elasticsearch", body.get("elasticsearch"))
    _no_unknown_keys("request body.elasticsearch", elasticsearch, ELASTICSEARCH_FIELDS)
    kibana = body.get("kibana", [])
    if not isinstance(kibana, list):
        found = _type(kibana)
        raise ValidationError(f"[request body.kibana]: expected value of type [array] but got [{found}]")
    descriptor = dict(elasticsearch) | {"applications": from_kibana(kibana, kept_applications)}
    for field in ("metadata", "description"):
        if body.get(field) is not None:
            descriptor[field] = body[field]
    return descriptor


class KibanaAPIView(SecurityAPIView):
    """Kibana's query parameter checks and its XSRF rule, after authentication as Kibana does."""

    parameters: dict[str, dict[str, frozenset]] = {}  # {method: {parameter: allowed values}}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in SAFE_METHODS and not any(header in request.META for header in XSRF_HEADERS):
            raise ValidationError("Request must contain a kbn-xsrf header.")
        known = self.parameters.get(request.method, {})
        for name, value in request.query_params.items():
            if name not in known:
                raise ValidationError(f"[request query.{name}]: definition for this key is missing")
            if value not in known[name]:
                raise ValidationError(
                    f"[request query.{name}]: expected value of type [boolean] but got [string]"
                )


BOOLEAN = frozenset({"true", "false"})
ROLE_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)
XSRF_HEADER = OpenApiParameter(
    "kbn-xsrf", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, description="Any value."
)
REPLACE_DEPRECATED = OpenApiParameter(
    "replaceDeprecatedPrivileges", OpenApiTypes.BOOL, description="Accepted; nothing is deprecated here."
)
NOT_FOUND = OpenApiResponse(description="No such role (Kibana's error body).")


class KibanaRolesView(KibanaAPIView):
    """``GET /api/security/role``: every role, sorted by name."""

    parameters = {"GET": {"replaceDeprecatedPrivileges": BOOLEAN}}

    @extend_schema(
        operation_id="kibana_get_roles",
        summary="Get every role (Kibana)",
        description="Every role, the built-in ones included, sorted by name. Needs `read_security`.",
        tags=["Kibana roles"],
        parameters=[REPLACE_DEPRECATED],
        responses={200: KibanaRoleSerializer(many=True)},
    )
    def get(self, request):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, GET_ROLES)
        return Response(KibanaRoleSerializer(selectors.roles(), many=True).data)


class KibanaRoleView(KibanaAPIView):
    """``GET|PUT|DELETE /api/security/role/{name}``."""

    parameters = {"GET": {"replaceDeprecatedPrivileges": BOOLEAN}, "PUT": {"createOnly": BOOLEAN}}

    @extend_schema(
        operation_id="kibana_get_role",
        summary="Get a role (Kibana)",
        description="Needs `read_security`.",
        tags=["Kibana roles"],
        parameters=[
            ROLE_NAME,
            REPLACE_DEPRECATED,
        ],
        responses={200: KibanaRoleSerializer, 404: NOT_FOUND},
    )
    def get(self, request, name):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, GET_ROLES)
        role = selectors.roles([name]).first()
        if role is None:
            raise NotFound("Not Found")
        return Response(KibanaRoleSerializer(role).data)

    @extend_schema(
        operation_id="kibana_put_role",
        summary="Create or replace a role (Kibana)",
        description=(
            "Needs a `kbn-xsrf` header and `manage_security`. `kibana` privileges are stored as the "
            "`kibana-.kibana` application privileges Kibana maps them to; the role's privileges of other "
            "applications are kept."
        ),
        tags=["Kibana roles"],
        parameters=[
            ROLE_NAME,
            XSRF_HEADER,
            OpenApiParameter(
                "createOnly", OpenApiTypes.BOOL, description="Refuse (409) to replace an existing role."
            ),
        ],
        request=KibanaPutRoleSerializer,
        responses={204: None},
    )
    def put(self, request, name):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, PUT_ROLE)
        if not has_body(request):
            raise ValidationError("[request body]: expected a plain object value, but found [null] instead.")
        existing = selectors.roles([name]).first()
        services.put_role_descriptor(
            name,
            role_descriptor(request.data, existing.applications if existing else []),
            create_only=request.query_params.get("createOnly") == "true",
            acting_user=principal.user,
        )
        return Response(status=204)

    @extend_schema(
        operation_id="kibana_delete_role",
        summary="Delete a role (Kibana)",
        description="Needs a `kbn-xsrf` header and `manage_security`. Built-in roles cannot be deleted.",
        tags=["Kibana roles"],
        parameters=[ROLE_NAME, XSRF_HEADER],
        responses={204: None, 404: NOT_FOUND},
    )
    def delete(self, request, name):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, DELETE_ROLE)
        if not services.delete_role(name, acting_user=principal.user):
            raise NotFound("Not Found")
        return Response(status=204)
