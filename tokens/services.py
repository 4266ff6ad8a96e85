"""Every write to access tokens, in one place: mint, refresh, authenticate, invalidate, purge
(Elasticsearch's token service).

The REST API, the web UI and the purge all call these functions; who may do what is decided in
``tokens.selectors``. Token strings exist only in the response that mints them: rows keep digests,
audit events and logs name a pair by its public id.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.exceptions import (
    AuthenticationFailed,
    RequestValidationFailed,
    TokenRequestRefused,
    ValidationError,
)
from accounts.models import AuditEvent, User
from accounts.principals import Principal
from apikeys.timeunits import configured_time_value
from tokens import selectors
from tokens.credentials import (
    bearer_token,
    digest,
    new_token_id,
    new_token_secret,
    seal,
    secret_matches,
    split_token,
    unseal,
)
from tokens.models import REFRESH_GRACE, REFRESH_LIFETIME, Token

PASSWORD = "password"
CLIENT_CREDENTIALS = "client_credentials"
REFRESH_TOKEN = "refresh_token"
# Each grant type and the fields it needs; any other of these fields is refused.
REQUIRED_FIELDS = {
    PASSWORD: ("username", "password"), REFRESH_TOKEN: ("refresh_token",), CLIENT_CREDENTIALS: (),
}
PURGE_BATCH_SIZE = 1000
# Elasticsearch's bounds of xpack.security.authc.token.timeout.
SHORTEST_LIFETIME, LONGEST_LIFETIME = timedelta(seconds=1), timedelta(hours=1)
# The only scope there is; named in the response when the request names one, as OAuth 2.0 asks.
SCOPE = "full"
AUTHENTICATION_FAILED = "unable to authenticate with provided credentials"
TOKEN_EXPIRED = "token expired"
COULD_NOT_REFRESH = "could not refresh the requested token"


@dataclass(frozen=True)
class IssuedTokens:
    """A pair and its token strings, for the one response that shows them."""

    token: Token
    access_token: str
    refresh_token: str | None

    def expires_in(self, now=None) -> int:
        return max(0, math.ceil((self.token.expiration - (now or timezone.now())).total_seconds()))


@dataclass(frozen=True)
class InvalidationResult:
    invalidated: int
    previously_invalidated: int


def token_lifetime() -> timedelta:
    """``TOKEN_LIFETIME``, within Elasticsearch's bounds: a misconfiguration is the operator's error."""
    lifetime = configured_time_value("TOKEN_LIFETIME")
    if not SHORTEST_LIFETIME <= lifetime <= LONGEST_LIFETIME:
        raise ImproperlyConfigured("TOKEN_LIFETIME must be between [1s] and [1h]")
    return lifetime


def _invalid_grant(reason: str) -> TokenRequestRefused:
    return TokenRequestRefused("invalid_grant", reason)


def _validate_token_request(grant_type, username, password, refresh_token) -> None:
    """Elasticsearch's validation of a token request: an unknown grant type is
    ``unsupported_grant_type``; fields missing or not for the grant type, all numbered in one
    ``invalid_request``."""
    if grant_type not in REQUIRED_FIELDS:
        supported = f"grant_type only supports the values: [{', '.join(REQUIRED_FIELDS)}]"
        raise TokenRequestRefused("unsupported_grant_type", RequestValidationFailed(supported).reason)
    given = {"username": username, "password": password, "refresh_token": refresh_token}
    required = REQUIRED_FIELDS[grant_type]
    problems = [
        f"{field} is not supported with the {grant_type} grant_type"
        for field, value in given.items()
        if field not in required and value is not None
    ]
    problems += [f"{field} is missing" for field in required if not given[field]]
    if problems:
        raise TokenRequestRefused("invalid_request", RequestValidationFailed(*problems).reason)


def get_token(
    principal: Principal,
    authenticate_password: Callable[[str, str], User | None],
    grant_type=None,
    username=None,
    password=None,
    refresh_token=None,
) -> IssuedTokens:
    """Mint a pair, as Elasticsearch's get token API: for the user a username and password prove
    (with a refresh token), for the caller itself (``client_credentials``, without), or in exchange
    for a refresh token. The caller needs ``manage_token``, checked before anything is read, so the
    endpoint is no password oracle for those who may not use it; ``authenticate_password`` applies
    the abuse limits of HTTP Basic."""
    action = selectors.REFRESH_ACTION if grant_type == REFRESH_TOKEN else selectors.CREATE_ACTION
    if not selectors.can_manage_tokens(principal):
        raise selectors.unauthorized(principal, action)
    _validate_token_request(grant_type, username, password, refresh_token)
    if grant_type == REFRESH_TOKEN:
        return refresh(principal, refresh_token)
    if grant_type == CLIENT_CREDENTIALS:
        if principal.api_key is not None:
            # A token acts with its user's roles, which would reach past the key's own privileges.
            raise ValidationError("an access token cannot be created with API key credentials")
        user = principal.user
    else:
        user = authenticate_password(username, password)
        if user is None:
            raise AuthenticationFailed(f"unable to authenticate user [{username}] for action [{action}]")
    with transaction.atomic():
        issued = _mint(user, principal.user, grant_type, with_refresh=grant_type == PASSWORD)
        audit.record(
            audit.TOKEN_CREATED, principal=principal, target=user.username,
            token_id=issued.token.id, owner_realm=user.realm.name, grant_type=grant_type,
        )
    return issued


def _mint(user, client, grant_type: str, *, with_refresh: bool, now=None) -> IssuedTokens:
    """Store a new pair; the caller holds the transaction."""
    now = now or timezone.now()
    token_id, access_secret = new_token_id(), new_token_secret()
    refresh_secret = new_token_secret() if with_refresh else None
    token = Token.objects.create(
        id=token_id,
        user=user,
        client=client,
        grant_type=grant_type,
        access_hash=digest(access_secret),
        refresh_hash=digest(refresh_secret) if refresh_secret else "",
        created=now,
        expiration=now + token_lifetime(),
    )
    refresh_token = token_id + refresh_secret if refresh_secret else None
    return IssuedTokens(token, token_id + access_secret, refresh_token)


def refresh(principal: Principal, refresh_token: str) -> IssuedTokens:
    """A new pair for a refresh token, which then stops working, by Elasticsearch's rules: within 24
    hours of its pair, once, by the client that asked for the pair. A second use within 30 seconds
    of the first answers the same new pair, read back from the row where it is kept encrypted under
    a key that only this refresh token yields."""
    try:
        return _refresh(principal, refresh_token)
    except TokenRequestRefused as refusal:
        # Audited once the refusal's transaction is over, so that the row stays.
        parts = split_token(refresh_token)
        audit.record(
            audit.AUTHENTICATION_FAILED, principal=principal, outcome=AuditEvent.FAILURE,
            reason=f"refresh token refused: {refusal.reason}", **({"token_id": parts[0]} if parts else {}),
        )
        raise


def _refresh(principal: Principal, refresh_token: str) -> IssuedTokens:
    parts = split_token(refresh_token)
    if parts is None:
        raise _invalid_grant(COULD_NOT_REFRESH)
    token_id, secret = parts
    now = timezone.now()
    with transaction.atomic():
        token = Token.objects.select_for_update().select_related("user__realm").filter(pk=token_id).first()
        if token is None or not secret_matches(secret, token.refresh_hash):
            raise _invalid_grant(COULD_NOT_REFRESH)
        if now > token.created + REFRESH_LIFETIME:
            raise _invalid_grant("refresh token is expired")
        if token.refresh_invalidated is not None:
            raise _invalid_grant("token has been invalidated")
        if token.client_id != principal.user.pk:
            raise _invalid_grant("tokens must be refreshed by the creating client")
        if not token.user.enabled:
            raise _invalid_grant(COULD_NOT_REFRESH)
        if token.refreshed is not None:
            return _superseding(token, secret, now)
        issued = _mint(token.user, token.client, REFRESH_TOKEN, with_refresh=True, now=now)
        token.refreshed = now
        token.superseding = seal(
            secret, token.id, {"access_token": issued.access_token, "refresh_token": issued.refresh_token}
        )
        token.save(update_fields=["refreshed", "superseding"])
        audit.record(
            audit.TOKEN_REFRESHED, principal=principal, target=token.user.username,
            token_id=issued.token.id, refreshed_token_id=token.id,
        )
    return issued


def _superseding(token: Token, secret: str, now) -> IssuedTokens:
    """The pair a refresh made, for the same refresh token again within the grace window."""
    if now > token.refreshed + REFRESH_GRACE:
        raise _invalid_grant("token has already been refreshed more than 30 seconds in the past")
    pair = unseal(secret, token.id, bytes(token.superseding))
    new = Token.objects.filter(pk=split_token(pair["access_token"])[0]).first() if pair else None
    if new is None:
        raise _invalid_grant(COULD_NOT_REFRESH)
    return IssuedTokens(new, pair["access_token"], pair["refresh_token"])


class TokenRefused(AuthenticationFailed):
    """A refused access token: the reason and the pair's id go to the audit row, never the token.
    An expired or invalidated token says so, with the ``Bearer`` challenge Elasticsearch sends, so
    that a client knows to refresh it; any other failure is the same plain 401. ``outcome`` names
    the reason for the metrics, as an ``ApiKeyRefused``'s does."""

    def __init__(self, outcome: str, detail: str, token_id: str | None = None, expired: bool = False):
        super().__init__(TOKEN_EXPIRED if expired else AUTHENTICATION_FAILED, detail=detail)
        self.outcome = outcome
        self.audit_detail = {"reason": detail, **({"token_id": token_id} if token_id else {})}
        if expired:
            self.www_authenticate = (
                'Bearer realm="security", error="invalid_token", error_description="The access token expired"'
            )


def authenticate_access_token(access_token) -> Principal:
    """The principal an access token acts as, or TokenRefused. The row is read on every request, so an
    invalidation is seen by the very next request on every worker."""
    parts = split_token(access_token)
    if parts is None:
        raise TokenRefused("malformed", "access token is malformed")
    token_id, secret = parts
    token = Token.objects.select_related("user__realm").filter(pk=token_id).first()
    if token is None:
        raise TokenRefused("unknown_id", f"access token [{token_id}] does not exist", token_id)
    if not secret_matches(secret, token.access_hash):
        raise TokenRefused("wrong_secret", f"access token [{token_id}] does not exist", token_id)
    if token.invalidated is not None:
        reason = f"access token [{token_id}] has been invalidated"
        raise TokenRefused("invalidated", reason, token_id, expired=True)
    if token.expiration <= timezone.now():
        raise TokenRefused("expired", f"access token [{token_id}] has expired", token_id, expired=True)
    if not token.user.enabled:
        reason = f"access token [{token_id}] belongs to disabled user [{token.user.username}]"
        raise TokenRefused("disabled_owner", reason, token_id)
    return Principal(token.user, token=token)


def authenticate_bearer_header(header: str) -> Principal:
    """``Authorization: Bearer <access token>``."""
    return authenticate_access_token(bearer_token(header))


def _validate_invalidation(token, refresh_token, realm_name, username, ids) -> None:
    for field, value in (("token", token), ("refresh_token", refresh_token), ("realm_name", realm_name),
                         ("username", username)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"[{field}] must be a string")
    if token is not None and refresh_token is not None:
        raise ValidationError("only one of [token, refresh_token] may be sent per request")
    token_string = token if token is not None else refresh_token
    if realm_name or username or ids is not None:
        if token_string:
            raise RequestValidationFailed(
                "token string must not be provided when realm name or username is specified"
            )
    elif not token_string:
        raise RequestValidationFailed(
            "token string must be provided when not specifying a realm name or a username"
        )


def invalidate_tokens(
    principal: Principal, token=None, refresh_token=None, realm_name=None, username=None, ids=None
):
    """Invalidate one access token, one refresh token, or every working pair of the users a realm
    and a username select, as Elasticsearch's invalidate token API; or the working pairs among
    ``ids``, the public ids the tokens page selects by. A token that is not there counts as
    nothing, as there. Takes effect on the very next request."""
    if not selectors.can_manage_tokens(principal):
        raise selectors.unauthorized(principal, selectors.INVALIDATE_ACTION)
    _validate_invalidation(token, refresh_token, realm_name, username, ids)
    now = timezone.now()
    with transaction.atomic():
        if realm_name or username or ids is not None:
            rows = selectors.active_tokens().select_for_update()
            if ids is not None:
                rows = rows.filter(pk__in=ids)
            if realm_name:
                rows = rows.filter(user__realm__name=realm_name)
            if username:
                rows = rows.filter(user__username=username)
            pair_ids = list(rows.values_list("pk", flat=True))
            pairs = Token.objects.filter(pk__in=pair_ids)
            pairs.filter(invalidated__isnull=True).update(invalidated=now)
            pairs.filter(refresh_invalidated__isnull=True).update(refresh_invalidated=now)
            result = InvalidationResult(len(pair_ids), 0)
        else:
            result, pair_ids = _invalidate_one(token, refresh_token, now)
        if result.invalidated:
            audit.record(
                audit.TOKENS_INVALIDATED, principal=principal, target=username or "",
                count=result.invalidated, token_ids=pair_ids[:100], realm=realm_name,
                kind="refresh_token" if refresh_token else "access_token",
            )
    return result


def _invalidate_one(token, refresh_token, now) -> tuple[InvalidationResult, list[str]]:
    is_refresh = refresh_token is not None
    parts = split_token(refresh_token if is_refresh else token)
    row = Token.objects.select_for_update().filter(pk=parts[0]).first() if parts else None
    stored = row and (row.refresh_hash if is_refresh else row.access_hash)
    if row is None or not secret_matches(parts[1], stored):
        return InvalidationResult(0, 0), []
    field = "refresh_invalidated" if is_refresh else "invalidated"
    if getattr(row, field) is not None:
        return InvalidationResult(0, 1), []
    Token.objects.filter(pk=row.pk).update(**{field: now})
    return InvalidationResult(1, 0), [row.pk]


def purge_tokens(now=None, dry_run=False) -> int:
    """Delete pairs that stopped working longer ago than ``API_KEY_RETENTION_PERIOD``: tokens are kept
    as long as keys. Returns how many were (with ``dry_run``, would be) deleted."""
    cutoff = (now or timezone.now()) - configured_time_value("API_KEY_RETENTION_PERIOD")
    due = Token.objects.past_retention(cutoff)
    if dry_run:
        return due.count()
    deleted = 0
    while batch := list(due.values_list("pk", flat=True)[:PURGE_BATCH_SIZE]):
        # Short transactions, by primary key: a large purge never stalls authentication.
        deleted += Token.objects.filter(pk__in=batch).delete()[0]
    if deleted:
        audit.record(
            audit.TOKENS_PURGED, count=deleted, retention_period=settings.API_KEY_RETENTION_PERIOD,
            cutoff=cutoff.isoformat(),
        )
    return deleted

