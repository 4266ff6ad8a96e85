"""Writes to users and roles, in one place for the commands, the REST API and the UI.

Who may call them is decided by ``accounts.selectors``; these functions hold the rules about the
data itself (names, passwords, reserved roles and users, no one disabling or deleting themselves,
never leaving the installation without an enabled superuser). Every value is checked before
anything is written, so a refused request changes nothing. Each change writes its audit event in
the same transaction; ``acting_user`` is who asked, None for a command.
"""

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from accounts import audit
from accounts.exceptions import Conflict, NotFound, RequestValidationFailed, SecurityError, ValidationError
from accounts.hashers import ElasticsearchPasswordHasher, UnsupportedPasswordHash, password_hash_algorithm
from accounts.models import Realm, Role, User
from accounts.privileges import limit_regex_patterns, validate_role_descriptor
from apikeys.charts import forget_overviews

NATIVE_REALM = "default_native"
SUPERUSER_ROLE = "superuser"
ELASTIC = "elastic"
# Native users reserved as in Elasticsearch: created by ``manage.py bootstrap`` only, never deleted
# or replaced; their password may change, and they may be disabled while another superuser is enabled.
RESERVED_USERNAMES = (ELASTIC,)
NAME_MAX_LENGTH = 507  # Elasticsearch's limit for usernames and role names
USER_TEXT_MAX_LENGTH = 512  # full_name and email columns
# Parts of an Elasticsearch role descriptor that a role here cannot hold.
UNSTORED_ROLE_FIELDS = ("remote_indices", "remote_cluster", "global", "restriction")


def _validate_name(kind: str, name) -> str:
    """Elasticsearch's rule for user and role names: 1–507 printable Basic Latin characters, no
    surrounding whitespace; a leading ``_`` is reserved (SPEC §7)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"{kind} is required")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"{kind} may not be more than {NAME_MAX_LENGTH} characters long")
    if name != name.strip():
        raise ValidationError(f"{kind} [{name}] must not begin or end with whitespace")
    if not all(" " <= char <= "~" for char in name):
        raise ValidationError(
            f"{kind} [{name}] may contain only printable characters of the Basic Latin (ASCII) block"
        )
    if name.startswith("_"):
        raise ValidationError(f"{kind} [{name}] must not start with [_]")
    return name


def validate_metadata(metadata) -> dict:
    """Metadata is a JSON object whose keys do not start with ``_`` (reserved, SPEC §7)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be an object")
    reserved = sorted(key for key in metadata if key.startswith("_"))
    if reserved:
        raise ValidationError(f"metadata keys may not start with [_]: {reserved}")
    return metadata


def validate_username(username) -> str:
    return _validate_name("username", username)


def validate_role_name(name) -> str:
    return _validate_name("role name", name)


def check_password(password, user=None) -> str:
    """A password the configured validators accept (Django's, stricter than Elasticsearch's 6 characters)."""
    if not isinstance(password, str):
        raise ValidationError("[password] must be a string")
    try:
        validate_password(password, user)
    except DjangoValidationError as error:
        raise ValidationError("invalid password: " + " ".join(error.messages)) from None
    return password


def _refuse_both_passwords(password, password_hash) -> None:
    """A request's own validation, as Elasticsearch runs it before looking the user up."""
    if password is not None and password_hash is not None:
        raise RequestValidationFailed("password_hash has already been set")


def _stored_password(password, password_hash, user=None) -> str | None:
    """The password field's new value: ``password`` hashed here, or ``password_hash``, a hash in one
    of Elasticsearch's formats, kept as it is; None when the request gives neither."""
    _refuse_both_passwords(password, password_hash)
    if password is not None:
        return make_password(check_password(password, user))
    if password_hash is None:
        return None
    if not isinstance(password_hash, str):
        raise ValidationError("[password_hash] must be a string")
    try:
        password_hash_algorithm(password_hash)
    except UnsupportedPasswordHash as error:
        raise ValidationError(str(error)) from None
    return ElasticsearchPasswordHasher.stored(password_hash)


def _text(field: str, value) -> str:
    """An optional text field; null means empty, as Elasticsearch stores it."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"[{field}] must be a string")
    if len(value) > USER_TEXT_MAX_LENGTH:
        raise ValidationError(f"[{field}] may not be more than {USER_TEXT_MAX_LENGTH} characters long")
    return value


def _role_names(names) -> list[str]:
    """The role names given to a user; a name no role has (yet) is kept too, as Elasticsearch does."""
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        raise ValidationError("[roles] must be an array of role names")
    return sorted({validate_role_name(name) for name in names})


def _set_roles(user: User, names: list[str]) -> None:
    """Link the user to the roles of these names and keep the others as pending; run under
    ``_lock_role_holders``, so that a role created at the same time is either seen or links them."""
    rows = list(Role.objects.filter(name__in=names))
    user.roles.set(rows)
    pending = sorted(set(names) - {role.name for role in rows})
    if user.pending_roles != pending:
        user.pending_roles = pending
        user.save(update_fields=["pending_roles"])


def set_user_roles(user: User, names: list[str]) -> None:
    """Give a user exactly these role names, as the file realm's users_roles lists them; nothing
    is written (nor locked) when the user holds them already."""
    if set(user.role_names()) != set(names):
        with transaction.atomic():
            _lock_role_holders()
            _set_roles(user, names)


def _native_realm(realm_name: str) -> Realm:
    realm = Realm.objects.filter(name=realm_name).first()
    if realm is None:
        raise NotFound(f"realm [{realm_name}] does not exist")
    if realm.type != Realm.NATIVE:
        raise ValidationError(f"users of realm [{realm_name}] are managed in its users file, not here")
    return realm


def _audit_user_changed(username: str, realm_name: str, change: str, acting_user) -> None:
    audit.record(audit.USER_CHANGED, user=acting_user, target=username, change=change, realm=realm_name)


def _is_self(user: User, acting_user) -> bool:
    return acting_user is not None and user.pk == acting_user.pk


def is_reserved_user(user: User) -> bool:
    # The username first: it spares a realm lookup for everyone else.
    return user.username in RESERVED_USERNAMES and user.realm.name == NATIVE_REALM


def restore_elastic_superuser() -> bool:
    """Give ``elastic`` back the built-in ``superuser`` role if it lost it (before reserved users
    were protected): a reserved user's roles are fixed. Returns whether it had to."""
    user = User.objects.filter(realm__name=NATIVE_REALM, username=ELASTIC).first()
    if user is None or user.roles.filter(name=SUPERUSER_ROLE).exists():
        return False
    with transaction.atomic():
        user.roles.add(Role.objects.get(name=SUPERUSER_ROLE))
        _audit_user_changed(ELASTIC, NATIVE_REALM, "superuser_role_restored", None)
    return True


def _refuse_replacing_reserved_user(username, realm_name=NATIVE_REALM) -> None:
    """Elasticsearch's answer to PUT user on a reserved user, before anything else is looked at."""
    if realm_name == NATIVE_REALM and username in RESERVED_USERNAMES:
        raise RequestValidationFailed(f"user [{username}] is reserved and only the password can be changed")


def _lock_role_holders() -> None:
    """Lock the superuser role's row: every user change, and every role created or deleted, takes
    this lock first, so that two changes that might each remove the last administrator are decided
    one after the other, and a user's role names are matched against the roles one change at a time."""
    Role.objects.select_for_update().filter(name=SUPERUSER_ROLE).first()


def _refuse_last_administrator(user: User, change: str) -> None:
    """Refuse a change after which no enabled native user would hold the built-in ``superuser``
    role, so an installation always keeps an administrator. Decided on the committed state, under
    ``_lock_role_holders``; a change that leaves ``user`` an enabled superuser never calls it."""
    administrators = User.objects.filter(realm__name=NATIVE_REALM, enabled=True, roles__name=SUPERUSER_ROLE)
    if administrators.filter(pk=user.pk).exists() and not administrators.exclude(pk=user.pk).exists():
        raise ValidationError(
            f"user [{user.username}] cannot be {change}: no other enabled user of realm [{NATIVE_REALM}] "
            f"holds the [{SUPERUSER_ROLE}] role, and the installation would be left without an administrator"
        )


def _save_user(
    realm: Realm, username, *, password, roles, full_name, email, metadata, enabled, create_only, acting_user,
    password_hash=None,
) -> tuple[User, bool]:
    """Create or replace a user once every value has passed; the password is hashed outside the lock."""
    username = validate_username(username)
    if not isinstance(enabled, bool):
        raise ValidationError("[enabled] must be true or false")
    fields = {
        "full_name": _text("full_name", full_name),
        "email": _text("email", email),
        "metadata": validate_metadata(metadata),
        "enabled": enabled,
    }
    role_names = _role_names(roles)
    stored_password = _stored_password(password, password_hash)
    keeps_superuser = enabled and SUPERUSER_ROLE in role_names
    try:
        with transaction.atomic():
            _lock_role_holders()
            user = User.objects.select_for_update().filter(realm=realm, username=username).first()
            created = user is None
            if not created and create_only:
                raise Conflict(f"user [{username}] already exists in realm [{realm.name}]")
            if created and stored_password is None:
                raise ValidationError("password must be specified unless you are updating an existing user")
            if not created and not enabled and _is_self(user, acting_user):
                raise ValidationError(
                    "native and reserved realm users may not update the enabled status of their own account"
                )
            if not created and not keeps_superuser:
                change = "removed from the [superuser] role" if enabled else "disabled"
                _refuse_last_administrator(user, change)
            if not created and user.enabled != enabled:
                user.session_generation += 1  # ends every login session of the user
            user = user or User(realm=realm, username=username)
            for name, value in fields.items():
                setattr(user, name, value)
            if stored_password is not None:
                user.password = stored_password
            user.save()
            _set_roles(user, role_names)
            _audit_user_changed(username, realm.name, "created" if created else "updated", acting_user)
    except IntegrityError:
        raise Conflict(f"user [{username}] was created by another request at the same time") from None
    return user, created


def create_user(
    username,
    password,
    roles=(),
    full_name="",
    email="",
    metadata=None,
    realm_name=NATIVE_REALM,
    acting_user=None,
) -> User:
    """Create a user in a native realm; file realm users come from the users file instead."""
    _refuse_replacing_reserved_user(username, realm_name)
    realm = _native_realm(realm_name)
    user, _ = _save_user(
        realm, username, password=password, roles=list(roles), full_name=full_name, email=email,
        metadata=metadata, enabled=True, create_only=True, acting_user=acting_user,
    )
    return user


def create_elastic_user(password) -> User:
    """Create ``elastic``, the reserved superuser, as ``manage.py bootstrap`` does once: the one way a
    reserved user comes to exist, since every other write refuses reserved names."""
    user, _ = _save_user(
        _native_realm(NATIVE_REALM), ELASTIC, password=password, roles=[SUPERUSER_ROLE],
        full_name="Built-in superuser", email="", metadata=None, enabled=True, create_only=True,
        acting_user=None,
    )
    return user


def put_user(
    username,
    *,
    roles,
    password=None,
    password_hash=None,
    full_name=None,
    email=None,
    metadata=None,
    enabled=True,
    acting_user=None,
) -> tuple[User, bool]:
    """Create or replace a native user, as Elasticsearch's PUT user does: every field is replaced
    (an absent one is cleared, ``enabled`` defaults to true) except the password, which an update
    may leave out. The password may come hashed, in one of Elasticsearch's formats, as
    ``password_hash``. Role names that no role has are kept and grant nothing until such a role is
    created. A reserved user is refused whole. Returns (user, created)."""
    _refuse_replacing_reserved_user(username)
    if roles is None:
        raise ValidationError("roles are missing")
    return _save_user(
        _native_realm(NATIVE_REALM), username, password=password, roles=roles, full_name=full_name,
        email=email, metadata=metadata, enabled=enabled, create_only=False, acting_user=acting_user,
        password_hash=password_hash,
    )


def _native_user(username, for_update=False) -> User:
    users = User.objects.select_for_update(of=("self",)) if for_update else User.objects
    user = users.select_related("realm").filter(realm__name=NATIVE_REALM, username=username).first()
    if user is None:
        raise NotFound(f"user [{username}] does not exist")
    return user


def delete_user(username, acting_user=None) -> bool:
    """Delete a native user; False when there is none. The user's API keys are deleted with it
    (the owner foreign key cascades), so no key outlives its owner; the audit event counts them.
    A reserved user, or the last enabled superuser, is never deleted."""
    if username in RESERVED_USERNAMES:
        raise ValidationError(f"user [{username}] is reserved and cannot be deleted")
    user = User.objects.filter(realm__name=NATIVE_REALM, username=username).first()
    if user is None:
        return False
    if _is_self(user, acting_user):
        raise ValidationError("users may not delete their own account")
    with transaction.atomic():
        _lock_role_holders()
        _refuse_last_administrator(user, "deleted")
        api_key_count = user.api_keys.count()
        user.delete()
        if api_key_count:
            forget_overviews()
        audit.record(
            audit.USER_DELETED, user=acting_user, target=username, count=api_key_count, realm=NATIVE_REALM
        )
    return True


def set_user_enabled(username, enabled: bool, acting_user=None) -> User:
    """Enable or disable a native user; a disabled user's API keys stop authenticating too. Either
    change ends the user's login sessions, so re-enabling never revives an old one; the last
    enabled superuser is never disabled."""
    with transaction.atomic():
        _lock_role_holders()
        user = _native_user(username, for_update=True)
        if _is_self(user, acting_user):
            raise ValidationError("users may not update the enabled status of their own account")
        if user.enabled == enabled:
            return user
        if not enabled:
            _refuse_last_administrator(user, "disabled")
        user.enabled = enabled
        user.session_generation += 1
        user.save(update_fields=["enabled", "session_generation"])
        _audit_user_changed(username, NATIVE_REALM, "enabled" if enabled else "disabled", acting_user)
    return user


def change_password(username, password, password_hash=None, acting_user=None) -> User:
    """Set a native user's password, given in clear or hashed in one of Elasticsearch's formats."""
    if password is None and password_hash is None:
        raise ValidationError("password must be specified")
    _refuse_both_passwords(password, password_hash)
    user = _native_user(username)
    user.password = _stored_password(password, password_hash, user)
    with transaction.atomic():
        user.save(update_fields=["password"])
        _audit_user_changed(username, NATIVE_REALM, "password_changed", acting_user)
    return user


def put_role(name, cluster=(), indices=(), run_as=(), metadata=None) -> tuple[Role, bool]:
    """Create or replace a role from its parts. Returns (role, created)."""
    descriptor = {"cluster": list(cluster), "indices": list(indices), "run_as": list(run_as)}
    return put_role_descriptor(name, {**descriptor, "metadata": metadata or {}})


def put_role_descriptor(name, descriptor, create_only=False, acting_user=None) -> tuple[Role, bool]:
    """Create or replace a role from an Elasticsearch role descriptor, as PUT role does.

    Parts a role here cannot hold (remote indices, global privileges...) are refused rather than
    dropped. ``create_only`` refuses to replace an existing role. Returns (role, created).
    """
    role, outcome = _put_role(name, descriptor, create_only=create_only, acting_user=acting_user)
    return role, outcome == CREATED


CREATED, UPDATED, NOOP = "created", "updated", "noop"
# What a bulk write did: ({outcome: [names]}, {name: why it was refused}).
BulkOutcome = tuple[dict[str, list[str]], dict[str, SecurityError]]


def _put_role(name, descriptor, *, create_only=False, acting_user=None) -> tuple[Role, str]:
    """The one write of a role, for PUT role, bulk PUT roles, Kibana and the pages. Returns the
    role and what became of it: created, updated, or noop when it already was exactly that
    (nothing written, nothing audited)."""
    name = validate_role_name(name)
    descriptor = validate_role_descriptor(name, descriptor)
    unstored = [field for field in UNSTORED_ROLE_FIELDS if descriptor.get(field)]
    if unstored:
        raise ValidationError(
            f"role [{name}] has [{','.join(unstored)}]: a role holds only cluster, indices, applications, "
            "run_as, metadata, description"
        )
    fields = {
        "cluster": descriptor["cluster"], "indices": descriptor["indices"],
        "applications": descriptor.get("applications", []), "run_as": descriptor["run_as"],
        "metadata": descriptor["metadata"], "description": descriptor.get("description", ""),
    }
    with transaction.atomic():
        _lock_role_holders()
        existing = Role.objects.select_for_update().filter(name=name).first()
        if existing is not None and existing.built_in:
            raise ValidationError(f"role [{name}] is reserved and cannot be modified")
        if existing is not None and create_only:
            raise Conflict(f"role [{name}] already exists")
        if existing is not None and all(getattr(existing, field) == value for field, value in fields.items()):
            return existing, NOOP
        role, created = Role.objects.update_or_create(name=name, defaults=fields)
        if created:
            _link_pending_holders(role)
        outcome = CREATED if created else UPDATED
        audit.record(audit.ROLE_CHANGED, user=acting_user, target=name, change=outcome)
    return role, outcome


def bulk_put_roles(descriptors, acting_user=None) -> BulkOutcome:
    """Bulk PUT roles: each role written as PUT role writes it, all in one transaction. A role that
    is refused is reported and the others still written, as Elasticsearch does."""
    if not isinstance(descriptors, dict):
        raise ValidationError("[roles] must be an object of role descriptors, by role name")
    limit_regex_patterns(descriptors.values())
    outcomes: dict[str, list[str]] = {CREATED: [], UPDATED: [], NOOP: []}
    refused = {}
    with transaction.atomic():
        for name, descriptor in descriptors.items():
            try:
                _, outcome = _put_role(name, descriptor, acting_user=acting_user)
            except SecurityError as error:
                refused[name] = error
            else:
                outcomes[outcome].append(name)
    return outcomes, refused


def _link_pending_holders(role: Role) -> None:
    """Users given this role's name before the role existed hold it from now on."""
    holders = [user for user in User.objects.exclude(pending_roles=[]) if role.name in user.pending_roles]
    for user in holders:
        user.pending_roles = [name for name in user.pending_roles if name != role.name]
    User.objects.bulk_update(holders, ["pending_roles"])
    role.users.add(*holders)


def delete_role(name, acting_user=None) -> bool:
    """Delete a role; False when there is none. Its holders keep its name, which grants nothing
    unless a role of that name is created again, as in Elasticsearch; API keys keep their snapshot."""
    role = Role.objects.filter(name=name).first()
    if role is None:
        return False
    if role.built_in:
        raise ValidationError(f"role [{name}] is reserved and cannot be deleted")
    with transaction.atomic():
        _lock_role_holders()
        holders = list(role.users.all())
        for user in holders:
            user.pending_roles = sorted({*user.pending_roles, name})
        User.objects.bulk_update(holders, ["pending_roles"])
        role.delete()
        audit.record(audit.ROLE_DELETED, user=acting_user, target=name)
    return True


def bulk_delete_roles(names, acting_user=None) -> BulkOutcome:
    """Bulk DELETE roles: each deleted as DELETE role deletes it, all in one transaction; a refused
    one is reported and the others still deleted."""
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise ValidationError("[names] must be a non-empty array of role names")
    outcomes: dict[str, list[str]] = {"deleted": [], "not_found": []}
    refused = {}
    with transaction.atomic():
        for name in dict.fromkeys(names):
            try:
                found = delete_role(name, acting_user=acting_user)
            except SecurityError as error:
                refused[name] = error
            else:
                outcomes["deleted" if found else "not_found"].append(name)
    return outcomes, refused


# Built-in, read-only roles (SPEC §1), as Elasticsearch reserves them.
BUILT_IN_ROLES = {
    "superuser": {
        "cluster": ["all"],
        "indices": [{"names": ["*"], "privileges": ["all"], "allow_restricted_indices": True}],
        "applications": [{"application": "*", "privileges": ["*"], "resources": ["*"]}],
        "run_as": ["*"],
        "metadata": {"_reserved": True},
    },
}


def sync_built_in_roles():
    """Create the built-in roles, or put them back as shipped, after every migrate or flush."""
    for name, descriptor in BUILT_IN_ROLES.items():
        Role.objects.update_or_create(name=name, defaults={**descriptor, "built_in": True})
