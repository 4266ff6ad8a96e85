"""Who may do what (SPEC §2 × §4 × §6), as tables: each row an action, each column a kind of
caller, each cell what that caller gets.

The REST API table's callers authenticate with an API key limited by their own roles, so it also
shows that a key carries exactly its owner's privileges; a key narrower than its owner gets the
column of the privilege it was narrowed to, and a key whose owner was since disabled or deleted
gets 401 everywhere. The web UI table's callers are logged-in users, a disabled one included.
Every refusal is checked to change nothing: no key, user or role is added, removed or invalidated.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from accounts.models import Role, User
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

CALLERS = ("superuser", "security_admin", "api_key_admin", "own_keys", "security_reader", "monitor_only")


def security_state() -> tuple:
    """Everything a refused request must leave as it was: keys and their state, users, roles."""
    return (
        frozenset(ApiKey.objects.values_list("id", "invalidated")),
        frozenset(User.objects.values_list("username", "enabled")),
        frozenset(Role.objects.values_list("name", flat=True)),
    )


@dataclass
class World:
    """What one test case starts from: the caller, one of its keys, and things owned by others."""

    caller: User
    credential: str
    own_key: str
    others_key: str
    before: tuple = field(default=())

    def key(self, key_id) -> ApiKey:
        return ApiKey.objects.get(pk=key_id)

    def invalidated(self, key_id) -> bool:
        return self.key(key_id).invalidated is not None


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
    "create key": Action(
        "POST", "/_security/api_key", {"name": "matrix-created"},
        effect=lambda world: ApiKey.objects.filter(name="matrix-created").exists(),
    ),
    "get all keys": Action("GET", "/_security/api_key"),
    "get another's key by id": Action("GET", "/_security/api_key?id={others_key}"),
    "query keys": Action("POST", "/_security/_query/api_key", {"query": {"match_all": {}}, "size": 100}),
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


ALLOWED, DENIED, UNAUTHENTICATED = Allowed(), Denied(), Unauthenticated()
THEIRS, NONE_OF_THEIRS = AnotherUsersKeys(visible=True), AnotherUsersKeys(visible=False)
ONLY_OWN = OnlyOwnInvalidated()
ALL_KEYS, OWN_ONLY = Keys(others_visible=True), Keys(others_visible=False)
SHOWN, HIDDEN = KeyById(visible=True), KeyById(visible=False)
AN_ERROR = ReportedAsError()

MATRIX = {
    # action                     superuser security_admin api_key_admin own_keys  security_reader monitor_only
    "create key":               (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  DENIED,         DENIED),
    "get all keys":             (ALL_KEYS, ALL_KEYS,      ALL_KEYS,     OWN_ONLY, ALL_KEYS,       DENIED),
    "get another's key by id":  (SHOWN,    SHOWN,         SHOWN,        HIDDEN,   SHOWN,          DENIED),
    "query keys":               (ALL_KEYS, ALL_KEYS,      ALL_KEYS,     OWN_ONLY, ALL_KEYS,       DENIED),
    "invalidate own key":       (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  DENIED,         DENIED),
    "invalidate another's key": (ALLOWED,  ALLOWED,       ALLOWED,      AN_ERROR, DENIED,         DENIED),
    "invalidate own and another's key together":
                                (ALLOWED,  ALLOWED,       ALLOWED,      ONLY_OWN, DENIED,         DENIED),
    "get keys naming another user":
                                (THEIRS,   THEIRS,        THEIRS,  NONE_OF_THEIRS, THEIRS,        DENIED),
    "query keys naming another user":
                                (THEIRS,   THEIRS,        THEIRS,  NONE_OF_THEIRS, THEIRS,        DENIED),
    "authenticate":             (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,        ALLOWED),
    "has privileges":           (ALLOWED,  ALLOWED,       ALLOWED,      ALLOWED,  ALLOWED,        ALLOWED),
    "get user":                 (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,        DENIED),
    "put user":                 (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,         DENIED),
    "delete user":              (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,         DENIED),
    "get role":                 (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,        DENIED),
    "put role":                 (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,         DENIED),
    "delete role":              (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,         DENIED),
    "Kibana get role":          (ALLOWED,  ALLOWED,       DENIED,       DENIED,   ALLOWED,        DENIED),
    "Kibana put role":          (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,         DENIED),
    "Kibana delete role":       (ALLOWED,  ALLOWED,       DENIED,       DENIED,   DENIED,         DENIED),
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


@dataclass(frozen=True)
class Caller:
    """Whose key sends the request, what the key is narrowed to, and what became of its owner."""

    holder: str
    narrowed_to: tuple[str, ...] = ()
    owner: str = "active"


API_CALLERS = {
    **{name: Caller(name) for name in CALLERS},
    **{name: Caller(holder, tuple(NARROWED_TO[column])) for name, (holder, column) in NARROWED_KEYS.items()},
    ORPHANED_KEYS[0]: Caller("superuser", owner="disabled"),
    ORPHANED_KEYS[1]: Caller("superuser", owner="deleted"),
}


def api_outcome(outcomes: tuple, caller: str) -> Outcome:
    if caller in ORPHANED_KEYS:
        return UNAUTHENTICATED
    column = NARROWED_KEYS[caller][1] if caller in NARROWED_KEYS else caller
    return outcomes[CALLERS.index(column)]


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


@pytest.fixture
def world(request, users, make_user, make_role, grant_api_key):
    caller_kind = API_CALLERS[request.param]
    caller = users[caller_kind.holder]
    bystander = make_user("bystander", "manage_own_api_key")
    make_user("target")
    make_role("target_role", cluster=["monitor"])
    narrowed = {"narrowed": {"cluster": list(caller_kind.narrowed_to)}} if caller_kind.narrowed_to else None
    session_key = grant_api_key(caller, f"{caller_kind.holder}-session", role_descriptors=narrowed)
    built = World(
        caller=caller,
        credential=encode_credential(session_key.id, session_key.secret),
        own_key=grant_api_key(caller, f"{caller_kind.holder}-own").id,
        others_key=grant_api_key(bystander, "bystander-key").id,
    )
    if caller_kind.owner == "disabled":
        User.objects.filter(pk=caller.pk).update(enabled=False)
    elif caller_kind.owner == "deleted":
        caller.delete()
    built.before = security_state()
    return built


def fill(template: str | dict | None, world: World) -> str:
    """The action's path or JSON body, with the test case's key ids put in."""
    if template is None:
        return ""
    text = template if isinstance(template, str) else json.dumps(template)
    return text.replace("{own_key}", world.own_key).replace("{others_key}", world.others_key)


@pytest.mark.parametrize(("action_name", "world", "outcome"), CASES, indirect=["world"])
def test_each_caller_gets_what_its_privilege_grants(client, action_name, world, outcome):
    action = ACTIONS[action_name]
    headers = {"Authorization": f"ApiKey {world.credential}"}
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
def page_world(request, users, make_user, make_role, grant_api_key):
    disabled = request.param == "disabled superuser"
    caller = users["superuser" if disabled else request.param]
    bystander = make_user("bystander", "manage_own_api_key")
    make_user("target")
    make_role("target_role", cluster=["monitor"])
    built = World(
        caller=caller,
        credential="",
        own_key=grant_api_key(caller, "caller-own").id,
        others_key=grant_api_key(bystander, "bystander-key").id,
    )
    if disabled:
        User.objects.filter(pk=caller.pk).update(enabled=False)
        caller.refresh_from_db()
    built.before = security_state()
    return built


@pytest.mark.parametrize(("page_name", "page_world", "outcome"), UI_CASES, indirect=["page_world"])
def test_each_user_sees_in_the_ui_what_its_privilege_grants(client, page_name, page_world, outcome):
    page = PAGES[page_name]
    client.force_login(page_world.caller)
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
    assert (len(CASES), len(UI_CASES)) == (api_cases, ui_cases)
    with capsys.disabled():
        print(
            f"\nauthorization matrix: API {len(MATRIX)} actions x {len(API_CALLERS)} callers = {api_cases}, "
            f"UI {len(UI_MATRIX)} pages x {len(UI_CALLERS)} users = {ui_cases}"
        )
