"""The query role and query user APIs (Elasticsearch 8.15's ``/_security/_query/role`` and
``/_security/_query/user``): the one query engine over the role and user indices, on whichever
database the suite runs, and every refusal as Elasticsearch words it."""

import json

import pytest

from accounts.models import Role
from tests.snapshots import security_state
from tests.test_api_keys_get import assert_error

pytestmark = pytest.mark.django_db

APPS = {
    "kibana_ops": [
        {
            "application": "kibana-.kibana", "privileges": ["read", "feature_dev.all"],
            "resources": ["space:ops"],
        },
        {"application": "app9", "privileges": ["write"], "resources": ["99", "docs/*"]},
    ],
    "metrics_reader": [{"application": "a-metrics9", "privileges": ["view"], "resources": ["*"]}],
    "bare": [],
}


@pytest.fixture
def roles(make_role):
    """Three stored roles beside the built-in ones, which the query leaves out."""
    descriptions = {
        "kibana_ops": "Operates the Kibana SPACE of ops", "metrics_reader": "Reads metrics, ops-wide"
    }
    metadata = {"kibana_ops": {"team": "ops", "tags": ["a", "b"]}, "metrics_reader": {"team": "dev"}}
    for name, applications in APPS.items():
        role = make_role(name, metadata=metadata.get(name))
        role.applications = applications
        role.description = descriptions.get(name, "")
        role.save()


BAD = "illegal_argument_exception"
# The stored roles of these tests, apart from those of the users that make the requests.
OURS = {"query": {"terms": {"name": [*APPS, "superuser"]}}}


@pytest.fixture
def reader(make_user, client_for):
    return client_for(make_user("auditor", "read_security"))


def query(client, kind, body, method="POST"):
    return client.generic(
        method, f"/_security/_query/{kind}", json.dumps(body), content_type="application/json"
    )


def role_names(client, body):
    response = query(client, "role", body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["count"] == len(answer["roles"])
    return [role["name"] for role in answer["roles"] if role["name"] in APPS]


@pytest.mark.usefixtures("roles")
@pytest.mark.parametrize(("body", "expected"), [
    ({}, ["kibana_ops", "metrics_reader", "bare"]),
    ({"query": {"term": {"applications.application": "app9"}}}, ["kibana_ops"]),
    ({"query": {"wildcard": {"applications.application": "a*9"}}}, ["kibana_ops", "metrics_reader"]),
    ({"query": {"terms": {"applications.resources": ["99", "nothing"]}}}, ["kibana_ops"]),
    ({"query": {"term": {"applications.resources": "docs/*"}}}, ["kibana_ops"]),
    ({"query": {"prefix": {"applications.privileges": "feature_"}}}, ["kibana_ops"]),
    ({"query": {"exists": {"field": "applications.privileges"}}}, ["kibana_ops", "metrics_reader"]),
    ({"query": {"bool": {"must_not": {"exists": {"field": "applications.application"}}}}}, ["bare"]),
    ({"query": {"term": {"metadata.team": "ops"}}}, ["kibana_ops"]),
    ({"query": {"prefix": {"metadata": "de"}}}, ["metrics_reader"]),
    ({"query": {"term": {"metadata": "b"}}}, ["kibana_ops"]),
    ({"query": {"match": {"description": "space"}}}, ["kibana_ops"]),
    ({"query": {"match": {"description": "ops metrics"}}}, ["kibana_ops", "metrics_reader"]),
    ({"query": {"match": {"description": {"query": "ops metrics", "operator": "and"}}}}, ["metrics_reader"]),
    ({"query": {"match": {"description": "spac"}}}, []),
    ({"query": {"exists": {"field": "description"}}}, ["kibana_ops", "metrics_reader"]),
    ({"query": {"bool": {"should": [{"term": {"description": ""}}, {"wildcard": {"description": "*"}}]}}},
     ["kibana_ops", "metrics_reader"]),
    ({"query": {"bool": {"must_not": {"term": {"description": "Reads metrics, ops-wide"}}}}},
     ["kibana_ops", "bare"]),
    ({"query": {"ids": {"values": ["role-bare", "bare", "role-superuser"]}}}, ["bare"]),
    ({"query": {"simple_query_string": {"query": "reads", "fields": ["desc*"]}}}, ["metrics_reader"]),
    ({"query": {"term": {"name": "superuser"}}}, []),
])
def test_role_queries_select_what_elasticsearch_would(reader, body, expected):
    assert sorted(role_names(reader, body)) == sorted(expected)


@pytest.mark.usefixtures("roles")
def test_roles_come_in_creation_order_without_a_sort_and_carry_no_sort_values(reader):
    answer = query(reader, "role", OURS).json()
    assert [role["name"] for role in answer["roles"]] == ["kibana_ops", "metrics_reader", "bare"]
    assert answer["total"] == 3
    assert all("_sort" not in role for role in answer["roles"])
    shown = answer["roles"][0]
    assert shown == {
        "name": "kibana_ops",
        "cluster": [],
        "indices": [],
        "applications": APPS["kibana_ops"],
        "run_as": [],
        "metadata": {"team": "ops", "tags": ["a", "b"]},
        "transient_metadata": {"enabled": True},
        "description": "Operates the Kibana SPACE of ops",
    }
    assert "description" not in answer["roles"][2]


@pytest.mark.usefixtures("roles")
def test_a_multi_valued_field_sorts_by_its_least_value_ascending_and_its_greatest_descending(reader):
    ascending = query(reader, "role", {**OURS, "sort": ["applications.privileges", "name"]}).json()["roles"]
    assert [(role["name"], role["_sort"]) for role in ascending] == [
        ("kibana_ops", ["feature_dev.all", "kibana_ops"]),
        ("metrics_reader", ["view", "metrics_reader"]),
        ("bare", [None, "bare"]),
    ]
    descending = query(reader, "role", {**OURS, "sort": [{"applications.privileges": "desc"}]})
    descending = descending.json()["roles"]
    assert [(role["name"], role["_sort"]) for role in descending] == [
        ("kibana_ops", ["write"]), ("metrics_reader", ["view"]), ("bare", [None]),
    ]


@pytest.mark.usefixtures("roles")
def test_search_after_pages_through_roles_one_at_a_time_missing_values_included(reader):
    body = {**OURS, "size": 1, "sort": [{"applications.resources": "asc"}, {"name": "desc"}]}
    seen = []
    while True:
        page = query(reader, "role", body).json()
        assert page["total"] == 3
        if not page["roles"]:
            break
        seen.append(page["roles"][0]["name"])
        body["search_after"] = page["roles"][0]["_sort"]
    assert seen == ["metrics_reader", "kibana_ops", "bare"]


@pytest.fixture
def people(make_user, make_role, users):
    """Native users beside the reserved ``elastic`` (in ``users``), which the query leaves out."""
    for name in ("viewer", "editor"):
        make_role(name)
    make_user("ann", roles=["viewer"])
    make_user("bea", roles=["viewer", "editor"])
    cid = make_user("cid")
    cid.full_name, cid.email, cid.enabled = "Cid O'Hara-Smith", "cid@example.com", False
    cid.save()
    # Role names no role has (yet) are the user's roles too, as in Elasticsearch.
    dee = make_user("dee", roles=["viewer"])
    dee.pending_roles = ["auditor-to-be", "zz-later"]
    dee.save()


def usernames(client, body):
    response = query(client, "user", body)
    assert response.status_code == 200, response.content
    return [user["username"] for user in response.json()["users"]]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(("body", "expected"), [
    ({"query": {"term": {"roles": "viewer"}}}, ["ann", "bea", "dee"]),
    ({"query": {"term": {"roles": "zz-later"}}}, ["dee"]),
    ({"query": {"wildcard": {"roles": "*-to-*"}}}, ["dee"]),
    ({"query": {"wildcard": {"roles": "edit*"}}}, ["bea"]),
    ({"query": {"terms": {"roles": ["editor", "superuser"]}}}, ["bea"]),
    ({"query": {"bool": {"must_not": {"exists": {"field": "roles"}},
                         "filter": {"prefix": {"username": "c"}}}}}, ["cid"]),
    ({"query": {"term": {"enabled": False}}}, ["cid"]),
    ({"query": {"match": {"full_name": "hara"}}}, ["cid"]),
    ({"query": {"match": {"email": "example"}}}, ["cid"]),
    ({"query": {"exists": {"field": "email"}}}, ["cid"]),
    ({"query": {"ids": {"values": ["user-ann"]}}}, ["ann"]),
    ({"query": {"term": {"username": "elastic"}}}, []),
])
def test_user_queries_select_what_elasticsearch_would(reader, body, expected):
    assert sorted(usernames(reader, {**body, "size": 100})) == sorted(expected)


@pytest.mark.usefixtures("people")
def test_users_sort_and_page_and_the_reserved_user_is_left_out(reader):
    body = {"query": {"terms": {"roles": ["viewer"]}}, "sort": [{"username": {"order": "desc"}}],
            "from": 2, "size": 1}
    answer = query(reader, "user", body).json()
    assert answer["total"] == 3 and answer["count"] == 1
    assert answer["users"] == [{
        "username": "ann", "roles": ["viewer"], "full_name": "Ann", "email": None, "metadata": {},
        "enabled": True, "_sort": ["ann"],
    }]
    everyone = usernames(reader, {"size": 100})
    assert "elastic" not in everyone and {"ann", "bea", "cid"} <= set(everyone)
    sorted_by_roles = {
        "sort": ["roles", {"username": "desc"}], "query": {"terms": {"username": ["bea", "dee"]}}
    }
    by_roles = query(reader, "user", sorted_by_roles).json()["users"]
    assert [user["_sort"] for user in by_roles] == [["auditor-to-be", "dee"], ["editor", "bea"]]
    sorted_by_roles["sort"] = [{"roles": "desc"}]
    by_roles = query(reader, "user", sorted_by_roles).json()["users"]
    assert [user["_sort"] for user in by_roles] == [["zz-later"], ["viewer"]]
    assert by_roles[0]["roles"] == ["viewer", "auditor-to-be", "zz-later"]


def test_a_get_carries_the_same_body(reader, roles):
    response = query(reader, "role", {"query": {"term": {"name": "bare"}}}, method="GET")
    assert [role["name"] for role in response.json()["roles"]] == ["bare"]


@pytest.mark.parametrize(("kind", "body", "status", "error_type", "reason"), [
    ("role", {"query": {"prefix": {"password": "x"}}}, 400, BAD,
     "Field [password] is not allowed for querying or aggregation"),
    ("role", {"query": {"term": {"_id": "role-test"}}}, 400, BAD,
     "Field [_id] is not allowed for querying or aggregation"),
    ("role", {"sort": ["api_key_hash"]}, 400, BAD,
     "Field [api_key_hash] is not allowed for querying or aggregation"),
    ("role", {"query": {"term": {"applications.*": "x"}}}, 400, BAD,
     "Field name pattern [applications.*] is not allowed for querying or aggregation"),
    ("role", {"query": {"match_phrase": {"description": {"query": "x"}}}}, 400, BAD,
     "Query type [match_phrase] is not currently supported in this context"),
    ("role", {"query": {"bool": {"must_not": [{"more_like_this": {"like": "x"}}]}}}, 400,
     BAD, "Query type [more_like_this] is not currently supported in this context"),
    ("role", {"aggs": {"names": {"terms": {"field": "name"}}}}, 400, "x_content_parse_exception",
     "[query_role_request_payload] unknown field [aggs]"),
    ("role", {"search_after": ["x"]}, 400, BAD, "[search_after] requires a [sort]"),
    ("role", {"from": 9995, "size": 10}, 400, BAD,
     "Result window is too large, from + size must be less than or equal to: [10000] but was [10005]"),
    ("role", {"size": -1}, 400, "action_request_validation_exception", "[size] parameter cannot be negative"),
    ("role", {"query": {"range": {"applications.resources": {"gte": "a"}}}}, 400, BAD,
     "range queries are not supported on the multi-valued field [applications.resources]"),
    ("role", {"sort": [{"name": "sideways"}]}, 400, BAD, "Unknown SortOrder [sideways]"),
    ("user", {"query": {"term": {"password": "x"}}}, 400, BAD,
     "Field [password] is not allowed for querying or aggregation"),
    ("user", {"query": {"term": {"metadata.team": "x"}}}, 400, BAD,
     "Field [metadata.team] is not allowed for querying or aggregation"),
    ("user", {"sort": ["full_name"]}, 400, BAD, "sorting is not supported for field [full_name]"),
    ("user", {"sort": ["email"]}, 400, BAD, "sorting is not supported for field [email]"),
    ("user", {"query": {"term": {"enabled": "yes"}}}, 400, BAD,
     "Can't parse boolean value [yes], expected [true] or [false]"),
    ("user", {"size": "ten"}, 400, "x_content_parse_exception",
     "[query_user_request_payload] failed to parse field [size]"),
    ("user", {"sort": ["username"], "search_after": ["a", "b"]}, 400, BAD,
     "search_after has 2 value(s) but sort has 1."),
])
def test_bad_queries_are_refused_as_elasticsearch_refuses_them(
    reader, roles, kind, body, status, error_type, reason
):
    before = security_state()
    assert_error(query(reader, kind, body), status, error_type, reason)
    assert security_state() == before


def test_an_unknown_url_parameter_is_refused(reader):
    refused = reader.post("/_security/_query/role?with_profile_uid=true", "{}", "application/json")
    assert_error(refused, 400, BAD, "contains unrecognized parameter: [with_profile_uid]")
    accepted = reader.post("/_security/_query/user?with_profile_uid=true", "{}", "application/json")
    assert accepted.status_code == 200


@pytest.mark.parametrize("kind", ["role", "user"])
def test_querying_needs_read_security(users, client_for, kind):
    response = query(client_for(users["api_key_admin"]), kind, {})
    assert_error(response, 403, "security_exception", f"cluster:admin/xpack/security/{kind}/query")


def test_built_in_roles_are_left_out_but_exist(reader, roles):
    assert Role.objects.filter(built_in=True).exists()
    assert query(reader, "role", OURS).json()["total"] == 3
