"""How REST requests authenticate: ``ApiKey`` credentials, ``Bearer`` access tokens, or HTTP Basic
through the realm chain."""

import base64
import binascii
from time import perf_counter

from rest_framework.authentication import BaseAuthentication, SessionAuthentication

from accounts import throttling
from accounts.exceptions import AuthenticationFailed, FeatureNotEnabled
from accounts.principals import Principal
from accounts.realms import authenticate_realm_chain
from apikeys.credentials import is_api_key_header
from apikeys.services import ApiKeyRefused, authenticate_api_key
from metrics import registry as metrics
from restapi.tls import api_key_service_enabled
from restapi.wire import authenticate_header
from tokens.credentials import bearer_token
from tokens.services import TokenRefused, authenticate_bearer_header


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: ApiKey``; always verified, so that a valid key is never throttled."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not is_api_key_header(header):
            return None
        if not api_key_service_enabled(request):
            # Refused, never ignored: the key has just crossed the network in clear text.
            raise FeatureNotEnabled("api keys are not enabled: API key authentication requires HTTPS")
        started = perf_counter()
        try:
            principal = authenticate_api_key(header)
        except ApiKeyRefused as refusal:
            seconds = perf_counter() - started
            throttling.api_key_refused(request, refusal.audit_detail)  # a 429, counted as throttled
            metrics.authenticated("api_key", refusal.outcome, seconds)
            raise
        metrics.authenticated("api_key", "success", perf_counter() - started)
        return principal.user, principal

    def authenticate_header(self, request):
        return authenticate_header()["WWW-Authenticate"]


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>``, read from the database on every request so that an
    invalidation holds on every worker at once; refused over plain HTTP as an API key is."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if bearer_token(header) is None:
            return None
        if not api_key_service_enabled(request):
            raise FeatureNotEnabled("security tokens are not enabled: token authentication requires HTTPS")
        started = perf_counter()
        try:
            principal = authenticate_bearer_header(header)
        except TokenRefused as refusal:
            seconds = perf_counter() - started
            throttling.token_refused(request, refusal.audit_detail)  # a 429, counted as throttled
            metrics.authenticated("token", refusal.outcome, seconds)
            raise
        metrics.authenticated("token", "success", perf_counter() - started)
        return principal.user, principal

    def authenticate_header(self, request):
        return authenticate_header()["WWW-Authenticate"]


class RealmBasicAuthentication(BaseAuthentication):
    """HTTP Basic against the realm chain, as Elasticsearch accepts on its REST API.

    Passwords can be guessed: a username over its failure limit from this address, or one not known
    good there from an address over its cap, is refused before the password is checked, even a right
    one (``accounts.throttling``). Malformed credentials name nobody and guess nothing: plain 401.
    """

    def authenticate(self, request):
        scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise AuthenticationFailed("unable to authenticate: malformed basic credentials")
        user = authenticate_password(request, username, password)
        if user is None:
            raise AuthenticationFailed(
                f"unable to authenticate user [{username}] for REST request [{request.path}]"
            )
        return user, Principal(user)

    def authenticate_header(self, request):
        return authenticate_header()["WWW-Authenticate"]


def authenticate_password(request, username: str, password: str):
    """The user a username and password prove through the realm chain, or None; counted by the
    abuse limits of this request's address exactly as HTTP Basic is, wherever a password arrives
    (the grant API key body too), so that no endpoint guesses passwords faster than another."""
    throttling.check_password(request, username)
    user = authenticate_realm_chain(username, password)
    if user is None:
        throttling.password_failed(request, username)
        return None
    throttling.password_succeeded(request, username)
    return user


class SessionPrincipalAuthentication(SessionAuthentication):
    """The browser's own calls (the Console page): the login session, with Django's CSRF check."""

    def authenticate(self, request):
        authenticated = super().authenticate(request)
        if authenticated is None:
            return None
        user, _ = authenticated
        return user, Principal(user)


def principal_of(request) -> Principal:
    """Who an authenticated API request acts as."""
    return request.auth
