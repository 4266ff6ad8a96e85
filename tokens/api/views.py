"""Elasticsearch's token endpoints: ``POST /_security/oauth2/token`` mints and refreshes,
``DELETE`` invalidates. Views read requests with Elasticsearch's rules; ``tokens.services`` decides."""

import functools

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from accounts.principals import Principal
from apikeys.api.views import authentication_of
from restapi.authentication import authenticate_password
from restapi.query.dsl import ContentParseError
from restapi.serializers import ElasticsearchErrorSerializer
from restapi.views import ERRORS, TokenServiceView, json_object, url_params
from tokens.api.serializers import (
    GetTokenRequestSerializer,
    GetTokenResponseSerializer,
    InvalidateTokenRequestSerializer,
    InvalidateTokenResponseSerializer,
    TokenErrorSerializer,
)
from tokens.services import SCOPE, get_token, invalidate_tokens

TOKEN_FIELDS = ("grant_type", "username", "password", "refresh_token")
INVALIDATE_FIELDS = ("token", "refresh_token", "realm_name", "username")
TAGS = ["Tokens"]


def _strings(body: dict, parser: str, fields) -> dict:
    """The body's fields, each a string or absent, as Elasticsearch's object parser reads them."""
    for field, value in body.items():
        if field not in fields:
            raise ContentParseError(f"[{parser}] unknown field [{field}]")
        if value is not None and not isinstance(value, str):
            raise ContentParseError(f"[{parser}] failed to parse field [{field}]")
    return {field: body.get(field) for field in fields}


class TokenView(TokenServiceView):
    """``/_security/oauth2/token``: get (POST) and invalidate (DELETE) access tokens."""

    @extend_schema(
        operation_id="security_get_token",
        summary="Get an access token",
        description="Mints a bearer access token, as Elasticsearch's token service: for the user a "
        "`username` and `password` prove (`grant_type: password`, through the realm chain and the same "
        "failed-password limits as HTTP Basic, with a refresh token), for the caller itself "
        "(`client_credentials`, no refresh token; not with API key credentials), or in exchange for a "
        "refresh token (`refresh_token`: within 24 hours, once, by the client that asked for the pair; "
        "the same refresh token again within 30 seconds answers the same new pair). Access tokens work "
        "for KEYWARD_TOKEN_LIFETIME (20 minutes by default, at most 1 hour) with "
        "`Authorization: Bearer <access_token>`, HTTPS only, with the user's roles of the moment. "
        "Requires manage_token (implied by manage_security). A malformed request or a refused grant "
        "answers 400 in OAuth 2.0's `error`/`error_description` shape. The tokens are in this response "
        "only.",
        request=GetTokenRequestSerializer,
        responses={
            200: GetTokenResponseSerializer,
            400: OpenApiResponse(
                TokenErrorSerializer,
                description="invalid_request, unsupported_grant_type or invalid_grant (OAuth 2.0's shape); "
                "plain HTTP and unknown fields answer Elasticsearch's error body instead.",
            ),
            401: OpenApiResponse(
                ElasticsearchErrorSerializer, description="Wrong credentials, of the caller or in the body."
            ),
            403: ERRORS[403],
            429: OpenApiResponse(ElasticsearchErrorSerializer, description="Too many failed passwords."),
        },
        tags=TAGS,
    )
    def post(self, request):
        url_params(request, frozenset())
        body = json_object(request.data)
        fields = _strings(body, "token_request", (*TOKEN_FIELDS, "scope"))
        scope = fields.pop("scope")
        issued = get_token(request.auth, functools.partial(authenticate_password, request), **fields)
        response = {"access_token": issued.access_token, "type": "Bearer", "expires_in": issued.expires_in()}
        if scope is not None:
            response["scope"] = SCOPE
        if issued.refresh_token is not None:
            response["refresh_token"] = issued.refresh_token
        response["authentication"] = authentication_of(Principal(issued.token.user))
        return Response(response, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @extend_schema(
        operation_id="security_invalidate_token",
        summary="Invalidate access or refresh tokens",
        description="Invalidates one access token (`token`), one refresh token (`refresh_token`), or "
        "every working token of the users `realm_name` and/or `username` select; at once, on every "
        "worker. A token that does not exist counts as nothing. Requires manage_token (implied by "
        "manage_security), whoever's tokens they are.",
        request=InvalidateTokenRequestSerializer,
        responses={200: InvalidateTokenResponseSerializer, **ERRORS},
        tags=TAGS,
    )
    def delete(self, request):
        url_params(request, frozenset())
        body = json_object(request.data)
        result = invalidate_tokens(request.auth, **_strings(body, "invalidate_token", INVALIDATE_FIELDS))
        return Response(
            {
                "invalidated_tokens": result.invalidated,
                "previously_invalidated_tokens": result.previously_invalidated,
                "error_count": 0,
            }
        )
