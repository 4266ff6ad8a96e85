"""Elasticsearch's has-privileges API (SPEC §2, §4): what the caller holds, with implications and
wildcards applied, and for an API key the key's descriptors intersected with its owner's roles."""

import json

import pytest

from apikeys.credentials import encode_credential

pytestmark = pytest.mark.django_db

LOGS_ALL = {"names": ["logs-*"], "privileges": ["all"]}


def check(client, key, body, method="POST", path="/_security/user/_has_privileges"):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.generic(
        method,
        path,
        data=data,
        content_type="application/json",
        secure=True,
        headers={"Authorization": "ApiKey " + encode_credential(key.id, key.secret)},
    )


@pytest.fixture
def holder(make_user, make_api_key):
    """A key carrying exactly its owner's roles: ``holder(*cluster, indices=[...])``."""

    def make(*cluster, indices=()):
        owner = make_user("owner", "manage_own_api_key", *cluster, indices=indices)
        return make_api_key(owner, "owner-key")

    return make


def test_answer_has_elasticsearchs_shape(client, holder):
    key = holder("monitor", indices=[{"names": ["suppliers", "products"], "privileges": ["read"]}])

    response = check(
        client,
        key,
        {
            "cluster": ["monitor", "manage"],
            "index": [
                {"names": ["suppliers", "products"], "privileges": ["read"]},
                {"names": ["inventory"], "privileges": ["read", "write"]},
            ],
        },
    )

    assert response.status_code == 200
    assert response["X-Elastic-Product"] == "Elasticsearch"
    assert response.json() == {
        "username": "owner",
        "has_all_requested": False,
        "cluster": {"monitor": True, "manage": False},
        "index": {
            "suppliers": {"read": True},
            "products": {"read": True},
            "inventory": {"read": False, "write": False},
        },
        "application": {},
    }


def test_holding_everything_asked_is_has_all_requested(client, holder):
    key = holder("monitor", indices=[LOGS_ALL])

    answer = check(
        client, key, {"cluster": ["monitor"], "index": [{"names": ["logs-1"], "privileges": ["read"]}]}
    )

    assert answer.json()["has_all_requested"] is True


@pytest.mark.parametrize(
    ("held", "asked", "expected"),
    [
        ("manage_security", "read_security", True),
        ("manage_security", "manage_api_key", True),
        ("manage_security", "manage_own_api_key", True),
        ("manage_api_key", "manage_own_api_key", True),
        ("manage_own_api_key", "manage_api_key", False),
        ("read_security", "manage_security", False),
        ("manage", "monitor", True),
        ("manage", "manage_security", False),
        ("all", "cluster:admin/xpack/security/user/put", True),
        ("monitor", "cluster:monitor/health", False),
    ],
)
def test_cluster_privileges_follow_elasticsearchs_implications(client, holder, held, asked, expected):
    key = holder(held)

    assert check(client, key, {"cluster": [asked]}).json()["cluster"] == {asked: expected}


@pytest.mark.parametrize(
    ("granted", "index", "privilege", "expected"),
    [
        ({"names": ["logs-*"], "privileges": ["read"]}, "logs-2026.01", "read", True),
        ({"names": ["logs-*"], "privileges": ["read"]}, "metrics-1", "read", False),
        ({"names": ["logs-*"], "privileges": ["read"]}, "logs-*", "read", True),
        ({"names": ["logs-2026-*"], "privileges": ["read"]}, "logs-*", "read", False),
        ({"names": ["*"], "privileges": ["read"]}, "logs-*", "read", True),
        ({"names": ["/logs-[0-9]+/"], "privileges": ["read"]}, "logs-42", "read", True),
        ({"names": ["logs-*"], "privileges": ["write"]}, "logs-1", "create_doc", True),
        ({"names": ["logs-*"], "privileges": ["write"]}, "logs-1", "read", False),
        ({"names": ["logs-*"], "privileges": ["all"]}, "logs-1", "delete_index", True),
        ({"names": ["logs-*"], "privileges": ["manage"]}, "logs-1", "view_index_metadata", True),
        ({"names": ["logs-*"], "privileges": ["read"]}, "logs-1", "indices:data/read/search", False),
        ({"names": ["logs-*"], "privileges": ["all"]}, "logs-1", "indices:data/read/search", True),
    ],
)
def test_index_privileges_follow_patterns_and_implications(
    client, holder, granted, index, privilege, expected
):
    key = holder(indices=[granted])

    answer = check(client, key, {"index": [{"names": [index], "privileges": [privilege]}]}).json()

    assert answer["index"] == {index: {privilege: expected}}


def test_an_api_key_is_answered_for_with_its_descriptors_intersected_with_its_owner(
    client, make_user, make_api_key
):
    owner = make_user("owner", "manage_own_api_key", "read_security", indices=[LOGS_ALL])
    key = make_api_key(
        owner,
        "narrow",
        role_descriptors={
            "narrow": {
                "cluster": ["manage_security", "read_security"],
                "indices": [{"names": ["logs-*", "metrics-*"], "privileges": ["read"]}],
            }
        },
    )

    answer = check(
        client,
        key,
        {
            "cluster": ["read_security", "manage_security", "manage_api_key", "manage_own_api_key"],
            "index": [{"names": ["logs-1", "metrics-1"], "privileges": ["read", "write"]}],
        },
    ).json()

    # Each side holds what the other grants only where they overlap: the key's manage_security brings
    # manage_own_api_key, which the owner has, but not manage_api_key, which the owner lacks.
    assert answer["cluster"] == {
        "read_security": True,
        "manage_security": False,
        "manage_api_key": False,
        "manage_own_api_key": True,
    }
    assert answer["index"] == {
        "logs-1": {"read": True, "write": False},
        "metrics-1": {"read": False, "write": False},
    }
    assert answer["username"] == "owner"


def test_a_key_without_descriptors_holds_its_owners_privileges(client, holder):
    key = holder("read_security", indices=[LOGS_ALL])

    answer = check(
        client, key, {"cluster": ["read_security"], "index": [{"names": ["logs-1"], "privileges": ["write"]}]}
    )

    assert answer.json()["has_all_requested"] is True


def test_every_caller_may_ask_even_without_any_security_privilege(client, holder):
    key = holder()

    response = check(client, key, {"cluster": ["manage_security"]})

    assert response.status_code == 200
    assert response.json()["cluster"] == {"manage_security": False}


def test_a_superuser_holds_every_application_privilege_and_others_only_those_granted(
    client, make_user, make_api_key
):
    elastic = make_user("elastic", roles=["superuser"])
    monitor = make_user("watcher", "manage_own_api_key")
    asked = {
        "application": [{"application": "inventory", "privileges": ["read"], "resources": ["product/1"]}]
    }

    superuser = check(client, make_api_key(elastic, "everything"), asked).json()
    other = check(client, make_api_key(monitor, "monitoring"), asked).json()

    assert superuser["application"] == {"inventory": {"product/1": {"read": True}}}
    assert superuser["has_all_requested"] is True
    assert other["application"] == {"inventory": {"product/1": {"read": False}}}
    assert other["has_all_requested"] is False


def test_repeated_index_names_are_merged(client, holder):
    key = holder(indices=[{"names": ["logs-*"], "privileges": ["read"]}])

    answer = check(
        client,
        key,
        {
            "index": [
                {"names": ["logs-1"], "privileges": ["read"]},
                {"names": ["logs-1"], "privileges": ["write"]},
            ]
        },
    ).json()

    assert answer["index"] == {"logs-1": {"read": True, "write": False}}


def test_get_with_a_body_answers_the_same_as_post(client, holder):
    key = holder("monitor")
    body = {"cluster": ["monitor", "manage"]}

    assert check(client, key, body, method="GET").json() == check(client, key, body).json()


def test_the_per_user_form_answers_only_for_the_caller(client, holder):
    key = holder("monitor")

    own = check(client, key, {"cluster": ["monitor"]}, path="/_security/user/owner/_has_privileges")
    other = check(client, key, {"cluster": ["monitor"]}, path="/_security/user/elastic/_has_privileges")

    assert own.status_code == 200 and own.json()["cluster"] == {"monitor": True}
    assert other.status_code == 400
    assert other.json()["error"]["reason"] == "users may only check the privileges of their own account"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"cluster": ["manage_apikey", "monitor", "read_securty"]},
            "unknown cluster privileges [manage_apikey,read_securty]",
        ),
        ({"index": [{"names": ["logs-1"], "privileges": ["raed"]}]}, "unknown index privilege [raed]"),
        ({}, "must specify at least one privilege"),
        ({"cluster": []}, "must specify at least one privilege"),
        ({"cluster": "monitor"}, "[cluster]"),
        ({"index": [{"names": ["logs-1"]}]}, "missing required [privileges]"),
        ({"index": [{"names": ["logs-1"], "privileges": []}]}, "at least one privilege"),
        ({"index": [{"names": ["logs-1"], "privileges": ["read"], "query": {}}]}, "unexpected field [query]"),
        ({"index": 5}, "[indices]"),
        ({"application": [{"application": "app", "privileges": ["read"]}]}, "missing required [resources]"),
        ({"cluster": ["monitor"], "colour": "red"}, "unexpected field [colour]"),
        ("[]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
        ("", "request body is required"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(client, holder, body, reason):
    key = holder("monitor")

    response = check(client, key, body)

    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]["reason"]
