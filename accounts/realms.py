"""Realms (SPEC §1): where identities come from, tried in the order settings give.

Every realm answers ``authenticate(username, password)`` with an ``AuthResult``: it does not know
the username (the chain goes on), or it knows it and accepts or refuses (the chain stops there).
"""

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction

from accounts import audit
from accounts.hashers import UnsupportedPasswordHash, verify_elasticsearch_hash
from accounts.models import AuditEvent, Realm, User
from accounts.services import set_user_roles
from metrics import registry as metrics

logger = logging.getLogger(__name__)

DEFAULT_REALMS = {"default_native": Realm.NATIVE, "default_file": Realm.FILE}


def sync_realms():
    """Create the shipped realms and give every realm its position in settings.REALM_CHAIN."""
    for name, realm_type in DEFAULT_REALMS.items():
        Realm.objects.get_or_create(name=name, defaults={"type": realm_type})
    chain = list(settings.REALM_CHAIN)
    for realm in Realm.objects.all():
        order = chain.index(realm.name) if realm.name in chain else len(chain) + realm.pk
        if realm.order != order:
            Realm.objects.filter(pk=realm.pk).update(order=order)


@dataclass(frozen=True)
class AuthResult:
    """What one realm says about a username and password; ``reason`` is for the log only."""

    handled: bool
    user: User | None = None
    reason: str = ""

    @classmethod
    def unknown_user(cls) -> "AuthResult":
        return cls(handled=False)

    @classmethod
    def success(cls, user: User) -> "AuthResult":
        return cls(handled=True, user=user)

    @classmethod
    def refused(cls, reason: str) -> "AuthResult":
        return cls(handled=True, reason=reason)


class NativeRealm:
    """Users stored as database rows of the realm, with Django's password hashing."""

    def __init__(self, realm: Realm):
        self.realm = realm

    def lookup(self, username: str) -> User | None:
        return User.objects.select_related("realm").filter(realm=self.realm, username=username).first()

    def find(self, username: str) -> User | None:
        return self.lookup(username)

    def authenticate(self, username: str, password: str) -> AuthResult:
        user = self.lookup(username)
        if user is None:
            return AuthResult.unknown_user()
        if not user.check_password(password):
            return AuthResult.refused("wrong password")
        if not user.enabled:
            return AuthResult.refused("user is disabled")
        return AuthResult.success(user)


# --- File realm: Elasticsearch's `users` and `users_roles` files -------------------------------


def _content_lines(text: str):
    """(line number, line) for each line that is neither blank nor a comment."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_users_file(path: Path, text: str) -> dict[str, str]:
    """``username:hash`` lines to ``{username: hash}``; a malformed line is skipped and logged."""
    users = {}
    for number, line in _content_lines(text):
        username, _, stored = line.partition(":")
        if not username or not stored or len(username) > 1024:
            logger.warning("invalid entry in users file [%s], line [%d]; skipping", path, number)
            continue
        users[username] = stored
    return users


def parse_users_roles_file(path: Path, text: str) -> dict[str, list[str]]:
    """``role:user1,user2`` lines to ``{username: [roles]}``; a malformed line is skipped and logged."""
    roles_of = {}
    for number, line in _content_lines(text):
        role, _, members = line.partition(":")
        role = role.strip()
        usernames = [name for name in re.split(r"\s*,\s*", members.strip()) if name]
        if not role or not usernames:
            logger.warning("invalid entry in users_roles file [%s], line [%d]; skipping", path, number)
            continue
        for username in usernames:
            roles_of.setdefault(username, []).append(role)
    return roles_of


_file_cache: dict[tuple[Path, object], tuple[tuple | None, dict]] = {}
_file_cache_lock = threading.Lock()


def read_realm_file(path: Path, parse) -> dict:
    """The parsed file, re-read only when a stat shows it changed; a missing file is empty."""
    path = Path(path)
    try:
        stat = os.stat(path)
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    except FileNotFoundError:
        signature = None
    with _file_cache_lock:
        cached = _file_cache.get((path, parse))
        if cached is not None and cached[0] == signature:
            return cached[1]
        content = {}
        if signature is not None:
            try:
                content = parse(path, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                logger.exception("could not read realm file [%s]; treating it as empty", path)
        _file_cache[(path, parse)] = (signature, content)
        return content


class FileRealm:
    """Users from Elasticsearch's file-realm files; each gets a database row on first login."""

    def __init__(self, realm: Realm):
        self.realm = realm

    def users(self) -> dict[str, str]:
        return read_realm_file(settings.FILE_REALM_USERS, parse_users_file)

    def roles_of(self, username: str) -> list[str]:
        return read_realm_file(settings.FILE_REALM_USERS_ROLES, parse_users_roles_file).get(username, [])

    def lookup(self, username: str) -> User | None:
        """The row of a user the file still lists; rows only appear at a first authentication."""
        if username not in self.users():
            return None
        return User.objects.select_related("realm").filter(realm=self.realm, username=username).first()

    def find(self, username: str) -> User | None:
        """The user the file lists, with its row and roles made as at a first authentication."""
        return self._sync_user(username) if username in self.users() else None

    def authenticate(self, username: str, password: str) -> AuthResult:
        stored = self.users().get(username)
        if stored is None:
            return AuthResult.unknown_user()
        try:
            verified = verify_elasticsearch_hash(password, stored)
        except UnsupportedPasswordHash as error:
            logger.warning("user [%s] in the users file cannot authenticate: %s", username, error)
            return AuthResult.refused(str(error))
        if not verified:
            return AuthResult.refused("wrong password")
        user = self._sync_user(username)
        if not user.enabled:
            return AuthResult.refused("user is disabled")
        return AuthResult.success(user)

    def _sync_user(self, username: str) -> User:
        """Create the user's row if needed and give it exactly the role names users_roles lists:
        a name no role has is kept, and grants nothing until such a role exists (as native users')."""
        with transaction.atomic():
            user, created = User.objects.get_or_create(realm=self.realm, username=username)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
        set_user_roles(user, self.roles_of(username))
        return user


REALM_TYPES = {Realm.NATIVE: NativeRealm, Realm.FILE: FileRealm}


def realm_chain() -> list[NativeRealm | FileRealm]:
    """The realms in settings.REALM_CHAIN order."""
    rows = {realm.name: realm for realm in Realm.objects.filter(name__in=settings.REALM_CHAIN)}
    chain = []
    for name in settings.REALM_CHAIN:
        # A misnamed realm must not turn every login into a server error; the others still answer.
        if name not in rows or rows[name].type not in REALM_TYPES:
            logger.warning("realm [%s] in REALM_CHAIN is missing or of an unknown type; skipping it", name)
            continue
        chain.append(REALM_TYPES[rows[name].type](rows[name]))
    return chain


def _authentication_failed(realm_name: str | None, username: str, reason: str) -> None:
    """One audit row per refusal, with the realm's reason; the password is never passed on."""
    audit.record(
        audit.AUTHENTICATION_FAILED, outcome=AuditEvent.FAILURE, target=username,
        realm=realm_name, username=username, reason=reason,
    )


def authenticate_realm_chain(username: str, password: str) -> User | None:
    """The user these credentials prove, or None: the first realm that knows the username decides.

    Every refusal is audited (login and HTTP Basic alike); a success is not, as in Elasticsearch's
    default audit events, so an API request authenticated with Basic writes nothing.
    """
    if not username or password is None:
        return None
    started = perf_counter()
    for realm in realm_chain():
        result = realm.authenticate(username, password)
        if not result.handled:
            continue
        if result.user is None:
            logger.info("realm [%s] refused [%s]: %s", realm.realm.name, username, result.reason)
            _authentication_failed(realm.realm.name, username, result.reason)
        outcome = "success" if result.user is not None else "refused"
        metrics.authenticated("password", outcome, perf_counter() - started)
        return result.user
    # Hash anyway, so that an unknown username costs about as much as a wrong password.
    make_password(password)
    _authentication_failed(None, username, "unknown user")
    metrics.authenticated("password", "unknown_user", perf_counter() - started)
    return None


def lookup_realm_chain(username: str) -> User | None:
    """The user of that name in the first realm that knows it, with no password: whom a request
    made on another user's behalf (``run_as``) names, as Elasticsearch's realms look users up."""
    if not username:
        return None
    for realm in realm_chain():
        user = realm.find(username)
        if user is not None:
            return user
    return None
