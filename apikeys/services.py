"""Every write to API keys, in one place: create, update, invalidate, rotate, authenticate, purge, and
the expiry warnings (SPEC §1–§3, §5).

The web UI, the REST API and the management commands all call these functions, so they cannot
disagree about who may do what. The privilege rules themselves live in ``apikeys.selectors``.
"""

import time
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connections, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import audit
from accounts.exceptions import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    RequestValidationFailed,
    SecurityError,
    ValidationError,
)
from accounts.models import AuditEvent, User
from accounts.principals import Principal
from accounts.privileges import validate_role_descriptors
from accounts.realms import lookup_realm_chain
from accounts.selectors import can_run_as
from accounts.services import validate_metadata
from apikeys import selectors
from apikeys.charts import forget_overviews
from apikeys.credentials import (
    encode_credential,
    generate_api_key_id,
    generate_api_key_secret,
    parse_authorization_header,
)
from apikeys.hashers import clear_verification_cache, make_api_key_hash
from apikeys.key_cache import CachedKey, cached_api_key
from apikeys.models import ApiKey, CredentialEpoch
from apikeys.timeunits import (
    configured_time_value,
    expiration_after,
    expiration_from,
    format_time_value,
    max_lifetime,
)
from metrics import registry as metrics
from restapi.query.dsl import storable_text
from tokens.services import TokenRefused, authenticate_access_token

NAME_MAX_LENGTH = 256
CREATE_FIELDS = frozenset({"name", "expiration", "role_descriptors", "metadata"})
PURGE_BATCH_SIZE = 1000
UPDATE_BATCH_SIZE = 1000
# The purge audits its count and this many ids: enough to trace a key, bounded at any volume.
PURGE_AUDITED_IDS = 1000
LAST_USED_RESOLUTION = timedelta(minutes=1)
AUTHENTICATION_FAILED = "unable to authenticate with provided credentials"
DERIVED_API_KEY_RULE = (
    "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)"
)


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


@dataclass(frozen=True)
class NewApiKey:
    """A create request's fields, validated: what a key is made from, whoever it is made for."""

    name: str
    expiration: str | None
    role_descriptors: dict
    metadata: dict


def validate_new_api_key(name, expiration=None, role_descriptors=None, metadata=None) -> NewApiKey:
    """The create rules for a key's fields, before anything is written or anyone's password checked."""
    name = validate_api_key_name(name)
    metadata = validate_metadata(metadata)
    role_descriptors = validate_role_descriptors(role_descriptors if role_descriptors is not None else {})
    if expiration is not None and not isinstance(expiration, str):
        raise ValidationError("expiration must be a string such as [30d]")
    expiration_from(expiration, timezone.now())  # its syntax and the lifetime policy
    return NewApiKey(name, expiration, role_descriptors, metadata)


def create_api_key(
    principal: Principal, name, expiration=None, role_descriptors=None, metadata=None
) -> CreatedApiKey:
    """Create a key for the principal's user; the returned secret is shown once and then gone."""
    if not selectors.can_create_api_key(principal):
        raise selectors.unauthorized(principal, selectors.CREATE_ACTION)
    new = validate_new_api_key(name, expiration, role_descriptors, metadata)
    limited_by = principal.role_descriptors
    if principal.api_key is not None:
        _check_derived_api_key(new.role_descriptors)
        # As in Elasticsearch, a derived key is limited by nothing: it can never do anything, so it
        # cannot outlive or widen the key that made it (SPEC §2).
        limited_by = {}
    return _store_new_api_key(principal, principal.user, limited_by, new, audit.API_KEY_CREATED)


def _store_new_api_key(
    principal: Principal, owner, limited_by: dict, new: NewApiKey, action: str, /, **audit_detail
) -> CreatedApiKey:
    """Write a validated key for ``owner`` within the lifetime policy, audited as ``action`` by the
    principal; a name an active key already has is a conflict, whoever owns that key."""
    now = _milliseconds(timezone.now())
    expires = _milliseconds(expiration_from(new.expiration, now))
    try:
        with transaction.atomic():
            created = _insert_api_key(
                owner, new.name, now, expires, new.role_descriptors, limited_by, new.metadata
            )
            audit.record(
                action, principal=principal, target=new.name, api_key_ids=[created.api_key.id], **audit_detail
            )
            forget_overviews()
            metrics.count_on_commit(metrics.API_KEYS_CREATED)
    except IntegrityError:
        if ApiKey.objects.filter(name=new.name, invalidated__isnull=True).exists():
            raise Conflict(f"an active API key with name [{new.name}] already exists") from None
        raise
    return created


PASSWORD_GRANT = "password"
ACCESS_TOKEN_GRANT = "access_token"
# Elasticsearch's action for "who am I", whose run-as check a grant's run_as goes through.
AUTHENTICATE_ACTION = "cluster:admin/xpack/security/user/authenticate"


def _validate_grant(grant_type, username, password, access_token, client_authentication) -> None:
    """Elasticsearch's request validation of the grant fields, every problem numbered in one 400."""
    problems = []

    def required(field, value):
        if not value:
            problems.append(f"[{field}] is required for grant_type [{grant_type}]")

    def unsupported(field, value):
        if value:
            problems.append(f"[{field}] is not supported for grant_type [{grant_type}]")

    for name, value in (("username", username), ("password", password), ("access_token", access_token)):
        if value is not None and not isinstance(value, str):
            problems.append(f"[{name}] must be a string")
    if grant_type is None:
        problems.append("[grant_type] is required")
    elif grant_type == PASSWORD_GRANT:
        required("username", username)
        required("password", password)
        unsupported("access_token", access_token)
        unsupported("client_authentication", client_authentication)
    elif grant_type == ACCESS_TOKEN_GRANT:
        required("access_token", access_token)
        unsupported("username", username)
        unsupported("password", password)
    else:
        problems.append(f"grant_type [{grant_type}] is not supported")
    if problems:
        raise RequestValidationFailed(*problems)


def grant_api_key(
    principal: Principal,
    authenticate_password: Callable[[str, str], User | None],
    grant_type=None,
    username=None,
    password=None,
    access_token=None,
    run_as=None,
    client_authentication=None,
    api_key=None,
) -> CreatedApiKey:
    """Create a key for another user, who proves themselves in the request with their password or
    one of their access tokens, as Elasticsearch's grant API key does; the caller needs
    ``grant_api_key`` and keeps nothing of the key's privileges.

    The key belongs to the proven user, or to the user it may ``run_as``, and is limited by that
    owner's roles. Every create rule holds (name uniqueness, lifetime policy), except the one for
    derived keys: the key is the proven user's, not the caller's, whatever the caller authenticated
    with. The caller's privilege is checked before the request is read and the request is read
    before the password is, so grant is no password oracle for those who may not use it and no
    malformed body costs a password attempt; ``authenticate_password`` applies the abuse limits of
    HTTP Basic.
    """
    if not selectors.can_grant_api_key(principal):
        raise selectors.unauthorized(principal, selectors.GRANT_ACTION)
    _validate_grant(grant_type, username, password, access_token, client_authentication)
    if run_as is not None and (not isinstance(run_as, str) or not run_as):
        raise ValidationError("[run_as] must be a non-empty string")
    api_key = {} if api_key is None else api_key
    if not isinstance(api_key, dict):
        raise ValidationError("[api_key] must be an object")
    unknown = sorted(set(api_key) - CREATE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown field [{unknown[0]}] in create api key request")
    new = validate_new_api_key(**{field: api_key.get(field) for field in CREATE_FIELDS})
    if grant_type == ACCESS_TOKEN_GRANT:
        try:
            proven = authenticate_access_token(access_token).user
        except TokenRefused as refusal:
            audit.record(audit.AUTHENTICATION_FAILED, outcome=AuditEvent.FAILURE, **refusal.audit_detail)
            raise
    else:
        proven = authenticate_password(username, password)
    if proven is None:
        raise AuthenticationFailed(
            f"unable to authenticate user [{username}] for action [{selectors.GRANT_ACTION}]"
        )
    owner = proven if run_as is None else _run_as_user(proven, run_as)
    detail = {"owner": owner.username, "owner_realm": owner.realm.name, "grant_type": grant_type}
    if run_as is not None:
        detail.update(authenticated_user=proven.username, authenticated_realm=proven.realm.name)
    return _store_new_api_key(
        principal, owner, owner.role_descriptors(), new, audit.API_KEY_GRANTED, **detail
    )


def _run_as_user(proven, username: str):
    """The user the proven one may act for: named in its roles' ``run_as`` and known to a realm. An
    unknown user is refused as one not named, as Elasticsearch does, so names are not revealed."""
    acting = Principal(proven)
    target = lookup_realm_chain(username) if can_run_as(acting, username) else None
    if target is None:
        roles = ",".join(sorted(acting.role_descriptors))
        raise PermissionDenied(
            f"action [{AUTHENTICATE_ACTION}] is unauthorized for user [{proven.username}] with effective "
            f"roles [{roles}], because user [{proven.username}] is unauthorized to run as [{username}]"
        )
    if not target.enabled:
        raise AuthenticationFailed(
            f"unable to authenticate user [{proven.username}] for action [{selectors.GRANT_ACTION}]",
            detail=f"run_as user [{username}] is disabled",
        )
    return target


# Parts of a role descriptor that describe it without granting or restricting anything.
DESCRIPTIVE_ROLE_FIELDS = frozenset({"description", "transient_metadata"})


def _check_derived_api_key(role_descriptors: dict) -> None:
    """A key created with API-key credentials must ask, explicitly, for no privileges at all:
    one or more role descriptors, each of them empty, as Elasticsearch requires."""
    empty = all(
        not value
        for role in role_descriptors.values()
        for field, value in role.items()
        if field not in DESCRIPTIVE_ROLE_FIELDS
    )
    if not role_descriptors or not empty:
        raise ValidationError(DERIVED_API_KEY_RULE)


def _insert_api_key(owner, name, now, expiration, role_descriptors, limited_by, metadata) -> CreatedApiKey:
    """Store a new key with a fresh id and secret; the caller holds the transaction."""
    secret = generate_api_key_secret()
    key = ApiKey(
        id=generate_api_key_id(),
        name=name,
        hash=make_api_key_hash(secret),
        owner=owner,
        realm_name=owner.realm.name,
        realm_type=owner.realm.type,
        created=now,
        expiration=expiration,
        role_descriptors=role_descriptors,
        limited_by=limited_by,
        metadata=metadata,
    )
    key.save(force_insert=True)
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
    selectors.check_api_key_selection(
        principal, selectors.INVALIDATE_ACTION,
        ids=ids or (), name=name, username=username, realm_name=realm_name, owner=owner,
    )
    allowed = selectors.filter_api_keys(
        selectors.invalidatable_api_keys(principal), owner=principal.user if owner else None
    )
    result = InvalidationResult()
    now = _milliseconds(timezone.now())
    with transaction.atomic():
        if ids:
            requested = list(dict.fromkeys(ids))
            found = _lock(allowed.filter(id__among=requested))
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
        _invalidate_found(principal, found, now, result)
    return result


def invalidate_matching_api_keys(principal: Principal, where: Q) -> InvalidationResult:
    """Invalidate every key that ``where`` (a query of the engine, as the API Keys page's search
    builds it) selects among those the principal may invalidate, in one transaction, locked and
    audited as the invalidate API does. Keys already invalidated are left as they are."""
    if not selectors.can_invalidate_any_api_key(principal):
        raise selectors.unauthorized(principal, selectors.INVALIDATE_ACTION, beyond_own=True)
    result = InvalidationResult()
    now = _milliseconds(timezone.now())
    with transaction.atomic():
        found = _lock(selectors.invalidatable_api_keys(principal).filter(where, invalidated__isnull=True))
        _invalidate_found(principal, found, now, result)
    return result


def _invalidate_found(principal: Principal, found: dict, now, result: InvalidationResult) -> None:
    """Invalidate the ``found`` keys (locked, ``{id: invalidated}``) not yet invalidated; audit them."""
    to_invalidate = [key_id for key_id, invalidated in found.items() if invalidated is None]
    result.previously_invalidated = [
        key_id for key_id, invalidated in found.items() if invalidated is not None
    ]
    if to_invalidate:
        ApiKey.objects.filter(id__among=to_invalidate, invalidated__isnull=True).update(invalidated=now)
    result.invalidated = to_invalidate
    if to_invalidate:
        forget_overviews()
        metrics.count_on_commit(metrics.API_KEYS_INVALIDATED, len(to_invalidate))
        audit.record(
            audit.API_KEYS_INVALIDATED,
            principal=principal,
            api_key_ids=to_invalidate,
            previously_invalidated=len(result.previously_invalidated),
        )


class _Omitted:
    """A field an update request leaves out: the key keeps its value."""

    def __repr__(self):
        return "OMITTED"


OMITTED = _Omitted()


@dataclass
class UpdateResult:
    """Each requested id once, in request order: updated, a no-op, or the error that left it as it was."""

    updated: list[str] = field(default_factory=list)
    noops: list[str] = field(default_factory=list)
    errors: dict[str, SecurityError] = field(default_factory=dict)


def _validate_update_ids(ids) -> list[str]:
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise ValidationError("[ids] must be a list of strings")
    if not ids:
        raise RequestValidationFailed("Field [ids] cannot be empty")
    for item in ids:
        storable_text("ids", item)
    # A repeated id is one key, updated once and reported once, as Elasticsearch does.
    return list(dict.fromkeys(ids))


def _validated_changes(role_descriptors, metadata, expiration, now) -> dict:
    """``{field: new value}`` for each field the request gives, validated as create validates it."""
    changes = {}
    if role_descriptors is not OMITTED:
        changes["role_descriptors"] = validate_role_descriptors(role_descriptors)
    if metadata is not OMITTED:
        # Here null would not mean "no metadata", as it does on create: refused, not guessed.
        if not isinstance(metadata, dict):
            raise ValidationError("metadata must be an object")
        changes["metadata"] = validate_metadata(metadata)
    if expiration is not OMITTED:
        if not isinstance(expiration, str):
            raise ValidationError("expiration must be a string such as [30d]")
        changes["expiration"] = _milliseconds(expiration_from(expiration, now))
    return changes


def _update_refusal(key_id: str, key: ApiKey | None, now) -> SecurityError | None:
    """Why the key cannot be updated, in Elasticsearch's words, or None when it can."""
    if key is None:
        # Unknown and not-yours look the same, so ids of others' keys are not revealed.
        return NotFound(f"no API key owned by requesting user found for ID [{key_id}]")
    if key.invalidated is not None:
        return ValidationError(f"cannot update invalidated API key [{key_id}]")
    if key.is_expired(now):
        return ValidationError(f"cannot update expired API key [{key_id}]")
    return None


def _is_noop(key: ApiKey, changes: dict) -> bool:
    """Nothing would change. An expiration counts from now, so Elasticsearch always takes it for a
    change; the other fields compare as stored JSON."""
    if "expiration" in changes:
        return False
    return all(getattr(key, name) == value for name, value in changes.items())


def update_api_keys(
    principal: Principal,
    ids,
    *,
    role_descriptors=OMITTED,
    metadata=OMITTED,
    expiration=OMITTED,
    action: str = selectors.BULK_UPDATE_ACTION,
) -> UpdateResult:
    """Set the given fields of the principal's own keys, and refresh their ``limited_by`` from the
    owner's roles of now, in one transaction (SPEC §1). The name never changes.

    As Elasticsearch's bulk update reports it, each id is updated, a no-op (which writes and audits
    nothing), or an error: not found (unknown, or another's), invalidated, or expired. A field left
    out keeps each key's own value. Per batch of keys one locking SELECT and at most one UPDATE,
    since every updated key gets the same new values.
    """
    requested = _validate_update_ids(ids)
    now = _milliseconds(timezone.now())
    changes = _validated_changes(role_descriptors, metadata, expiration, now)
    # Refused before anything is read: 403 without the privilege, 400 through an API key.
    selectors.updatable_api_keys(principal, action)
    changes["limited_by"] = principal.role_descriptors
    result = UpdateResult()
    names = {}
    with transaction.atomic():
        for start in range(0, len(requested), UPDATE_BATCH_SIZE):
            batch = requested[start : start + UPDATE_BATCH_SIZE]
            # Read through the primary key, and the owner checked row by row: narrowed by owner in
            # SQL, PostgreSQL walked the owner's index over all their keys for every batch, which
            # made a bulk update grow with batches times the owner's keys. Another's key is only
            # locked for the moment of the transaction, and reported as not found.
            rows = (
                ApiKey.objects.filter(id__among=batch)
                .only(
                    "id", "name", "owner_id", "expiration", "invalidated", "role_descriptors", "metadata",
                    "limited_by",
                )
                .order_by()
                .select_for_update(of=("self",))
            )
            found = {key.pk: key for key in rows if selectors.can_update(principal, key)}
            to_update = []
            for key_id in batch:
                key = found.get(key_id)
                refusal = _update_refusal(key_id, key, now)
                if refusal is not None:
                    result.errors[key_id] = refusal
                elif _is_noop(key, changes):
                    result.noops.append(key_id)
                else:
                    to_update.append(key_id)
                    names[key_id] = key.name
            if to_update:
                ApiKey.objects.filter(id__among=to_update).update(**changes)
                result.updated.extend(to_update)
        if result.updated:
            forget_overviews()
            _audit_update(principal, action, result, changes, names)
    return result


def _audit_update(principal: Principal, action: str, result: UpdateResult, changes: dict, names: dict):
    """One event: for a single key with its name, for a bulk update with what was left alone."""
    fields = ", ".join(changes)
    if action == selectors.UPDATE_ACTION:
        [key_id] = result.updated
        audit.record(
            audit.API_KEY_UPDATED, principal=principal, target=names[key_id], api_key_ids=[key_id],
            fields=fields,
        )
    else:
        audit.record(
            audit.API_KEYS_UPDATED,
            principal=principal,
            api_key_ids=result.updated,
            fields=fields,
            noops=len(result.noops),
            errors=len(result.errors),
        )


def update_api_key(
    principal: Principal, key_id, *, role_descriptors=OMITTED, metadata=OMITTED, expiration=OMITTED
) -> bool:
    """Update one key, as Elasticsearch's update API key API: True when it changed, False for a
    no-op; a key that cannot be updated raises its error (404 not found, 400 invalidated or expired)."""
    if not isinstance(key_id, str) or not key_id:
        raise ValidationError("api key id must be a non-empty string")
    result = update_api_keys(
        principal,
        [key_id],
        role_descriptors=role_descriptors,
        metadata=metadata,
        expiration=expiration,
        action=selectors.UPDATE_ACTION,
    )
    if result.errors:
        raise result.errors[key_id]
    return bool(result.updated)


def rotate_api_key(principal: Principal, key_id, expiration=None) -> CreatedApiKey:
    """Replace a key with a new one of the same name, owner, privileges and metadata, and invalidate
    the old one, in one transaction: either both happen or neither does.

    Keyward's own operation; Elasticsearch has none. A rotation never extends what a key may do
    or for how long: a key rotating itself passes on its ``limited_by`` snapshot and its very
    expiration. Its owner, as a user, rotates as they would create a key: limited by their roles
    of now, for the old lifetime counted from now or for the ``expiration`` they choose, within
    the lifetime policy.
    """
    if not isinstance(key_id, str) or not key_id:
        raise ValidationError("api key id must be a non-empty string")
    storable_text("id", key_id)
    if expiration is not None and not isinstance(expiration, str):
        raise ValidationError("expiration must be a string such as [30d]")
    if principal.api_key is not None and expiration is not None:
        raise ValidationError(
            f"API key [{principal.api_key.id}] keeps its expiration when it rotates itself; only its "
            "owner, authenticated as a user, may choose a new [expiration]"
        )
    with transaction.atomic():
        key = _rotatable_api_key(principal, key_id)
        now = _milliseconds(timezone.now())
        if principal.api_key is not None:
            _rotated_lifetime(key)
            expires, limited_by = key.expiration, key.limited_by
        elif expiration is not None:
            expires, limited_by = _milliseconds(expiration_from(expiration, now)), principal.role_descriptors
        else:
            expires = _milliseconds(expiration_after(_rotated_lifetime(key), now))
            limited_by = principal.role_descriptors
        ApiKey.objects.filter(pk=key.pk, invalidated__isnull=True).update(invalidated=now)
        created = _insert_api_key(
            key.owner, key.name, now, expires, key.role_descriptors, limited_by, key.metadata
        )
        audit.record(
            audit.API_KEY_ROTATED,
            principal=principal,
            target=key.name,
            api_key_ids=[key.id, created.api_key.id],
            rotated_from=key.id,
            replacement=created.api_key.id,
        )
        forget_overviews()
        metrics.count_on_commit(metrics.API_KEYS_CREATED)
        metrics.count_on_commit(metrics.API_KEYS_INVALIDATED)
    return created


def _rotatable_api_key(principal: Principal, key_id: str) -> ApiKey:
    """The key, row-locked, once the principal may rotate it and it is still active."""
    if principal.api_key is not None and principal.api_key.id != key_id:
        raise PermissionDenied(
            f"API key [{principal.api_key.id}] may rotate only itself, not API key [{key_id}]"
        )
    key = selectors.visible_api_keys(principal).select_for_update(of=("self",)).filter(pk=key_id).first()
    if key is None:
        # Unknown and not-yours look the same, so ids of others' keys are not revealed.
        raise NotFound(f"api key [{key_id}] not found")
    if not selectors.can_rotate(principal, key):
        raise PermissionDenied(
            f"only the owner of API key [{key.id}] can rotate it; an administrator can invalidate it"
        )
    if key.invalidated is not None:
        raise ValidationError(f"api key [{key.id}] has been invalidated and cannot be rotated")
    if key.is_expired():
        raise ValidationError(f"api key [{key.id}] has expired and cannot be rotated")
    return key


def _rotated_lifetime(key: ApiKey) -> timedelta | None:
    """The old key's lifetime, if the lifetime policy still allows a key like it."""
    lifetime = key.expiration - key.created if key.expiration is not None else None
    longest = max_lifetime()
    if longest is not None and (lifetime is None or lifetime > longest):
        shown = "no expiration" if lifetime is None else f"a lifetime of [{format_time_value(lifetime)}]"
        raise ValidationError(
            f"api key [{key.id}] cannot be rotated: it has {shown}, and the maximum lifetime of an "
            f"API key is [{settings.API_KEY_MAX_EXPIRATION}]; create a new key with an expiration "
            "instead"
        )
    return lifetime


def clear_api_key_cache(principal: Principal, ids: list[str]) -> None:
    """Make every worker on every host that shares the cache hash each key's secret again on its
    next request, as Elasticsearch's clear API key cache does on every node.

    ``*`` names every key; naming some keys clears all of them too: forgetting more remembered
    verifications than asked costs hashing and never lets a key in. Raises SharedCacheUnavailable
    when the shared cache cannot be written; this worker's own cache is cleared all the same.
    """
    if not selectors.can_clear_api_key_cache(principal):
        raise selectors.unauthorized(principal, selectors.CLEAR_CACHE_ACTION)
    if not ids or any(not key_id.strip() for key_id in ids):
        raise ValidationError("Field [ids] must not contain blank id")
    for key_id in ids:
        storable_text("ids", key_id)
    clear_verification_cache()
    # Every worker's remembered keys go too, with the HMACs of the secrets that verified.
    CredentialEpoch.objects.filter(id=1).update(value=F("value") + 1)


class ApiKeyRefused(AuthenticationFailed):
    """A refused ``ApiKey`` credential: the same 401 for every reason; ``audit_detail`` holds the
    reason and the key id, never the secret, for the audit row; ``outcome`` names the reason for
    the metrics (``malformed``, ``unknown_id``, ``wrong_secret``, ``invalidated``, ``expired``,
    ``disabled_owner``)."""

    def __init__(self, outcome: str, reason: str, key_id: str | None = None):
        super().__init__(AUTHENTICATION_FAILED, detail=reason)
        self.outcome = outcome
        self.audit_detail = {"reason": reason, **({"api_key_id": key_id[:20]} if key_id else {})}


def _refuse(outcome: str, reason: str, key_id: str | None = None):
    """Fail authentication: the client learns nothing; the reason travels in the error."""
    raise ApiKeyRefused(outcome, reason, key_id)


def authenticate_api_key(header_value: str) -> Principal:
    """Resolve an ``Authorization: ApiKey ...`` header to a principal, or raise ApiKeyRefused.

    The principal holds copies of the remembered key, owner and realm, so that no request can
    change what another sees."""
    return verified_api_key(header_value).principal()


def verified_api_key(header_value: str) -> CachedKey:
    """The key an ``Authorization: ApiKey ...`` header proves, or raise ApiKeyRefused.

    Unknown id, wrong secret, invalidated and expired keys all fail the same way for the client.
    The refusal is audited by the caller, where the throttle is decided (``accounts.throttling``),
    since a throttled attempt writes no row of its own. The key may be remembered from an earlier
    request, but only under the current credential epoch, which every request reads: an
    invalidation is seen by the very next request on every worker (``apikeys.key_cache``).
    """
    try:
        key_id, secret = parse_authorization_header(header_value)
    except AuthenticationFailed as error:
        _refuse("malformed", error.detail)
    entry = _api_key_by_id(key_id)
    if entry is None:
        _refuse("unknown_id", f"api key [{key_id[:20]}] does not exist", key_id)
    key = entry.key
    if not entry.verifies(secret):
        _refuse("wrong_secret", f"api key [{key_id}] secret does not match", key_id)
    now = timezone.now()
    if key.invalidated is not None:
        _refuse("invalidated", f"api key [{key_id}] has been invalidated", key_id)
    if key.is_expired(now):
        _refuse("expired", f"api key [{key_id}] has expired", key_id)
    if not key.owner.enabled:
        reason = f"api key [{key_id}] belongs to disabled user [{key.owner.username}]"
        _refuse("disabled_owner", reason, key_id)
    record_last_used(key, now)
    return entry


def _api_key_by_id(key_id: str) -> CachedKey | None:
    """The key with its owner and realm, remembered or read in one indexed lookup."""
    if len(key_id) != 20:
        return None
    return cached_api_key(key_id)


def record_last_used(key: ApiKey, now) -> bool:
    """At most one write per key per minute, whichever worker sees the key first (SPEC §5).

    Returns whether this call wrote: of two workers holding the same stale row, one does.
    """
    if key.last_used is not None and now - key.last_used < LAST_USED_RESOLUTION:
        return False
    stale = Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
    with unsynced_commits():
        written = ApiKey.objects.filter(stale, pk=key.pk).update(last_used=now)
    key.last_used = now
    return bool(written)


@contextmanager
def unsynced_commits(using: str = "default"):
    """On SQLite, commits in this block do not wait for the WAL to reach the disk: a power loss may
    undo them, which a ``last_used`` time may afford and an invalidation may not (every other commit
    syncs: ``SQLITE_OPTIONS``). The next synced commit carries them to disk with its own. Inside a
    transaction the setting cannot change, and the transaction's commit syncs."""
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    driver = connection.connection
    with connection.wrap_database_errors:
        level = driver.execute("PRAGMA synchronous").fetchone()[0]
        driver.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        with connection.wrap_database_errors:
            driver.execute(f"PRAGMA synchronous={int(level)}")


# ---------------------------------------------------------------------------------------------
# Retention (SPEC §5)


@dataclass(frozen=True)
class PurgeResult:
    """What a purge deleted, or with ``dry_run`` would delete: keys gone before ``cutoff``."""

    deleted: int
    cutoff: datetime
    dry_run: bool = False


def purge_api_keys(now=None, batch_size=PURGE_BATCH_SIZE, dry_run=False, progress=None) -> PurgeResult:
    """Delete invalidated and expired keys older than ``API_KEY_RETENTION_PERIOD``.

    Each batch is its own short transaction (ids by primary key, then one DELETE), so that a large
    purge never holds locks long enough to stall authentication. ``progress`` is called with the
    running total after each batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch size must be a positive integer, got [{batch_size}]")
    cutoff = (now or timezone.now()) - configured_time_value("API_KEY_RETENTION_PERIOD")
    due = ApiKey.objects.past_retention(cutoff)
    if dry_run:
        return PurgeResult(deleted=due.count(), cutoff=cutoff, dry_run=True)
    started = time.perf_counter()
    deleted, audited_ids, reached = 0, [], None
    while True:
        with transaction.atomic():
            # In the order of the due keys' index, from where the last batch stopped: each batch
            # reads what it deletes, not the index entries its predecessors left behind. Locked, so
            # that of two purges at once each audits only the keys it deleted itself.
            page = due if reached is None else due.filter(stops_working__gte=reached)
            rows = list(page.select_for_update().values_list("stops_working", "pk")[:batch_size])
            batch = [pk for _, pk in rows]
            if batch:
                purged = due.filter(pk__in=batch).delete()[0]
                deleted += purged
                forget_overviews()
                metrics.count_on_commit(metrics.API_KEYS_PURGED, purged)
                reached = rows[-1][0]
        audited_ids.extend(batch[: PURGE_AUDITED_IDS - len(audited_ids)])
        if batch and progress is not None:
            progress(deleted)
        if len(batch) < batch_size:
            break
    if deleted:
        audit.record(
            audit.API_KEYS_PURGED,
            api_key_ids=audited_ids,
            count=deleted,
            retention_period=settings.API_KEY_RETENTION_PERIOD,
            cutoff=cutoff.isoformat(),
        )
    metrics.API_KEY_PURGE_DURATION.observe(time.perf_counter() - started)
    return PurgeResult(deleted=deleted, cutoff=cutoff)


# ---------------------------------------------------------------------------------------------
# Expiry warnings


def notify_expiring_api_keys(now=None, dry_run=False) -> list[ApiKey]:
    """Email the owner of every active key that expires within ``API_KEY_EXPIRY_WARNING``, once per key.

    A key is claimed before its mail is sent, so two runs at once never send the same warning
    twice, and released again if sending fails, so the next run retries it. Returns the keys
    warned about (with ``dry_run``, those that would be).
    """
    now = now or timezone.now()
    due = list(
        ApiKey.objects.expiring_within(configured_time_value("API_KEY_EXPIRY_WARNING"), now)
        .filter(expiry_notified__isnull=True, owner__enabled=True)
        .exclude(owner__email="")
        .select_related("owner")
        .order_by("expiration", "pk")
    )
    if dry_run:
        return due
    notified = []
    for key in due:
        if not ApiKey.objects.filter(pk=key.pk, expiry_notified__isnull=True).update(expiry_notified=now):
            continue
        try:
            _send_expiry_warning(key)
        except Exception:
            ApiKey.objects.filter(pk=key.pk).update(expiry_notified=None)
            raise
        key.expiry_notified = now
        notified.append(key)
    return notified


def _send_expiry_warning(key: ApiKey) -> None:
    context = {"key": key, "owner": key.owner}
    subject = render_to_string("apikeys/email/expiry_warning_subject.txt", context)
    body = render_to_string("apikeys/email/expiry_warning_body.txt", context)
    send_mail(" ".join(subject.split()), body, None, [key.owner.email])
