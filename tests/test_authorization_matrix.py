"""Who may do what over the REST API (SPEC §2 × §4), as one table: each row an endpoint and
action, each column a caller holding one privilege, each cell what that caller gets.

Every caller authenticates with an API key limited by its own roles, so the table also shows that
a key carries exactly its owner's privileges. Refusals are checked to change nothing.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from accounts.models import Role, User
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

CALLERS = ("superuser", "security_admin", "api_key_admin", "own_keys", "security_reader", "monitor_only")


@dataclass
class World:
    """What one test case starts from: the caller, one of its keys, and things owned by others."""

    caller: User
    credential: str
    own_key: str
    others_key: str

    def key(self, key_id) -> ApiKey:
        return ApiKey.objects.get(pk=key_id)


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
        if action.effect:
            assert not action.effect(world)


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


ALLOWED, DENIED = Allowed(), Denied()
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

CASES = [
    pytest.param(action, caller, outcome, id=f"{action} as {caller}")
    for action, outcomes in MATRIX.items()
    for caller, outcome in zip(CALLERS, outcomes, strict=True)
]


@pytest.fixture
def grant_api_key(users, make_api_key):
    """A key for ``user`` limited by the user's own roles, made on its behalf by the superuser as
    Elasticsearch's grant API key does: users who may not create keys can still hold one."""

    def grant(user, name) -> ApiKey:
        key = make_api_key(users["superuser"], name)
        ApiKey.objects.filter(pk=key.pk).update(
            owner=user, realm_name=user.realm.name, realm_type=user.realm.type,
            limited_by=user.role_descriptors(),
        )
        return key

    return grant


@pytest.fixture
def world(request, users, make_user, make_role, grant_api_key):
    caller = users[request.param]
    bystander = make_user("bystander", "manage_own_api_key")
    make_user("target")
    make_role("target_role", cluster=["monitor"])
    session_key = grant_api_key(caller, f"{request.param}-session")
    return World(
        caller=caller,
        credential=encode_credential(session_key.id, session_key.secret),
        own_key=grant_api_key(caller, f"{request.param}-own").id,
        others_key=grant_api_key(bystander, "bystander-key").id,
    )


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
