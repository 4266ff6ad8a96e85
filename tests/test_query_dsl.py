"""The query DSL of the query API key API, translated to SQL (SPEC §4, §7): each clause type against
a small set of keys, Elasticsearch's date and wildcard semantics, a fuzzer showing that no input
gets anything but a ValidationError, and generated queries, sorts and pages checked against an
independent reading of Elasticsearch's semantics (tests/query_oracle.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from accounts.exceptions import ValidationError
from apikeys.models import ApiKey
from apikeys.query import API_KEYS, parse_api_key_query
from restapi.query.dsl import (
    MAX_BOOL_DEPTH,
    MAX_DATE_RANGES,
    MAX_TERMS,
    QUERY_TYPES,
    ParsingError,
    epoch_millis,
    parse_date,
    translate_query,
)
from restapi.query.dsl import (
    search as search_rows,
)
from tests import query_oracle as oracle

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
    return set(ApiKey.objects.filter(translate_query(query, API_KEYS)).values_list("name", flat=True))


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
    "a range on metadata itself": (
        {"range": {"metadata": {"gt": "x"}}}, ValidationError, "range queries are not supported on the field"
    ),
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
        translate_query(query, API_KEYS)
    assert reason in refused.value.reason


def nested_bool(depth: int) -> dict:
    query = {"match_all": {}}
    for _ in range(depth):
        query = {"bool": {"must": [query]}}
    return query


def test_bool_may_nest_up_to_elasticsearchs_limit(corpus):
    assert names(nested_bool(MAX_BOOL_DEPTH)) == EVERY
    with pytest.raises(ValidationError, match="max_nested_depth"):
        translate_query(nested_bool(MAX_BOOL_DEPTH + 1), API_KEYS)


def test_too_many_clauses_are_refused():
    with pytest.raises(ValidationError, match="too large"):
        translate_query({"bool": {"should": [{"term": {"name": str(n)}} for n in range(2000)]}}, API_KEYS)


@pytest.mark.parametrize(
    ("value", "round_up", "expected"),
    [
        (T0_MS, False, "2024-03-01T12:00:00.123+00:00"),
        (str(T0_MS), False, "2024-03-01T12:00:00.123+00:00"),
        ("2024-03-01T12:00:00.123456Z", False, "2024-03-01T12:00:00.123+00:00"),
        ("2024-03-01", False, "2024-03-01T00:00:00+00:00"),
        ("2024-03-01", True, "2024-03-01T23:59:59.999+00:00"),
        # Elasticsearch fills what a date leaves out, rounding up, with 01 for the month and the day
        # and 23:59:59.999 for the time (the range query's "missing date components").
        ("2024-03", True, "2024-03-01T23:59:59.999+00:00"),
        ("2024", True, "2024-01-01T23:59:59.999+00:00"),
        ("2024-03-01T10", True, "2024-03-01T10:59:59.999+00:00"),
        ("2024-03-01T10:30", True, "2024-03-01T10:30:59.999+00:00"),
        ("2024-03-01T10:30:00Z", True, "2024-03-01T10:30:00.999+00:00"),
        ("2024-03-01T10:30:00.5Z", True, "2024-03-01T10:30:00.500+00:00"),
        ("2024-03-01T12:30:00+02:00", True, "2024-03-01T10:30:00.999+00:00"),
        ("2024", False, "2024-01-01T00:00:00+00:00"),
        ("2024-01-31||+1M", False, "2024-02-29T00:00:00+00:00"),
        ("2024-03-01T10:00:00Z||-1h/d", False, "2024-03-01T00:00:00+00:00"),
        ("2024-03-01T10:00:00Z||/d", True, "2024-03-01T23:59:59.999+00:00"),
        ("2024-03-06T10:00:00Z||/w", False, "2024-03-04T00:00:00+00:00"),
        ("2024-03-06T10:00:00Z||+1y/y", False, "2025-01-01T00:00:00+00:00"),
    ],
)
def test_dates_are_read_as_elasticsearch_reads_them(value, round_up, expected):
    assert parse_date(value, round_up=round_up) == datetime.fromisoformat(expected)


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
        where = translate_query(query, API_KEYS)
    except ValidationError:
        return
    ApiKey.objects.filter(where).count()


@FUZZ
@given(body=bodies)
def test_a_whole_query_request_only_ever_raises_validation_error(corpus, body):
    try:
        query = parse_api_key_query(body)
    except ValidationError:
        return
    total, page = search_rows(ApiKey.objects.all(), query)
    assert len(page) <= total


# ---------------------------------------------------------------------------------------------
# An independent oracle: generated queries over a fixed set of keys select exactly the keys that
# tests/query_oracle.py, a plain reading of Elasticsearch's semantics, selects.

W0 = datetime(2021, 6, 15, 10, 30, 0, 250_500, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (id, name, (username, realm), created, expiration, invalidated, metadata)
ORACLE_KEYS = [
    ("build", "ci-build", ("alice", "default_native"), W0, W0 + 10 * DAY, None,
     {"team": "ops", "env": {"tier": "prod"}, "n": 5}),
    # the same millisecond as ci-build
    ("deploy", "ci-deploy", ("alice", "default_native"), W0 + timedelta(microseconds=400), None, W0 + 2 * DAY,
     {"team": "dev", "flag": True}),
    ("prod", "Prod_Key%", ("bob", "default_file"), W0 + DAY, None, None, {}),
    ("cron", "cron?", ("bob", "default_file"), W0 + 2 * DAY, W0 - DAY, None, {"team": "ops", "n": "5"}),
    # another alice, in the other realm
    ("upper", "CI-Upper", ("alice", "default_file"), at("2021-06-16T00:00:00"), at("2099-01-01T00:00:00"),
     None, {"team": "Ops", "flag": "true"}),
    ("unicode", "ünïcode-ключ", ("carol", "default_native"), at("2021-06-16T23:59:59.999"), None, None,
     {"team": "ÜNÏ", "env": {"tier": "dev", "zone": "eu"}}),
    ("star", "a*b", ("carol", "default_native"), at("2021-07-01T00:00:00"), at("2021-06-16T12:00:00"),
     at("2021-07-02T00:00:00"), {"n": 10, "ratio": 2.5}),
    ("slash", "back\\slash", ("bob", "default_file"), at("2020-12-31T23:59:59.999"), None, None,
     {"note": ""}),
    ("space", "space name", ("alice", "default_native"), at("2021-06-15T10:30:00"),
     at("2021-06-15T10:30:00.999"), None, {"nested": {"deep": {"key": "v"}}}),
    ("ci", "ci", ("carol", "default_native"), at("2022-01-01T00:00:00"), at("2022-01-01T00:00:00"),
     at("2022-01-01T00:00:00"), {"x": None, "obj": {"a": None}}),
    ("caps", "ÉCOLE", ("alice", "default_native"), at("2021-06-15T10:30:00.250"), None, None,
     {"team": "école", "Mixed Case": "Yes"}),
]
ORACLE_DOCS = [
    oracle.document(key_id.ljust(20, "0"), name, username, realm, created, expiration, invalidated, metadata)
    for key_id, name, (username, realm), created, expiration, invalidated, metadata in ORACLE_KEYS
]


@pytest.fixture
def oracle_corpus(make_user, native_realm, file_realm):
    realms = {"default_native": native_realm, "default_file": file_realm}
    owners = {}
    for _, _, (username, realm), *_ in ORACLE_KEYS:
        if (username, realm) not in owners:
            owners[username, realm] = make_user(username, "manage_own_api_key", realm=realms[realm])
    ApiKey.objects.bulk_create(
        ApiKey(
            id=key_id.ljust(20, "0"), name=name, hash="x", owner=owners[owner], realm_name=owner[1],
            realm_type=realms[owner[1]].type, created=created, expiration=expiration, invalidated=invalidated,
            metadata=metadata,
        )
        for key_id, name, owner, created, expiration, invalidated, metadata in ORACLE_KEYS
    )


KEYWORD_FIELDS = [
    "name", "type", "username", "realm_name", "metadata.team", "metadata.env.tier", "metadata.env.zone",
    "metadata.n", "metadata.flag", "metadata.ratio", "metadata.note", "metadata.nested.deep.key",
    "metadata.Mixed Case", "metadata.missing",
    # objects and nulls: no value in a flattened field
    "metadata.env", "metadata.x", "metadata.obj", "metadata.obj.a", "metadata.nested",
]
DATE_FIELDS = ["creation", "expiration", "invalidation"]
KEYWORD_VALUES = [
    "ci-build", "ci", "CI", "ci-", "Prod_Key%", "prod_key%", "cron?", "CI-Upper", "ci-upper", "ünïcode-ключ",
    "ÜNÏCODE-КЛЮЧ", "a*b", "back\\slash", "space name", "ÉCOLE", "école", "École", "alice", "ALICE", "bob",
    "carol", "default_native", "default_file", "rest", "REST", "ops", "Ops", "OPS", "dev", "prod", "eu", "5",
    "10", "2.5", "true", "false", "", "ÜNÏ", "ünï", "v", "Yes", "yes", 5, 10, True, False,
]
PREFIXES = ["", "c", "C", "ci-", "CI-", "Pro", "pro", "ü", "Ü", "é", "É", "d", "de", "o", "O", "a*", "back\\",
            "t", "1", "2."]
PATTERNS = [
    "ci*", "*-*", "c?o*", "*\\?", "cron\\?", "cro\\??", "Prod_*", "Prod%", "*%", "a\\*b", "a*b", "*", "?", "",
    "back\\\\slash", "*\\\\*", "ü*", "Ü*", "*ключ", "*КЛЮЧ", "CI*", "c*", "*e", "o?s", "\\", "*\\", "??",
    "*.*", "é*", "É*", "[ci]*", "_*", "%",
]
MS0 = oracle.millis(W0)
DATE_VALUES = [
    MS0, MS0 - 1, MS0 + 1, oracle.millis(at("2021-06-16T00:00:00")), 0, str(MS0),
    "2021-06-15", "2021-06-16", "2021-06", "2021", "2022", "2021-06-15T10", "2021-06-15T10:30",
    "2021-06-15T10:30:00", "2021-06-15T10:30:00.250", "2021-06-15T10:30:00.250500Z",
    "2021-06-15T12:30:00.250+02:00", "2021-06-16T00:00:00Z", "2021-06-15||+1d", "2021-06-15||/d",
    "2021-06-15T10:30:00Z||/M", "2021-06-15||+1M/M", "2021-06-17||/w", "2021-06-15T10:30:00Z||-1h/h",
    "now", "now-1y/y", "now+1d", "now/d", "2099-01-01",
    # refused
    "yesterday", "2021-13-01", "2021-06-15||+1x", True,
]
BOOLEANS = [True, False, "true", "false", "yes"]
MINIMUM_SHOULD_MATCH = [0, 1, 2, 3, -1, "50%", "-50%", "100%", "0%", "34%", "-34%"]


def _with_case(value, case_insensitive):
    return {"value": value, "case_insensitive": case_insensitive} if case_insensitive is not None else value


def _range(field, values):
    return st.dictionaries(
        st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from(values), min_size=1, max_size=2
    ).map(lambda bounds: {"range": {field: bounds}})


case_option = st.sampled_from([None, True, False])
keyword_fields = st.sampled_from(KEYWORD_FIELDS)
oracle_leaves = st.one_of(
    st.just({"match_all": {}}),
    st.lists(st.sampled_from([doc["id"] for doc in ORACLE_DOCS] + ["nope"]), max_size=3).map(
        lambda values: {"ids": {"values": values}}
    ),
    st.builds(lambda f, v, ci: {"term": {f: _with_case(v, ci)}}, keyword_fields,
              st.sampled_from(KEYWORD_VALUES), case_option),
    st.builds(lambda f, v: {"match": {f: v}}, keyword_fields, st.sampled_from(KEYWORD_VALUES)),
    st.builds(lambda f, v: {"terms": {f: v}}, keyword_fields,
              st.lists(st.sampled_from(KEYWORD_VALUES), max_size=3)),
    st.builds(lambda f, v, ci: {"prefix": {f: _with_case(v, ci)}}, keyword_fields,
              st.sampled_from(PREFIXES + KEYWORD_VALUES[:20]), case_option),
    st.builds(lambda f, v, ci: {"wildcard": {f: _with_case(v, ci)}}, keyword_fields,
              st.sampled_from(PATTERNS) | st.text(alphabet="ci-*?\\%_ABo", max_size=5), case_option),
    keyword_fields.flatmap(lambda f: _range(f, KEYWORD_VALUES)),
    st.builds(lambda f: {"exists": {"field": f}},
              st.sampled_from(KEYWORD_FIELDS + DATE_FIELDS + ["invalidated"])),
    st.builds(lambda f, v: {"term": {f: v}}, st.sampled_from(DATE_FIELDS), st.sampled_from(DATE_VALUES)),
    st.builds(lambda f, v: {"match": {f: v}}, st.sampled_from(DATE_FIELDS), st.sampled_from(DATE_VALUES)),
    st.builds(lambda f, v: {"terms": {f: v}}, st.sampled_from(DATE_FIELDS),
              st.lists(st.sampled_from(DATE_VALUES), max_size=3)),
    st.sampled_from(DATE_FIELDS).flatmap(lambda f: _range(f, DATE_VALUES)),
    st.builds(lambda f, v: {"range": {f: {"from": v, "include_lower": False}}}, st.sampled_from(DATE_FIELDS),
              st.sampled_from(DATE_VALUES)),
    st.builds(lambda f, v: {"range": {f: {"to": v, "include_upper": False}}}, st.sampled_from(DATE_FIELDS),
              st.sampled_from(DATE_VALUES)),
    st.builds(lambda v: {"term": {"invalidated": v}}, st.sampled_from(BOOLEANS)),
    st.builds(lambda v: {"terms": {"invalidated": v}}, st.lists(st.sampled_from(BOOLEANS), max_size=2)),
    _range("invalidated", BOOLEANS),
    # refused by both: a prefix or wildcard on a date or a boolean
    st.builds(lambda q, f: {q: {f: "2"}}, st.sampled_from(["prefix", "wildcard"]),
              st.sampled_from(DATE_FIELDS + ["invalidated"])),
)
oracle_queries = st.recursive(
    oracle_leaves,
    lambda children: st.builds(
        lambda occurrences, minimum: {"bool": {**occurrences, **minimum}},
        st.dictionaries(
            st.sampled_from(["must", "filter", "should", "must_not"]),
            st.lists(children, min_size=1, max_size=3) | children,
            max_size=3,
        ),
        st.dictionaries(st.just("minimum_should_match"), st.sampled_from(MINIMUM_SHOULD_MATCH), max_size=1),
    ),
    max_leaves=6,
)
# The corpus is created once per test and only read by the examples.
ORACLE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def keyward_ids(query) -> set[str] | type[oracle.Refused]:
    try:
        where = translate_query(query, API_KEYS)
    except ValidationError:
        return oracle.Refused
    return set(ApiKey.objects.filter(where).values_list("id", flat=True))


def oracle_ids(query) -> set[str] | type[oracle.Refused]:
    try:
        return oracle.Evaluator(ORACLE_DOCS, oracle.millis(datetime.now(UTC))).matching(query)
    except oracle.Refused:
        return oracle.Refused


# Details worth checking on every run, whatever the generator draws.
ORACLE_EXAMPLES = [
    {"term": {"creation": "2021-06-15"}},
    {"term": {"creation": "2021-06"}},
    {"term": {"creation": "2021-06-15T10:30"}},
    {"terms": {"creation": ["2021-06-16", MS0, "2021-06-15T10:30:00Z"]}},
    {"match": {"expiration": "2021-06-15T10:30:00"}},
    {"range": {"creation": {"gt": "2021-06"}}},
    {"range": {"creation": {"lte": "2021-06-15T10:30"}}},
    {"range": {"expiration": {"gte": "now-1d/d", "lt": "2100"}}},
    {"term": {"name": {"value": "école", "case_insensitive": True}}},
    {"prefix": {"name": {"value": "é", "case_insensitive": True}}},
    {"wildcard": {"metadata.team": {"value": "ün*", "case_insensitive": True}}},
    {"wildcard": {"name": {"value": "CI-*", "case_insensitive": True}}},
    {"prefix": {"name": "ci"}},
    {"wildcard": {"name": "a\\*b"}},
    {"wildcard": {"name": "back\\\\*"}},
    {"range": {"name": {"gte": "Z", "lt": "é"}}},
    {"exists": {"field": "metadata.env"}},
    {"exists": {"field": "metadata.x"}},
    {"exists": {"field": "metadata.obj.a"}},
    {"exists": {"field": "metadata.note"}},
    {"bool": {"must_not": {"prefix": {"metadata.env": ""}}}},
    {"term": {"metadata.flag": True}},
    {"term": {"metadata.ratio": "2.5"}},
    {"term": {"username": "alice"}},
    {"bool": {"should": [{"term": {"username": "alice"}}, {"term": {"realm_name": "default_file"}}],
              "minimum_should_match": "-50%"}},
    {"bool": {"filter": {"term": {"invalidated": False}}, "must_not": {"exists": {"field": "expiration"}}}},
    {"range": {"invalidated": {"gt": True, "lt": "yes"}}},
    {"prefix": {"name": "CI"}},
    {"bool": {"should": [{"term": {"username": "alice"}}, {"term": {"realm_name": "default_file"}},
                         {"prefix": {"name": "c"}}], "minimum_should_match": -1}},
]


def with_examples(queries):
    def decorate(test):
        for query in queries:
            test = example(query=query)(test)
        return test

    return decorate


@ORACLE
@with_examples(ORACLE_EXAMPLES)
@given(query=oracle_queries)
def test_every_query_selects_what_elasticsearch_would(oracle_corpus, query):
    assert keyward_ids(query) == oracle_ids(query)


SORTABLE = [
    "name", "username", "realm_name", "creation", "expiration", "invalidation", "invalidated",
    "metadata.team", "metadata.n", "metadata.env", "metadata.missing",
]
oracle_sorts = st.lists(
    st.tuples(st.sampled_from(SORTABLE), st.booleans()),
    min_size=1,
    max_size=2,
    unique_by=lambda item: item[0],
)
DOCS_BY_ID = {doc["id"]: doc for doc in ORACLE_DOCS}


def search(query, sort, start, size):
    body = {"query": query, "sort": [{field: "desc" if descending else "asc"} for field, descending in sort],
            "from": start, "size": size}
    total, page = search_rows(ApiKey.objects.all(), parse_api_key_query(body))
    return total, [(key.id, values) for key, values in page]


@ORACLE
@example(query={"match_all": {}}, sort=[("expiration", False)], start=0, size=12)
@example(query={"match_all": {}}, sort=[("metadata.team", True), ("creation", False)], start=3, size=4)
@example(query={"match_all": {}}, sort=[("creation", False), ("name", False)], start=0, size=12)
@given(query=oracle_queries, sort=oracle_sorts, start=st.integers(0, 12), size=st.integers(0, 12))
def test_sorted_pages_hold_what_elasticsearch_would(oracle_corpus, query, sort, start, size):
    expected = oracle_ids(query)
    assume(expected is not oracle.Refused)

    total, everything = search(query, sort, 0, 100)
    page_total, page = search(query, sort, start, size)

    ids = [key_id for key_id, _ in everything]
    assert total == page_total == len(ids) == len(expected)
    assert set(ids) == expected
    docs = [DOCS_BY_ID[key_id] for key_id in ids]
    for before, after in zip(docs, docs[1:], strict=False):
        assert oracle.compare(before, after, sort) <= 0, (before["id"], after["id"])
    assert page == everything[start : start + size]
    for doc, (_, sort_values) in zip(docs, everything, strict=True):
        for (field, descending), value in zip(sort, sort_values, strict=True):
            if field != "invalidated":
                assert value == oracle.sort_value(doc, field, descending), field


@pytest.mark.parametrize("sort", [["creation", "name"], [{"creation": "desc"}, {"name": "desc"}]])
def test_search_after_one_key_at_a_time_visits_every_key_once(oracle_corpus, sort):
    """ci-build, ci-deploy and ÉCOLE are created within one millisecond: there the name orders them."""
    seen, after = [], None
    for _ in ORACLE_DOCS:
        body = {"sort": sort, "size": 1, **({"search_after": after} if after else {})}
        _, page = search_rows(ApiKey.objects.all(), parse_api_key_query(body))
        if not page:
            break
        (key, after), = page
        seen.append(key.id)
    assert sorted(seen) == sorted(DOCS_BY_ID)


@pytest.mark.xfail(strict=True, reason="metadata arrays are not searched element by element")
def test_a_metadata_array_matches_each_of_its_values(make_user):
    """Elasticsearch's flattened field indexes each value of an array."""
    owner = make_user("alice", "manage_own_api_key")
    ApiKey.objects.create(id="tags".ljust(20, "0"), name="tags", hash="x", owner=owner,
                          realm_name="default_native", realm_type="native", metadata={"tags": ["a", "b"]})
    assert ApiKey.objects.filter(translate_query({"term": {"metadata.tags": "b"}}, API_KEYS)).count() == 1
