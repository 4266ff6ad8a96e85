"""POST|GET /_security/_query/api_key (SPEC §2, §4, §7): the response shape, sorting and paging
with from/size and search_after, scoping, and Elasticsearch's refusals of bad requests.

The query DSL's clause-by-clause semantics are in test_query_dsl.py."""

from datetime import UTC, datetime, timedelta

import pytest

from apikeys.models import ApiKey
from restapi.query.dsl import epoch_millis
from tests.test_api_keys_get import api_key_header, assert_error, call

pytestmark = pytest.mark.django_db

PATH = "/_security/_query/api_key"
T0 = datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=UTC)


def query(client, user, body=None, method="POST", params="", **headers):
    return call(client, user, method, PATH + params, body, **headers)


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [key["name"] for key in response.json()["api_keys"]]


@pytest.fixture
def keys(users, make_api_key):
    admin, own = users["api_key_admin"], users["own_keys"]
    return {
        "admin-a": make_api_key(admin, "admin-a", metadata={"team": "ops"}),
        "own-b": make_api_key(own, "own-b", metadata={"team": "ops"}),
        "own-c": make_api_key(own, "own-c", state="invalidated"),
    }


@pytest.fixture
def many(users):
    """50 keys of one owner, created in five groups of ten at the same millisecond, so that a sort on
    creation alone has ties."""
    owner = users["own_keys"]
    ApiKey.objects.bulk_create(
        ApiKey(
            id=f"page{n:016d}",
            name=f"page-{n:02d}",
            hash="x",
            owner=owner,
            realm_name="default_native",
            realm_type="native",
            created=T0 + timedelta(seconds=n // 10),
            expiration=T0 + timedelta(days=n % 3) if n % 3 else None,
            metadata={"group": str(n // 10)},
        )
        for n in range(50)
    )
    return [f"page-{n:02d}" for n in range(50)]


def test_the_response_has_total_count_and_keys_without_sort_values_when_unsorted(client, users, keys):
    response = query(client, users["api_key_admin"], {"query": {"match_all": {}}})

    body = response.json()
    assert set(body) == {"total", "count", "api_keys"}
    assert (body["total"], body["count"]) == (3, 3)
    assert all("_sort" not in key for key in body["api_keys"])
    assert body["api_keys"][0]["id"] == keys["admin-a"].id  # oldest first, like index order
    assert response["X-Elastic-Product"] == "Elasticsearch"


def test_an_empty_body_or_none_at_all_is_match_all_and_get_works_like_post(client, users, keys):
    admin = users["api_key_admin"]

    assert len(names(query(client, admin, {}))) == 3
    assert len(names(query(client, admin, method="GET"))) == 3
    assert names(query(client, admin, {"query": {"term": {"name": "own-b"}}}, method="GET")) == ["own-b"]


def test_sort_values_come_back_in_elasticsearchs_types(client, users, keys):
    body = {"sort": ["name", {"creation": "desc"}, {"invalidated": {"order": "asc"}}, {"expiration": "asc"}]}

    [first, *_] = query(client, users["api_key_admin"], body).json()["api_keys"]

    created = ApiKey.objects.get(pk=keys["admin-a"].id).created
    assert first["_sort"] == ["admin-a", epoch_millis(created), False, None]


def test_with_limited_by_adds_snapshots(client, users, keys):
    response = query(client, users["api_key_admin"], {"size": 1}, params="?with_limited_by=true")

    assert response.json()["api_keys"][0]["limited_by"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["admin-a", "own-b", "own-c"]),
        ({"name": "desc"}, ["own-c", "own-b", "admin-a"]),
        ([{"name": {"order": "desc"}}], ["own-c", "own-b", "admin-a"]),
        ([{"username": "asc"}, {"name": "desc"}], ["admin-a", "own-c", "own-b"]),
        ([{"invalidated": "desc"}, "name"], ["own-c", "admin-a", "own-b"]),
        ([{"metadata.team": "asc"}, "name"], ["admin-a", "own-b", "own-c"]),
        ([{"metadata.team": {"order": "asc", "missing": "_first"}}, "name"], ["own-c", "admin-a", "own-b"]),
        ([{"invalidation": "asc"}, "name"], ["own-c", "admin-a", "own-b"]),
    ],
)
def test_sort_takes_every_form_elasticsearch_accepts(client, users, keys, sort, expected):
    assert names(query(client, users["api_key_admin"], {"sort": sort})) == expected


def test_a_sort_in_the_url_is_read_as_the_official_client_sends_it(client, users, keys):
    response = query(client, users["api_key_admin"], {}, params="?sort=username:desc,name")

    assert names(response) == ["own-b", "own-c", "admin-a"]


def test_from_and_size_page_through_every_key_once(client, users, many):
    body = {"sort": [{"creation": "asc"}, "_doc"], "size": 7}

    seen = []
    for start in range(0, 56, 7):
        response = query(client, users["own_keys"], {**body, "from": start})
        assert response.json()["total"] == 50
        seen += names(response)

    assert seen == many


@pytest.mark.parametrize(
    "sort",
    [
        [{"creation": "asc"}, "_doc"],
        [{"creation": "desc"}, {"_doc": "desc"}],
        [{"expiration": "asc"}, {"name": "desc"}],
        [{"metadata.group": "desc"}, "name"],
        [{"username": "asc"}, "name"],
        [{"name": "desc"}],
    ],
)
def test_search_after_pages_through_every_key_without_gaps_or_repeats(client, users, many, sort):
    everything = names(query(client, users["own_keys"], {"sort": sort, "size": 100}))
    seen, after = [], None
    while True:
        body = {"sort": sort, "size": 6, **({"search_after": after} if after is not None else {})}
        page = query(client, users["own_keys"], body).json()
        if not page["api_keys"]:
            break
        assert page["total"] == 50
        seen += [key["name"] for key in page["api_keys"]]
        after = page["api_keys"][-1]["_sort"]

    assert sorted(everything) == many
    assert seen == everything


def test_search_after_skips_keys_tied_on_every_sort_value_as_elasticsearch_does(client, users, many):
    first = query(client, users["own_keys"], {"sort": [{"creation": "asc"}], "size": 3}).json()

    after = first["api_keys"][-1]["_sort"]
    body = {"sort": [{"creation": "asc"}], "search_after": after, "size": 100}
    following = query(client, users["own_keys"], body)

    assert after == [epoch_millis(T0)]
    assert sorted(names(following)) == many[10:]


def test_search_after_accepts_dates_as_iso_strings(client, users, many):
    body = {
        "sort": ["creation", "_doc"],
        "search_after": ["2024-05-01T08:00:03.250Z", "page0000000000000035"],
    }

    assert names(query(client, users["own_keys"], body))[:2] == ["page-36", "page-37"]


def test_total_counts_every_match_whatever_the_page(client, users, many):
    body = {"query": {"term": {"metadata.group": "2"}}, "size": 3, "from": 6, "sort": ["name"]}

    response = query(client, users["own_keys"], body).json()

    assert (response["total"], response["count"]) == (10, 3)
    assert [key["name"] for key in response["api_keys"]] == ["page-26", "page-27", "page-28"]


def test_size_zero_counts_without_keys(client, users, many):
    response = query(client, users["own_keys"], {"size": 0}).json()

    assert (response["total"], response["count"], response["api_keys"]) == (50, 0, [])


def test_manage_own_api_key_user_never_sees_someone_elses_key_whatever_it_queries(client, users, keys):
    own = users["own_keys"]
    others = keys["admin-a"].id

    assert set(names(query(client, own, {}))) == {"own-b", "own-c"}
    assert names(query(client, own, {"query": {"ids": {"values": [others]}}})) == []
    assert names(query(client, own, {"query": {"term": {"username": "api_key_admin"}}})) == []
    assert (
        names(query(client, own, {"query": {"bool": {"must_not": {"term": {"username": "own_keys"}}}}})) == []
    )
    response = query(client, own, {"query": {"term": {"metadata.team": "ops"}}})
    assert names(response) == ["own-b"] and response.json()["total"] == 1


def test_read_security_may_query_every_key(client, users, keys):
    assert len(names(query(client, users["security_reader"], {}))) == 3


def test_a_user_without_an_api_key_privilege_is_refused(client, users, keys):
    assert_error(query(client, users["monitor_only"], {}), 403, "security_exception")


def test_a_key_whose_role_descriptors_lack_the_privilege_is_refused(client, users, make_api_key):
    key = make_api_key(
        users["api_key_admin"], "monitor-only", role_descriptors={"m": {"cluster": ["monitor"]}}
    )

    assert_error(query(client, None, {}, Authorization=api_key_header(key)), 403, "security_exception")


def test_a_key_may_not_read_snapshots_without_manage_api_key(client, users, make_api_key):
    key = make_api_key(users["own_keys"], "session")

    response = query(client, None, {}, params="?with_limited_by=true", Authorization=api_key_header(key))

    assert_error(response, 403, "security_exception")


def test_plain_http_answers_feature_not_enabled(client, users, keys):
    response = call(client, users["api_key_admin"], "POST", PATH, {}, secure=False)

    assert_error(response, 400, "feature_not_enabled_exception")


BAD_REQUESTS = {
    "malformed JSON": ('{"query": ', 400, "parse_exception", "not valid JSON"),
    "duplicate field": ('{"size": 1, "size": 2}', 400, "parse_exception", "Duplicate field"),
    "body not an object": ([1, 2], 400, "x_content_parse_exception", "expected an object"),
    "unknown field": (
        {"qeury": {}},
        400,
        "x_content_parse_exception",
        "[query_api_key_request_payload] unknown field [qeury]",
    ),
    "null query": ({"query": None}, 400, "x_content_parse_exception", "VALUE_NULL"),
    "unsupported aggregation": (
        {"aggs": {"owners": {"avg": {"field": "creation"}}}},
        400,
        "illegal_argument_exception",
        "Unsupported API Keys agg [owners] of type [avg]",
    ),
    "negative from": (
        {"from": -1},
        400,
        "action_request_validation_exception",
        "[from] parameter cannot be negative but was [-1]",
    ),
    "negative size": (
        {"size": -5},
        400,
        "action_request_validation_exception",
        "[size] parameter cannot be negative",
    ),
    "size not a number": ({"size": "ten"}, 400, "x_content_parse_exception", "failed to parse field [size]"),
    "size a boolean": ({"size": True}, 400, "x_content_parse_exception", "failed to parse field [size]"),
    "size a fraction": ({"size": 1.5}, 400, "x_content_parse_exception", "failed to parse field [size]"),
    "huge size": (
        {"size": 10_001},
        400,
        "illegal_argument_exception",
        "Result window is too large, from + size must be less than or equal to: [10000] but was [10001]",
    ),
    "huge from": ({"from": 10**30}, 400, "illegal_argument_exception", "Result window is too large"),
    "window over the limit": (
        {"from": 9_995, "size": 10},
        400,
        "illegal_argument_exception",
        "but was [10005]",
    ),
    "sort a number": ({"sort": 5}, 400, "illegal_argument_exception", "mal-formatted sort object"),
    "sort with two fields in one object": (
        {"sort": {"name": "asc", "creation": "desc"}},
        400,
        "illegal_argument_exception",
        "mal-formatted sort object",
    ),
    "unknown sort order": (
        {"sort": {"name": "up"}},
        400,
        "illegal_argument_exception",
        "Unknown SortOrder [up]",
    ),
    "unknown sort option": ({"sort": {"name": {"mode": "min"}}}, 400, "parsing_exception", "[mode]"),
    "sort on id": (
        {"sort": "id"},
        400,
        "illegal_argument_exception",
        "Field [id] is not allowed for API Key query",
    ),
    "sort on an unknown field": (
        {"sort": "hash"},
        400,
        "illegal_argument_exception",
        "Field [hash] is not allowed",
    ),
    "search_after without sort": (
        {"search_after": [1]},
        400,
        "illegal_argument_exception",
        "requires a [sort]",
    ),
    "search_after of another length": (
        {"sort": ["name"], "search_after": [1, 2]},
        400,
        "illegal_argument_exception",
        "search_after has 2 value(s) but sort has 1.",
    ),
    "search_after with from": (
        {"sort": ["name"], "search_after": ["a"], "from": 1},
        400,
        "illegal_argument_exception",
        "`from` parameter must be set to 0",
    ),
    "search_after not a list": (
        {"sort": ["name"], "search_after": "a"},
        400,
        "x_content_parse_exception",
        "search_after",
    ),
    "search_after of the wrong type": (
        {"sort": ["creation"], "search_after": ["soon"]},
        400,
        "illegal_argument_exception",
        "Failed to parse search_after value for field [creation].",
    ),
    "unknown query": ({"query": {"more_like": {}}}, 400, "parsing_exception", "unknown query [more_like]"),
    "unsupported query": (
        {"query": {"query_string": {"query": "a"}}},
        400,
        "illegal_argument_exception",
        "Query type [query_string] is not supported for API Key query",
    ),
    "unknown query field": (
        {"query": {"term": {"hash": "x"}}},
        400,
        "illegal_argument_exception",
        "Field [hash] is not allowed for API Key query",
    ),
}


def nested_bool(depth: int) -> dict:
    inner = {"match_all": {}}
    for _ in range(depth):
        inner = {"bool": {"filter": inner}}
    return {"query": inner}


BAD_REQUESTS["bool nested beyond the body depth limit"] = (
    nested_bool(31),
    400,
    "parse_exception",
    "nested deeper than 64 levels",
)


@pytest.mark.parametrize(
    ("body", "status", "error_type", "reason"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys()
)
def test_bad_requests_get_elasticsearchs_error(client, users, keys, body, status, error_type, reason):
    assert_error(query(client, users["api_key_admin"], body), status, error_type, reason)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ("?with_limited_by=yes", "Failed to parse value [yes] as only [true] or [false] are allowed."),
        ("?typed_keys=1", "Failed to parse value [1]"),
        ("?size=10", "request [/_security/_query/api_key] contains unrecognized parameter: [size]"),
        ("?sort=name:sideways", "Unknown SortOrder [sideways]"),
    ],
)
def test_bad_url_parameters_are_refused(client, users, keys, params, reason):
    assert_error(
        query(client, users["api_key_admin"], {}, params=params), 400, "illegal_argument_exception", reason
    )


def test_bool_nested_as_deep_as_a_body_may_go_is_answered(client, users, keys):
    assert len(names(query(client, users["api_key_admin"], nested_bool(30)))) == 3


def test_accepted_url_parameters_change_nothing(client, users, keys):
    response = query(
        client, users["api_key_admin"], {}, params="?typed_keys=true&with_profile_uid=false&pretty"
    )

    assert len(names(response)) == 3
