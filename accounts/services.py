"""Writes to users and roles, in one place for the commands, the REST API and the UI."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from accounts.exceptions import Conflict, NotFound, ValidationError
from accounts.models import Realm, Role, User
from accounts.privileges import validate_role_descriptor

USERNAME_MAX_LENGTH = 507  # Elasticsearch's limit


def validate_username(username) -> str:
    """Elasticsearch's rule: 1–507 printable Basic Latin characters, no surrounding whitespace."""
    if not isinstance(username, str) or not username:
        raise ValidationError("username is required")
    if len(username) > USERNAME_MAX_LENGTH:
        raise ValidationError(f"username may not be more than {USERNAME_MAX_LENGTH} characters long")
    if username != username.strip():
        raise ValidationError(f"username [{username}] must not begin or end with whitespace")
    if not all(" " <= char <= "~" for char in username):
        raise ValidationError(
            f"username [{username}] may contain only printable characters of the Basic Latin (ASCII) block"
        )
    if username.startswith("_"):
        raise ValidationError(f"username [{username}] must not start with [_]")
    return username


def check_password(password, user=None) -> str:
    try:
        validate_password(password, user)
    except DjangoValidationError as error:
        raise ValidationError("invalid password: " + " ".join(error.messages)) from None
    return password


def create_user(
    username, password, roles=(), full_name="", email="", metadata=None, realm_name="default_native"
):
    """Create a user in a native realm; file realm users come from the users file instead."""
    username = validate_username(username)
    realm = Realm.objects.filter(name=realm_name).first()
    if realm is None:
        raise NotFound(f"realm [{realm_name}] does not exist")
    if realm.type != Realm.NATIVE:
        raise ValidationError(f"users of realm [{realm_name}] are managed in its users file, not here")
    role_rows = list(Role.objects.filter(name__in=roles))
    missing = sorted(set(roles) - {role.name for role in role_rows})
    if missing:
        raise ValidationError(f"unknown roles {missing}")
    with transaction.atomic():
        if User.objects.filter(realm=realm, username=username).exists():
            raise Conflict(f"user [{username}] already exists in realm [{realm_name}]")
        user = User(realm=realm, username=username, full_name=full_name, email=email, metadata=metadata or {})
        user.set_password(check_password(password, user))
        user.save()
        user.roles.set(role_rows)
    return user


def put_role(name, cluster=(), indices=(), run_as=(), metadata=None) -> tuple[Role, bool]:
    """Create or replace a role, as Elasticsearch's PUT role does. Returns (role, created)."""
    if not isinstance(name, str) or not name or len(name) > 507 or name != name.strip():
        raise ValidationError("role name must be 1 to 507 characters without surrounding whitespace")
    descriptor = validate_role_descriptor(
        name,
        {
            "cluster": list(cluster),
            "indices": list(indices),
            "run_as": list(run_as),
            "metadata": metadata or {},
        },
    )
    existing = Role.objects.filter(name=name).first()
    if existing is not None and existing.built_in:
        raise ValidationError(f"role [{name}] is reserved and cannot be modified")
    role, created = Role.objects.update_or_create(
        name=name,
        defaults={
            "cluster": descriptor.get("cluster", []),
            "indices": descriptor.get("indices", []),
            "run_as": descriptor.get("run_as", []),
            "metadata": descriptor.get("metadata", {}),
        },
    )
    return role, created
