"""Elasticsearch-compatible users, roles and has-privileges endpoints (SPEC §4).

Thin callers: ``accounts.selectors`` decides who may do what, ``accounts.services`` does every
write, ``restapi.wire`` renders errors. Denials name the Elasticsearch action, as
Elasticsearch's do.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.serializers import (
    BulkDeleteRolesRequestSerializer,
    BulkDeleteRolesResponseSerializer,
    BulkPutRolesRequestSerializer,
    BulkPutRolesResponseSerializer,
    CreatedSerializer,
    EmptySerializer,
    FoundSerializer,
    HasPrivilegesRequestSerializer,
    HasPrivilegesResponseSerializer,
    PutRoleResponseSerializer,
    PutUserSerializer,
    QueryRolesRequestSerializer,
    QueryRolesResponseSerializer,
    QueryUsersRequestSerializer,
    QueryUsersResponseSerializer,
    RoleDescriptorSerializer,
    RolesByNameSerializer,
    RoleSerializer,
    UsersByNameSerializer,
    UserSerializer,
    bulk_answer,
)
from accounts.exceptions import ValidationError
from accounts.privileges import describe_privileges
from accounts.query import parse_role_query, parse_user_query
from apikeys.selectors import unauthorized
from application_privileges.api.serializers import UserPrivilegesSerializer
from application_privileges.selectors import definitions_for
from restapi.authentication import principal_of
from restapi.nodes import nodes_answer
from restapi.query.dsl import search
from restapi.serializers import NodesResponseSerializer
from restapi.views import SecurityAPIView

GET_USERS = "cluster:admin/xpack/security/user/get"
PUT_USER = "cluster:admin/xpack/security/user/put"
DELETE_USER = "cluster:admin/xpack/security/user/delete"
SET_USER_ENABLED = "cluster:admin/xpack/security/user/set_enabled"
CHANGE_PASSWORD = "cluster:admin/xpack/security/user/change_password"
GET_ROLES = "cluster:admin/xpack/security/role/get"
PUT_ROLE = "cluster:admin/xpack/security/role/put"
DELETE_ROLE = "cluster:admin/xpack/security/role/delete"
BULK_PUT_ROLES = "cluster:admin/xpack/security/role/bulk_put"
BULK_DELETE_ROLES = "cluster:admin/xpack/security/role/bulk_delete"
CLEAR_ROLES_CACHE = "cluster:admin/xpack/security/roles/cache/clear"
QUERY_USERS = "cluster:admin/xpack/security/user/query"
QUERY_ROLES = "cluster:admin/xpack/security/role/query"

BOOLEAN = frozenset({"", "true", "false"})
REFRESH = frozenset({"", "true", "false", "wait_for"})
# Accepted on every Elasticsearch endpoint (the official client may send them); they change nothing here.
COMMON_PARAMETERS = {"pretty": BOOLEAN, "human": BOOLEAN, "error_trace": BOOLEAN, "filter_path": None}
PUT_USER_FIELDS = frozenset(
    {"username", "password", "password_hash", "roles", "full_name", "email", "metadata", "enabled"}
)
PASSWORD_FIELDS = frozenset({"password", "password_hash"})
HAS_PRIVILEGES_FIELDS = frozenset({"cluster", "index", "application"})
API_KEY_USER_PRIVILEGES = (
    "Cannot retrieve privileges for API keys with assigned role descriptors. "
    "Please use the Get API key information API https://ela.st/es-api-get-api-key"
)


def has_body(request) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False  # Django reads no body either


def json_object(request) -> dict:
    """The request's JSON object body, which this endpoint requires."""
    if not has_body(request):
        raise ValidationError("request body is required")
    body = request.data
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


def refuse_unknown_fields(body: dict, allowed: frozenset, request_name: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"failed to parse {request_name} request. unexpected field [{unknown[0]}]")


def name_list(names: str) -> list[str]:
    """A comma-separated path parameter, as Elasticsearch splits it."""
    return [name for name in names.split(",") if name]


def comma_list(value):
    """A list field Elasticsearch also takes as one comma-separated string (a user's ``roles``)."""
    if isinstance(value, str):
        return value.split(",") if value else []
    return value


def require(allowed: bool, principal, action: str) -> None:
    if not allowed:
        raise unauthorized(principal, action)


class AccountsAPIView(SecurityAPIView):
    """Refuses, as Elasticsearch does, query parameters the endpoint does not know, values they
    cannot take, and a body on a method that takes none."""

    parameters: dict[str, frozenset | None] = {}
    body_methods = frozenset({"PUT", "POST"})

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not hasattr(self, request.method.lower()):
            return  # answered 405 by the dispatcher
        known = {**COMMON_PARAMETERS, **self.parameters}
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            listed = ", ".join(f"[{name}]" for name in unknown)
            raise ValidationError(
                f"request [{request.path}] contains unrecognized parameter{plural}: {listed}"
            )
        for name, value in request.query_params.items():
            allowed = known[name]
            if allowed is not None and value not in allowed:
                expected = ", ".join(sorted(choice for choice in allowed if choice))
                raise ValidationError(
                    f"invalid value [{value}] for parameter [{name}]: expected one of [{expected}]"
                )
        if request.method not in self.body_methods and has_body(request):
            raise ValidationError(f"request [{request.method} {request.path}] does not support having a body")


def _parameter(name: str, description: str, enum=("true", "false")) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=description, enum=list(enum)
    )


REFRESH_PARAMETER = _parameter(
    "refresh", "Accepted for compatibility: every write is visible at once.", ("true", "false", "wait_for")
)
NOT_FOUND = OpenApiResponse(EmptySerializer, description="None of the names exists.")
USERS_RESPONSE = OpenApiResponse(UsersByNameSerializer, description="One member per user, named after it.")
ROLES_RESPONSE = OpenApiResponse(RolesByNameSerializer, description="One member per role, named after it.")
COMMA_LIST = "One or more, comma-separated."
USERNAME_PATH = OpenApiParameter("username", OpenApiTypes.STR, OpenApiParameter.PATH)
ROLE_NAME_PATH = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)
ROLE_NAMES_PATH = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description=COMMA_LIST)


class UsersView(AccountsAPIView):
    """``GET /_security/user``: every native user."""

    parameters = {"with_profile_uid": BOOLEAN}

    @extend_schema(
        operation_id="security_get_users",
        summary="Get every native user",
        description="Users of the native realm only, as Elasticsearch answers. Needs `read_security`.",
        tags=["Users"],
        parameters=[_parameter("with_profile_uid", "Accepted; users here have no profiles.")],
        responses={200: USERS_RESPONSE},
    )
    def get(self, request):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, GET_USERS)
        return Response(UsersByNameSerializer(selectors.native_users()).data)


class UserView(AccountsAPIView):
    """``/_security/user/{username}``: get (a comma-separated list), create or replace, delete."""

    parameters = {"with_profile_uid": BOOLEAN, "refresh": REFRESH}

    @extend_schema(
        operation_id="security_get_user",
        summary="Get native users by name",
        description="`username` may be a comma-separated list. 404 with `{}` when none of them exists.",
        tags=["Users"],
        parameters=[
            OpenApiParameter("username", OpenApiTypes.STR, OpenApiParameter.PATH, description=COMMA_LIST),
            _parameter("with_profile_uid", "Accepted; users here have no profiles."),
        ],
        responses={200: USERS_RESPONSE, 404: NOT_FOUND},
    )
    def get(self, request, username):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, GET_USERS)
        users = UsersByNameSerializer(selectors.native_users(name_list(username))).data
        return Response(users, status=200 if users else 404)

    @extend_schema(
        operation_id="security_put_user",
        summary="Create or replace a native user",
        description=(
            "Every field is replaced; `enabled` defaults to true. The password is required to create a "
            "user and may be left out to keep it; it may be given hashed, as `password_hash` (bcrypt or "
            "PBKDF2 in Elasticsearch's formats), instead of `password`. Role names that no role has are "
            "kept and grant nothing until such a role is created. A `username` in the body must be the "
            "path's. A reserved user (`elastic`) is refused with a 400: only its password changes. Nor "
            "may a change leave no enabled user with the `superuser` role. Needs `manage_security`."
        ),
        tags=["Users"],
        parameters=[USERNAME_PATH, REFRESH_PARAMETER],
        request=PutUserSerializer,
        responses={200: CreatedSerializer},
    )
    def put(self, request, username):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, PUT_USER)
        body = json_object(request)
        refuse_unknown_fields(body, PUT_USER_FIELDS, "add user")
        if "username" in body and body["username"] != username:
            raise ValidationError(f"[username] in source does not match the username provided [{username}]")
        _, created = services.put_user(
            username,
            roles=comma_list(body.get("roles")),
            password=body.get("password"),
            password_hash=body.get("password_hash"),
            full_name=body.get("full_name"),
            email=body.get("email"),
            metadata=body.get("metadata"),
            enabled=body.get("enabled", True),
            acting_user=principal.user,
        )
        return Response({"created": created})

    @extend_schema(
        operation_id="security_post_user",
        summary="Create or replace a native user",
        description="The same as PUT.",
        tags=["Users"],
        parameters=[USERNAME_PATH, REFRESH_PARAMETER],
        request=PutUserSerializer,
        responses={200: CreatedSerializer},
    )
    def post(self, request, username):
        return self.put(request, username)

    @extend_schema(
        operation_id="security_delete_user",
        summary="Delete a native user",
        description=(
            "The user's API keys are deleted with it. A user cannot delete themselves; a reserved user "
            "(`elastic`) and the last enabled user with the `superuser` role are never deleted (400). "
            "404 with `found: false` when there is no such user."
        ),
        tags=["Users"],
        parameters=[USERNAME_PATH, REFRESH_PARAMETER],
        responses={200: FoundSerializer, 404: FoundSerializer},
    )
    def delete(self, request, username):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, DELETE_USER)
        found = services.delete_user(username, acting_user=principal.user)
        return Response({"found": found}, status=200 if found else 404)


@extend_schema(exclude=True)  # beyond SPEC §4's operations, which the OpenAPI document lists
class UserEnabledView(AccountsAPIView):
    """``PUT|POST /_security/user/{username}/_enable`` and ``/_disable``."""

    parameters = {"refresh": REFRESH}
    enabled = True

    def put(self, request, username):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, SET_USER_ENABLED)
        services.set_user_enabled(username, self.enabled, acting_user=principal.user)
        return Response({})

    post = put


@extend_schema(exclude=True)  # beyond SPEC §4's operations, which the OpenAPI document lists
class ChangePasswordView(AccountsAPIView):
    """``PUT|POST /_security/user/{username}/_password``, or ``/_security/user/_password`` for oneself."""

    parameters = {"refresh": REFRESH}

    def put(self, request, username=None):
        principal = principal_of(request)
        if username is None:
            if principal.realm_name != services.NATIVE_REALM:
                raise ValidationError(
                    f"the password of user [{principal.user.username}] is kept in the users file of "
                    f"realm [{principal.realm_name}]"
                )
            username = principal.user.username
        require(selectors.can_change_password(principal, username), principal, CHANGE_PASSWORD)
        body = json_object(request)
        refuse_unknown_fields(body, PASSWORD_FIELDS, "change password")
        services.change_password(
            username, body.get("password"), body.get("password_hash"), acting_user=principal.user
        )
        return Response({})

    post = put


class HasPrivilegesView(AccountsAPIView):
    """``GET|POST /_security/user/_has_privileges``: what the caller holds, for every caller."""

    body_methods = frozenset({"GET", "POST"})

    def _answer(self, request, username=None):
        principal = principal_of(request)
        if username is not None and username != principal.user.username:
            raise ValidationError("users may only check the privileges of their own account")
        body = json_object(request)
        refuse_unknown_fields(body, HAS_PRIVILEGES_FIELDS, "has privileges")
        answer = selectors.has_privileges(
            principal,
            cluster=body.get("cluster"),
            index=body.get("index"),
            application=body.get("application"),
            definitions_for=definitions_for,
        )
        return Response(answer)

    @extend_schema(
        operation_id="security_has_privileges",
        summary="Check the caller's privileges",
        description=(
            "For an API key, the key's role descriptors intersected with its owner's roles at creation. "
            "Unknown privilege names are refused. Open to every authenticated caller."
        ),
        tags=["Authentication"],
        request=HasPrivilegesRequestSerializer,
        responses={200: HasPrivilegesResponseSerializer},
    )
    def post(self, request, username=None):
        return self._answer(request, username)

    @extend_schema(
        operation_id="security_has_privileges_get",
        summary="Check the caller's privileges",
        description="The same as POST, with the JSON body on a GET, as Elasticsearch accepts it.",
        tags=["Authentication"],
        request=HasPrivilegesRequestSerializer,
        responses={200: HasPrivilegesResponseSerializer},
    )
    def get(self, request, username=None):
        return self._answer(request, username)


class UserPrivilegesView(AccountsAPIView):
    """``GET /_security/user/_privileges``: what the caller's roles grant, for every caller."""

    @extend_schema(
        operation_id="security_get_user_privileges",
        summary="Get the caller's privileges",
        description=(
            "Cluster, global, index, application and run_as privileges of the caller's roles, merged as "
            "Elasticsearch merges them. An API key without role descriptors answers its owner's roles "
            "at creation; one with role descriptors is refused (400), as in Elasticsearch."
        ),
        tags=["Authentication"],
        responses={200: UserPrivilegesSerializer},
    )
    def get(self, request):
        principal = principal_of(request)
        if principal.api_key is not None and principal.api_key.role_descriptors:
            raise ValidationError(API_KEY_USER_PRIVILEGES)
        privileges = principal.privileges
        return Response(describe_privileges(
            principal.role_descriptors, definitions_for(privileges.application_names())
        ))


@extend_schema(exclude=True)  # Elasticsearch's per-user form, which the client uses when given a user
class UserHasPrivilegesView(HasPrivilegesView):
    """``GET|POST /_security/user/{username}/_has_privileges``: only ``username`` = the caller."""


class RolesView(AccountsAPIView):
    """``/_security/role``: get every role, the built-in ones included; bulk put; bulk delete."""

    parameters = {"include_implicit": BOOLEAN, "refresh": REFRESH}
    body_methods = frozenset({"POST", "DELETE"})

    @extend_schema(
        operation_id="security_get_roles",
        summary="Get every role",
        description="Built-in roles are included, with `metadata._reserved: true`.",
        tags=["Roles"],
        parameters=[_parameter("include_implicit", "Accepted; roles here have no implicit privileges.")],
        responses={200: ROLES_RESPONSE},
    )
    def get(self, request):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, GET_ROLES)
        return Response(RolesByNameSerializer(selectors.roles()).data)

    @extend_schema(
        operation_id="security_bulk_put_role",
        summary="Create or replace several roles",
        description=(
            "Each role as PUT role takes it, all in one transaction. A refused role is listed under "
            "`errors` and the others are still written. Lists that would be empty are left out. "
            "Needs `manage_security`."
        ),
        tags=["Roles"],
        parameters=[REFRESH_PARAMETER],
        request=BulkPutRolesRequestSerializer,
        responses={200: BulkPutRolesResponseSerializer},
    )
    def post(self, request):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, BULK_PUT_ROLES)
        body = json_object(request)
        refuse_unknown_fields(body, frozenset({"roles"}), "bulk put roles")
        outcomes, refused = services.bulk_put_roles(body.get("roles"), acting_user=principal.user)
        return Response(bulk_answer(outcomes, refused))

    @extend_schema(
        operation_id="security_bulk_delete_role",
        summary="Delete several roles",
        description=(
            "Each role as DELETE role deletes it, all in one transaction. A refused role (a built-in "
            "one) is listed under `errors` and the others are still deleted. Needs `manage_security`."
        ),
        tags=["Roles"],
        parameters=[REFRESH_PARAMETER],
        request=BulkDeleteRolesRequestSerializer,
        responses={200: BulkDeleteRolesResponseSerializer},
    )
    def delete(self, request):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, BULK_DELETE_ROLES)
        body = json_object(request)
        refuse_unknown_fields(body, frozenset({"names"}), "bulk delete roles")
        outcomes, refused = services.bulk_delete_roles(body.get("names"), acting_user=principal.user)
        return Response(bulk_answer(outcomes, refused))


class RoleView(AccountsAPIView):
    """``/_security/role/{name}``: get (a comma-separated list), create or replace, delete."""

    parameters = {"include_implicit": BOOLEAN, "refresh": REFRESH}

    @extend_schema(
        operation_id="security_get_role",
        summary="Get roles by name",
        description="`name` may be a comma-separated list. 404 with `{}` when none of them exists.",
        tags=["Roles"],
        parameters=[
            ROLE_NAMES_PATH,
            _parameter("include_implicit", "Accepted; roles here have no implicit privileges."),
        ],
        responses={200: ROLES_RESPONSE, 404: NOT_FOUND},
    )
    def get(self, request, name):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, GET_ROLES)
        found = RolesByNameSerializer(selectors.roles(name_list(name))).data
        return Response(found, status=200 if found else 404)

    @extend_schema(
        operation_id="security_put_role",
        summary="Create or replace a role",
        description=(
            "Unknown privileges are refused and named. `index` is accepted as an alias of `indices`, "
            "and a `description` is stored, as are `applications` (application names may end in `*`). "
            "Remote indices cannot be stored and are refused. Built-in roles cannot be changed. "
            "Needs `manage_security`."
        ),
        tags=["Roles"],
        parameters=[ROLE_NAME_PATH, REFRESH_PARAMETER],
        request=RoleDescriptorSerializer,
        responses={200: PutRoleResponseSerializer},
    )
    def put(self, request, name):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, PUT_ROLE)
        _, created = services.put_role_descriptor(name, json_object(request), acting_user=principal.user)
        return Response({"role": {"created": created}})

    @extend_schema(
        operation_id="security_post_role",
        summary="Create or replace a role",
        description="The same as PUT.",
        tags=["Roles"],
        parameters=[ROLE_NAME_PATH, REFRESH_PARAMETER],
        request=RoleDescriptorSerializer,
        responses={200: PutRoleResponseSerializer},
    )
    def post(self, request, name):
        return self.put(request, name)

    @extend_schema(
        operation_id="security_delete_role",
        summary="Delete a role",
        description="Built-in roles cannot be deleted. 404 with `found: false` when there is no such role.",
        tags=["Roles"],
        parameters=[ROLE_NAME_PATH, REFRESH_PARAMETER],
        responses={200: FoundSerializer, 404: FoundSerializer},
    )
    def delete(self, request, name):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, DELETE_ROLE)
        found = services.delete_role(name, acting_user=principal.user)
        return Response({"found": found}, status=200 if found else 404)


class ClearRolesCacheView(AccountsAPIView):
    """``POST /_security/role/{names}/_clear_cache``. Keyward keeps nothing derived from roles
    between requests: each request reads the roles it needs from the database, on every worker,
    and the compiled name patterns it keeps are keyed by their own text, so they never go stale.
    A role change is therefore seen by the very next request; this answers as Elasticsearch does."""

    body_methods = frozenset()

    @extend_schema(
        operation_id="security_clear_cached_roles",
        summary="Clear the roles cache",
        description=(
            "Nothing to drop: every request reads its roles afresh, so a role change is seen at once on "
            "every worker. Answers in Elasticsearch's `_nodes` shape. `name` is a comma-separated list "
            "of role names, or `*`. Needs `manage_security`."
        ),
        tags=["Roles"],
        parameters=[ROLE_NAMES_PATH],
        request=None,
        responses={200: NodesResponseSerializer},
    )
    def post(self, request, name):
        principal = principal_of(request)
        require(selectors.can_manage_security(principal), principal, CLEAR_ROLES_CACHE)
        return Response(nodes_answer())
def _queried(shown: dict, sort_values: list | None) -> dict:
    return shown if sort_values is None else {**shown, "_sort": sort_values}


QUERY_ROLES_SCHEMA = {
    "summary": "Query roles",
    "description": (
        "Roles filtered by a query DSL subset, sorted and paged. As in Elasticsearch, built-in roles "
        "are not searched (GET role shows them). Without a sort, roles come in the order they were "
        "created and carry no `_sort`. A GET may carry the same body. Needs `read_security`."
    ),
    "tags": ["Roles"],
    "request": QueryRolesRequestSerializer,
    "responses": {200: QueryRolesResponseSerializer},
}


class QueryRolesView(AccountsAPIView):
    """``POST|GET /_security/_query/role``: the stored roles, by query, sorted and paged."""

    body_methods = frozenset({"GET", "POST"})

    @extend_schema(operation_id="security_query_role", **QUERY_ROLES_SCHEMA)
    def post(self, request):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, QUERY_ROLES)
        query = parse_role_query(request.data)
        total, page = search(selectors.queryable_roles(), query)
        shown = RoleSerializer()
        roles = [
            _queried({"name": role.name, **shown.to_representation(role)}, sort_values)
            for role, sort_values in page
        ]
        return Response({"total": total, "count": len(roles), "roles": roles})

    @extend_schema(operation_id="security_query_role_get", **QUERY_ROLES_SCHEMA)
    def get(self, request):
        return self.post(request)


QUERY_USERS_SCHEMA = {
    "summary": "Query users",
    "description": (
        "Native users filtered by a query DSL subset, sorted and paged. As in Elasticsearch, the "
        "reserved user `elastic` is not searched (GET user shows it). Without a sort, users come in "
        "the order they were created and carry no `_sort`. A GET may carry the same body. Needs "
        "`read_security`."
    ),
    "tags": ["Users"],
    "parameters": [_parameter("with_profile_uid", "Accepted; there are no user profiles here.")],
    "request": QueryUsersRequestSerializer,
    "responses": {200: QueryUsersResponseSerializer},
}


class QueryUsersView(AccountsAPIView):
    """``POST|GET /_security/_query/user``: the native users, by query, sorted and paged."""

    parameters = {"with_profile_uid": BOOLEAN}
    body_methods = frozenset({"GET", "POST"})

    @extend_schema(operation_id="security_query_user", **QUERY_USERS_SCHEMA)
    def post(self, request):
        principal = principal_of(request)
        require(selectors.can_read_security(principal), principal, QUERY_USERS)
        query = parse_user_query(request.data)
        total, page = search(selectors.queryable_users(), query)
        shown = UserSerializer()
        users = [_queried(shown.to_representation(user), sort_values) for user, sort_values in page]
        return Response({"total": total, "count": len(users), "users": users})

    @extend_schema(operation_id="security_query_user_get", **QUERY_USERS_SCHEMA)
    def get(self, request):
        return self.post(request)
