"""Elasticsearch-compatible API key endpoints (SPEC §4)."""

from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.exceptions import FeatureNotEnabled, ValidationError
from apikeys.api.authentication import (
    ApiKeyAuthentication,
    RealmBasicAuthentication,
    SessionPrincipalAuthentication,
)
from apikeys.api.wire import ElasticsearchAPIView
from apikeys.services import create_api_key
from apikeys.tls import api_key_service_enabled

CREATE_FIELDS = {"name", "expiration", "role_descriptors", "metadata"}


def epoch_millis(moment):
    return int(moment.timestamp() * 1000) if moment else None


class SecurityAPIView(ElasticsearchAPIView):
    authentication_classes = [ApiKeyAuthentication, RealmBasicAuthentication, SessionPrincipalAuthentication]
    permission_classes = [IsAuthenticated]


class ApiKeyView(SecurityAPIView):
    """``POST|PUT /_security/api_key``: create a key; its secret is in this response only."""

    def post(self, request):
        if not api_key_service_enabled(request):
            raise FeatureNotEnabled("api keys are not enabled")
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError("request body must be a JSON object")
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
        key = created.api_key
        response = {"id": key.id, "name": key.name, "api_key": created.secret, "encoded": created.encoded}
        if key.expiration:
            response["expiration"] = epoch_millis(key.expiration)
        return Response(response, headers={"Cache-Control": "no-store"})

    put = post


class AuthenticateView(SecurityAPIView):
    """``GET /_security/_authenticate``: who this request acts as."""

    def get(self, request):
        principal = request.auth
        user = principal.user
        realm = {"name": user.realm.name, "type": user.realm.type}
        body = {
            "username": user.username,
            "roles": sorted(role.name for role in user.roles.all()),
            "full_name": user.full_name or None,
            "email": user.email or None,
            "metadata": user.metadata,
            "enabled": user.enabled,
            "authentication_realm": realm,
            "lookup_realm": realm,
            "authentication_type": "realm",
        }
        if principal.api_key is not None:
            body["authentication_realm"] = {"name": "_es_api_key", "type": "_es_api_key"}
            body["authentication_type"] = "api_key"
            body["api_key"] = {"id": principal.api_key.id, "name": principal.api_key.name}
        return Response(body)
