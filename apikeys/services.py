"""Every write to API keys, in one place: create, invalidate, authenticate (SPEC §1–§3, §5).

The web UI, the REST API and the management commands all call these functions, so they cannot
disagree about who may do what. The privilege rules themselves live in ``apikeys.selectors``.
"""

import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.exceptions import AuthenticationFailed, Conflict, ValidationError
from accounts.principals import Principal
from accounts.privileges import validate_role_descriptors
from accounts.services import validate_metadata
from apikeys import selectors
from apikeys.credentials import (
    encode_credential,
    generate_api_key_id,
    generate_api_key_secret,
    parse_authorization_header,
)
from apikeys.hashers import make_api_key_hash, verify_api_key_hash
from apikeys.models import ApiKey
from apikeys.query import storable_text
from apikeys.timeunits import expiration_from

audit = logging.getLogger("keyward.audit")

NAME_MAX_LENGTH = 256
INVALIDATE_BATCH_SIZE = 1000
LAST_USED_RESOLUTION = timedelta(minutes=1)
AUTHENTICATION_FAILED = "unable to authenticate with provided credentials"


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key and its secret. The secret exists only here: it is never stored."""

    api_key: ApiKey
    secret: str

    @property
    def encoded(self) -> str:
        return encode_credential(self.api_key.id, self.secret)


@dataclass
class InvalidationResult:
    invalidated: list[str] = field(default_factory=list)
    previously_invalidated: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def validate_api_key_name(name) -> str:
    """Names: 1–256 characters, no surrounding whitespace, no leading ``_`` (SPEC §7)."""
    if not isinstance(name, str):
        raise ValidationError("api key name must be a string")
    if not name:
        raise ValidationError("api key name is required")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"api key name may not be more than {NAME_MAX_LENGTH} characters long")
    if name != name.strip():
        raise ValidationError(f"api key name [{name}] must not begin or end with whitespace")
    if name.startswith("_"):
        raise ValidationError(f"api key name [{name}] must not start with [_]")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise ValidationError("api key name must not contain control characters")
    return name


def _milliseconds(moment):
    """A time at Elasticsearch's precision. Keys show their times in epoch milliseconds and the query
    API sorts and pages on them, so what is stored is exactly what is shown."""
    return moment and moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def create_api_key(
    principal: Principal, name, expiration=None, role_descriptors=None, metadata=None
) -> CreatedApiKey:
    """Create a key for the principal's user; the returned secret is shown once and then gone."""
    if not selectors.can_create_api_key(principal):
        raise selectors.unauthorized(principal, selectors.CREATE_ACTION)
    name = validate_api_key_name(name)
    metadata = validate_metadata(metadata)
    role_descriptors = validate_role_descriptors(role_descriptors if role_descriptors is not None else {})
    if principal.api_key is not None:
        # A key made with a key inherits exactly what the creating key may do (SPEC §2).
        if role_descriptors:
            raise ValidationError(
                "an API key created with an API key must not specify [role_descriptors]: "
                "it inherits the privileges of the creating key"
            )
        role_descriptors = principal.api_key.role_descriptors
    now = _milliseconds(timezone.now())
    if expiration is not None and not isinstance(expiration, str):
        raise ValidationError("expiration must be a string such as [30d]")
    expires = _milliseconds(expiration_from(expiration, now))
    secret = generate_api_key_secret()
    key = ApiKey(
        id=generate_api_key_id(),
        name=name,
        hash=make_api_key_hash(secret),
        owner=principal.user,
        realm_name=principal.user.realm.name,
        realm_type=principal.user.realm.type,
        created=now,
        expiration=expires,
        role_descriptors=role_descriptors,
        limited_by=principal.role_descriptors,
        metadata=metadata,
    )
    try:
        with transaction.atomic():
            key.save(force_insert=True)
    except IntegrityError:
        if ApiKey.objects.filter(name=name, invalidated__isnull=True).exists():
            raise Conflict(f"an active API key with name [{name}] already exists") from None
        raise
    audit.info(
        "api key created id=%s name=%r owner=%s realm=%s", key.id, name, key.owner.username, key.realm_name
    )
    return CreatedApiKey(api_key=key, secret=secret)


def _validate_invalidation_request(ids, name, username, realm_name, owner):
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise ValidationError("[ids] must be a list of strings")
        if any(not item.strip() for item in ids):
            raise ValidationError("Field [ids] must not contain blank id")
        for item in ids:
            storable_text("ids", item)
    for label, value in (("name", name), ("username", username), ("realm_name", realm_name)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValidationError(f"[{label}] must be a non-empty string")
        if value is not None:
            storable_text(label, value)
    if not isinstance(owner, bool):
        raise ValidationError("[owner] must be true or false")
    if not (ids or name or username or realm_name or owner):
        raise ValidationError(
            "One of [api key id(s), api key name, username, realm name] must be specified "
            "if [owner] flag is false"
        )
    if ids and name:
        raise ValidationError("only one of [api key id(s), api key name] can be specified")
    if (ids or name) and (username or realm_name):
        raise ValidationError(
            "username or realm name must not be specified when the api key id(s) or name is specified"
        )
    if owner and (username or realm_name):
        raise ValidationError(
            "username or realm name must not be specified when the current user or api key owner is requested"
        )


def _lock(keys) -> dict:
    """``{id: invalidated}`` of the keys, row-locked so concurrent invalidations report truthfully."""
    return dict(keys.select_for_update(of=("self",)).values_list("id", "invalidated"))


def invalidate_api_keys(
    principal: Principal, ids=None, name=None, username=None, realm_name=None, owner=False
) -> InvalidationResult:
    """Invalidate the matching keys the principal may touch; any other key is never changed."""
    _validate_invalidation_request(ids, name, username, realm_name, owner)
    allowed = selectors.filter_api_keys(
        selectors.invalidatable_api_keys(principal), owner=principal.user if owner else None
    )
    result = InvalidationResult()
    now = _milliseconds(timezone.now())
    with transaction.atomic():
        if ids:
            requested = list(dict.fromkeys(ids))
            found = {}
            for start in range(0, len(requested), INVALIDATE_BATCH_SIZE):
                batch = requested[start : start + INVALIDATE_BATCH_SIZE]
                found.update(_lock(selectors.filter_api_keys(allowed, ids=batch)))
            for key_id in requested:
                if key_id not in found:
                    # Unknown and not-yours look the same, so ids of others' keys are not revealed.
                    result.errors.append(
                        {
                            "type": "resource_not_found_exception",
                            "reason": f"api key [{key_id}] not found",
                            "id": key_id,
                        }
                    )
        else:
            found = _lock(
                selectors.filter_api_keys(allowed, name=name, username=username, realm_name=realm_name)
            )
        to_invalidate = [key_id for key_id, invalidated in found.items() if invalidated is None]
        result.previously_invalidated = [
            key_id for key_id, invalidated in found.items() if invalidated is not None
        ]
        for start in range(0, len(to_invalidate), INVALIDATE_BATCH_SIZE):
            batch = to_invalidate[start : start + INVALIDATE_BATCH_SIZE]
            ApiKey.objects.filter(id__in=batch, invalidated__isnull=True).update(invalidated=now)
        result.invalidated = to_invalidate
    if result.invalidated:
        audit.info(
            "api keys invalidated by %s/%s: %s",
            principal.realm_name,
            principal.user.username,
            ",".join(result.invalidated),
        )
    return result


def _refuse(detail: str):
    audit.info("api key authentication failed: %s", detail)
    raise AuthenticationFailed(AUTHENTICATION_FAILED, detail=detail)


def authenticate_api_key(header_value: str) -> Principal:
    """Resolve an ``Authorization: ApiKey ...`` header to a principal, or raise AuthenticationFailed.

    Unknown id, wrong secret, invalidated and expired keys all fail the same way for the client;
    the reason goes to the audit log. The row is read on every request, so an invalidation is
    seen by the very next request on every worker.
    """
    try:
        key_id, secret = parse_authorization_header(header_value)
    except AuthenticationFailed as error:
        _refuse(error.detail)
    key = (
        ApiKey.objects.select_related("owner__realm").filter(pk=key_id).first() if len(key_id) == 20 else None
    )
    if key is None:
        _refuse(f"api key [{key_id[:20]}] does not exist")
    if not verify_api_key_hash(secret, key.hash):
        _refuse(f"api key [{key_id}] secret does not match")
    now = timezone.now()
    if key.invalidated is not None:
        _refuse(f"api key [{key_id}] has been invalidated")
    if key.is_expired(now):
        _refuse(f"api key [{key_id}] has expired")
    if not key.owner.enabled:
        _refuse(f"api key [{key_id}] belongs to disabled user [{key.owner.username}]")
    record_last_used(key, now)
    return Principal(key.owner, api_key=key)


def record_last_used(key: ApiKey, now) -> None:
    """At most one write per key per minute, whichever worker sees the key first (SPEC §5)."""
    if key.last_used is not None and now - key.last_used < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(stale, pk=key.pk).update(last_used=now)
    key.last_used = now
