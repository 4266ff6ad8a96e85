"""Bulk roles and the roles cache (SPEC §4), as Elasticsearch answers them: ``POST /_security/role``
puts many roles and ``DELETE /_security/role`` deletes many, each in one transaction and each role
through the single-role write, reporting only the lists that are not empty; ``POST
/_security/role/{names}/_clear_cache`` answers in the ``_nodes`` shape. All need manage_security."""

import base64
import json

import pytest

from accounts import audit
from accounts.models import AuditEvent, Role
from tests.snapshots import new_audit_events, security_state

pytestmark = pytest.mark.django_db

PASSWORD = "bulk-roles-password-3381"
MONITOR = {"cluster": ["monitor"]}
READ_LOGS = {"indices": [{"names": ["logs-*"], "privileges": ["read"]}], "description": "Reads logs"}


def basic(username: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Argon2 is slow on purpose; these tests are about the API, not about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api(client, make_user):
    """api(method, path, body, as_user=...) over HTTPS with HTTP Basic; the default caller holds
    manage_security."""
    make_user("admin", "manage_security", password=PASSWORD)
    make_user("reader", "read_security", password=PASSWORD)

    def call(method, path, body=None, as_user="admin"):
        data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        return client.generic(
            method, path, data=data, content_type="application/json", secure=True,
            headers={"Authorization": basic(as_user)},
        )

    return call


def stored(name: str) -> dict:
    return Role.objects.get(name=name).descriptor()


# Bulk put


def test_bulk_put_creates_updates_and_reports_unchanged_roles(api):
    api("PUT", "/_security/role/kept", MONITOR)
    api("PUT", "/_security/role/changed", MONITOR)

    response = api("POST", "/_security/role", {"roles": {
        "fresh": READ_LOGS, "changed": {"cluster": ["manage"]}, "kept": MONITOR,
    }})

    assert response.status_code == 200, response.content
    assert response.json() == {"created": ["fresh"], "updated": ["changed"], "noop": ["kept"]}
    assert stored("fresh")["description"] == "Reads logs"
    assert stored("changed")["cluster"] == ["manage"]


def test_bulk_put_leaves_out_the_lists_that_are_empty(api):
    response = api("POST", "/_security/role", {"roles": {"first": MONITOR, "second": READ_LOGS}})

    assert response.json() == {"created": ["first", "second"]}


def test_a_refused_role_is_reported_and_the_others_are_still_written(api):
    response = api("POST", "/_security/role", {"roles": {
        "good": MONITOR,
        "typo": {"cluster": ["manage_securty"]},
        "superuser": MONITOR,
        "badapp": {"applications": [{"application": "ab", "privileges": ["read"], "resources": ["*"]}]},
        "_hidden": MONITOR,
    }})

    assert response.status_code == 200
    answer = response.json()
    assert answer["created"] == ["good"]
    assert answer["errors"]["count"] == 4
    details = answer["errors"]["details"]
    assert list(details) == ["typo", "superuser", "badapp", "_hidden"]
    assert details["typo"]["type"] == "illegal_argument_exception"
    assert details["typo"]["reason"].startswith("unknown cluster privilege [manage_securty]")
    assert details["superuser"] == {
        "type": "illegal_argument_exception", "reason": "role [superuser] is reserved and cannot be modified",
    }
    assert details["badapp"]["type"] == "action_request_validation_exception"
    assert "must not start with [_]" in details["_hidden"]["reason"]
    assert set(Role.objects.values_list("name", flat=True)) >= {"good"}
    assert not Role.objects.filter(name__in=["typo", "badapp", "_hidden"]).exists()
    assert stored("superuser")["cluster"] == ["all"]


def test_bulk_put_audits_each_role_as_put_role_does(api):
    before = security_state()

    api("POST", "/_security/role", {"roles": {"first": MONITOR, "second": READ_LOGS}})

    events = new_audit_events(before, security_state())
    assert [(event["action"], event["target"], event["detail"]) for event in events] == [
        (audit.ROLE_CHANGED, "first", {"change": "created"}),
        (audit.ROLE_CHANGED, "second", {"change": "created"}),
    ]


def test_an_unchanged_role_is_neither_written_nor_audited(api):
    api("PUT", "/_security/role/kept", MONITOR)
    before = security_state()

    assert api("PUT", "/_security/role/kept", MONITOR).json() == {"role": {"created": False}}
    assert api("POST", "/_security/role", {"roles": {"kept": MONITOR}}).json() == {"noop": ["kept"]}

    assert security_state() == before


def test_bulk_put_is_one_transaction(api, monkeypatch):
    """A failure while writing the second role undoes the first: all or nothing of what passed."""
    record = audit.record

    def fail_on_second(action, **fields):
        if fields.get("target") == "second":
            raise RuntimeError("the database went away")
        return record(action, **fields)

    monkeypatch.setattr(audit, "record", fail_on_second)
    before = security_state()

    with pytest.raises(RuntimeError):
        api("POST", "/_security/role", {"roles": {"first": MONITOR, "second": MONITOR}})

    assert security_state() == before


# Bulk delete


def test_bulk_delete_reports_deleted_missing_and_refused_roles(api):
    api("POST", "/_security/role", {"roles": {"first": MONITOR, "second": READ_LOGS}})

    response = api("DELETE", "/_security/role", {"names": ["first", "ghost", "superuser", "second"]})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "deleted": ["first", "second"],
        "not_found": ["ghost"],
        "errors": {"count": 1, "details": {"superuser": {
            "type": "illegal_argument_exception",
            "reason": "role [superuser] is reserved and cannot be deleted",
        }}},
    }
    assert not Role.objects.filter(name__in=["first", "second"]).exists()
    assert Role.objects.filter(name="superuser").exists()


def test_bulk_delete_audits_each_deleted_role(api):
    api("POST", "/_security/role", {"roles": {"first": MONITOR, "second": READ_LOGS}})
    before = security_state()

    assert api("DELETE", "/_security/role", {"names": ["first", "second"]}).json() == {
        "deleted": ["first", "second"],
    }

    events = new_audit_events(before, security_state())
    assert [(event["action"], event["target"]) for event in events] == [
        (audit.ROLE_DELETED, "first"), (audit.ROLE_DELETED, "second"),
    ]


def test_bulk_delete_is_one_transaction(api, monkeypatch):
    api("POST", "/_security/role", {"roles": {"first": MONITOR, "second": MONITOR}})
    record = audit.record

    def fail_on_second(action, **fields):
        if fields.get("target") == "second":
            raise RuntimeError("the database went away")
        return record(action, **fields)

    monkeypatch.setattr(audit, "record", fail_on_second)
    before = security_state()

    with pytest.raises(RuntimeError):
        api("DELETE", "/_security/role", {"names": ["first", "second"]})

    assert security_state() == before


@pytest.mark.parametrize("refresh", ["true", "false", "wait_for", ""])
def test_refresh_is_accepted_as_elasticsearch_accepts_it(api, refresh):
    put = api("POST", f"/_security/role?refresh={refresh}", {"roles": {"first": MONITOR}})
    deleted = api("DELETE", f"/_security/role?refresh={refresh}", {"names": ["first"]})

    assert (put.status_code, deleted.status_code) == (200, 200)


# Refusals: Elasticsearch's status and error body, and nothing changed


BAD = "illegal_argument_exception"
BULK = "/_security/role"
CLEAR = "/_security/role/kept/_clear_cache"


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", BULK, None, "request body is required"),
        ("POST", BULK, "[]", "must be a JSON object"),
        ("POST", BULK, {}, "[roles] must be an object"),
        ("POST", BULK, {"roles": []}, "[roles] must be an object"),
        ("POST", BULK, {"roles": {}, "colour": 1}, "bulk put roles request. unexpected field [colour]"),
        ("POST", f"{BULK}?refresh=soon", {"roles": {}}, "invalid value [soon] for parameter [refresh]"),
        ("DELETE", BULK, None, "request body is required"),
        ("DELETE", BULK, {"names": []}, "[names] must be"),
        ("DELETE", BULK, {"names": "kept"}, "[names] must be"),
        ("DELETE", BULK, {"names": [1]}, "[names] must be"),
        ("DELETE", BULK, {"names": ["kept"], "x": 1}, "bulk delete roles request. unexpected field [x]"),
        ("POST", CLEAR, {"x": 1}, "does not support having a body"),
        ("POST", f"{CLEAR}?refresh=true", None, "unrecognized parameter: [refresh]"),
    ],
)
def test_bad_bulk_and_clear_requests_are_refused_and_change_nothing(api, method, path, body, reason):
    api("PUT", "/_security/role/kept", MONITOR)
    before = security_state()

    response = api(method, path, body)

    assert response.status_code == 400, response.content
    assert response.json()["status"] == 400
    error = response.json()["error"]
    assert (error["type"], error["root_cause"][0]["type"]) == (BAD, BAD)
    assert reason in error["reason"]
    assert security_state() == before


@pytest.mark.parametrize(
    ("method", "path", "body", "action"),
    [
        ("POST", BULK, {"roles": {"first": MONITOR}}, "cluster:admin/xpack/security/role/bulk_put"),
        ("DELETE", BULK, {"names": ["kept"]}, "cluster:admin/xpack/security/role/bulk_delete"),
        ("POST", CLEAR, None, "cluster:admin/xpack/security/roles/cache/clear"),
    ],
)
def test_read_security_may_not_write_roles_nor_clear_their_cache(api, method, path, body, action):
    api("PUT", "/_security/role/kept", MONITOR)
    before = security_state()

    response = api(method, path, body, as_user="reader")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "security_exception"
    assert error["reason"].startswith(f"action [{action}] is unauthorized for user [reader]")
    assert without_audit_events(security_state()) == without_audit_events(before)
    assert not AuditEvent.objects.filter(action__in=[audit.ROLE_CHANGED, audit.ROLE_DELETED], target="first")


def without_audit_events(state: dict) -> dict:
    return {name: rows for name, rows in state.items() if name != "audit events"}


# Clear cache


@pytest.mark.parametrize("names", ["kept", "kept,ghost", "*"])
def test_clear_roles_cache_answers_elasticsearchs_nodes_shape(api, settings, names):
    response = api("POST", f"/_security/role/{names}/_clear_cache")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    assert answer["cluster_name"] == settings.CLUSTER_NAME
    [(node_id, node)] = answer["nodes"].items()
    assert len(node_id) == 22 and set(node) == {"name"}


def test_clear_roles_cache_and_clear_api_key_cache_answer_for_the_same_node(api):
    roles = api("POST", "/_security/role/*/_clear_cache").json()
    keys = api("POST", "/_security/api_key/*/_clear_cache").json()

    assert roles == keys
