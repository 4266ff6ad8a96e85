"""Elasticsearch-compatible application privilege endpoints: put, get, delete, clear the cache, and
the built-in privilege names.

Thin callers: ``application_privileges.selectors`` decides who may read, ``services`` checks and does
every write, ``restapi.wire`` renders errors. Denials name Elasticsearch's action.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.api.serializers import EmptySerializer
from accounts.api.views import REFRESH, REFRESH_PARAMETER, AccountsAPIView, json_object, name_list, require
from accounts.exceptions import RequestValidationFailed
from accounts.privileges import CLUSTER_PRIVILEGES, INDEX_PRIVILEGES, REMOTE_CLUSTER_PRIVILEGES
from application_privileges import selectors, services
from application_privileges.api.serializers import (
    DELETE_RESPONSE,
    GET_RESPONSE,
    PUT_REQUEST,
    PUT_RESPONSE,
    BuiltinPrivilegesSerializer,
)
from restapi.authentication import principal_of
from restapi.nodes import nodes_answer
from restapi.serializers import NodesResponseSerializer
from restapi.views import ERRORS

TAGS = ["Application privileges"]
APPLICATION_PATH = OpenApiParameter(
    "application", OpenApiTypes.STR, OpenApiParameter.PATH, description="An application name."
)
NAMES_PATH = OpenApiParameter(
    "names", OpenApiTypes.STR, OpenApiParameter.PATH, description="Privilege names, comma-separated."
)
GOTTEN = OpenApiResponse(GET_RESPONSE, description="The privileges found.")
NONE_FOUND = OpenApiResponse(EmptySerializer, description="None of them exists.")


def _found(privileges) -> Response:
    """``{application: {name: privilege}}``; 404 with ``{}`` when there is none, as Elasticsearch."""
    answer: dict[str, dict] = {}
    for privilege in privileges:
        answer.setdefault(privilege.application, {})[privilege.name] = privilege.as_elasticsearch()
    return Response(answer, status=200 if answer else 404)


def _get(request, application=None, names=None) -> Response:
    principal = principal_of(request)
    require(selectors.can_get_privileges(principal, application), principal, selectors.GET_ACTION)
    return _found(selectors.application_privileges(application, names))


class PrivilegesView(AccountsAPIView):
    """``/_security/privilege``: every stored privilege, or create and replace some."""

    parameters = {"refresh": REFRESH}

    @extend_schema(
        operation_id="security_get_privileges",
        summary="Get every application privilege",
        description="Needs `read_security`, or a global application manage privilege over `*`.",
        tags=TAGS,
        responses={200: GOTTEN, 404: NONE_FOUND, **ERRORS},
    )
    def get(self, request):
        return _get(request)

    @extend_schema(
        operation_id="security_put_privileges",
        summary="Create or replace application privileges",
        description=(
            "`{application: {name: {actions, metadata}}}`: each privilege is created, or replaced whole. "
            "Application names, privilege names and actions follow Elasticsearch's rules, and every "
            "problem is reported at once. Needs `manage_security`, or a global application manage "
            "privilege over every application of the body."
        ),
        tags=TAGS,
        parameters=[REFRESH_PARAMETER],
        request=PUT_REQUEST,
        responses={200: PUT_RESPONSE, **ERRORS},
    )
    def put(self, request):
        return Response(services.put_privileges(principal_of(request), json_object(request)))

    @extend_schema(
        operation_id="security_post_privileges",
        summary="Create or replace application privileges",
        description="The same as PUT.",
        tags=TAGS,
        parameters=[REFRESH_PARAMETER],
        request=PUT_REQUEST,
        responses={200: PUT_RESPONSE, **ERRORS},
    )
    def post(self, request):
        return self.put(request)


class ApplicationPrivilegesView(AccountsAPIView):
    """``GET /_security/privilege/{application}``: one application's privileges."""

    @extend_schema(
        operation_id="security_get_application_privileges",
        summary="Get an application's privileges",
        description=(
            "`application` may end with `*`. Needs `read_security`, or a global application manage "
            "privilege over that application."
        ),
        tags=TAGS,
        parameters=[APPLICATION_PATH],
        responses={200: GOTTEN, 404: NONE_FOUND, **ERRORS},
    )
    def get(self, request, application):
        return _get(request, application)


class NamedPrivilegesView(AccountsAPIView):
    """``/_security/privilege/{application}/{names}``: get or delete privileges by name."""

    parameters = {"refresh": REFRESH}

    @extend_schema(
        operation_id="security_get_named_privileges",
        summary="Get application privileges by name",
        description="404 with `{}` when none of them exists.",
        tags=TAGS,
        parameters=[APPLICATION_PATH, NAMES_PATH],
        responses={200: GOTTEN, 404: NONE_FOUND, **ERRORS},
    )
    def get(self, request, application, names):
        return _get(request, application, name_list(names))

    @extend_schema(
        operation_id="security_delete_privileges",
        summary="Delete application privileges",
        description=(
            "404 when none of them exists. Needs `manage_security`, or a global application manage "
            "privilege over that application."
        ),
        tags=TAGS,
        parameters=[APPLICATION_PATH, NAMES_PATH, REFRESH_PARAMETER],
        responses={200: DELETE_RESPONSE, 404: DELETE_RESPONSE, **ERRORS},
    )
    def delete(self, request, application, names):
        answer = services.delete_privileges(principal_of(request), application, name_list(names))
        found = any(result["found"] for result in answer[application].values())
        return Response(answer, status=200 if found else 404)


class ClearPrivilegesCacheView(AccountsAPIView):
    """``POST /_security/privilege/{applications}/_clear_cache``."""

    @extend_schema(
        operation_id="security_clear_cached_privileges",
        summary="Clear the application privileges cache",
        description=(
            "Keyward keeps no such cache: every request reads the privileges it needs. Answered as "
            "Elasticsearch does, for programs that call it after a change. Needs `manage_security`."
        ),
        tags=TAGS,
        parameters=[
            OpenApiParameter(
                "application", OpenApiTypes.STR, OpenApiParameter.PATH,
                description="Application names, comma-separated, or `*`.",
            )
        ],
        request=None,
        responses={200: NodesResponseSerializer, **ERRORS},
    )
    def post(self, request, application):
        principal = principal_of(request)
        require(selectors.can_clear_privileges_cache(principal), principal, selectors.CLEAR_CACHE_ACTION)
        if not name_list(application):
            raise RequestValidationFailed("application names are missing")
        return Response(nodes_answer())


class BuiltinPrivilegesView(AccountsAPIView):
    """``GET /_security/privilege/_builtin``: the privilege names roles may grant here."""

    @extend_schema(
        operation_id="security_get_builtin_privileges",
        summary="Get the built-in privilege names",
        description="The cluster, index and remote cluster privilege names. Needs `read_security`.",
        tags=TAGS,
        responses={200: BuiltinPrivilegesSerializer, **ERRORS},
    )
    def get(self, request):
        principal = principal_of(request)
        require(selectors.can_get_builtin_privileges(principal), principal, selectors.GET_BUILTIN_ACTION)
        return Response({
            "cluster": sorted(CLUSTER_PRIVILEGES),
            "index": sorted(INDEX_PRIVILEGES),
            "remote_cluster": sorted(REMOTE_CLUSTER_PRIVILEGES),
        })
