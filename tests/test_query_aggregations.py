"""Aggregations and simple_query_string of the query API key API, computed in SQL, against the
independent reading of Elasticsearch's semantics in tests/query_oracle.py, over the keys of
tests/test_query_dsl.py; then the HTTP answers: Kibana's own request, typed_keys, filter_path, scoping
and each refusal in Elasticsearch's shape."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import example, given, settings
from hypothesis import strategies as st

from accounts.exceptions import ValidationError
from apikeys.aggregations import aggregate, parse_aggregations
from apikeys.models import ApiKey
from apikeys.query import parse_api_key_query
from tests import query_oracle as oracle
from tests.test_api_keys_get import assert_error
from tests.test_api_keys_query import keys, query  # noqa: F401 (a fixture)
from tests.test_query_dsl import (  # noqa: F401 (a fixture)
    DATE_FIELDS,
    DATE_VALUES,
    KEYWORD_VALUES,
    ORACLE,
    ORACLE_DOCS,
    keyward_ids,
    oracle_corpus,
    oracle_ids,
    oracle_leaves,
    with_examples,
)

pytestmark = pytest.mark.django_db

# Fields a bucket may group by in this corpus: single-valued everywhere (a metadata array is not one).
GROUP_FIELDS = [
    "name", "type", "username", "realm_name", "invalidated", "metadata.team", "metadata.n", "metadata.flag",
    "metadata.ratio", "metadata.env.tier", "metadata.missing", "metadata.env", *DATE_FIELDS,
]
SIZES = st.integers(1, 12)
# "now" differs between the two sides by the time between them.
DATES = [value for value in DATE_VALUES[:-4] if not str(value).startswith("now")]
RANGE_BOUNDS = st.one_of(st.none(), st.sampled_from(DATES))


def _terms(field, size):
    return {"terms": {"field": field, "size": size}}


metrics = st.one_of(
    st.builds(lambda f: {"cardinality": {"field": f}}, st.sampled_from(GROUP_FIELDS)),
    st.builds(lambda f: {"value_count": {"field": f}}, st.sampled_from(GROUP_FIELDS)),
)
leaf_aggregations = st.one_of(
    metrics,
    st.builds(_terms, st.sampled_from(GROUP_FIELDS), SIZES),
    st.builds(lambda f: {"missing": {"field": f}}, st.sampled_from(GROUP_FIELDS)),
    st.builds(lambda q: {"filter": q}, oracle_leaves),
    st.builds(
        lambda filters, named, other, keyed: {"filters": {
            "filters": {f"f{index}": q for index, q in enumerate(filters)} if named else filters,
            **({"other_bucket": True} if other else {}), "keyed": keyed,
        }},
        st.lists(oracle_leaves, min_size=1, max_size=3), st.booleans(), st.booleans(), st.booleans(),
    ),
    st.builds(
        lambda kind, field, ranges: {kind: {"field": field, "ranges": ranges}},
        st.just("date_range"), st.sampled_from(DATE_FIELDS),
        st.lists(st.builds(lambda low, high: {"from": low, "to": high}, RANGE_BOUNDS, RANGE_BOUNDS),
                 min_size=1, max_size=3),
    ),
    st.builds(
        lambda sources, size: {"composite": {"sources": sources, "size": size}},
        st.lists(st.sampled_from(GROUP_FIELDS), min_size=1, max_size=2, unique=True).flatmap(
            lambda fields: st.tuples(*[st.sampled_from(["asc", "desc"]) for _ in fields]).map(
                lambda orders: [{f"s{i}": {"terms": {"field": f, "order": o}}}
                                for i, (f, o) in enumerate(zip(fields, orders, strict=True))]
            )
        ),
        SIZES,
    ),
)
# A bucket aggregation with one leaf beneath it, or a leaf alone.
aggregations = st.dictionaries(
    st.sampled_from(["a", "b"]),
    st.one_of(
        leaf_aggregations,
        st.builds(lambda parent, child: {**parent, "aggs": {"sub": child}},
                  st.one_of(st.builds(_terms, st.sampled_from(GROUP_FIELDS), st.integers(1, 4)),
                            st.builds(lambda q: {"filter": q}, oracle_leaves)),
                  leaf_aggregations),
    ),
    min_size=1, max_size=2,
)


def keyward_aggregations(query, aggs, typed=False):
    try:
        parsed = parse_api_key_query({"query": query, "aggs": aggs})
    except ValidationError:
        return oracle.Refused
    return aggregate(ApiKey.objects.all(), parsed.where, parsed.aggregations, typed)


def oracle_aggregations(query, aggs, typed=False):
    evaluator = oracle.Evaluator(ORACLE_DOCS, oracle.millis(datetime.now(UTC)))
    try:
        matching = evaluator.matching(query)
        docs = [doc for doc in ORACLE_DOCS if doc["id"] in matching]
        return oracle.aggregate(evaluator, docs, aggs, typed)
    except oracle.Refused:
        return oracle.Refused


KIBANA_AGGREGATIONS = {
    "usernames": {"terms": {"field": "username"}},
    "types": {"terms": {"field": "type"}},
    "expired": {"filter": {"range": {"expiration": {"lte": "now"}}}},
    "managed": {"filters": {"filters": {
        "metadataBased": {"term": {"metadata.managed": True}},
        "namePrefixBased": {"prefix": {"name": {"value": "Alerting: "}}},
    }}},
}
AGGREGATION_EXAMPLES = [
    ({"match": {"invalidated": False}}, KIBANA_AGGREGATIONS),
    # ci-build and ci-deploy share a millisecond: one bucket of two
    ({"match_all": {}}, {"a": _terms("creation", 12)}),
    ({"match_all": {}}, {"a": {"composite": {"size": 4, "sources": [
        {"u": {"terms": {"field": "username"}}}, {"c": {"terms": {"field": "creation", "order": "desc"}}},
    ]}}}),
    ({"match_all": {}}, {"a": {**_terms("realm_name", 1),
                               "aggs": {"n": {"cardinality": {"field": "username"}}}}}),
    # names repeated by invalidated keys first, then the names of one key each, by name
    ({"match_all": {}}, {"a": {**_terms("name", 4), "aggs": {"s": {"filters": {
        "filters": {"gone": {"term": {"invalidated": True}}}, "other_bucket_key": "rest"}}}}}),
    ({"term": {"invalidated": False}}, {"a": _terms("name", 2)}),
    # the username twice
    ({"match_all": {}}, {"a": {"composite": {"sources": [
        {"u": {"terms": {"field": "username"}}}, {"v": {"terms": {"field": "username", "order": "desc"}}},
    ]}}}),
    # the keys of the usernames beyond the first, in sum_other_doc_count
    ({"match_all": {}}, {"a": _terms("username", 1)}),
    # two owners named alice, in two realms: one username
    ({"match_all": {}}, {"a": {"cardinality": {"field": "username"}}}),
    ({"prefix": {"name": "c"}}, {"a": {"cardinality": {"field": "username"}}}),
    ({"match_all": {}}, {"a": {"date_range": {
        "field": "expiration", "ranges": [{"to": "2021-07"}, {"from": "2021-07"}],
    }}}),
    ({"exists": {"field": "metadata.team"}}, {"a": _terms("metadata.team", 2)}),
    ({"match_all": {}}, {"a": {"filters": {
        "filters": [{"term": {"username": "bob"}}], "other_bucket_key": "o",
    }}}),
]


@ORACLE
@given(query=oracle_leaves, aggs=aggregations, typed=st.booleans())
@pytest.mark.usefixtures("oracle_corpus")
def test_every_aggregation_counts_what_elasticsearch_would(query, aggs, typed):
    assert keyward_aggregations(query, aggs, typed) == oracle_aggregations(query, aggs, typed)


@pytest.mark.parametrize(("query", "aggs"), AGGREGATION_EXAMPLES)
@pytest.mark.usefixtures("oracle_corpus")
def test_worked_examples_count_what_elasticsearch_would(query, aggs):
    expected = oracle_aggregations(query, aggs, typed=True)
    assert expected is not oracle.Refused
    assert keyward_aggregations(query, aggs, typed=True) == expected


EXPIRED = {"range": {"expiration": {"lte": "2022-01-01"}}}
COUNTS = {
    "expired": {"filter": EXPIRED, "aggs": {"teams": {"cardinality": {"field": "metadata.team"}}}},
    "status": {"filters": {"filters": {"gone": {"term": {"invalidated": True}}, "old": EXPIRED},
                           "other_bucket_key": "rest"}},
    "never": {"missing": {"field": "expiration"}, "aggs": {"n": {"value_count": {"field": "metadata.n"}}}},
    "when": {"date_range": {"field": "creation", "ranges": [{"to": "2021-06-15"}, {"from": "2021-06-15"}]}},
    "names": {"cardinality": {"field": "name"}},
    "expirations": {"value_count": {"field": "expiration"}},
}
# (parent, statements): sub-aggregations that are all counts are tallied by their parent's statement.
FOLDED = {
    "terms": ({"terms": {"field": "realm_name", "size": 5}, "aggs": COUNTS}, 1),
    "terms on a date": ({"terms": {"field": "expiration", "size": 20}, "aggs": COUNTS}, 1),
    "terms on metadata": ({"terms": {"field": "metadata.team", "size": 1}, "aggs": COUNTS}, 2),
    # alice owns keys in two realms: her owners' tallies add up
    "terms on username": ({"terms": {"field": "username", "size": 5}, "aggs": {
        key: value for key, value in COUNTS.items() if key not in ("expired", "names")}}, 1),
    "composite": ({"composite": {"size": 20, "sources": [{"u": {"terms": {"field": "username"}}},
                                                          {"t": {"terms": {"field": "metadata.env.tier"}}}]},
                   "aggs": COUNTS}, 1),
    # keys grouped by owner, then by username (alice's two owners make one group)
    "composite on username": ({"composite": {"size": 20, "sources": [
        {"u": {"terms": {"field": "username", "order": "desc"}}}, {"r": {"terms": {"field": "name"}}}]},
        "aggs": {key: value for key, value in COUNTS.items() if key not in ("expired", "names")}}, 1),
    "composite on username, after": ({"composite": {"size": 3, "after": {"t": "rest", "u": "a"},
        "sources": [{"t": {"terms": {"field": "type"}}}, {"u": {"terms": {"field": "username"}}}]},
        "aggs": {"never": COUNTS["never"]}}, 1),
    "filter": ({"filter": {"prefix": {"name": "c"}}, "aggs": COUNTS}, 1),
    "filters": ({"filters": {"filters": [{"term": {"username": "bob"}}, EXPIRED], "other_bucket": True},
                 "aggs": COUNTS}, 1),
    "date_range": ({"date_range": {"field": "expiration", "ranges": [{"to": "2022-01-01"}, {"from": "2021"}]},
                    "aggs": {"status": COUNTS["status"], "names": COUNTS["names"]}}, 1),
    "filter within terms": ({"terms": {"field": "type"}, "aggs": {"f": {
        "filter": {"term": {"username": "alice"}}, "aggs": {"s": COUNTS["status"]}}}}, 1),
    # distinct values do not add up over owners: one statement for each username
    "cardinality within terms on username": ({"terms": {"field": "username", "size": 5}, "aggs": {
        "names": COUNTS["names"]}}, 1 + 3),
    # a terms beneath runs for each bucket; the counts beside it are still tallied
    "terms within terms": ({"terms": {"field": "realm_name"}, "aggs": {
        "t": {"terms": {"field": "type"}}, **COUNTS}}, 1 + 2),
}


@pytest.mark.parametrize("query", [{"match_all": {}}, {"term": {"invalidated": False}}])
@pytest.mark.parametrize(("aggregation", "statements"), FOLDED.values(), ids=FOLDED.keys())
@pytest.mark.usefixtures("oracle_corpus")
def test_sub_aggregations_tallied_by_the_parents_statement_count_what_elasticsearch_would(
    query, aggregation, statements
):
    aggs = {"a": aggregation}
    expected = oracle_aggregations(query, aggs, typed=True)
    assert expected is not oracle.Refused
    with CaptureQueriesContext(connection) as captured:
        assert keyward_aggregations(query, aggs, typed=True) == expected
    if query == {"match_all": {}}:
        assert len(captured) == statements


# Invalidated keys may repeat a name; active ones may not.
GONE = datetime(2024, 1, 1, tzinfo=UTC)
REPEATED_NAMES = [("e", GONE), ("b", GONE), ("b", GONE), ("b", None), ("a", GONE), ("a", None), ("d", None),
                  ("c", None)]


@pytest.fixture
def repeated_names(make_user, native_realm):
    owner = make_user("rita", "manage_own_api_key")
    for index, (name, invalidated) in enumerate(REPEATED_NAMES):
        ApiKey.objects.create(
            id=f"repeated{index}".ljust(20, "0"), name=name, hash="x", owner=owner,
            realm_name=native_realm.name, realm_type=native_realm.type, invalidated=invalidated,
        )


@pytest.mark.parametrize(("size", "expected"), [
    (1, [("b", 3, 2)]),
    (3, [("b", 3, 2), ("a", 2, 1), ("c", 1, 0)]),
    (6, [("b", 3, 2), ("a", 2, 1), ("c", 1, 0), ("d", 1, 0), ("e", 1, 1)]),
])
@pytest.mark.usefixtures("repeated_names")
def test_terms_on_name_ranks_the_names_invalidated_keys_repeat_first_then_by_name(size, expected):
    aggs = {"a": {**_terms("name", size), "aggs": {"gone": {"filter": {"term": {"invalidated": True}}}}}}
    answer = keyward_aggregations({"match_all": {}}, aggs)["a"]
    buckets = [(bucket["key"], bucket["doc_count"], bucket["gone"]["doc_count"])
               for bucket in answer["buckets"]]
    assert buckets == expected
    assert answer["sum_other_doc_count"] == len(REPEATED_NAMES) - sum(count for _, count, _ in expected)


@pytest.mark.parametrize("sources", [
    [{"u": {"terms": {"field": "username"}}}, {"n": {"terms": {"field": "name", "order": "desc"}}}],
    [{"c": {"terms": {"field": "creation"}}}],
    [{"i": {"terms": {"field": "invalidated", "order": "desc"}}},
     {"t": {"terms": {"field": "metadata.team"}}}],
])
@pytest.mark.usefixtures("oracle_corpus")
def test_composite_pages_with_after_key_visit_every_group_once(sources):
    whole = {"a": {"composite": {"sources": sources, "size": 100}}}
    everything = oracle_aggregations({"match_all": {}}, whole)
    seen, after = [], None
    for _ in ORACLE_DOCS:
        composite = {"sources": sources, "size": 2, **({"after": after} if after else {})}
        page = keyward_aggregations({"match_all": {}}, {"a": {"composite": composite}})["a"]
        if not page["buckets"]:
            break
        seen += page["buckets"]
        after = page["after_key"]
    assert seen == everything["a"]["buckets"]


@pytest.mark.usefixtures("oracle_corpus")
def test_an_aggregation_is_one_statement_whatever_the_number_of_keys():
    parsed = parse_api_key_query({"aggs": KIBANA_AGGREGATIONS})
    with CaptureQueriesContext(connection) as statements:
        aggregate(ApiKey.objects.all(), None, parsed.aggregations)
    # usernames (keys by owner, added up by the owners' names), types, expired, managed
    assert len(statements) == 4


# ---------------------------------------------------------------------------------------------
# simple_query_string, against the oracle

WORDS = [word for word in KEYWORD_VALUES if isinstance(word, str) and word and not set(word) & set('"()|+~')]
WORDS += ["2021-06-15", "2021-06-16T00:00:00Z", "2021", "ci*", "c*", "ü*", "*", "a\\*b", "ci\\*"]
FIELD_CHOICES = [
    None, ["name"], ["name", "metadata.team"], ["user*"], ["*"], ["*name"], ["creation"], ["nope"],
    ["metadata"],
    ["name^2", "realm_name"], ["invalidated", "type"], ["metadata.*"], ["metadata.env.tier", "creation"],
]

words = st.sampled_from(WORDS)
phrases = st.sampled_from(["space name", "ci-build", "a*b"]).map(lambda text: f'"{text}"')
terms = st.one_of(words, words, phrases)
expressions = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.builds(lambda parts, glue: glue.join(parts), st.lists(inner, min_size=2, max_size=3),
                  st.sampled_from([" ", " | ", " + ", "+", "|", "  "])),
        inner.map(lambda text: "-" + text),
        inner.map(lambda text: f"({text})"),
    ),
    max_leaves=5,
)


@ORACLE
@with_examples([
    {"simple_query_string": {"query": "ci-build | cron? -bob"}},
    {"simple_query_string": {"query": "ci* + -alice", "fields": ["name", "username"]}},
    {"simple_query_string": {"query": "ops dev", "default_operator": "and", "fields": ["metadata.team"]}},
    {"simple_query_string": {"query": "ops Ops ÜNÏ", "minimum_should_match": 2, "fields": ["metadata"]}},
    {"simple_query_string": {"query": "2021-06-15", "fields": ["creation"]}},
    {"simple_query_string": {"query": "alice", "fields": ["creation"]}},
    {"simple_query_string": {"query": "alice", "fields": ["creation"], "lenient": True}},
    {"simple_query_string": {"query": '"space name"'}},
    {"simple_query_string": {"query": "true"}},
])
@given(query=st.builds(
    lambda text, fields, operator, lenient: {"simple_query_string": {
        "query": text, **({"fields": fields} if fields is not None else {}),
        **({"default_operator": operator} if operator else {}), **({"lenient": True} if lenient else {}),
    }},
    expressions, st.sampled_from(FIELD_CHOICES), st.sampled_from([None, "and", "OR"]), st.booleans(),
))
@pytest.mark.usefixtures("oracle_corpus")
def test_every_simple_query_string_selects_what_elasticsearch_would(query):
    assert keyward_ids(query) == oracle_ids(query)


@pytest.mark.usefixtures("oracle_corpus")
def test_a_simple_query_string_is_one_clause_of_a_bool():
    query = {"bool": {"filter": [{"simple_query_string": {"query": "ci*", "fields": ["name"]}}],
                      "must_not": {"term": {"username": "alice"}}}}
    assert keyward_ids(query) == oracle_ids(query) == {"ci".ljust(20, "0")}


@pytest.mark.parametrize(("body", "reason"), [
    ({"query": "ci~1"}, "fuzzy queries are not supported for API Key query"),
    ({"query": "(" * 31 + "ci"}, "maximum nested depth"),
    ({"query": "ci", "flags": "AND|SOMETIMES"}, "Unknown [simple_query_string] flag [SOMETIMES]"),
    ({"query": "ci", "default_operator": "xor"}, "default operator [xor] is not allowed"),
    ({"query": "ci", "fields": ["name^high"]}, "malformed boost"),
    ({"query": "ci", "analyzerr": "x"}, "[simple_query_string] query does not support [analyzerr]"),
    ({"fields": ["name"]}, "[simple_query_string] query text missing"),
    ({"query": "yesterday", "fields": ["expiration"]}, "failed to parse date field [yesterday]"),
])
def test_bad_simple_query_strings_are_refused(body, reason):
    with pytest.raises(ValidationError) as refused:
        parse_api_key_query({"query": {"simple_query_string": body}})
    assert reason in str(refused.value)


@pytest.mark.usefixtures("oracle_corpus")
def test_simple_query_string_searches_every_field_by_default_and_ignores_unknown_ones():
    assert keyward_ids({"simple_query_string": {"query": "bob"}}) == {
        key_id.ljust(20, "0") for key_id in ("prod", "cron", "slash")
    }
    assert keyward_ids({"simple_query_string": {"query": "ops", "fields": ["hash", "metadata"]}}) == {
        key_id.ljust(20, "0") for key_id in ("build", "cron")
    }
    assert keyward_ids({"simple_query_string": {"query": "ops", "fields": ["hash"]}}) == set()


# ---------------------------------------------------------------------------------------------
# Over HTTP

KIBANA_FILTER_PATH = ",".join([
    "total", "aggregations.usernames.buckets.key", "aggregations.types.buckets.key",
    "aggregations.invalidated.doc_count", "aggregations.expired.doc_count",
    "aggregations.managed.buckets.metadataBased.doc_count",
    "aggregations.managed.buckets.namePrefixBased.doc_count",
])


def test_kibanas_api_keys_page_request_is_answered_as_kibana_reads_it(client, users, make_api_key):
    """What Kibana's API keys page asks for its filters: owners, types, expired and managed keys."""
    admin, own = users["api_key_admin"], users["own_keys"]
    make_api_key(admin, "Alerting: rule 1")
    make_api_key(admin, "managed", metadata={"managed": True})
    make_api_key(own, "old", state="expired")
    make_api_key(own, "gone", state="invalidated")
    body = {"size": 0, "query": {"match": {"invalidated": False}}, "aggs": KIBANA_AGGREGATIONS}

    response = query(client, admin, body, params="?filter_path=" + KIBANA_FILTER_PATH)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "total": 3,
        "aggregations": {
            "usernames": {"buckets": [{"key": admin.username}, {"key": own.username}]},
            "types": {"buckets": [{"key": "rest"}]},
            "expired": {"doc_count": 1},
            "managed": {"buckets": {"metadataBased": {"doc_count": 1}, "namePrefixBased": {"doc_count": 1}}},
        },
    }


@pytest.mark.usefixtures("keys")
def test_size_zero_with_aggregations_counts_every_key_and_returns_none(client, users):
    body = {"size": 0, "aggs": {"n": {"value_count": {"field": "name"}}}}
    response = query(client, users["api_key_admin"], body)

    assert response.json() == {"total": 3, "count": 0, "api_keys": [], "aggregations": {"n": {"value": 3}}}


@pytest.mark.usefixtures("keys")
def test_typed_keys_names_each_aggregation_by_its_type_at_every_depth(client, users):
    aggs = {"owners": {"terms": {"field": "username"}, "aggs": {"made": {"date_range": {
        "field": "creation", "ranges": [{"to": "now"}]}}}}, "gone": {"missing": {"field": "invalidation"}}}

    answer = query(client, users["api_key_admin"], {"size": 0, "aggs": aggs}, params="?typed_keys").json()

    assert set(answer["aggregations"]) == {"sterms#owners", "missing#gone"}
    for bucket in answer["aggregations"]["sterms#owners"]["buckets"]:
        assert set(bucket) == {"key", "doc_count", "date_range#made"}


@pytest.mark.usefixtures("keys")
def test_aggregations_count_only_the_keys_the_caller_may_see(client, users):
    aggs = {"owners": {"terms": {"field": "username"}}, "all": {"global": {}},
            "active": {"filter": {"term": {"invalidated": False}}}}
    body = {"size": 0, "query": {"term": {"metadata.team": "ops"}}, "aggs": aggs}

    answer = query(client, users["own_keys"], body).json()["aggregations"]

    # The query matches own-b alone; global counts own-c too, and never admin-a.
    assert answer["owners"]["buckets"] == [{"key": users["own_keys"].username, "doc_count": 1}]
    assert answer["all"] == {"doc_count": 2}
    assert answer["active"] == {"doc_count": 1}


@pytest.mark.usefixtures("keys")
def test_get_api_keys_accepts_with_profile_uid_and_has_no_profile_to_add(client, users):
    from tests.test_api_keys_get import call

    path = "/_security/api_key?with_profile_uid=true&active_only"
    response = call(client, users["api_key_admin"], "GET", path)

    assert response.status_code == 200, response.content
    assert {key["name"] for key in response.json()["api_keys"]} == {"admin-a", "own-b"}
    assert all("profile_uid" not in key for key in response.json()["api_keys"])


REFUSED_AGGREGATIONS = {
    "a type Elasticsearch refuses for API keys": (
        {"x": {"avg": {"field": "creation"}}}, "illegal_argument_exception",
        "Unsupported API Keys agg [x] of type [avg]",
    ),
    "a pipeline": ({"x": {"max_bucket": {"buckets_path": "y>_count"}}}, "illegal_argument_exception",
                   "Unsupported pipeline aggregation of type [max_bucket]"),
    "an unknown type": ({"x": {"histogrm": {}}}, "parsing_exception", "Unknown aggregation type [histogrm]"),
    "a field outside the allowlist": (
        {"x": {"terms": {"field": "api_key_invalidated"}}}, "illegal_argument_exception",
        "Field [api_key_invalidated] is not allowed for API Key query or aggregation",
    ),
    "a field in a filter outside the allowlist": (
        {"x": {"filters": {"filters": {"f": {"wildcard": {"creator.realm": "w"}}}}}},
        "illegal_argument_exception", "Field [creator.realm] is not allowed for API Key query or aggregation",
    ),
    "a field pattern": ({"x": {"cardinality": {"field": "user*"}}}, "illegal_argument_exception",
                        "Field name pattern [user*] is not allowed for API Key query or aggregation"),
    "a script": ({"x": {"terms": {"script": "doc.x"}}}, "illegal_argument_exception",
                 "Unsupported script value source for [x] agg"),
    "a composite source that is no terms": (
        {"x": {"composite": {"sources": [{"h": {"histogram": {"field": "creation", "interval": 5}}}]}}},
        "illegal_argument_exception",
        "Unsupported value source type for [h] of composite agg [x].Only [terms] value sources are allowed.",
    ),
    "a metric with sub-aggregations": (
        {"x": {"cardinality": {"field": "name"}, "aggs": {"y": {"missing": {"field": "expiration"}}}}},
        "aggregation_initialization_exception",
        "Aggregator [x] of type [cardinality] cannot accept sub-aggregations",
    ),
    "a range on a keyword": (
        {"x": {"range": {"field": "name", "ranges": [{"to": 5}]}}}, "illegal_argument_exception",
        "Field [name] of type [keyword] is not supported for aggregation [range]",
    ),
    "a bad aggregation name": ({"a>b": {"missing": {"field": "name"}}}, "parsing_exception",
                               "Invalid aggregation name [a>b]"),
    "two types in one aggregation": ({"x": {"missing": {"field": "name"}, "terms": {"field": "name"}}},
                                     "parsing_exception", "Found two aggregation type definitions in [x]"),
    "a size of zero": ({"x": {"terms": {"field": "name", "size": 0}}}, "illegal_argument_exception",
                       "[size] must be greater than 0. Found [0] in [x]"),
    "a size that is no number": ({"x": {"terms": {"field": "name", "size": "ten"}}}, "parsing_exception",
                                 "[terms] failed to parse field [size]"),
    "an unknown terms option": ({"x": {"terms": {"field": "name", "sise": 3}}}, "parsing_exception",
                                "[terms] unknown field [sise]"),
    "metadata itself": ({"x": {"terms": {"field": "metadata"}}}, "illegal_argument_exception",
                        "Field [metadata] can be searched, but not sorted or aggregated"),
    "a bad date in a range": ({"x": {"date_range": {"field": "creation", "ranges": [{"from": "soon"}]}}},
                              "illegal_argument_exception", "failed to parse date field [soon]"),
    "a bad composite after": (
        {"x": {"composite": {"sources": [{"c": {"terms": {"field": "creation"}}}], "after": {"c": "soon"}}}},
        "illegal_argument_exception", "Failed to parse [after] value for source [c]",
    ),
}


@pytest.mark.parametrize(("aggs", "error_type", "reason"), REFUSED_AGGREGATIONS.values(),
                         ids=REFUSED_AGGREGATIONS.keys())
@pytest.mark.usefixtures("keys")
def test_unsupported_aggregations_get_elasticsearchs_error(client, users, aggs, error_type, reason):
    assert_error(query(client, users["api_key_admin"], {"aggs": aggs}), 400, error_type, reason)


@pytest.mark.usefixtures("keys")
def test_aggs_and_aggregations_together_are_refused(client, users):
    body = {"aggs": {}, "aggregations": {}}
    response = query(client, users["api_key_admin"], body)
    assert_error(response, 400, "parsing_exception", "Found two aggregation")


@pytest.mark.usefixtures("keys")
def test_too_many_buckets_with_sub_aggregations_of_their_own_are_refused(client, users, monkeypatch):
    monkeypatch.setattr("apikeys.aggregations.MAX_BUCKETS_WITH_SUBS", 2)
    # A terms beneath a terms runs its own statement for each bucket of its parent.
    aggs = {"x": {"terms": {"field": "name"}, "aggs": {"y": {"terms": {"field": "type"}}}}}

    assert_error(query(client, users["api_key_admin"], {"aggs": aggs}), 400, "too_many_buckets_exception",
                 "Trying to create too many buckets. Must be less than or equal to: [2]")


@pytest.mark.usefixtures("keys")
def test_sub_aggregations_counted_by_their_parents_statement_are_not_bound_by_it(client, users, monkeypatch):
    monkeypatch.setattr("apikeys.aggregations.MAX_BUCKETS_WITH_SUBS", 2)
    aggs = {"x": {"terms": {"field": "name"}, "aggs": {"y": {"missing": {"field": "expiration"}}}}}

    response = query(client, users["api_key_admin"], {"size": 0, "aggs": aggs})
    assert response.status_code == 200, response.content
    assert len(response.json()["aggregations"]["x"]["buckets"]) == 3


@settings(max_examples=200, deadline=None)
@example(aggs={"a": {"terms": 5}})
@example(aggs={"a": {"filters": {"filters": 3}}})
@example(aggs={"a": {"composite": {"sources": [1]}}})
@example(aggs={"a": {"date_range": {"field": "creation", "ranges": [5]}}})
@example(aggs={"a": {"terms": {"field": "name", "order": "up"}}})
@example(aggs={"b": {"missing": {"field": "name"}, "aggs": 2}})
@given(aggs=st.dictionaries(st.text(max_size=4), st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=6)
    | st.sampled_from(["name", "creation", "username", "metadata.x", "now", "asc"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["terms", "filters", "field", "ranges", "sources", "aggs", "size", "filter", "from",
                         "composite", "date_range", "name", "keyed", "other_bucket", "missing", "after",
                         "order", "to", "min_doc_count", "term", "cardinality"]),
        inner, max_size=3),
    max_leaves=8,
), max_size=2))
def test_any_aggregation_body_is_parsed_or_refused_with_validation_error(aggs):
    try:
        parse_aggregations(aggs)
    except ValidationError:
        pass


def test_filter_path_work_stays_bounded_however_many_double_wildcards_and_levels(monkeypatch):
    """A path of many ``**`` over a deeply nested body (metadata may nest 64 levels) must not make
    the work grow with the ways ``**`` can match: it did, exponentially, before each distinct rest
    of a path was kept once. Counted, not timed."""
    from restapi import filter_path

    comparisons = []
    real = filter_path._part_matches
    monkeypatch.setattr(
        filter_path, "_part_matches", lambda pattern, name: comparisons.append(1) or real(pattern, name)
    )
    body = leaf = {}
    for _ in range(20):
        leaf["a"] = {"x": 1}
        leaf = leaf["a"]

    kept = filter_path.filter_response({"api_keys": [{"metadata": body}]}, ".".join(["**"] * 6) + ".x")

    assert kept["api_keys"][0]["metadata"]["a"]["x"] == 1
    assert len(comparisons) < 5_000
