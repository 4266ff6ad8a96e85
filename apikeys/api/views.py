"""Elasticsearch-compatible API key endpoints (SPEC §4): create, get, query, update, bulk update,
invalidate, grant, clear cache, and ``_authenticate``; and Keyward's own rotate endpoint beside them.

Views read requests with Elasticsearch's rules and messages, ask ``apikeys.selectors`` which keys
the caller may see and ``apikeys.services`` to change them, and render keys with
``serializers.api_key_info``.
"""

import functools

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.serializers import UserSerializer
from accounts.exceptions import RequestValidationFailed, ValidationError
from apikeys import selectors
from apikeys.aggregations import aggregate
from apikeys.api.serializers import (
    AuthenticateResponseSerializer,
    BulkUpdateApiKeysRequestSerializer,
    BulkUpdateApiKeysResponseSerializer,
    CreateApiKeyRequestSerializer,
    CreateApiKeyResponseSerializer,
    GetApiKeysResponseSerializer,
    GrantApiKeyRequestSerializer,
    InvalidateApiKeysRequestSerializer,
    InvalidateApiKeysResponseSerializer,
    QueryApiKeysRequestSerializer,
    QueryApiKeysResponseSerializer,
    UpdateApiKeyRequestSerializer,
    UpdateApiKeyResponseSerializer,
    api_key_info,
)
from apikeys.hashers import SharedCacheUnavailable
from apikeys.query import parse_api_key_query
from apikeys.services import (
    CREATE_FIELDS,
    CreatedApiKey,
    clear_api_key_cache,
    create_api_key,
    grant_api_key,
    invalidate_api_keys,
    rotate_api_key,
    update_api_key,
    update_api_keys,
)
from restapi.authentication import authenticate_password
from restapi.filter_path import filter_response
from restapi.nodes import nodes_answer
from restapi.query.dsl import MATCH_ALL, ContentParseError, epoch_millis, search
from restapi.serializers import ElasticsearchErrorSerializer, NodesResponseSerializer
from restapi.views import (
    ERRORS,
    ApiKeyServiceView,
    SecurityAPIView,
    flag,
    flag_parameter,
    json_object,
    string_parameter,
    url_params,
)

UPDATE_FIELDS = ("role_descriptors", "metadata", "expiration")
INVALIDATE_FIELDS = {"ids", "id", "name", "realm_name", "username", "owner"}
GET_PARAMS = frozenset(
    {"id", "name", "owner", "realm_name", "username", "active_only", "with_limited_by", "with_profile_uid"}
)
QUERY_PARAMS = frozenset({"with_limited_by", "with_profile_uid", "typed_keys", "sort", "filter_path"})
TAGS = ["API keys"]
# The realm Elasticsearch names for requests authenticated with an API key.
API_KEY_REALM = "_es_api_key"


# ---------------------------------------------------------------------------------------------
# OpenAPI


API_KEY_ID_PATH = OpenApiParameter(
    "api_key_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The key id."
)
WITH_LIMITED_BY = flag_parameter(
    "with_limited_by",
    "Also return each key's limited_by snapshot. Through an API key this needs manage_api_key.",
)
WITH_PROFILE_UID = flag_parameter("with_profile_uid", "Accepted for compatibility; no user profiles here.")
CREATE_SCHEMA = {
    "summary": "Create an API key",
    "description": "The secret is in this response only. Requires manage_own_api_key or higher.",
    "request": CreateApiKeyRequestSerializer,
    "responses": {
        200: CreateApiKeyResponseSerializer,
        **ERRORS,
        409: OpenApiResponse(ElasticsearchErrorSerializer, description="An active key has that name."),
    },
    "tags": TAGS,
}
QUERY_SCHEMA = {
    "summary": "Query API keys",
    "description": "Keys the caller may see, filtered by a query DSL subset, sorted and paged: "
    "every key with read_security or manage_api_key, the caller's own with manage_own_api_key, and "
    "for a request made with an API key holding only manage_own_api_key, that key alone. Without a "
    "sort, keys come oldest first and carry no `_sort`. `aggs` (or `aggregations`) are counted by the "
    "database over every matching key, whatever `from` and `size`: terms, composite (of terms), range, "
    "date_range, missing, filter, filters and global, with sub-aggregations, and the metrics "
    "cardinality and value_count. A GET may carry the same body.",
    "parameters": [
        WITH_LIMITED_BY,
        WITH_PROFILE_UID,
        flag_parameter(
            "typed_keys", "Name each aggregation in the response `type#name` (e.g. `sterms#usernames`)."
        ),
        string_parameter("sort", "The sort as `field:order,field`, instead of a body `sort`."),
        string_parameter(
            "filter_path",
            "Comma-separated paths of the response to keep (`*` and `**` wildcards, `-` to remove), "
            "e.g. `total,aggregations.usernames.buckets.key`.",
        ),
    ],
    "request": QueryApiKeysRequestSerializer,
    "responses": {200: QueryApiKeysResponseSerializer, **ERRORS},
    "tags": TAGS,
}


ROTATE_REQUEST = inline_serializer(
    "RotateApiKeyRequest",
    {
        "expiration": serializers.CharField(
            required=False,
            help_text="When the new key expires, in Elasticsearch time units (e.g. `30d`). Only for a "
            "user rotating their own key; a key rotating itself keeps its expiration.",
        ),
    },
)
ROTATE_RESPONSE = inline_serializer(
    "RotateApiKeyResponse",
    {
        **CreateApiKeyResponseSerializer().get_fields(),
        "rotated_from": serializers.CharField(help_text="The id of the replaced key, now invalidated."),
    },
)


# ---------------------------------------------------------------------------------------------
# Views


def _created_key(created: CreatedApiKey) -> dict:
    """The create response: the only time the secret is ever shown."""
    key = created.api_key
    response = {"id": key.id, "name": key.name, "api_key": created.secret, "encoded": created.encoded}
    if key.expiration:
        response["expiration"] = epoch_millis(key.expiration)
    return response


class ApiKeyView(ApiKeyServiceView):
    """``/_security/api_key``: create (POST, PUT), get (GET) and invalidate (DELETE) keys."""

    @extend_schema(operation_id="security_create_api_key", **CREATE_SCHEMA)
    def post(self, request):
        body = json_object(request.data)
        unknown = sorted(set(body) - CREATE_FIELDS)
        if unknown:
            raise ValidationError(f"unknown field [{unknown[0]}] in create api key request")
        created = create_api_key(
            request.auth,
            name=body.get("name"),
            expiration=body.get("expiration"),
            role_descriptors=body.get("role_descriptors"),
            metadata=body.get("metadata"),
        )
        return Response(_created_key(created), headers={"Cache-Control": "no-store"})

    @extend_schema(operation_id="security_create_api_key_put", **CREATE_SCHEMA)
    def put(self, request):
        return self.post(request)

    @extend_schema(
        operation_id="security_get_api_key",
        summary="Get API keys",
        description="Keys the caller may see: every key with read_security or manage_api_key, only "
        "its own with manage_own_api_key. With manage_own_api_key alone, `username` and `realm_name` "
        "must both be given and name the caller (403 otherwise), and a request made with an API key "
        "may only ask for that key itself, by `id`. An id that is not found, or not the caller's to "
        "see, gives 404 with an empty list, as Elasticsearch does.",
        parameters=[
            string_parameter("id", "A key id. Not with name, username or realm_name."),
            string_parameter("name", "A key name; `*` is a wildcard. Not with id, username or realm_name."),
            flag_parameter("owner", "Only the caller's own keys. Not with username or realm_name."),
            string_parameter("username", "The owner's username."),
            string_parameter("realm_name", "The owner's realm."),
            flag_parameter("active_only", "Leave out invalidated and expired keys."),
            WITH_LIMITED_BY,
            WITH_PROFILE_UID,
        ],
        responses={200: GetApiKeysResponseSerializer, **ERRORS},
        tags=TAGS,
    )
    def get(self, request):
        params = url_params(request, GET_PARAMS)
        # Elasticsearch treats an empty value as no value.
        api_key_id, name, username, realm_name = (
            params.get(field) or None for field in ("id", "name", "username", "realm_name")
        )
        owner, active_only, with_limited_by = (
            flag(params, field) for field in ("owner", "active_only", "with_limited_by")
        )
        flag(params, "with_profile_uid")
        problems = []
        if (api_key_id or name) and (username or realm_name):
            problems.append(
                "username or realm name must not be specified when the api key id or api key name is "
                "specified"
            )
        if owner and (username or realm_name):
            problems.append("neither username nor realm-name may be specified when retrieving owned API keys")
        if api_key_id and name:
            problems.append("only one of [api key id, api key name] can be specified")
        if problems:
            raise RequestValidationFailed(*problems)
        principal = request.auth
        if with_limited_by and not selectors.can_view_limited_by(principal):
            raise selectors.unauthorized(principal, selectors.GET_ACTION)
        selectors.check_api_key_selection(
            principal, selectors.GET_ACTION,
            ids=[api_key_id] if api_key_id else (), name=name, username=username, realm_name=realm_name,
            owner=owner,
        )
        keys = selectors.filter_api_keys(
            selectors.visible_api_keys(principal),
            ids=[api_key_id] if api_key_id else None,
            name=name,
            username=username,
            realm_name=realm_name,
            owner=principal.user if owner else None,
            active_only=active_only,
        )
        found = [api_key_info(key, with_limited_by=with_limited_by) for key in keys.iterator()]
        # As Elasticsearch: asking for an id that is not there (or not the caller's to see) is a 404.
        return Response({"api_keys": found}, status=404 if api_key_id and not found else 200)

    @extend_schema(
        operation_id="security_invalidate_api_key",
        summary="Invalidate API keys",
        description="Invalidates the matching keys the caller may touch: any key with manage_api_key, "
        "only its own with manage_own_api_key. An id the caller may not touch is reported in "
        "`error_details` and left as it is. With manage_own_api_key alone, `username` and "
        "`realm_name` must both be given and name the caller (403 otherwise), and a request made "
        "with an API key may only invalidate that key itself, by `ids`. Body (JSON): `ids` (or the "
        "deprecated `id`), `name` (`*` wildcards), `username`, `realm_name`, `owner`.",
        request=InvalidateApiKeysRequestSerializer,
        responses={200: InvalidateApiKeysResponseSerializer, **ERRORS},
        tags=TAGS,
    )
    def delete(self, request):
        url_params(request, frozenset())
        body = json_object(request.data)
        for field in body:
            if field not in INVALIDATE_FIELDS:
                raise ContentParseError(f"[invalidate_api_key] unknown field [{field}]")
        ids = body.get("ids")
        if body.get("id") is not None:
            if ids is not None:
                raise ValidationError("Must use either [id] or [ids], not both at the same time")
            if not isinstance(body["id"], str):
                raise ValidationError("[id] must be a string")
            ids = [body["id"]]
        result = invalidate_api_keys(
            request.auth,
            ids=ids,
            name=body.get("name"),
            username=body.get("username"),
            realm_name=body.get("realm_name"),
            owner=body.get("owner", False),
        )
        response = {
            "invalidated_api_keys": result.invalidated,
            "previously_invalidated_api_keys": result.previously_invalidated,
            "error_count": len(result.errors),
        }
        if result.errors:
            response["error_details"] = [
                {"type": error["type"], "reason": error["reason"]} for error in result.errors
            ]
        return Response(response)


class RotateApiKeyView(ApiKeyServiceView):
    """``POST /_security/api_key/{id}/_rotate``: Keyward's own endpoint, not an Elasticsearch one.

    Replaces the key with a new one of the same name, owner, privileges, metadata and lifetime,
    and invalidates it, in one transaction.
    """

    @extend_schema(
        operation_id="keyward_rotate_api_key",
        summary="Rotate an API key (Keyward's own endpoint)",
        description="Keyward's own endpoint; Elasticsearch has no such API. Creates a key with the "
        "same name, owner, role_descriptors and metadata as the given active key, and invalidates that "
        "key, in one transaction: either both happen or neither. The new secret is in this response "
        "only. Only the owner rotates: as a user (manage_own_api_key or higher), the new key is limited "
        "by the owner's current roles and lives as long as the old one did, counted from now, or until "
        "the optional `expiration` (within the maximum lifetime policy). Through an API key, only that "
        "key itself can be rotated, and the new key keeps the old one's expiration and limited_by "
        "snapshot, so a key can never extend itself. An invalidated or expired key cannot be rotated "
        "(400); a key the caller may not see is not found (404).",
        parameters=[API_KEY_ID_PATH],
        request=ROTATE_REQUEST,
        responses={
            200: ROTATE_RESPONSE,
            **ERRORS,
            404: OpenApiResponse(ElasticsearchErrorSerializer, description="No such key for the caller."),
        },
        tags=TAGS,
    )
    def post(self, request, api_key_id):
        url_params(request, frozenset())
        # No body, as curl and the client send it, is an empty one.
        body = {} if request.data == {} else json_object(request.data)
        unknown = sorted(set(body) - {"expiration"})
        if unknown:
            raise ValidationError(f"unknown field [{unknown[0]}] in rotate api key request")
        created = rotate_api_key(request.auth, api_key_id, expiration=body.get("expiration"))
        response = {**_created_key(created), "rotated_from": api_key_id}
        return Response(response, headers={"Cache-Control": "no-store"})


def _update_fields(body: dict, parser: str, also=()) -> dict:
    """The fields of an update the body gives, by name; any other is refused as Elasticsearch's
    parser (named ``parser``) refuses it."""
    for name in body:
        if name not in UPDATE_FIELDS and name not in also:
            raise ContentParseError(f"[{parser}] unknown field [{name}]")
    return {name: body[name] for name in UPDATE_FIELDS if name in body}


UPDATE_DESCRIPTION = (
    "Only the owner updates a key, authenticated as a user with manage_own_api_key or higher: an "
    "administrator may not update another user's key (it is not found), and a request made with an "
    "API key is refused (400). The key's limited_by becomes a snapshot of the owner's roles of now. "
    "A field left out is kept; `role_descriptors: {}` removes the key's own restriction; `metadata` "
    "replaces the old metadata; `expiration` sets a new lifetime counted from now. The name never "
    "changes. Invalidated and expired keys cannot be updated."
)


class UpdateApiKeyView(ApiKeyServiceView):
    """``PUT /_security/api_key/{id}``: change a key's role descriptors, metadata or expiration."""

    @extend_schema(
        operation_id="security_update_api_key",
        summary="Update an API key",
        description=UPDATE_DESCRIPTION + " Answers `updated: false` when nothing changed, which writes "
        "nothing. A key that is unknown or not the caller's is not found (404).",
        parameters=[API_KEY_ID_PATH],
        request=UpdateApiKeyRequestSerializer,
        responses={
            200: UpdateApiKeyResponseSerializer,
            **ERRORS,
            404: OpenApiResponse(ElasticsearchErrorSerializer, description="No such key of the caller's."),
        },
        tags=TAGS,
    )
    def put(self, request, api_key_id):
        url_params(request, frozenset())
        # No body, as Elasticsearch allows it, only refreshes limited_by.
        body = {} if request.data == {} else json_object(request.data)
        fields = _update_fields(body, "update_api_key_request_payload")
        return Response({"updated": update_api_key(request.auth, api_key_id, **fields)})


class BulkUpdateApiKeysView(ApiKeyServiceView):
    """``POST /_security/api_key/_bulk_update``: the same change to many of the caller's keys."""

    @extend_schema(
        operation_id="security_bulk_update_api_keys",
        summary="Update API keys in bulk",
        description=UPDATE_DESCRIPTION + " One transaction; each id is reported once, as updated, as a "
        "no-op, or under `errors` (present only when there are any) with the reason it was left as it "
        "was.",
        request=BulkUpdateApiKeysRequestSerializer,
        responses={200: BulkUpdateApiKeysResponseSerializer, **ERRORS},
        tags=TAGS,
    )
    def post(self, request):
        url_params(request, frozenset())
        body = json_object(request.data)
        fields = _update_fields(body, "bulk_update_api_key_request", also=("ids",))
        if "ids" not in body:
            raise ValidationError("Required [ids]")
        result = update_api_keys(request.auth, body["ids"], **fields)
        response = {"updated": result.updated, "noops": result.noops}
        if result.errors:
            response["errors"] = {
                "count": len(result.errors),
                "details": {
                    key_id: {"type": error.type, "reason": error.reason}
                    for key_id, error in result.errors.items()
                },
            }
        return Response(response)


class QueryApiKeyView(ApiKeyServiceView):
    """``POST|GET /_security/_query/api_key``: keys the caller may see, by query, sorted and paged."""

    @extend_schema(operation_id="security_query_api_keys", **QUERY_SCHEMA)
    def post(self, request):
        params = url_params(request, QUERY_PARAMS)
        with_limited_by = flag(params, "with_limited_by")
        flag(params, "with_profile_uid")
        typed_keys = flag(params, "typed_keys")
        query = parse_api_key_query(request.data, url_sort=params.get("sort"))
        principal = request.auth
        # For a principal limited to its own keys, the query is ANDed with ownership.
        keys = selectors.visible_api_keys(principal)
        if with_limited_by and not selectors.can_view_limited_by(principal):
            raise selectors.unauthorized(principal, selectors.GET_ACTION)
        total, page = search(keys, query)
        body = {
            "total": total,
            "count": len(page),
            "api_keys": [
                api_key_info(key, with_limited_by=with_limited_by, sort_values=sort_values)
                for key, sort_values in page
            ],
        }
        if query.aggregations:
            where = None if query.where is MATCH_ALL else query.where
            body["aggregations"] = aggregate(keys, where, query.aggregations, typed_keys, total=total)
        return Response(filter_response(body, params.get("filter_path")))

    @extend_schema(operation_id="security_query_api_keys_get", **QUERY_SCHEMA)
    def get(self, request):
        return self.post(request)


def authentication_of(principal) -> dict:
    """Who a principal is, in ``_authenticate``'s shape; the get token response carries it too."""
    user = principal.user
    if principal.api_key is None:
        realm = {"name": user.realm.name, "type": user.realm.type}
        return {
            **UserSerializer(user).data,
            "authentication_realm": realm,
            "lookup_realm": realm,
            "authentication_type": "realm" if principal.token is None else "token",
        }
    # As Elasticsearch answers for a key: the owner without roles, since the key's own
    # descriptors decide what it may do, and the API key service as both realms.
    realm = {"name": API_KEY_REALM, "type": API_KEY_REALM}
    return {
        "username": user.username,
        "roles": [],
        "full_name": user.full_name or None,
        "email": user.email or None,
        "metadata": user.metadata,
        "enabled": user.enabled,
        "authentication_realm": realm,
        "lookup_realm": realm,
        "authentication_type": "api_key",
        "api_key": {"id": principal.api_key.id, "name": principal.api_key.name},
    }


class AuthenticateView(SecurityAPIView):
    """``GET /_security/_authenticate``: who this request acts as."""

    @extend_schema(
        operation_id="security_authenticate",
        summary="Who the request acts as",
        responses={200: AuthenticateResponseSerializer, 401: ERRORS[401]},
        tags=["Authentication"],
    )
    def get(self, request):
        return Response(authentication_of(request.auth))


# ---------------------------------------------------------------------------------------------
# Grant API key


GRANT_FIELDS = ("grant_type", "username", "password", "access_token", "run_as", "client_authentication")
# Elasticsearch's refresh policies; writes here are visible at once, whichever is asked for.
REFRESH_VALUES = frozenset({"true", "false", "wait_for", ""})


class GrantApiKeyView(ApiKeyServiceView):
    """``POST /_security/api_key/grant``: a key for another user, who proves themselves in the body."""

    @extend_schema(
        operation_id="security_grant_api_key",
        summary="Grant an API key",
        description="Creates a key on behalf of another user, who proves themselves with "
        "`grant_type: password`, `username` and `password` (checked through the realm chain, and "
        "counted by the same failed-password limits as HTTP Basic), or with `grant_type: access_token` "
        "and one of their access tokens (`POST /_security/oauth2/token`). The key belongs to that user, "
        "or to the `run_as` user their roles may run as, and is limited by the owner's roles. Requires "
        "grant_api_key (implied by manage_api_key and manage_security). The secret is in this response "
        "only.",
        parameters=[
            OpenApiParameter(
                "refresh", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=["true", "false", "wait_for"],
                description="Accepted for compatibility; the key is visible at once.",
            )
        ],
        request=GrantApiKeyRequestSerializer,
        responses={
            200: CreateApiKeyResponseSerializer,
            **ERRORS,
            401: OpenApiResponse(
                ElasticsearchErrorSerializer, description="Wrong credentials, of the caller or in the body."
            ),
            409: OpenApiResponse(ElasticsearchErrorSerializer, description="An active key has that name."),
            429: OpenApiResponse(ElasticsearchErrorSerializer, description="Too many failed passwords."),
        },
        tags=TAGS,
    )
    def post(self, request):
        params = url_params(request, frozenset({"refresh"}))
        if params.get("refresh") not in REFRESH_VALUES | {None}:
            raise ValidationError(f"Unknown value for refresh: [{params['refresh']}].")
        body = json_object(request.data)
        for field in body:
            if field not in (*GRANT_FIELDS, "api_key"):
                raise ContentParseError(f"[grant_api_key_request] unknown field [{field}]")
        created = grant_api_key(
            request.auth,
            functools.partial(authenticate_password, request),
            api_key=body.get("api_key"),
            **{field: body.get(field) for field in GRANT_FIELDS},
        )
        return Response(_created_key(created), headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------
# Clear API key cache


class ClearApiKeyCacheView(ApiKeyServiceView):
    """``POST /_security/api_key/{ids}/_clear_cache``: every worker verifies keys' secrets afresh."""

    @extend_schema(
        operation_id="security_clear_api_key_cache",
        summary="Clear the API key cache",
        description="Forgets remembered verifications of API key secrets (kept for slow hashes such as "
        "PBKDF2) on every worker of every host that shares the cache: the next request with a key "
        "hashes its secret again. `ids` is a comma-separated list of key ids, or `*`; naming some "
        "keys clears them all, which is always safe. Requires manage_security. If the shared cache "
        "cannot be written, `_nodes.failed` is 1 and the failure is listed.",
        parameters=[
            OpenApiParameter(
                "ids", OpenApiTypes.STR, OpenApiParameter.PATH, description="Key ids, or `*`."
            )
        ],
        request=None,
        responses={200: NodesResponseSerializer, **ERRORS},
        tags=TAGS,
    )
    def post(self, request, ids):
        url_params(request, frozenset())
        try:
            clear_api_key_cache(request.auth, ids.split(","))
        except SharedCacheUnavailable as error:
            return Response(nodes_answer(f"the shared cache is unavailable: {error}"))
        return Response(nodes_answer())
