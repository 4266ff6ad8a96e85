"""The query DSL of the query API key API, translated to SQL (SPEC §4, §7): each clause type against
a small set of keys, Elasticsearch's date and wildcard semantics, and a fuzzer showing that no input
gets anything but a ValidationError."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.exceptions import ValidationError
from apikeys.models import ApiKey
from apikeys.query import (
    MAX_BOOL_DEPTH,
    MAX_DATE_RANGES,
    MAX_TERMS,
    QUERY_TYPES,
    ParsingError,
    epoch_millis,
    parse_date,
    parse_query_request,
    search_api_keys,
    translate_query,
)

pytestmark = pytest.mark.django_db

# Microseconds on purpose: Elasticsearch compares times in whole milliseconds.
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_MS = epoch_millis(T0)
DAY = timedelta(days=1)


@pytest.fixture
def corpus(make_user, file_realm):
    """Four keys that differ in every queryable field."""
    alice = make_user("alice", "manage_own_api_key")
    bob = make_user("bob", "manage_own_api_key", realm=file_realm)

    def key(key_id, name, owner, created, **fields):
        return ApiKey(
            id=key_id.ljust(20, "0"),
            name=name,
            hash="x",
            owner=owner,
            realm_name=owner.realm.name,
            realm_type=owner.realm.type,
            created=created,
            **fields,
        )

    ApiKey.objects.bulk_create(
        [
            key(
                "build",
                "ci-build",
                alice,
                T0,
                expiration=T0 + 10 * DAY,
                metadata={"team": "ops", "env": {"tier": "prod"}, "n": 5},
            ),
            key(
                "deploy",
                "ci-deploy",
                alice,
                T0 + timedelta(microseconds=400),
                invalidated=T0 + 2 * DAY,
                metadata={"team": "dev", "flag": True},
            ),
            key("prod", "Prod_Key%", bob, T0 + DAY, metadata={}),
            key("cron", "cron?", bob, T0 + 2 * DAY, expiration=T0 - DAY, metadata={"team": "ops", "n": "5"}),
        ]
    )


def names(query) -> set[str]:
    return set(ApiKey.objects.filter(translate_query(query)).values_list("name", flat=True))


EVERY = {"ci-build", "ci-deploy", "Prod_Key%", "cron?"}

CLAUSES = {
    # match_all and ids
    "match_all": ({"match_all": {}}, EVERY),
    "match_all with boost": ({"match_all": {"boost": 1.5, "_name": "all"}}, EVERY),
    "ids": ({"ids": {"values": ["build".ljust(20, "0"), "nope"]}}, {"ci-build"}),
    "empty ids": ({"ids": {"values": []}}, set()),
    # term on keywords: exact and case-sensitive, unless asked otherwise
    "term on name": ({"term": {"name": "ci-build"}}, {"ci-build"}),
    "term is case-sensitive": ({"term": {"name": "prod_key%"}}, set()),
    "term case_insensitive": (
        {"term": {"name": {"value": "PROD_KEY%", "case_insensitive": True}}},
        {"Prod_Key%"},
    ),
    "term on username": ({"term": {"username": "bob"}}, {"Prod_Key%", "cron?"}),
    "term on realm_name": ({"term": {"realm_name": "default_file"}}, {"Prod_Key%", "cron?"}),
    "term on type": ({"term": {"type": "rest"}}, EVERY),
    "term on invalidated": ({"term": {"invalidated": True}}, {"ci-deploy"}),
    "term on invalidated as string": ({"term": {"invalidated": "false"}}, EVERY - {"ci-deploy"}),
    "term on creation is per millisecond": ({"term": {"creation": T0_MS}}, {"ci-build", "ci-deploy"}),
    "term on creation as ISO": ({"term": {"creation": "2024-03-02T12:00:00.123Z"}}, {"Prod_Key%"}),
    "term on metadata": ({"term": {"metadata.team": "ops"}}, {"ci-build", "cron?"}),
    "term on nested metadata": ({"term": {"metadata.env.tier": "prod"}}, {"ci-build"}),
    "metadata numbers compare as keywords": ({"term": {"metadata.n": "5"}}, {"ci-build", "cron?"}),
    "metadata booleans compare as keywords": ({"term": {"metadata.flag": True}}, {"ci-deploy"}),
    "match is a term on keywords": (
        {"match": {"name": {"query": "ci-build", "operator": "and"}}},
        {"ci-build"},
    ),
    "match does not analyse": ({"match": {"name": "ci"}}, set()),
    # terms
    "terms": ({"terms": {"name": ["ci-build", "cron?", "nope"]}}, {"ci-build", "cron?"}),
    "terms on creation": ({"terms": {"creation": [T0_MS, epoch_millis(T0 + DAY)]}}, EVERY - {"cron?"}),
    "terms on creation, more values than ranges": (
        {"terms": {"creation": [T0_MS, epoch_millis(T0 + DAY), *range(MAX_DATE_RANGES)]}},
        EVERY - {"cron?"},
    ),
    "terms on invalidated": ({"terms": {"invalidated": [True, False]}}, EVERY),
    "terms on metadata": ({"terms": {"metadata.team": ["dev", "x"]}}, {"ci-deploy"}),
    "empty terms": ({"terms": {"name": []}}, set()),
    # prefix and wildcard: case-sensitive, % and _ are not wildcards
    "prefix": ({"prefix": {"name": "ci-"}}, {"ci-build", "ci-deploy"}),
    "prefix is case-sensitive": ({"prefix": {"name": "prod"}}, set()),
    "prefix case_insensitive": (
        {"prefix": {"name": {"value": "prod", "case_insensitive": True}}},
        {"Prod_Key%"},
    ),
    "prefix on username": ({"prefix": {"username": "al"}}, {"ci-build", "ci-deploy"}),
    "prefix on metadata": ({"prefix": {"metadata.env.tier": "pr"}}, {"ci-build"}),
    "wildcard star": ({"wildcard": {"name": "*-d*"}}, {"ci-deploy"}),
    "wildcard question mark": ({"wildcard": {"name": "cro??"}}, {"cron?"}),
    "wildcard escaped question mark": ({"wildcard": {"name": {"value": "cron\\?"}}}, {"cron?"}),
    "wildcard escaped is literal": ({"wildcard": {"name": "cro\\??"}}, set()),
    "percent is literal": ({"wildcard": {"name": "Prod_Key%"}}, {"Prod_Key%"}),
    "underscore is literal": ({"wildcard": {"name": "Prod_*"}}, {"Prod_Key%"}),
    "not like percent": ({"wildcard": {"name": "Prod%"}}, set()),
    "bracket is literal": ({"wildcard": {"name": "[ci]*"}}, set()),
    "wildcard key": (
        {"wildcard": {"name": {"wildcard": "c*", "rewrite": "constant_score"}}},
        EVERY - {"Prod_Key%"},
    ),
    # range
    "range on creation in epoch ms": ({"range": {"creation": {"gt": T0_MS}}}, {"Prod_Key%", "cron?"}),
    "range gte includes the millisecond": (
        {"range": {"creation": {"gte": T0_MS, "lt": T0_MS + 1}}},
        {"ci-build", "ci-deploy"},
    ),
    "range lte includes the millisecond": (
        {"range": {"creation": {"lte": T0_MS}}},
        {"ci-build", "ci-deploy"},
    ),
    "range on an ISO day rounds lte up": ({"range": {"creation": {"lte": "2024-03-02"}}}, EVERY - {"cron?"}),
    "range on an ISO day keeps gte down": (
        {"range": {"creation": {"gte": "2024-03-02"}}},
        {"Prod_Key%", "cron?"},
    ),
    "range with date math": ({"range": {"creation": {"gte": "2024-03-01||+1d/d"}}}, {"Prod_Key%", "cron?"}),
    "range with from/to": (
        {"range": {"creation": {"from": T0_MS, "to": None, "include_lower": False}}},
        {"Prod_Key%", "cron?"},
    ),
    "range with time zone": (
        {"range": {"creation": {"gte": "2024-03-02T13:00:00", "time_zone": "+01:00"}}},
        {"Prod_Key%", "cron?"},
    ),
    "range on expiration skips keys without": ({"range": {"expiration": {"lt": "2024-03-05"}}}, {"cron?"}),
    "range on now": ({"range": {"expiration": {"gt": "now-1d/d"}}}, set()),
    "range on invalidation": ({"range": {"invalidation": {"gte": epoch_millis(T0 + DAY)}}}, {"ci-deploy"}),
    "range on names": ({"range": {"name": {"gte": "ci-", "lt": "ci-e"}}}, {"ci-build", "ci-deploy"}),
    "range on booleans": ({"range": {"invalidated": {"gt": False}}}, {"ci-deploy"}),
    "range on metadata": ({"range": {"metadata.team": {"gt": "dev"}}}, {"ci-build", "cron?"}),
    "empty range is exists": ({"range": {"expiration": {}}}, {"ci-build", "cron?"}),
    # exists
    "exists expiration": ({"exists": {"field": "expiration"}}, {"ci-build", "cron?"}),
    "exists invalidation": ({"exists": {"field": "invalidation"}}, {"ci-deploy"}),
    "exists name": ({"exists": {"field": "name"}}, EVERY),
    "exists metadata key": ({"exists": {"field": "metadata.team"}}, EVERY - {"Prod_Key%"}),
    "exists nested metadata key": ({"exists": {"field": "metadata.env.tier"}}, {"ci-build"}),
    # bool
    "bool must and filter": (
        {"bool": {"must": {"prefix": {"name": "c"}}, "filter": [{"term": {"username": "bob"}}]}},
        {"cron?"},
    ),
    "bool should is an or": (
        {"bool": {"should": [{"term": {"name": "cron?"}}, {"term": {"name": "ci-build"}}]}},
        {"cron?", "ci-build"},
    ),
    "bool should is ignored next to must": (
        {"bool": {"must": [{"prefix": {"name": "ci"}}], "should": [{"term": {"name": "nope"}}]}},
        {"ci-build", "ci-deploy"},
    ),
    "bool minimum_should_match": (
        {
            "bool": {
                "should": [
                    {"term": {"metadata.team": "ops"}},
                    {"prefix": {"name": "ci"}},
                    {"term": {"username": "bob"}},
                ],
                "minimum_should_match": 2,
            }
        },
        {"ci-build", "cron?"},
    ),
    "bool minimum_should_match negative": (
        {
            "bool": {
                "should": [{"term": {"metadata.team": "ops"}}, {"prefix": {"name": "ci"}}],
                "minimum_should_match": -1,
            }
        },
        {"ci-build", "ci-deploy", "cron?"},
    ),
    "bool minimum_should_match percent": (
        {
            "bool": {
                "should": [{"term": {"metadata.team": "ops"}}, {"prefix": {"name": "ci"}}],
                "minimum_should_match": "100%",
            }
        },
        {"ci-build"},
    ),
    "bool minimum_should_match above the count": (
        {"bool": {"should": [{"match_all": {}}], "minimum_should_match": 2}},
        set(),
    ),
    "bool must_not": ({"bool": {"must_not": {"term": {"username": "alice"}}}}, {"Prod_Key%", "cron?"}),
    "must_not matches keys without the metadata key": (
        {"bool": {"must_not": {"term": {"metadata.team": "ops"}}}},
        {"ci-deploy", "Prod_Key%"},
    ),
    "must_not matches keys without expiration": (
        {"bool": {"must_not": {"range": {"expiration": {"lt": "2024-03-05"}}}}},
        EVERY - {"cron?"},
    ),
    "must_not matches keys without the time": (
        {"bool": {"must_not": {"term": {"expiration": epoch_millis(T0 - DAY)}}}},
        EVERY - {"cron?"},
    ),
    "must_not matches keys without any of the times": (
        {
            "bool": {
                "must_not": {"terms": {"expiration": [epoch_millis(T0 + 10 * DAY), *range(MAX_DATE_RANGES)]}}
            }
        },
        EVERY - {"ci-build"},
    ),
    "must_not of should matches keys without the time": (
        {
            "bool": {
                "must_not": {
                    "bool": {
                        "should": [
                            {"term": {"invalidation": epoch_millis(T0 + 2 * DAY)}},
                            {"term": {"name": "cron?"}},
                        ]
                    }
                }
            }
        },
        {"ci-build", "Prod_Key%"},
    ),
    "must_not exists": ({"bool": {"must_not": {"exists": {"field": "name"}}}}, set()),
    "empty bool": ({"bool": {}}, EVERY),
    "nested bool": (
        {
            "bool": {
                "must_not": {
                    "bool": {
                        "should": [
                            {"term": {"invalidated": True}},
                            {"range": {"expiration": {"lt": "2024-03-05"}}},
                        ]
                    }
                }
            }
        },
        {"ci-build", "Prod_Key%"},
    ),
}


@pytest.mark.parametrize(("query", "expected"), CLAUSES.values(), ids=CLAUSES.keys())
def test_each_clause_selects_what_elasticsearch_would(corpus, query, expected):
    assert names(query) == expected


REFUSED = {
    "unknown query": ({"fuzzy_thing": {}}, ParsingError, "unknown query [fuzzy_thing]"),
    "unsupported query": (
        {"nested": {}},
        ValidationError,
        "Query type [nested] is not supported for API Key query",
    ),
    "two queries in one object": ({"term": {"name": "a"}, "match_all": {}}, ParsingError, "malformed query"),
    "empty query": ({}, ParsingError, "query malformed"),
    "query not an object": ("name:a", ParsingError, "query malformed"),
    "unknown field": (
        {"term": {"hash": "x"}},
        ValidationError,
        "Field [hash] is not allowed for API Key query",
    ),
    "id outside the ids query": ({"term": {"id": "x"}}, ValidationError, "Field [id] is not allowed"),
    "metadata itself": ({"term": {"metadata": "x"}}, ValidationError, "Field [metadata] is not allowed"),
    "empty metadata key": ({"term": {"metadata.a..b": "x"}}, ValidationError, "is not allowed"),
    "numeric metadata key": ({"term": {"metadata.0": "x"}}, ValidationError, "is not allowed"),
    "odd metadata key": ({"term": {'metadata.a"b': "x"}}, ValidationError, "is not allowed"),
    "field pattern": ({"term": {"na*": "x"}}, ValidationError, "is not allowed"),
    "two fields": ({"term": {"name": "a", "type": "b"}}, ParsingError, "doesn't support multiple fields"),
    "no field": ({"term": {}}, ParsingError, "no field"),
    "object value": ({"term": {"name": {"val": 1}}}, ParsingError, "does not support [val]"),
    "array value": ({"term": {"name": ["a"]}}, ParsingError, "does not support values"),
    "null value": ({"term": {"name": None}}, ParsingError, "does not support values"),
    "bad boost": ({"match_all": {"boost": "high"}}, ParsingError, "[boost]"),
    "bad case_insensitive": (
        {"term": {"name": {"value": "a", "case_insensitive": "yes"}}},
        ParsingError,
        "[case_insensitive]",
    ),
    "terms lookup": ({"terms": {"name": {"index": "x", "id": "1"}}}, ValidationError, "terms lookup"),
    "terms not a list": ({"terms": {"name": "a"}}, ParsingError, "[terms]"),
    "prefix on a date": (
        {"prefix": {"creation": "2024"}},
        ValidationError,
        "Can only use prefix queries on keyword and text fields - not on [creation]",
    ),
    "wildcard on a boolean": (
        {"wildcard": {"invalidated": "t*"}},
        ValidationError,
        "which is of type [boolean]",
    ),
    "bad date": (
        {"term": {"creation": "yesterday"}},
        ValidationError,
        "failed to parse date field [yesterday]",
    ),
    "date out of range": ({"range": {"creation": {"gt": 10**20}}}, ValidationError, "failed to parse date"),
    "date math overflow": (
        {"range": {"creation": {"gt": "now+999999999y"}}},
        ValidationError,
        "failed to parse",
    ),
    "bad boolean": ({"term": {"invalidated": "yes"}}, ValidationError, "Can't parse boolean value [yes]"),
    "range relation": ({"range": {"creation": {"gt": 1, "relation": "within"}}}, ValidationError, "relation"),
    "range format": ({"range": {"creation": {"gt": 1, "format": "dd/MM/yyyy"}}}, ValidationError, "[format]"),
    "range time zone": (
        {"range": {"creation": {"gt": 1, "time_zone": "Mars/Olympus"}}},
        ValidationError,
        "[time_zone]",
    ),
    "range not an object": ({"range": {"creation": 5}}, ParsingError, "[range]"),
    "exists without field": ({"exists": {}}, ParsingError, "[field]"),
    "ids not a list": ({"ids": {"values": "a"}}, ParsingError, "[ids]"),
    "bool occurrence not a list": ({"bool": {"must": "a"}}, ParsingError, "[must]"),
    "bool unknown key": ({"bool": {"shoud": []}}, ParsingError, "does not support [shoud]"),
    "bad minimum_should_match": (
        {"bool": {"should": [{"match_all": {}}], "minimum_should_match": "3<90%"}},
        ValidationError,
        "minimum_should_match",
    ),
    "NUL in a value": ({"term": {"name": "a\x00b"}}, ValidationError, "NUL"),
    "lone surrogate": ({"prefix": {"name": "a\ud800"}}, ValidationError, "surrogates"),
    "too long a pattern": ({"wildcard": {"name": "a*" * 5000}}, ValidationError, "pattern"),
    "too many terms": ({"terms": {"name": ["a"] * (MAX_TERMS + 1)}}, ValidationError, "too large"),
}


@pytest.mark.parametrize(("query", "error", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_malformed_queries_are_refused_with_elasticsearchs_reason(query, error, reason):
    with pytest.raises(error) as refused:
        translate_query(query)
    assert reason in refused.value.reason


def nested_bool(depth: int) -> dict:
    query = {"match_all": {}}
    for _ in range(depth):
        query = {"bool": {"must": [query]}}
    return query


def test_bool_may_nest_up_to_elasticsearchs_limit(corpus):
    assert names(nested_bool(MAX_BOOL_DEPTH)) == EVERY
    with pytest.raises(ValidationError, match="max_nested_depth"):
        translate_query(nested_bool(MAX_BOOL_DEPTH + 1))


def test_too_many_clauses_are_refused():
    with pytest.raises(ValidationError, match="too large"):
        translate_query({"bool": {"should": [{"term": {"name": str(n)}} for n in range(2000)]}})


@pytest.mark.parametrize(
    ("value", "round_up", "expected"),
    [
        (T0_MS, False, "2024-03-01T12:00:00.123+00:00"),
        (str(T0_MS), False, "2024-03-01T12:00:00.123+00:00"),
        ("2024-03-01T12:00:00.123456Z", False, "2024-03-01T12:00:00.123+00:00"),
        ("2024-03-01", False, "2024-03-01T00:00:00+00:00"),
        ("2024-03-01", True, "2024-03-01T23:59:59.999+00:00"),
        ("2024-03", True, "2024-03-31T23:59:59.999+00:00"),
        ("2024", False, "2024-01-01T00:00:00+00:00"),
        ("2024-01-31||+1M", False, "2024-02-29T00:00:00+00:00"),
        ("2024-03-01T10:00:00Z||-1h/d", False, "2024-03-01T00:00:00+00:00"),
        ("2024-03-01T10:00:00Z||/d", True, "2024-03-01T23:59:59.999+00:00"),
        ("2024-03-06T10:00:00Z||/w", False, "2024-03-04T00:00:00+00:00"),
        ("2024-03-06T10:00:00Z||+1y/y", False, "2025-01-01T00:00:00+00:00"),
    ],
)
def test_dates_are_read_as_elasticsearch_reads_them(value, round_up, expected):
    assert parse_date(value, round_up=round_up).isoformat(timespec="milliseconds") == datetime.fromisoformat(
        expected
    ).isoformat(timespec="milliseconds")


def test_now_date_math_is_relative_to_the_current_time():
    moment = parse_date("now-1d/d")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert moment in (today - DAY, today - 2 * DAY)  # around midnight the clock may move on


# ---------------------------------------------------------------------------------------------
# Fuzzing: whatever arrives, the answer is a ValidationError or a query that runs.

FIELDS = [
    "name",
    "type",
    "username",
    "realm_name",
    "creation",
    "expiration",
    "invalidation",
    "invalidated",
    "metadata.team",
    "metadata.env.tier",
    "id",
    "metadata",
    "_doc",
    "metadata.",
    "hash",
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [
            "now",
            "now-1d/d",
            "2024-03-01",
            "2024-03-01T12:00:00Z||+1M",
            "*",
            "?",
            "\\",
            "%_[",
            "true",
            "-5",
            "50%",
            str(T0_MS),
            "asc",
            "desc",
            "_last",
        ]
    )
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
field_names = st.sampled_from(FIELDS) | st.text(max_size=10)
options = st.dictionaries(
    st.sampled_from(
        [
            "value",
            "query",
            "wildcard",
            "case_insensitive",
            "boost",
            "_name",
            "gt",
            "gte",
            "lt",
            "lte",
            "from",
            "to",
            "include_lower",
            "time_zone",
            "format",
            "operator",
            "rewrite",
            "values",
            "field",
            "relation",
            "minimum_should_match",
        ]
    ),
    json_values,
    max_size=3,
)


def _leaf(name):
    return st.one_of(
        st.builds(lambda field, value: {name: {field: value}}, field_names, json_values),
        st.builds(lambda field, opts: {name: {field: opts}}, field_names, options),
        st.builds(lambda opts: {name: opts}, options),
        st.builds(lambda value: {name: value}, json_values),
    )


# Well-formed clauses over real fields, so that many generated queries reach the database.
queryable = st.sampled_from(FIELDS[:10])
plausible = (
    st.sampled_from(["ci-build", "ops", "c*", "2024-03-01", "now-1d/d", True, False, T0_MS]) | json_scalars
)
well_formed = st.one_of(
    st.builds(
        lambda kind, field, value: {kind: {field: value}},
        st.sampled_from(["term", "match", "prefix", "wildcard"]),
        queryable,
        plausible,
    ),
    st.builds(lambda field, values: {"terms": {field: values}}, queryable, st.lists(plausible, max_size=3)),
    st.builds(
        lambda field, bounds: {"range": {field: bounds}},
        queryable,
        st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), plausible, max_size=2),
    ),
    st.builds(lambda field: {"exists": {"field": field}}, queryable),
)
queries = st.deferred(
    lambda: st.one_of(
        well_formed,
        st.sampled_from(sorted(QUERY_TYPES) + ["nested", "unknown"]).flatmap(_leaf),
        st.builds(
            lambda occurrences, msm: {"bool": {**occurrences, **msm}},
            st.dictionaries(
                st.sampled_from(["must", "filter", "should", "must_not"]),
                st.lists(queries, max_size=3) | queries,
                max_size=3,
            ),
            st.dictionaries(st.just("minimum_should_match"), json_scalars, max_size=1),
        ),
        json_values,
    )
)
sorts = st.one_of(
    st.lists(
        st.dictionaries(queryable, st.sampled_from(["asc", "desc"]), min_size=1, max_size=1), max_size=3
    ),
    field_names,
    st.lists(
        field_names | st.dictionaries(field_names, st.sampled_from(["asc", "desc"]) | options, max_size=2),
        max_size=3,
    ),
    json_values,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "query": queries,
            "from": st.integers(-1, 5) | json_scalars,
            "size": st.integers(-1, 5) | json_scalars,
            "sort": sorts,
            "search_after": st.lists(plausible, max_size=3) | json_values,
        },
    ),
    json_values,
)
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(query=queries)
def test_the_translator_only_ever_raises_validation_error(corpus, query):
    try:
        where = translate_query(query)
    except ValidationError:
        return
    ApiKey.objects.filter(where).count()


@FUZZ
@given(body=bodies)
def test_a_whole_query_request_only_ever_raises_validation_error(corpus, body):
    try:
        query = parse_query_request(body)
    except ValidationError:
        return
    total, page = search_api_keys(ApiKey.objects.all(), query)
    assert len(page) <= total
