"""Who may do what (SPEC §2 × §4 × §6), as tables: each row an action, each column a kind of
caller, each cell what that caller gets.

The REST API table's callers authenticate with an API key limited by their own roles, so it also
shows that a key carries exactly its owner's privileges: a key narrower than its owner gets the
column of the privilege it was narrowed to, a derived key (made by a key) gets the column of no
API key privilege at all, and a key whose owner was since disabled or deleted gets 401
everywhere. A key that holds ``manage_own_api_key`` acts on itself only, as in Elasticsearch, so
the table has one column of a user holding that privilege, logged in, beside its key's. The web
UI table's callers are logged-in users, a disabled one included.

Every refusal, and every read, is checked to change nothing: every stored field of every realm,
user, role, role holder, key and audit event is compared before and after (``tests/snapshots.py``).
A 401 writes exactly one audit event, the authentication failure with its reason, and nothing else.

Every route the URL resolver knows has a row in one of the tables, or is listed as public.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLResolver, get_resolver, resolve

from accounts import services
from accounts.models import Realm, Role, User
from accounts.principals import Principal
from apikeys.credentials import encode_credential
from apikeys.hashers import verification_cache, verification_epoch
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, create_api_key
from application_privileges.models import ApplicationPrivilege
from tests.conftest import PRIVILEGED_ROLES
from tests.snapshots import new_audit_events, security_state, without_audit_events
from tokens.models import Token
from tokens.selectors import active_tokens
from tokens.services import get_token

pytestmark = pytest.mark.django_db

CALLERS = ("superuser", "security_admin", "api_key_admin", "own_keys", "security_reader", "monitor_only")
OWN_KEYS_USER = "own_keys user, logged in"
API_COLUMNS = (*CALLERS, OWN_KEYS_USER)
# Who holds each column's privilege. The superuser is the reserved ``elastic``: it can be neither
# deleted nor disabled while it is the one administrator, so the keys and the session of a since
# deleted or disabled superuser belong to ``root``, a superuser of its own.
HOLDERS = {name: "elastic" if name == "superuser" else name for name in CALLERS}
ROOT = "root"
NEW_PASSWORD = "matrix-password-7731"
GRANTEE_PASSWORD = "grantee-password-4410"
UPDATED_METADATA = {"matrix": "updated"}


@dataclass
class World:
    """What one test case starts from: the caller, one of its keys, and things owned by others."""

    caller: User
    credential: str
    session_key: str
    own_key: str
    others_key: str
    # The key the request authenticates with: authenticating writes its ``last_used``.
    used_key: str | None = None
    # The audit event a refused credential writes, for a key whose owner is gone.
    refusal: dict | None = None
    before: dict = field(default_factory=dict)

    def key(self, key_id) -> ApiKey:
        return ApiKey.objects.get(pk=key_id)

    def invalidated(self, key_id) -> bool:
        return self.key(key_id).invalidated is not None

    def rotated(self, key_id) -> bool:
        """The key is invalidated and an active key of the same name and owner replaces it."""
        old = self.key(key_id)
        replacement = ApiKey.objects.filter(name=old.name, owner=old.owner_id, invalidated__isnull=True)
        return old.invalidated is not None and replacement.exists()

    def updated(self, key_id) -> bool:
        return self.key(key_id).metadata == UPDATED_METADATA

    def placeholders(self) -> dict:
        return {
            "session_key": self.session_key,
            "own_key": self.own_key,
            "others_key": self.others_key,
            "caller": self.caller.username,
        }


def holds_role(username: str, role: str) -> bool:
    return Role.objects.filter(name=role, users__username=username).exists()


def password_is(username: str, password: str) -> bool:
    return User.objects.get(username=username).check_password(password)


def role_grants_all(world) -> bool:
    return Role.objects.get(name="target_role").cluster == ["all"]


@dataclass(frozen=True)
class Action:
    method: str
    path: str
    body: dict | None = None
    # Whether a write took effect; None for reads.
    effect: Callable[[World], bool] | None = None
    # Settings the action is asked under, and the client address it comes from.
    settings: tuple = ()
    address: str = "127.0.0.1"
    # For a route that answers a page unless asked for JSON (GET /).
    accept: str | None = None

    @property
    def kibana(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def success_status(self) -> int:
        return 204 if self.kibana and self.method != "GET" else 200


ACTIONS = {
    "create a key asking for no privileges": Action(
        "POST", "/_security/api_key", {"name": "matrix-created", "role_descriptors": {"none": {}}},
        effect=lambda world: ApiKey.objects.filter(name="matrix-created").exists(),
    ),
    "create a key without role descriptors": Action(
        "POST", "/_security/api_key", {"name": "matrix-created"},
        effect=lambda world: ApiKey.objects.filter(name="matrix-created").exists(),
    ),
    "get all keys": Action("GET", "/_security/api_key"),
    "get itself by id": Action("GET", "/_security/api_key?id={session_key}"),
    "get own keys with owner=true": Action("GET", "/_security/api_key?owner=true"),
    "get another's key by id": Action("GET", "/_security/api_key?id={others_key}"),
    "query keys": Action("POST", "/_security/_query/api_key", {"query": {"match_all": {}}, "size": 100}),
    "invalidate itself": Action(
        "DELETE", "/_security/api_key", {"ids": ["{session_key}"]},
        effect=lambda world: world.invalidated(world.session_key),
    ),
    "invalidate own key": Action(
        "DELETE", "/_security/api_key", {"ids": ["{own_key}"]},
        effect=lambda world: world.key(world.own_key).invalidated is not None,
    ),
    "invalidate another's key": Action(
        "DELETE", "/_security/api_key", {"ids": ["{others_key}"]},
        effect=lambda world: world.key(world.others_key).invalidated is not None,
    ),
    "invalidate own and another's key together": Action(
        "DELETE", "/_security/api_key", {"ids": ["{own_key}", "{others_key}"]},
        effect=lambda world: world.invalidated(world.own_key) and world.invalidated(world.others_key),
    ),
    "get keys naming another user": Action("GET", "/_security/api_key?username=bystander"),
    "query keys naming another user": Action(
        "POST", "/_security/_query/api_key", {"query": {"term": {"username": "bystander"}}},
    ),
    "rotate itself": Action(
        "POST", "/_security/api_key/{session_key}/_rotate",
        effect=lambda world: world.rotated(world.session_key),
    ),
    "rotate own key": Action(
        "POST", "/_security/api_key/{own_key}/_rotate",
        effect=lambda world: world.rotated(world.own_key),
    ),
    "grant a key for another user": Action(
        "POST", "/_security/api_key/grant",
        {"grant_type": "password", "username": "grantee", "password": GRANTEE_PASSWORD,
         "api_key": {"name": "matrix-granted"}},
        effect=lambda world: ApiKey.objects.filter(name="matrix-granted", owner__username="grantee").exists(),
    ),
    "clear the API key cache": Action("POST", "/_security/api_key/*/_clear_cache"),
    "get a token for another user": Action(
        "POST", "/_security/oauth2/token",
        {"grant_type": "password", "username": "grantee", "password": GRANTEE_PASSWORD},
        effect=lambda world: Token.objects.filter(user__username="grantee", client=world.caller).exists(),
    ),
    "get a token for oneself": Action(
        "POST", "/_security/oauth2/token", {"grant_type": "client_credentials"},
        effect=lambda world: Token.objects.filter(user=world.caller).exists(),
    ),
    "invalidate another user's tokens": Action(
        "DELETE", "/_security/oauth2/token", {"username": "grantee"},
        effect=lambda world: not active_tokens().filter(user__username="grantee").exists(),
    ),
    "update itself": Action(
        "PUT", "/_security/api_key/{session_key}", {"metadata": UPDATED_METADATA},
        effect=lambda world: world.updated(world.session_key),
    ),
    "update own key": Action(
        "PUT", "/_security/api_key/{own_key}", {"metadata": UPDATED_METADATA},
        effect=lambda world: world.updated(world.own_key),
    ),
    "update another's key": Action(
        "PUT", "/_security/api_key/{others_key}", {"metadata": UPDATED_METADATA},
        effect=lambda world: world.updated(world.others_key),
    ),
    "bulk update own and another's key": Action(
        "POST", "/_security/api_key/_bulk_update",
        {"ids": ["{own_key}", "{others_key}"], "metadata": UPDATED_METADATA},
        effect=lambda world: world.updated(world.own_key) and world.updated(world.others_key),
    ),
    "authenticate": Action("GET", "/_security/_authenticate"),
    "forward authentication": Action("GET", "/_security/_forward_auth"),
    "forward authentication requiring read_security": Action(
        "GET", "/_security/_forward_auth?cluster=read_security"
    ),
    "has privileges": Action("POST", "/_security/user/_has_privileges", {"cluster": ["monitor"]}),
    "check own privileges by name": Action(
        "POST", "/_security/user/{caller}/_has_privileges", {"cluster": ["monitor"]}
    ),
    "check another user's privileges": Action(
        "POST", "/_security/user/target/_has_privileges", {"cluster": ["monitor"]}
    ),
    "get all users": Action("GET", "/_security/user"),
    "get user": Action("GET", "/_security/user/target"),
    "query users": Action("POST", "/_security/_query/user", {"query": {"term": {"username": "target"}}}),
    "put user": Action(
        "PUT", "/_security/user/newcomer", {"password": NEW_PASSWORD, "roles": []},
        effect=lambda world: User.objects.filter(username="newcomer").exists(),
    ),
    "give oneself the superuser role": Action(
        "PUT", "/_security/user/{caller}", {"roles": ["superuser"]},
        effect=lambda world: holds_role(world.caller.username, "superuser"),
    ),
    "delete user": Action(
        "DELETE", "/_security/user/target",
        effect=lambda world: not User.objects.filter(username="target").exists(),
    ),
    "change own password": Action(
        "PUT", "/_security/user/_password", {"password": NEW_PASSWORD},
        effect=lambda world: password_is(world.caller.username, NEW_PASSWORD),
    ),
    "change own password by name": Action(
        "PUT", "/_security/user/{caller}/_password", {"password": NEW_PASSWORD},
        effect=lambda world: password_is(world.caller.username, NEW_PASSWORD),
    ),
    "change another user's password": Action(
        "PUT", "/_security/user/target/_password", {"password": NEW_PASSWORD},
        effect=lambda world: password_is("target", NEW_PASSWORD),
    ),
    "disable a user": Action(
        "PUT", "/_security/user/target/_disable",
        effect=lambda world: not User.objects.get(username="target").enabled,
    ),
    "enable a user": Action(
        "PUT", "/_security/user/dormant/_enable",
        effect=lambda world: User.objects.get(username="dormant").enabled,
    ),
    "get all roles": Action("GET", "/_security/role"),
    "get role": Action("GET", "/_security/role/target_role"),
    "query roles": Action("POST", "/_security/_query/role", {"query": {"prefix": {"name": "target"}}}),
    "put role": Action(
        "PUT", "/_security/role/new_role", {"cluster": ["monitor"]},
        effect=lambda world: Role.objects.filter(name="new_role").exists(),
    ),
    "overwrite an existing role with cluster all": Action(
        "PUT", "/_security/role/target_role", {"cluster": ["all"]}, effect=role_grants_all,
    ),
    "delete role": Action(
        "DELETE", "/_security/role/target_role",
        effect=lambda world: not Role.objects.filter(name="target_role").exists(),
    ),
    "bulk put roles": Action(
        "POST", "/_security/role",
        {"roles": {"new_role": {"cluster": ["monitor"]}, "target_role": {"cluster": ["all"]}}},
        effect=lambda world: Role.objects.filter(name="new_role").exists() and role_grants_all(world),
    ),
    "bulk delete roles": Action(
        "DELETE", "/_security/role", {"names": ["target_role"]},
        effect=lambda world: not Role.objects.filter(name="target_role").exists(),
    ),
    "clear the roles cache": Action("POST", "/_security/role/*/_clear_cache"),
    "put application privileges": Action(
        "PUT", "/_security/privilege", {"newapp": {"read": {"actions": ["data:read/*"]}}},
        effect=lambda world: ApplicationPrivilege.objects.filter(application="newapp").exists(),
    ),
    "replace an application privilege with every action": Action(
        "POST", "/_security/privilege", {"inventory": {"read": {"actions": ["*"]}}},
        effect=lambda world: ApplicationPrivilege.objects.get(name="read").actions == ["*"],
    ),
    "get all application privileges": Action("GET", "/_security/privilege"),
    "get an application's privileges": Action("GET", "/_security/privilege/inventory"),
    "get application privileges by name": Action("GET", "/_security/privilege/inventory/read"),
    "delete application privileges": Action(
        "DELETE", "/_security/privilege/inventory/read",
        effect=lambda world: not ApplicationPrivilege.objects.filter(application="inventory").exists(),
    ),
    "clear the application privileges cache": Action("POST", "/_security/privilege/inventory/_clear_cache"),
    "get built-in privileges": Action("GET", "/_security/privilege/_builtin"),
    "get own privileges": Action("GET", "/_security/user/_privileges"),
    "Kibana get all roles": Action("GET", "/api/security/role"),
    "Kibana get role": Action("GET", "/api/security/role/target_role"),
    "Kibana put role": Action(
        "PUT", "/api/security/role/new_role",
        {"elasticsearch": {"cluster": ["monitor"], "indices": [], "run_as": []}, "kibana": []},
        effect=lambda world: Role.objects.filter(name="new_role").exists(),
    ),
    "Kibana overwrite an existing role with cluster all": Action(
        "PUT", "/api/security/role/target_role",
        {"elasticsearch": {"cluster": ["all"], "indices": [], "run_as": []}, "kibana": []},
        effect=role_grants_all,
    ),
    "Kibana delete role": Action(
        "DELETE", "/api/security/role/target_role",
        effect=lambda world: not Role.objects.filter(name="target_role").exists(),
    ),
    # From another host, which only the monitor privilege lets in under KEYWARD_METRICS_ACCESS=monitor.
    "scrape the metrics": Action(
        "GET", "/_metrics", settings=(("METRICS_ACCESS", ("monitor",)),), address="192.0.2.10"
    ),
    "cluster health": Action("GET", "/_cluster/health"),
    "root info": Action("GET", "/", accept="application/json"),
}
# Actions that monitor grants: the monitor_only column, which a derived key (no privilege at all)
# otherwise stands for, is allowed them.
MONITOR_ACTIONS = {"cluster health", "root info", "scrape the metrics"}


def assert_unchanged(world: World) -> None:
    assert security_state(authenticated_with=world.used_key) == world.before


class Outcome:
    """What a caller gets; ``check`` asserts it from the response and the database."""

    def check(self, action: Action, response, world: World) -> None:
        raise NotImplementedError


class Allowed(Outcome):
    """The action succeeds: a write takes effect, a read changes nothing."""

    def check(self, action, response, world):
        assert response.status_code == action.success_status, response.content
        if action.effect:
            assert action.effect(world)
        else:
            assert_unchanged(world)


class Denied(Outcome):
    """403 in the route's error shape, and nothing changes."""

    def check(self, action, response, world):
        assert response.status_code == 403, response.content
        body = response.json()
        if action.kibana:
            assert (body["statusCode"], body["error"]) == (403, "Forbidden")
        else:
            assert body["error"]["type"] == "security_exception"
        assert_unchanged(world)


class Unauthenticated(Outcome):
    """401 in the route's error shape with the ``ApiKey`` challenge; nothing changes but the one
    audit event of the refused credential, with its reason."""

    def check(self, action, response, world):
        assert response.status_code == 401, response.content
        assert "ApiKey" in response["WWW-Authenticate"]
        body = response.json()
        if action.kibana:
            assert (body["statusCode"], body["error"]) == (401, "Unauthorized")
        else:
            assert body["error"]["type"] == "security_exception"
        after = security_state()
        assert without_audit_events(after) == without_audit_events(world.before)
        assert new_audit_events(world.before, after) == [world.refusal]


class NoCredentials(Outcome):
    """401 with the ``ApiKey`` challenge, and nothing written: a login session is no credential
    where only the ``Authorization`` header counts (forward authentication)."""

    def check(self, action, response, world):
        assert response.status_code == 401, response.content
        assert "ApiKey" in response["WWW-Authenticate"]
        assert_unchanged(world)


class Keys(Outcome):
    """200 with a list of keys: every key, or only the caller's own (others' are invisible, not 403)."""

    def __init__(self, others_visible: bool):
        self.others_visible = others_visible

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        keys = response.json()["api_keys"]
        ids = {key["id"] for key in keys}
        assert world.own_key in ids
        assert (world.others_key in ids) is self.others_visible
        if not self.others_visible:
            assert {key["username"] for key in keys} == {world.caller.username}
        assert_unchanged(world)


class ItselfOnly(Outcome):
    """200 with the calling key alone: a key acting on itself only sees nothing else."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        assert [key["id"] for key in response.json()["api_keys"]] == [world.session_key]
        assert_unchanged(world)


class Invalid(Outcome):
    """400 naming the rule that refuses the request; nothing changes."""

    def __init__(self, rule: str):
        self.rule = rule

    def check(self, action, response, world):
        assert response.status_code == 400, response.content
        assert self.rule in response.json()["error"]["reason"]
        assert_unchanged(world)


class OwnPrivileges(Outcome):
    """200 for a user and a key without role descriptors; a key with role descriptors (narrowed or
    derived) is refused, as Elasticsearch refuses it. Nothing changes either way."""

    def check(self, action, response, world):
        key = ApiKey.objects.filter(pk=world.used_key).first() if world.used_key else None
        if key is not None and key.role_descriptors:
            assert response.status_code == 400, response.content
            assert "API keys with assigned role descriptors" in response.json()["error"]["reason"]
        else:
            assert response.status_code == 200, response.content
            assert set(response.json()) >= {"cluster", "global", "indices", "applications", "run_as"}
        assert_unchanged(world)


class KeyById(Outcome):
    """200 with the other user's key, or 404 with an empty list when it is not the caller's to see."""

    def __init__(self, visible: bool):
        self.visible = visible

    def check(self, action, response, world):
        assert response.status_code == (200 if self.visible else 404), response.content
        ids = [key["id"] for key in response.json()["api_keys"]]
        assert ids == ([world.others_key] if self.visible else [])
        assert_unchanged(world)


class ReportedAsError(Outcome):
    """200 listing the id among the errors, as Elasticsearch does; nothing changes."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["invalidated_api_keys"] == []
        assert body["error_count"] == 1
        assert_unchanged(world)


class AnotherUsersKeys(Outcome):
    """Keys selected by another user's name: theirs, or for an own-keys caller none at all (the
    filter narrows the caller's own keys, it never widens them)."""

    def __init__(self, visible: bool):
        self.visible = visible

    def check(self, action, response, world):
        assert response.status_code in ((200,) if self.visible else (200, 404)), response.content
        keys = response.json()["api_keys"]
        assert (world.others_key in {key["id"] for key in keys}) is self.visible
        assert {key["username"] for key in keys} <= ({"bystander"} if self.visible else set())
        assert_unchanged(world)


class OnlyOwnInvalidated(Outcome):
    """The caller's own key is invalidated; the other id is reported as not found and stays valid."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["invalidated_api_keys"] == [world.own_key]
        assert body["error_count"] == 1 and world.others_key in json.dumps(body["error_details"])
        assert world.invalidated(world.own_key)
        assert not world.invalidated(world.others_key)


class NotOwned(Outcome):
    """404 as Elasticsearch answers for a key the caller does not own, whoever else may see it;
    nothing changes."""

    def check(self, action, response, world):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["type"] == "resource_not_found_exception"
        assert_unchanged(world)


class OnlyOwnUpdated(Outcome):
    """The caller's own key is updated; the other is reported as not found and stays as it was."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["updated"] == [world.own_key]
        assert list(body["errors"]["details"]) == [world.others_key]
        assert world.updated(world.own_key)
        assert not world.updated(world.others_key)


ALLOWED, DENIED, UNAUTHENTICATED = Allowed(), Denied(), Unauthenticated()
NO_CREDENTIALS = NoCredentials()
OWN_PRIVILEGES = OwnPrivileges()
INVALID = Invalid("creating derived api keys requires an explicit role descriptor")
RESERVED = Invalid("user [elastic] is reserved and only the password can be changed")
OWN_ONLY_CHECK = Invalid("users may only check the privileges of their own account")
THEIRS, NONE_OF_THEIRS = AnotherUsersKeys(visible=True), AnotherUsersKeys(visible=False)
ONLY_OWN = OnlyOwnInvalidated()
ALL_KEYS, OWN_ONLY, ITSELF = Keys(others_visible=True), Keys(others_visible=False), ItselfOnly()
SHOWN, HIDDEN = KeyById(visible=True), KeyById(visible=False)
AN_ERROR = ReportedAsError()
# Elasticsearch refuses an update through any API key, whatever it holds; only the owner updates.
OWNER_ONLY = Invalid("only the owner user can update an API key")
# A token acts with its user's roles, which would reach past an API key's own privileges.
NOT_THROUGH_A_KEY = Invalid("an access token cannot be created with API key credentials")
NOT_OWNED, ONLY_OWN_UPDATED = NotOwned(), OnlyOwnUpdated()

# Elasticsearch's rules: manage_security writes users and roles, read_security reads them. A user
# changes their own password with no privilege at all, but never through an API key, which takes
# manage_security as for anyone's password. Anyone checks their own privileges, by name too, and
# no one another's (400). The reserved ``elastic`` keeps its roles: only its password changes.
MATRIX = {
    # action        superuser  security_admin api_key_admin own_keys security_reader monitor_only  own_keys
    #                                                                                               user
    "create a key asking for no privileges":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  DENIED,        DENIED,      ALLOWED),
    "create a key without role descriptors":
                    (INVALID,  INVALID,       INVALID,      INVALID,  DENIED,        DENIED,      ALLOWED),
    "get all keys":
                    (ALL_KEYS, ALL_KEYS,      ALL_KEYS,     DENIED,   ALL_KEYS,      DENIED,      OWN_ONLY),
    "get itself by id":
                    (ITSELF,   ITSELF,        ITSELF,       ITSELF,   ITSELF,        DENIED,      ITSELF),
    "get own keys with owner=true":
                    (OWN_ONLY, OWN_ONLY,      OWN_ONLY,     DENIED,   OWN_ONLY,      DENIED,      OWN_ONLY),
    "get another's key by id":
                    (SHOWN,    SHOWN,         SHOWN,        DENIED,   SHOWN,         DENIED,      HIDDEN),
    "query keys":
                    (ALL_KEYS, ALL_KEYS,      ALL_KEYS,     ITSELF,   ALL_KEYS,      DENIED,      OWN_ONLY),
    "invalidate itself":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  DENIED,        DENIED,      ALLOWED),
    "invalidate own key":
                    (ALLOWED,  ALLOWED,       ALLOWED,      DENIED,   DENIED,        DENIED,      ALLOWED),
    "invalidate another's key":
                    (ALLOWED,  ALLOWED,       ALLOWED,      DENIED,   DENIED,        DENIED,      AN_ERROR),
    "invalidate own and another's key together":
                    (ALLOWED,  ALLOWED,       ALLOWED,      DENIED,   DENIED,        DENIED,      ONLY_OWN),
    "get keys naming another user":
                    (THEIRS,   THEIRS,        THEIRS,       DENIED,   THEIRS,        DENIED,      DENIED),
    "query keys naming another user":
                    (THEIRS,   THEIRS,      THEIRS, NONE_OF_THEIRS, THEIRS,      DENIED,   NONE_OF_THEIRS),
    "rotate itself":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  DENIED,        DENIED,      ALLOWED),
    "rotate own key":
                    (DENIED,   DENIED,        DENIED,       DENIED,   DENIED,        DENIED,      ALLOWED),
    # grant_api_key is implied by manage_api_key; manage_own_api_key does not grant, not even to oneself.
    "grant a key for another user":
                    (ALLOWED,  ALLOWED,       ALLOWED,      DENIED,   DENIED,        DENIED,      DENIED),
    # Elasticsearch's security cache action: manage_security, not manage_api_key.
    "clear the API key cache":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    # manage_token, which manage_security implies: whoever holds it mints for anyone who proves
    # themselves, and invalidates anyone's tokens, as in Elasticsearch.
    "get a token for another user":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "get a token for oneself":
        (NOT_THROUGH_A_KEY, NOT_THROUGH_A_KEY, DENIED,      DENIED,   DENIED,        DENIED,      DENIED),
    "invalidate another user's tokens":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "update itself":
                    (OWNER_ONLY, OWNER_ONLY,  OWNER_ONLY,   OWNER_ONLY, DENIED,      DENIED,      ALLOWED),
    "update own key":
                    (OWNER_ONLY, OWNER_ONLY,  OWNER_ONLY,   OWNER_ONLY, DENIED,      DENIED,      ALLOWED),
    "update another's key":
                    (OWNER_ONLY, OWNER_ONLY,  OWNER_ONLY,   OWNER_ONLY, DENIED,      DENIED,      NOT_OWNED),
    "bulk update own and another's key":
                    (OWNER_ONLY, OWNER_ONLY,  OWNER_ONLY,   OWNER_ONLY, DENIED,    DENIED,  ONLY_OWN_UPDATED),
    "authenticate":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,       ALLOWED,     ALLOWED),
    # For reverse proxies, which pass on the client's Authorization header and nothing else.
    "forward authentication":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,       ALLOWED, NO_CREDENTIALS),
    "forward authentication requiring read_security":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,  NO_CREDENTIALS),
    "has privileges":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,       ALLOWED,     ALLOWED),
    "check own privileges by name":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,       ALLOWED,     ALLOWED),
    "check another user's privileges":
        (OWN_ONLY_CHECK, OWN_ONLY_CHECK, OWN_ONLY_CHECK, OWN_ONLY_CHECK, OWN_ONLY_CHECK, OWN_ONLY_CHECK,
         OWN_ONLY_CHECK),
    "get all users":(ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "get user":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "query users":  (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "put user":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "give oneself the superuser role":
                    (RESERVED, ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "delete user":  (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "change own password":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      ALLOWED),
    "change own password by name":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      ALLOWED),
    "change another user's password":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "disable a user":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "enable a user":(ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "get all roles":(ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "get role":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "query roles":  (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "put role":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "overwrite an existing role with cluster all":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "delete role":  (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "bulk put roles":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "bulk delete roles":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "clear the roles cache":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    # Application privileges: manage_security writes them and clears their cache, read_security reads
    # them and the built-in names. Anyone reads their own privileges.
    "put application privileges":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "replace an application privilege with every action":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "get all application privileges":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "get an application's privileges":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "get application privileges by name":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "delete application privileges":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "clear the application privileges cache":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "get built-in privileges":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "get own privileges":
        (OWN_PRIVILEGES, OWN_PRIVILEGES, OWN_PRIVILEGES, OWN_PRIVILEGES, OWN_PRIVILEGES, OWN_PRIVILEGES,
         OWN_PRIVILEGES),
    "Kibana get all roles":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "Kibana get role":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "Kibana put role":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "Kibana overwrite an existing role with cluster all":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "Kibana delete role":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    # Elasticsearch's monitor privilege, which manage_security does not imply.
    "cluster health":
                    (ALLOWED,  DENIED,        DENIED,       DENIED,   DENIED,        ALLOWED,     DENIED),
    "root info":    (ALLOWED,  DENIED,        DENIED,       DENIED,   DENIED,        ALLOWED,     DENIED),
    "scrape the metrics":
                    (ALLOWED,  DENIED,        DENIED,       DENIED,   DENIED,        ALLOWED,     DENIED),
}


# A key narrower than its owner gets exactly the column of the privilege it was narrowed to.
NARROWED_KEYS = {
    # caller                                       its owner's privilege  the column it gets
    "superuser's key limited to monitor":           ("superuser",       "monitor_only"),
    "security_admin's key limited to read_security": ("security_admin", "security_reader"),
    "api_key_admin's key limited to own keys":      ("api_key_admin",   "own_keys"),
}
NARROWED_TO = {
    "monitor_only": ["monitor"],
    "security_reader": ["read_security"],
    "own_keys": ["manage_own_api_key"],
}
# A key created with a key asks for no privileges, and gets none, whatever the creating key had.
DERIVED_KEY = "key derived from a superuser's key"


@dataclass(frozen=True)
class Caller:
    """Whose key sends the request, what the key is narrowed to, and what became of its owner;
    or a user holding the privilege, logged in."""

    holder: str
    narrowed_to: tuple[str, ...] = ()
    owner: str = "active"
    # The key's hash is the slow PBKDF2 one, held in the verification cache when its owner goes.
    hash_cached: bool = False
    derived: bool = False
    logged_in: bool = False


# A key whose owner was since disabled or deleted authenticates no request at all. Each has
# authenticated a request first, so that the server has seen it; then its owner goes the way the
# users API takes them. A deleted owner's keys are deleted with it (docs/security.md).
ORPHANED_KEYS = {
    "key of a since disabled superuser": Caller(ROOT, owner="disabled"),
    "key of a since disabled superuser, its hash cached": Caller(ROOT, owner="disabled", hash_cached=True),
    "key of a since deleted superuser": Caller(ROOT, owner="deleted"),
    "key of a since deleted superuser, its hash cached": Caller(ROOT, owner="deleted", hash_cached=True),
}

API_CALLERS = {
    **{name: Caller(HOLDERS[name]) for name in CALLERS},
    **{
        name: Caller(HOLDERS[holder], tuple(NARROWED_TO[column]))
        for name, (holder, column) in NARROWED_KEYS.items()
    },
    **ORPHANED_KEYS,
    DERIVED_KEY: Caller("elastic", derived=True),
    OWN_KEYS_USER: Caller("own_keys", logged_in=True),
}


def api_outcome(action: str, outcomes: tuple, caller: str) -> Outcome:
    if caller in ORPHANED_KEYS:
        return UNAUTHENTICATED
    if caller == DERIVED_KEY and action in MONITOR_ACTIONS:
        return DENIED
    if caller == DERIVED_KEY:
        column = "monitor_only"
    else:
        column = NARROWED_KEYS[caller][1] if caller in NARROWED_KEYS else caller
    return outcomes[API_COLUMNS.index(column)]


CASES = [
    pytest.param(action, caller, api_outcome(action, outcomes, caller), id=f"{action} as {caller}")
    for action, outcomes in MATRIX.items()
    for caller in API_CALLERS
]


# ---------------------------------------------------------------------------------------------
# The cast: made once for the module, each test case runs in a savepoint rolled back after it


@dataclass
class Cast:
    sessions: dict[str, tuple[str, str]]  # API caller → (key id, secret) of the key it sends
    own_keys: dict[str, str]  # username → the id of a key of theirs
    others_key: str  # bystander's


def cast_user(username: str, cluster=None, roles=(), enabled=True) -> User:
    """A native user without a usable password, holding a role of ``cluster`` privileges."""
    user = User(
        username=username, realm=Realm.objects.get(name="default_native"), full_name=username.title(),
        enabled=enabled,
    )
    user.set_unusable_password()
    user.save()
    if cluster is not None:
        user.roles.add(Role.objects.create(name=f"{username}_default_native_role", cluster=cluster))
    user.roles.add(*Role.objects.filter(name__in=roles))
    return user


def grant_api_key(granter: User, user: User, name: str, role_descriptors=None) -> tuple[str, str]:
    """A key for ``user`` limited by the user's own roles, made on its behalf by a superuser as
    Elasticsearch's grant API key does: users who may not create keys can still hold one."""
    created = create_api_key(Principal(granter), name=name, role_descriptors=role_descriptors or {})
    ApiKey.objects.filter(pk=created.api_key.pk).update(
        owner=user, realm_name=user.realm.name, realm_type=user.realm.type,
        limited_by=user.role_descriptors(),
    )
    return created.api_key.pk, created.secret


def derive_api_key(parent: tuple[str, str], name: str) -> tuple[str, str]:
    """A key made through the REST API with ``parent``'s credential, as a program would."""
    caller = authenticate_api_key("ApiKey " + encode_credential(*parent))
    created = create_api_key(caller, name=name, role_descriptors={"none": {}})
    return created.api_key.pk, created.secret


def build_cast() -> Cast:
    users = {
        HOLDERS[name]: cast_user(HOLDERS[name], cluster, roles=["superuser"] if cluster is None else ())
        for name, cluster in PRIVILEGED_ROLES.items()
    }
    users[ROOT] = cast_user(ROOT, roles=["superuser"])
    bystander = cast_user("bystander", ["manage_own_api_key"])
    cast_user("target")
    grantee = cast_user("grantee", ["monitor"])
    grantee.set_password(GRANTEE_PASSWORD)
    grantee.save(update_fields=["password"])
    cast_user("dormant", enabled=False)
    Role.objects.create(name="target_role", cluster=["monitor"])
    ApplicationPrivilege.objects.create(application="inventory", name="read", actions=["data:read/*"])
    elastic = users["elastic"]
    get_token(Principal(elastic), lambda username, password: grantee, "password", "grantee", GRANTEE_PASSWORD)
    sessions = {}
    for name, caller in API_CALLERS.items():
        narrowed = {"narrowed": {"cluster": list(caller.narrowed_to)}} if caller.narrowed_to else None
        owner = users[caller.holder]
        if caller.derived:
            parent = grant_api_key(elastic, owner, f"{name}, its parent")
            sessions[name] = derive_api_key(parent, name)
        elif caller.hash_cached:
            # The iterations are few, to keep the suite fast; the stored hash names them, and the
            # verification cache serves any PBKDF2 hash alike.
            with override_settings(API_KEY_HASH_ALGORITHM="pbkdf2_sha256", API_KEY_PBKDF2_ITERATIONS=1000):
                sessions[name] = grant_api_key(elastic, owner, name)
        else:
            sessions[name] = grant_api_key(elastic, owner, name, role_descriptors=narrowed)
    return Cast(
        sessions=sessions,
        own_keys={name: grant_api_key(elastic, user, f"{name}-own")[0] for name, user in users.items()},
        others_key=grant_api_key(elastic, bystander, "bystander-key")[0],
    )


@pytest.fixture(scope="module")
def cast(django_db_setup, django_db_blocker):
    """The users, roles and keys every test case starts from, made once inside a transaction that
    is rolled back after the module, as Django's ``TestCase.setUpTestData`` does."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_cast()
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def shared_client():
    """One test client for the module: a client's handler loads the middleware on its first
    request, WhiteNoise's walk of the static files included, which would take most of each case."""
    return Client()


@pytest.fixture
def client(shared_client):
    shared_client.cookies.clear()  # each case starts with no session
    return shared_client


def orphan(client, kind: Caller, world: World, secret: str) -> dict:
    """Have the key authenticate a request, then delete or disable its owner through the service
    the users API calls; returns the audit event that refusing the key must write."""
    key = world.key(world.session_key)  # a key that exists: its row is there, with its hash
    verification_cache.clear()
    answer = client.get(
        "/_security/_authenticate", secure=True, headers={"Authorization": f"ApiKey {world.credential}"}
    )
    assert answer.status_code == 200 and answer.json()["api_key"]["id"] == key.pk, answer.content
    assert verification_cache.contains(key.hash, secret, verification_epoch()) is kind.hash_cached
    administrator = User.objects.get(username="elastic")
    if kind.owner == "deleted":
        assert services.delete_user(world.caller.username, acting_user=administrator)
        assert not ApiKey.objects.filter(pk=key.pk).exists()  # keys go with their owner
        reason = f"api key [{key.pk}] does not exist"
    else:
        services.set_user_enabled(world.caller.username, False, acting_user=administrator)
        reason = f"api key [{key.pk}] belongs to disabled user [{world.caller.username}]"
    return {
        "action": "authentication_failed", "outcome": "failure", "actor_id": None, "actor_username": "",
        "actor_realm": "", "via_api_key": "", "target": "", "api_key_ids": [], "count": 0,
        "detail": {"reason": reason, "api_key_id": key.pk},
    }


@pytest.fixture
def world(request, client, cast):
    kind = API_CALLERS[request.param]
    caller = User.objects.get(username=kind.holder)
    key_id, secret = cast.sessions[request.param]
    built = World(
        caller=caller,
        credential="" if kind.logged_in else encode_credential(key_id, secret),
        session_key=key_id,
        own_key=cast.own_keys[kind.holder],
        others_key=cast.others_key,
        used_key=None if kind.logged_in or kind.owner != "active" else key_id,
    )
    if kind.owner != "active":
        built.refusal = orphan(client, kind, built, secret)
    if kind.logged_in:
        client.force_login(caller)
    built.before = security_state(authenticated_with=built.used_key)
    return built


def fill(template: str | dict | None, world: World) -> str:
    """The action's path or JSON body, with the test case's key ids and caller's name put in."""
    if template is None:
        return ""
    text = template if isinstance(template, str) else json.dumps(template)
    for name, value in world.placeholders().items():
        text = text.replace(f"{{{name}}}", value)
    return text


@pytest.mark.parametrize(("action_name", "world", "outcome"), CASES, indirect=["world"])
def test_each_caller_gets_what_its_privilege_grants(client, action_name, world, outcome):
    action = ACTIONS[action_name]
    headers = {"Authorization": f"ApiKey {world.credential}"} if world.credential else {}
    if action.kibana:
        headers["kbn-xsrf"] = "true"
    if action.accept:
        headers["Accept"] = action.accept

    with override_settings(**dict(action.settings)):
        response = client.generic(
            action.method, fill(action.path, world), data=fill(action.body, world),
            content_type="application/json", secure=True, headers=headers, REMOTE_ADDR=action.address,
        )

    outcome.check(action, response, world)


# ---------------------------------------------------------------------------------------------
# The web UI: the same rules, asked by the pages (SPEC §6)

API_KEYS_PAGE = "/app/management/security/api_keys"
ROLES_PAGE = "/app/management/security/roles"
USERS_PAGE = "/app/management/security/users/default_native"
PRIVILEGES_PAGE = "/app/management/security/application_privileges"
PRIVILEGE_FORM = {"application": "inventory", "name": "read", "actions": "data:*", "metadata": ""}
PASSWORD_FORM = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
TOKENS_PAGE = "/app/management/security/tokens"
UPDATE_FORM = {"role_descriptors": "", "metadata": json.dumps(UPDATED_METADATA), "expiration": ""}


def role_form(name: str, cluster: list) -> dict:
    return {
        "name": name, "cluster": cluster, "other_cluster": "", "run_as": "", "metadata": "",
        "indices-TOTAL_FORMS": "0", "indices-INITIAL_FORMS": "0",
        "indices-MIN_NUM_FORMS": "0", "indices-MAX_NUM_FORMS": "100",
        "applications-TOTAL_FORMS": "0", "applications-INITIAL_FORMS": "0",
        "applications-MIN_NUM_FORMS": "0", "applications-MAX_NUM_FORMS": "100",
    }


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    data: dict | None = None
    effect: Callable[[World], bool] | None = None
    # The status of a granted request: a form that saves sends back to a page.
    done: int = 200


PAGES = {
    "API keys list page": Page("GET", API_KEYS_PAGE),
    "own key's details page": Page("GET", API_KEYS_PAGE + "/{own_key}"),
    "another's key's details page": Page("GET", API_KEYS_PAGE + "/{others_key}"),
    "create key form": Page(
        "POST", API_KEYS_PAGE + "/create", {"name": "matrix-created"},
        effect=lambda world: ApiKey.objects.filter(name="matrix-created").exists(), done=303,
    ),
    # Without the cookie the create form's redirect sets, the page only says the key was shown.
    "own key's reveal page, once shown": Page("GET", API_KEYS_PAGE + "/{own_key}/reveal", done=410),
    "invalidate own key": Page(
        "POST", API_KEYS_PAGE + "/invalidate", {"id": ["{own_key}"]},
        effect=lambda world: world.invalidated(world.own_key), done=302,
    ),
    "invalidate another's key": Page(
        "POST", API_KEYS_PAGE + "/invalidate", {"id": ["{others_key}"]},
        effect=lambda world: world.invalidated(world.others_key), done=302,
    ),
    "bulk invalidate own and another's key": Page(
        "POST", API_KEYS_PAGE + "/invalidate", {"id": ["{own_key}", "{others_key}"]},
        effect=lambda world: world.invalidated(world.own_key) and world.invalidated(world.others_key),
        done=302,
    ),
    "invalidate every matching key confirmation": Page(
        "GET", API_KEYS_PAGE + "/invalidate_matching?owner=bystander"
    ),
    "invalidate every matching key": Page(
        "POST", API_KEYS_PAGE + "/invalidate_matching", {"owner": "bystander"},
        effect=lambda world: world.invalidated(world.others_key), done=302,
    ),
    "rotate own key's confirmation": Page("GET", API_KEYS_PAGE + "/{own_key}/rotate"),
    "rotate own key": Page(
        "POST", API_KEYS_PAGE + "/{own_key}/rotate", {"expiration": ""},
        effect=lambda world: world.rotated(world.own_key), done=303,
    ),
    "rotate another's key": Page(
        "POST", API_KEYS_PAGE + "/{others_key}/rotate", {"expiration": ""},
        effect=lambda world: world.rotated(world.others_key),
    ),
    "update own key's form": Page("GET", API_KEYS_PAGE + "/{own_key}/update"),
    "update own key": Page(
        "POST", API_KEYS_PAGE + "/{own_key}/update", UPDATE_FORM,
        effect=lambda world: world.updated(world.own_key), done=302,
    ),
    "update another's key": Page(
        "POST", API_KEYS_PAGE + "/{others_key}/update", UPDATE_FORM,
        effect=lambda world: world.updated(world.others_key), done=302,
    ),
    "console page": Page("GET", "/app/dev_tools"),
    "audit log page": Page("GET", "/app/management/security/audit"),
    "roles page": Page("GET", ROLES_PAGE),
    "role details page": Page("GET", ROLES_PAGE + "/target_role"),
    "create role form": Page("GET", ROLES_PAGE + "/create"),
    "create a role": Page(
        "POST", ROLES_PAGE + "/create", role_form("new_role", ["monitor"]),
        effect=lambda world: Role.objects.filter(name="new_role").exists(), done=302,
    ),
    "edit role form": Page("GET", ROLES_PAGE + "/target_role/edit"),
    "overwrite a role with cluster all": Page(
        "POST", ROLES_PAGE + "/target_role/edit", role_form("target_role", ["all"]),
        effect=role_grants_all, done=302,
    ),
    "delete role confirmation": Page("GET", ROLES_PAGE + "/target_role/delete"),
    "delete a role": Page(
        "POST", ROLES_PAGE + "/target_role/delete",
        effect=lambda world: not Role.objects.filter(name="target_role").exists(), done=302,
    ),
    "users page": Page("GET", "/app/management/security/users"),
    "user details page": Page("GET", USERS_PAGE + "/target"),
    "create user form": Page("GET", "/app/management/security/users/create"),
    "create a user": Page(
        "POST", "/app/management/security/users/create",
        {"username": "newcomer", "full_name": "", "email": "", "roles": [], **PASSWORD_FORM},
        effect=lambda world: User.objects.filter(username="newcomer").exists(), done=302,
    ),
    "edit user form": Page("GET", USERS_PAGE + "/target/edit"),
    "edit another user": Page(
        "POST", USERS_PAGE + "/target/edit",
        {"full_name": "Changed", "email": "", "roles": [], "enabled": "on"},
        effect=lambda world: User.objects.get(username="target").full_name == "Changed", done=302,
    ),
    "give oneself the superuser role": Page(
        "POST", USERS_PAGE + "/{caller}/edit", {"full_name": "", "email": "", "roles": ["superuser"]},
        effect=lambda world: holds_role(world.caller.username, "superuser"), done=302,
    ),
    "another user's password form": Page("GET", USERS_PAGE + "/target/password"),
    "change another user's password": Page(
        "POST", USERS_PAGE + "/target/password", PASSWORD_FORM,
        effect=lambda world: password_is("target", NEW_PASSWORD), done=302,
    ),
    "change own password": Page(
        "POST", USERS_PAGE + "/{caller}/password", PASSWORD_FORM,
        effect=lambda world: password_is(world.caller.username, NEW_PASSWORD), done=302,
    ),
    "disable a user": Page(
        "POST", USERS_PAGE + "/target/enabled", {"enabled": "false"},
        effect=lambda world: not User.objects.get(username="target").enabled, done=302,
    ),
    "enable a user": Page(
        "POST", USERS_PAGE + "/dormant/enabled", {"enabled": "true"},
        effect=lambda world: User.objects.get(username="dormant").enabled, done=302,
    ),
    "access tokens page": Page("GET", TOKENS_PAGE),
    "invalidate a user's tokens confirmation": Page(
        "GET", TOKENS_PAGE + "/invalidate?user=grantee&realm=default_native"
    ),
    "invalidate a user's tokens": Page(
        "POST", TOKENS_PAGE + "/invalidate", {"user": "grantee", "realm": "default_native"},
        effect=lambda world: not active_tokens().filter(user__username="grantee").exists(), done=302,
    ),
    "delete user confirmation": Page("GET", USERS_PAGE + "/target/delete"),
    "delete a user": Page(
        "POST", USERS_PAGE + "/target/delete",
        effect=lambda world: not User.objects.filter(username="target").exists(), done=302,
    ),
    "application privileges page": Page("GET", PRIVILEGES_PAGE),
    "define application privilege form": Page("GET", PRIVILEGES_PAGE + "/create"),
    "define an application privilege": Page(
        "POST", PRIVILEGES_PAGE + "/create", {**PRIVILEGE_FORM, "application": "newapp"},
        effect=lambda world: ApplicationPrivilege.objects.filter(application="newapp").exists(), done=302,
    ),
    "edit application privilege form": Page("GET", PRIVILEGES_PAGE + "/inventory/read/edit"),
    "edit an application privilege": Page(
        "POST", PRIVILEGES_PAGE + "/inventory/read/edit", PRIVILEGE_FORM,
        effect=lambda world: ApplicationPrivilege.objects.get(name="read").actions == ["data:*"], done=302,
    ),
    "delete application privilege confirmation": Page("GET", PRIVILEGES_PAGE + "/inventory/read/delete"),
    "delete an application privilege": Page(
        "POST", PRIVILEGES_PAGE + "/inventory/read/delete",
        effect=lambda world: not ApplicationPrivilege.objects.filter(name="read").exists(), done=302,
    ),
}


class PageOutcome:
    def check(self, page: Page, response, world: World) -> None:
        raise NotImplementedError


class Granted(PageOutcome):
    """The page is shown and changes nothing, or the form's change takes effect."""

    def check(self, page, response, world):
        assert response.status_code == page.done, response.content
        if page.effect:
            assert page.effect(world)
        else:
            assert_unchanged(world)


class KeyList(PageOutcome):
    """The list page with the caller's own key, and the other user's key only for those who see all."""

    def __init__(self, others_visible: bool):
        self.others_visible = others_visible

    def check(self, page, response, world):
        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert world.own_key in text
        assert (world.others_key in text) is self.others_visible
        assert_unchanged(world)


class Refused(PageOutcome):
    """The permission-denied page, or for someone else's key a not-found page that looks the same
    as for no key at all; for an invalidation or rotation a redirect with an error, and for the
    reserved user a form error; nothing changes."""

    def __init__(self, status: int):
        self.status = status

    def check(self, page, response, world):
        assert response.status_code == self.status, response.content
        assert_unchanged(world)


class OnlyOwnInvalidatedOnPage(PageOutcome):
    def check(self, page, response, world):
        assert response.status_code == 302, response.content
        assert world.invalidated(world.own_key)
        assert not world.invalidated(world.others_key)


class LoggedOut(PageOutcome):
    """A disabled user's session is no session: back to the login page, nothing changes."""

    def check(self, page, response, world):
        assert response.status_code == 302, response.content
        assert response["Location"].startswith("/login")
        assert_unchanged(world)


SHOWN = DONE = Granted()
ALL_ROWS, OWN_ROWS = KeyList(others_visible=True), KeyList(others_visible=False)
FORBIDDEN, NOT_FOUND, NOT_DONE, REFUSED_FORM = Refused(403), Refused(404), Refused(302), Refused(400)
ONLY_OWN_PAGE, LOGGED_OUT = OnlyOwnInvalidatedOnPage(), LoggedOut()

DISABLED_SUPERUSER = "disabled superuser"
UI_CALLERS = (*CALLERS, DISABLED_SUPERUSER)
# Only the owner rotates a key: an administrator who rotated someone else's would walk away with
# its new secret, so the page sends them back with an error. Only the owner updates a key too, as
# in Elasticsearch: an administrator's update would put the key under the administrator's roles.
UI_MATRIX = {
    # page                       superuser  security_admin api_key_admin own_keys security_reader monitor_only
    "API keys list page":        (ALL_ROWS, ALL_ROWS,     ALL_ROWS,     OWN_ROWS, ALL_ROWS,       FORBIDDEN),
    "own key's details page":    (SHOWN,    SHOWN,        SHOWN,        SHOWN,    SHOWN,          FORBIDDEN),
    "another's key's details page":
                                 (SHOWN,    SHOWN,        SHOWN,        NOT_FOUND, SHOWN,         FORBIDDEN),
    "create key form":           (DONE,     DONE,         DONE,         DONE,     FORBIDDEN,      FORBIDDEN),
    "own key's reveal page, once shown":
                                 (SHOWN,    SHOWN,        SHOWN,        SHOWN,    SHOWN,          FORBIDDEN),
    "invalidate own key":        (DONE,     DONE,         DONE,         DONE,     FORBIDDEN,      FORBIDDEN),
    "invalidate another's key":  (DONE,     DONE,         DONE,         NOT_DONE, FORBIDDEN,      FORBIDDEN),
    "bulk invalidate own and another's key":
                                 (DONE,     DONE,         DONE,    ONLY_OWN_PAGE, FORBIDDEN,      FORBIDDEN),
    # Administrators only: a search may select any number of anyone's keys.
    "invalidate every matching key confirmation":
                                 (SHOWN,    SHOWN,        SHOWN,        FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "invalidate every matching key":
                                 (DONE,     DONE,         DONE,         FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "rotate own key's confirmation":
                                 (SHOWN,    SHOWN,        SHOWN,        SHOWN,    FORBIDDEN,      FORBIDDEN),
    "rotate own key":            (DONE,     DONE,         DONE,         DONE,     FORBIDDEN,      FORBIDDEN),
    "rotate another's key":      (NOT_DONE, NOT_DONE,     NOT_DONE,     NOT_FOUND, FORBIDDEN,     FORBIDDEN),
    "update own key's form":     (SHOWN,    SHOWN,        SHOWN,        SHOWN,    FORBIDDEN,      FORBIDDEN),
    "update own key":            (DONE,     DONE,         DONE,         DONE,     FORBIDDEN,      FORBIDDEN),
    "update another's key":      (NOT_DONE, NOT_DONE,     NOT_DONE,     NOT_FOUND, FORBIDDEN,     FORBIDDEN),
    "console page":              (SHOWN,    SHOWN,        SHOWN,        SHOWN,    SHOWN,          SHOWN),
    "audit log page":            (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "roles page":                (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "role details page":         (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "create role form":          (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "create a role":             (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "edit role form":            (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "overwrite a role with cluster all":
                                 (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "delete role confirmation":  (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "delete a role":             (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "users page":                (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "user details page":         (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "create user form":          (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "create a user":             (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "edit user form":            (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "edit another user":         (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "give oneself the superuser role":
                                 (REFUSED_FORM, DONE,     FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "another user's password form":
                                 (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "change another user's password":
                                 (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "change own password":       (DONE,     DONE,         DONE,         DONE,     DONE,           DONE),
    "disable a user":            (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "enable a user":             (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    # manage_token, which manage_security implies, as the token API asks.
    "access tokens page":        (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "invalidate a user's tokens confirmation":
                                 (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "invalidate a user's tokens":
                                 (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "delete user confirmation":  (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "delete a user":             (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "application privileges page":
                                 (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "define application privilege form":
                                 (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "define an application privilege":
                                 (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "edit application privilege form":
                                 (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "edit an application privilege":
                                 (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "delete application privilege confirmation":
                                 (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
    "delete an application privilege":
                                 (DONE,     DONE,         FORBIDDEN,    FORBIDDEN, FORBIDDEN,     FORBIDDEN),
}

UI_CASES = [
    pytest.param(page, caller, outcome, id=f"{page} as {caller}")
    for page, outcomes in UI_MATRIX.items()
    for caller, outcome in zip(UI_CALLERS, (*outcomes, LOGGED_OUT), strict=True)
]


@pytest.fixture
def page_world(request, client, cast):
    disabled = request.param == DISABLED_SUPERUSER
    caller = User.objects.get(username=ROOT if disabled else HOLDERS[request.param])
    built = World(
        caller=caller,
        credential="",
        session_key="",
        own_key=cast.own_keys[caller.username],
        others_key=cast.others_key,
    )
    client.force_login(caller)
    if disabled:
        # A working session first; then the user is disabled as the users page and API do it.
        assert client.get("/app/dev_tools", secure=True).status_code == 200
        services.set_user_enabled(ROOT, False, acting_user=User.objects.get(username="elastic"))
    built.before = security_state()
    return built


@pytest.mark.parametrize(("page_name", "page_world", "outcome"), UI_CASES, indirect=["page_world"])
def test_each_user_sees_in_the_ui_what_its_privilege_grants(client, page_name, page_world, outcome):
    page = PAGES[page_name]
    data = {
        name: [fill(value, page_world) for value in values] if isinstance(values, list) else values
        for name, values in (page.data or {}).items()
    }

    if page.method == "GET":
        response = client.get(fill(page.path, page_world), secure=True)
    else:
        response = client.post(fill(page.path, page_world), data, secure=True)

    outcome.check(page, response, page_world)


# ---------------------------------------------------------------------------------------------
# Every route is in a table

# Routes that answer anyone, logged in or not, and so have no row: nothing on them depends on a
# privilege. Each with the method it is asked with and the status it answers.
PUBLIC_ROUTES = {
    "": ("GET", 200),  # the home page, which links to the login page; asked for JSON, it has a row
    "_health": ("GET", 200),  # the probes a load balancer asks
    "_health/ready": ("GET", 200),
    "login": ("GET", 200),
    "logout": ("POST", 302),  # Django logs out on POST only
    "api/schema/": ("GET", 200),  # the OpenAPI document
    "api/docs/": ("GET", 200),  # its rendering
}


def url_routes(patterns=None, prefix="") -> set[str]:
    """Every route of the URL configuration, included ones too, written as ``ResolverMatch.route``."""
    routes = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            routes |= url_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            routes.add(prefix + str(pattern.pattern))
    return routes


def route_of(path: str) -> str:
    return resolve(urlsplit(path).path).route


def test_every_route_has_a_row_in_a_matrix_or_is_public(capsys):
    assert set(MATRIX) == set(ACTIONS) and all(len(row) == len(API_COLUMNS) for row in MATRIX.values())
    assert set(UI_MATRIX) == set(PAGES) and all(len(row) == len(CALLERS) for row in UI_MATRIX.values())
    routes = url_routes()
    in_matrix = {route_of(action.path) for action in ACTIONS.values() if action.accept is None}
    in_ui_matrix = {route_of(page.path) for page in PAGES.values()}

    assert routes - in_matrix - in_ui_matrix - set(PUBLIC_ROUTES) == set()
    assert set(PUBLIC_ROUTES) <= routes
    assert not set(PUBLIC_ROUTES) & (in_matrix | in_ui_matrix)

    with capsys.disabled():
        print(
            f"\nauthorization matrix: {len(routes)} routes, {len(PUBLIC_ROUTES)} public; "
            f"API {len(MATRIX)} actions x {len(API_CALLERS)} callers = {len(CASES)}, "
            f"UI {len(UI_MATRIX)} pages x {len(UI_CALLERS)} users = {len(UI_CASES)}"
        )


@pytest.mark.parametrize("route", PUBLIC_ROUTES)
def test_public_routes_answer_without_authentication(client, route):
    method, status = PUBLIC_ROUTES[route]
    before = security_state()

    response = client.generic(method, f"/{route}", secure=True)

    assert response.status_code == status, response.content
    assert security_state() == before
