"""Who may do what (SPEC §2 × §4 × §6), as tables: each row an action, each column a kind of
caller, each cell what that caller gets.

The REST API table's callers authenticate with an API key limited by their own roles, so it also
shows that a key carries exactly its owner's privileges: a key narrower than its owner gets the
column of the privilege it was narrowed to, a derived key (made by a key) gets the column of no
API key privilege at all, and a key whose owner was since disabled or deleted gets 401
everywhere. A key that holds ``manage_own_api_key`` acts on itself only, as in Elasticsearch, so
the table has one column of a user holding that privilege, logged in, beside its key's. The web
UI table's callers are logged-in users, a disabled one included. Every refusal is checked to
change nothing: every stored field of every key, user and role is compared before and after.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from accounts.models import Role, User
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key

pytestmark = pytest.mark.django_db

CALLERS = ("superuser", "security_admin", "api_key_admin", "own_keys", "security_reader", "monitor_only")
OWN_KEYS_USER = "own_keys user, logged in"
API_COLUMNS = (*CALLERS, OWN_KEYS_USER)


def security_state() -> tuple:
    """Everything a refused request must leave as it was: every stored field of every key (but
    ``last_used``, which authenticating the request itself writes), user and role, and who holds
    which role."""
    keys = [{**row, "last_used": None} for row in ApiKey.objects.order_by("pk").values()]
    users = list(User.objects.order_by("pk").values())
    roles = list(Role.objects.order_by("pk").values())
    holders = list(User.roles.through.objects.order_by("user_id", "role_id").values_list())
    return (keys, users, roles, holders)


@dataclass
class World:
    """What one test case starts from: the caller, one of its keys, and things owned by others."""

    caller: User
    credential: str
    session_key: str
    own_key: str
    others_key: str
    before: tuple = field(default=())

    def key(self, key_id) -> ApiKey:
        return ApiKey.objects.get(pk=key_id)

    def invalidated(self, key_id) -> bool:
        return self.key(key_id).invalidated is not None

    def rotated(self, key_id) -> bool:
        """The key is invalidated and an active key of the same name and owner replaces it."""
        old = self.key(key_id)
        replacement = ApiKey.objects.filter(name=old.name, owner=old.owner_id, invalidated__isnull=True)
        return old.invalidated is not None and replacement.exists()


@dataclass(frozen=True)
class Action:
    method: str
    path: str
    body: dict | None = None
    # Whether a write took effect; None for reads.
    effect: Callable[[World], bool] | None = None

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
    "authenticate": Action("GET", "/_security/_authenticate"),
    "has privileges": Action("POST", "/_security/user/_has_privileges", {"cluster": ["monitor"]}),
    "get user": Action("GET", "/_security/user/target"),
    "put user": Action(
        "PUT", "/_security/user/newcomer", {"password": "matrix-password-7731", "roles": []},
        effect=lambda world: User.objects.filter(username="newcomer").exists(),
    ),
    "delete user": Action(
        "DELETE", "/_security/user/target",
        effect=lambda world: not User.objects.filter(username="target").exists(),
    ),
    "get role": Action("GET", "/_security/role/target_role"),
    "put role": Action(
        "PUT", "/_security/role/new_role", {"cluster": ["monitor"]},
        effect=lambda world: Role.objects.filter(name="new_role").exists(),
    ),
    "delete role": Action(
        "DELETE", "/_security/role/target_role",
        effect=lambda world: not Role.objects.filter(name="target_role").exists(),
    ),
    "Kibana get role": Action("GET", "/api/security/role/target_role"),
    "Kibana put role": Action(
        "PUT", "/api/security/role/new_role",
        {"elasticsearch": {"cluster": ["monitor"], "indices": [], "run_as": []}, "kibana": []},
        effect=lambda world: Role.objects.filter(name="new_role").exists(),
    ),
    "Kibana delete role": Action(
        "DELETE", "/api/security/role/target_role",
        effect=lambda world: not Role.objects.filter(name="target_role").exists(),
    ),
}


class Outcome:
    """What a caller gets; ``check`` asserts it from the response and the database."""

    def check(self, action: Action, response, world: World) -> None:
        raise NotImplementedError


def unchanged(world: World) -> bool:
    return security_state() == world.before


class Allowed(Outcome):
    """The action succeeds and, for a write, takes effect."""

    def check(self, action, response, world):
        assert response.status_code == action.success_status, response.content
        if action.effect:
            assert action.effect(world)


class Denied(Outcome):
    """403 in the route's error shape, and nothing changes."""

    def check(self, action, response, world):
        assert response.status_code == 403, response.content
        body = response.json()
        if action.kibana:
            assert (body["statusCode"], body["error"]) == (403, "Forbidden")
        else:
            assert body["error"]["type"] == "security_exception"
        assert unchanged(world)


class Unauthenticated(Outcome):
    """401 in the route's error shape with the ``ApiKey`` challenge, and nothing changes."""

    def check(self, action, response, world):
        assert response.status_code == 401, response.content
        assert "ApiKey" in response["WWW-Authenticate"]
        body = response.json()
        if action.kibana:
            assert (body["statusCode"], body["error"]) == (401, "Unauthorized")
        else:
            assert body["error"]["type"] == "security_exception"
        assert unchanged(world)


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


class ItselfOnly(Outcome):
    """200 with the calling key alone: a key acting on itself only sees nothing else."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        assert [key["id"] for key in response.json()["api_keys"]] == [world.session_key]


class Invalid(Outcome):
    """400 naming the rule (a key may create only keys that ask for no privileges); nothing changes."""

    def check(self, action, response, world):
        assert response.status_code == 400, response.content
        assert "creating derived api keys requires an explicit role descriptor" in (
            response.json()["error"]["reason"]
        )
        assert unchanged(world)


class KeyById(Outcome):
    """200 with the other user's key, or 404 with an empty list when it is not the caller's to see."""

    def __init__(self, visible: bool):
        self.visible = visible

    def check(self, action, response, world):
        assert response.status_code == (200 if self.visible else 404), response.content
        ids = [key["id"] for key in response.json()["api_keys"]]
        assert ids == ([world.others_key] if self.visible else [])


class ReportedAsError(Outcome):
    """200 listing the id among the errors, as Elasticsearch does, and the key stays valid."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["invalidated_api_keys"] == []
        assert body["error_count"] == 1
        assert not action.effect(world)


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


class OnlyOwnInvalidated(Outcome):
    """The caller's own key is invalidated; the other id is reported as not found and stays valid."""

    def check(self, action, response, world):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["invalidated_api_keys"] == [world.own_key]
        assert body["error_count"] == 1 and world.others_key in json.dumps(body["error_details"])
        assert world.invalidated(world.own_key)
        assert not world.invalidated(world.others_key)


ALLOWED, DENIED, UNAUTHENTICATED, INVALID = Allowed(), Denied(), Unauthenticated(), Invalid()
THEIRS, NONE_OF_THEIRS = AnotherUsersKeys(visible=True), AnotherUsersKeys(visible=False)
ONLY_OWN = OnlyOwnInvalidated()
ALL_KEYS, OWN_ONLY, ITSELF = Keys(others_visible=True), Keys(others_visible=False), ItselfOnly()
SHOWN, HIDDEN = KeyById(visible=True), KeyById(visible=False)
AN_ERROR = ReportedAsError()

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
    "authenticate":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,       ALLOWED,     ALLOWED),
    "has privileges":
                    (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,       ALLOWED,     ALLOWED),
    "get user":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "put user":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "delete user":  (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "get role":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "put role":     (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "delete role":  (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "Kibana get role":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,       DENIED,      DENIED),
    "Kibana put role":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
    "Kibana delete role":
                    (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,        DENIED,      DENIED),
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
# A key whose owner was since disabled or deleted authenticates no request at all.
ORPHANED_KEYS = ("key of a since disabled superuser", "key of a since deleted superuser")
# A key created with a key asks for no privileges, and gets none, whatever the creating key had.
DERIVED_KEY = "key derived from a superuser's key"


@dataclass(frozen=True)
class Caller:
    """Whose key sends the request, what the key is narrowed to, and what became of its owner;
    or a user holding the privilege, logged in."""

    holder: str
    narrowed_to: tuple[str, ...] = ()
    owner: str = "active"
    derived: bool = False
    logged_in: bool = False


API_CALLERS = {
    **{name: Caller(name) for name in CALLERS},
    **{name: Caller(holder, tuple(NARROWED_TO[column])) for name, (holder, column) in NARROWED_KEYS.items()},
    ORPHANED_KEYS[0]: Caller("superuser", owner="disabled"),
    ORPHANED_KEYS[1]: Caller("superuser", owner="deleted"),
    DERIVED_KEY: Caller("superuser", derived=True),
    OWN_KEYS_USER: Caller("own_keys", logged_in=True),
}


def api_outcome(outcomes: tuple, caller: str) -> Outcome:
    if caller in ORPHANED_KEYS:
        return UNAUTHENTICATED
    if caller == DERIVED_KEY:
        column = "monitor_only"
    else:
        column = NARROWED_KEYS[caller][1] if caller in NARROWED_KEYS else caller
    return outcomes[API_COLUMNS.index(column)]


CASES = [
    pytest.param(action, caller, api_outcome(outcomes, caller), id=f"{action} as {caller}")
    for action, outcomes in MATRIX.items()
    for caller in API_CALLERS
]


@pytest.fixture
def grant_api_key(users, make_api_key):
    """A key for ``user`` limited by the user's own roles, made on its behalf by the superuser as
    Elasticsearch's grant API key does: users who may not create keys can still hold one."""

    def grant(user, name, role_descriptors=None) -> ApiKey:
        key = make_api_key(users["superuser"], name, role_descriptors=role_descriptors)
        ApiKey.objects.filter(pk=key.pk).update(
            owner=user, realm_name=user.realm.name, realm_type=user.realm.type,
            limited_by=user.role_descriptors(),
        )
        return key

    return grant


def derive_api_key(parent: ApiKey, name: str) -> ApiKey:
    """A key made through the REST API with ``parent``'s credential, as a program would."""
    from apikeys.services import create_api_key

    caller = authenticate_api_key("ApiKey " + encode_credential(parent.id, parent.secret))
    created = create_api_key(caller, name=name, role_descriptors={"none": {}})
    key = created.api_key
    key.secret = created.secret
    return key


@pytest.fixture
def world(request, client, users, make_user, make_role, grant_api_key):
    caller_kind = API_CALLERS[request.param]
    caller = users[caller_kind.holder]
    bystander = make_user("bystander", "manage_own_api_key")
    make_user("target")
    make_role("target_role", cluster=["monitor"])
    narrowed = {"narrowed": {"cluster": list(caller_kind.narrowed_to)}} if caller_kind.narrowed_to else None
    session_key = grant_api_key(caller, f"{caller_kind.holder}-session", role_descriptors=narrowed)
    if caller_kind.derived:
        session_key = derive_api_key(session_key, f"{caller_kind.holder}-derived")
    built = World(
        caller=caller,
        credential="" if caller_kind.logged_in else encode_credential(session_key.id, session_key.secret),
        session_key=session_key.id,
        own_key=grant_api_key(caller, f"{caller_kind.holder}-own").id,
        others_key=grant_api_key(bystander, "bystander-key").id,
    )
    if caller_kind.owner == "disabled":
        User.objects.filter(pk=caller.pk).update(enabled=False)
    elif caller_kind.owner == "deleted":
        caller.delete()
    if caller_kind.logged_in:
        client.force_login(caller)
    built.before = security_state()
    return built


def fill(template: str | dict | None, world: World) -> str:
    """The action's path or JSON body, with the test case's key ids put in."""
    if template is None:
        return ""
    text = template if isinstance(template, str) else json.dumps(template)
    for name in ("session_key", "own_key", "others_key"):
        text = text.replace(f"{{{name}}}", getattr(world, name))
    return text


@pytest.mark.parametrize(("action_name", "world", "outcome"), CASES, indirect=["world"])
def test_each_caller_gets_what_its_privilege_grants(client, action_name, world, outcome):
    action = ACTIONS[action_name]
    headers = {"Authorization": f"ApiKey {world.credential}"} if world.credential else {}
    if action.kibana:
        headers["kbn-xsrf"] = "true"

    response = client.generic(
        action.method, fill(action.path, world), data=fill(action.body, world),
        content_type="application/json", secure=True, headers=headers,
    )

    outcome.check(action, response, world)


# ---------------------------------------------------------------------------------------------
# The web UI: the same rules, asked by the pages (SPEC §6)

API_KEYS_PAGE = "/app/management/security/api_keys"


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    data: dict | None = None
    effect: Callable[[World], bool] | None = None


PAGES = {
    "API keys list page": Page("GET", API_KEYS_PAGE),
    "own key's details page": Page("GET", API_KEYS_PAGE + "/{own_key}"),
    "another's key's details page": Page("GET", API_KEYS_PAGE + "/{others_key}"),
    "create key form": Page(
        "POST", API_KEYS_PAGE + "/create", {"name": "matrix-created"},
        effect=lambda world: ApiKey.objects.filter(name="matrix-created").exists(),
    ),
    "invalidate own key": Page(
        "POST", API_KEYS_PAGE + "/invalidate", {"id": ["{own_key}"]},
        effect=lambda world: world.invalidated(world.own_key),
    ),
    "invalidate another's key": Page(
        "POST", API_KEYS_PAGE + "/invalidate", {"id": ["{others_key}"]},
        effect=lambda world: world.invalidated(world.others_key),
    ),
    "bulk invalidate own and another's key": Page(
        "POST", API_KEYS_PAGE + "/invalidate", {"id": ["{own_key}", "{others_key}"]},
        effect=lambda world: world.invalidated(world.own_key) and world.invalidated(world.others_key),
    ),
    "roles page": Page("GET", "/app/management/security/roles"),
    "role details page": Page("GET", "/app/management/security/roles/target_role"),
    "users page": Page("GET", "/app/management/security/users"),
    "user details page": Page("GET", "/app/management/security/users/default_native/target"),
}


class PageOutcome:
    def check(self, page: Page, response, world: World) -> None:
        raise NotImplementedError


class Shown(PageOutcome):
    """200 (a redirect back to the list for an invalidation, a reveal for a create), taking effect."""

    def check(self, page, response, world):
        assert response.status_code == (302 if page.path.endswith("/invalidate") else 200), response.content
        if page.effect:
            assert page.effect(world)


class KeyList(PageOutcome):
    """The list page with the caller's own key, and the other user's key only for those who see all."""

    def __init__(self, others_visible: bool):
        self.others_visible = others_visible

    def check(self, page, response, world):
        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert world.own_key in text
        assert (world.others_key in text) is self.others_visible


class Refused(PageOutcome):
    """The permission-denied page, or for someone else's key a not-found page that looks the same
    as for no key at all; or for an invalidation, the list with an error; nothing changes."""

    def __init__(self, status: int):
        self.status = status

    def check(self, page, response, world):
        assert response.status_code == self.status, response.content
        assert unchanged(world)


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
        assert unchanged(world)


SHOWN, ALL_ROWS, OWN_ROWS = Shown(), KeyList(others_visible=True), KeyList(others_visible=False)
FORBIDDEN, NOT_FOUND, NOT_DONE = Refused(403), Refused(404), Refused(302)
ONLY_OWN_PAGE, LOGGED_OUT = OnlyOwnInvalidatedOnPage(), LoggedOut()

UI_CALLERS = (*CALLERS, "disabled superuser")
UI_MATRIX = {
    # page                       superuser  security_admin api_key_admin own_keys security_reader monitor_only
    "API keys list page":        (ALL_ROWS, ALL_ROWS,     ALL_ROWS,     OWN_ROWS, ALL_ROWS,       FORBIDDEN),
    "own key's details page":    (SHOWN,    SHOWN,        SHOWN,        SHOWN,    SHOWN,          FORBIDDEN),
    "another's key's details page":
                                 (SHOWN,    SHOWN,        SHOWN,        NOT_FOUND, SHOWN,         FORBIDDEN),
    "create key form":           (SHOWN,    SHOWN,        SHOWN,        SHOWN,    FORBIDDEN,      FORBIDDEN),
    "invalidate own key":        (SHOWN,    SHOWN,        SHOWN,        SHOWN,    FORBIDDEN,      FORBIDDEN),
    "invalidate another's key":  (SHOWN,    SHOWN,        SHOWN,        NOT_DONE, FORBIDDEN,      FORBIDDEN),
    "bulk invalidate own and another's key":
                                 (SHOWN,    SHOWN,        SHOWN,   ONLY_OWN_PAGE, FORBIDDEN,      FORBIDDEN),
    "roles page":                (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "role details page":         (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "users page":                (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
    "user details page":         (SHOWN,    SHOWN,        FORBIDDEN,    FORBIDDEN, SHOWN,         FORBIDDEN),
}

UI_CASES = [
    pytest.param(page, caller, outcome, id=f"{page} as {caller}")
    for page, outcomes in UI_MATRIX.items()
    for caller, outcome in zip(UI_CALLERS, (*outcomes, LOGGED_OUT), strict=True)
]


@pytest.fixture
def page_world(request, client, users, make_user, make_role, grant_api_key):
    disabled = request.param == "disabled superuser"
    caller = users["superuser" if disabled else request.param]
    bystander = make_user("bystander", "manage_own_api_key")
    make_user("target")
    make_role("target_role", cluster=["monitor"])
    built = World(
        caller=caller,
        credential="",
        session_key="",
        own_key=grant_api_key(caller, "caller-own").id,
        others_key=grant_api_key(bystander, "bystander-key").id,
    )
    client.force_login(caller)
    if disabled:
        User.objects.filter(pk=caller.pk).update(enabled=False)
        caller.refresh_from_db()
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


def test_the_matrices_cover_every_caller_and_action(capsys):
    api_cases, ui_cases = len(MATRIX) * len(API_CALLERS), len(UI_MATRIX) * len(UI_CALLERS)
    assert set(MATRIX) == set(ACTIONS) and all(len(row) == len(API_COLUMNS) for row in MATRIX.values())
    assert (len(CASES), len(UI_CASES)) == (api_cases, ui_cases)
    with capsys.disabled():
        print(
            f"\nauthorization matrix: API {len(MATRIX)} actions x {len(API_CALLERS)} callers = {api_cases}, "
            f"UI {len(UI_MATRIX)} pages x {len(UI_CALLERS)} users = {ui_cases}"
        )
