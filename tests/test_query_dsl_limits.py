"""The query API key API at the edges of its limits (SPEC §4, §7): no valid query answers 5xx.

Every request goes through the API as a superuser, over HTTPS, against five keys that differ in
every queryable field. Each leaf query of LEAVES names the keys it selects; a bool's keys follow
from its clauses' keys by Elasticsearch's rules, computed here in Python, so that generated trees
of any size and depth can be checked key by key. The cases reach MAX_CLAUSES clauses in one bool,
MAX_TERMS date values in one ``terms``, MAX_BOOL_DEPTH nested bools and the request body's depth
limit, and one step beyond each, which Elasticsearch refuses with a 4xx in its error shape.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apikeys.models import ApiKey
from restapi.query.dsl import MAX_BOOL_DEPTH, MAX_CLAUSES, MAX_DATE_RANGES, MAX_TERMS, epoch_millis
from restapi.wire import MAX_JSON_DEPTH
from tests.test_api_keys_get import assert_error, call

pytestmark = pytest.mark.django_db

PATH = "/_security/_query/api_key"
T0 = datetime(2024, 5, 1, 8, 0, 0, 250400, tzinfo=UTC)
DAY = timedelta(days=1)
# Stored without a fraction of a second, which a millisecond comparison must still find.
WHOLE_SECOND = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)
EVERY = frozenset({"alpha", "bravo", "Charlie_%", "delta", "echo"})
OCCURRENCES = ("must", "filter", "should", "must_not")
# Fixed seeds: CI runs the same cases every time; raise max_examples locally to search further.
EXAMPLES = settings(
    max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def key_id(name: str) -> str:
    return name.strip("_%").lower().ljust(20, "0")


# Each key's times, by query field; None where the key has none.
TIMES = {
    "creation": {"alpha": T0, "bravo": WHOLE_SECOND, "Charlie_%": T0 + DAY, "delta": T0 + 2 * DAY,
                 "echo": T0 + 3 * DAY},
    "expiration": {"alpha": T0 + 30 * DAY, "bravo": None, "Charlie_%": T0 - DAY, "delta": None,
                   "echo": T0 + 3 * DAY + timedelta(hours=1)},
    "invalidation": {"alpha": None, "bravo": T0 + 2 * DAY, "Charlie_%": None, "delta": None, "echo": None},
}
METADATA = {
    "alpha": {"team": "ops", "tier": "1", "env": {"region": "eu"}},
    "bravo": {"team": "dev"},
    "Charlie_%": {},
    "delta": {"team": "ops", "env": {"region": "us"}, "n": 5},
    "echo": {"tier": "2"},
}


def other_millis(count: int) -> list[int]:
    """Milliseconds of 1970, far from every key's times."""
    return list(range(count))


# Leaf queries over every kind of field, and the keys each selects.
LEAVES = {
    "term on name": ({"term": {"name": "alpha"}}, {"alpha"}),
    "match on name": ({"match": {"name": {"query": "delta"}}}, {"delta"}),
    "term on name in any case": ({"term": {"name": {"value": "CHARLIE_%", "case_insensitive": True}}},
                                 {"Charlie_%"}),
    "terms on name": ({"terms": {"name": ["bravo", "echo", "zulu"]}}, {"bravo", "echo"}),
    "prefix on name": ({"prefix": {"name": "Ch"}}, {"Charlie_%"}),
    "wildcard on name": ({"wildcard": {"name": "*a"}}, {"alpha", "delta"}),
    "wildcard with ?": ({"wildcard": {"name": {"value": "?ravo"}}}, {"bravo"}),
    "term on username": ({"term": {"username": "bob"}}, {"Charlie_%", "delta"}),
    "prefix on username": ({"prefix": {"username": "al"}}, {"alpha", "bravo"}),
    "terms on username": ({"terms": {"username": ["elastic", "nobody"]}}, {"echo"}),
    "term on realm_name": ({"term": {"realm_name": "default_file"}}, {"Charlie_%", "delta"}),
    "term on type": ({"term": {"type": "rest"}}, EVERY),
    "term on creation": ({"term": {"creation": epoch_millis(T0)}}, {"alpha"}),
    "term on a whole second": ({"term": {"creation": "2024-05-01T09:00:00Z"}}, {"bravo"}),
    "terms on creation, many": (
        {"terms": {"creation": [epoch_millis(T0), epoch_millis(WHOLE_SECOND), *other_millis(100)]}},
        {"alpha", "bravo"},
    ),
    "range on creation": (
        {"range": {"creation": {"gte": epoch_millis(T0 + DAY)}}},
        {"Charlie_%", "delta", "echo"},
    ),
    "range on expiration": ({"range": {"expiration": {"lt": epoch_millis(T0)}}}, {"Charlie_%"}),
    "terms on expiration, many": (
        {"terms": {"expiration": [epoch_millis(T0 + 30 * DAY), *other_millis(100)]}},
        {"alpha"},
    ),
    "exists expiration": ({"exists": {"field": "expiration"}}, {"alpha", "Charlie_%", "echo"}),
    "range on invalidation": ({"range": {"invalidation": {"gte": "2024-05-01"}}}, {"bravo"}),
    "exists invalidation": ({"exists": {"field": "invalidation"}}, {"bravo"}),
    "term on invalidated": ({"term": {"invalidated": True}}, {"bravo"}),
    "term on not invalidated": ({"term": {"invalidated": "false"}}, EVERY - {"bravo"}),
    "term on metadata": ({"term": {"metadata.team": "ops"}}, {"alpha", "delta"}),
    "term on a metadata number": ({"term": {"metadata.n": 5}}, {"delta"}),
    "prefix on nested metadata": ({"prefix": {"metadata.env.region": "e"}}, {"alpha"}),
    "wildcard on nested metadata in any case": (
        {"wildcard": {"metadata.env.region": {"value": "E*", "case_insensitive": True}}},
        {"alpha"},
    ),
    "wildcard on metadata in any case": (
        {"wildcard": {"metadata.team": {"value": "O*", "case_insensitive": True}}},
        {"alpha", "delta"},
    ),
    "range on metadata": ({"range": {"metadata.tier": {"gt": "1"}}}, {"echo"}),
    "exists metadata": ({"exists": {"field": "metadata.tier"}}, {"alpha", "echo"}),
    "ids": ({"ids": {"values": [key_id("alpha"), "missing"]}}, {"alpha"}),
    "match_all": ({"match_all": {}}, EVERY),
}
SELECTED = {json.dumps(query, sort_keys=True): frozenset(names) for query, names in LEAVES.values()}


@pytest.fixture
def keys(users, make_user, file_realm):
    alice = make_user("alice", "manage_own_api_key")
    bob = make_user("bob", "manage_own_api_key", realm=file_realm)
    owners = {"alpha": alice, "bravo": alice, "Charlie_%": bob, "delta": bob, "echo": users["superuser"]}
    ApiKey.objects.bulk_create(
        ApiKey(
            id=key_id(name),
            name=name,
            hash="x",
            owner=owner,
            realm_name=owner.realm.name,
            realm_type=owner.realm.type,
            created=TIMES["creation"][name],
            expiration=TIMES["expiration"][name],
            invalidated=TIMES["invalidation"][name],
            metadata=METADATA[name],
        )
        for name, owner in owners.items()
    )


@pytest.fixture
def superuser_client(client, users, keys):
    client.force_login(users["superuser"])
    return client


def send(client, query: dict):
    return call(client, None, "POST", PATH, {"query": query, "size": 100})


def names(response) -> set[str]:
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["total"] == body["count"] == len(body["api_keys"])
    return {key["name"] for key in body["api_keys"]}


# ---------------------------------------------------------------------------------------------
# What a tree of bools selects, by Elasticsearch's rules


def clauses(body: dict, occurrence: str) -> list:
    found = body.get(occurrence, [])
    return found if isinstance(found, list) else [found]


def minimum_should_match(value, optional: int, has_required: bool) -> int:
    if value is None:
        return 0 if has_required else 1
    text = str(value)
    number = int(text.strip("-%"))
    count = optional * number // 100 if text.endswith("%") else number
    return max(0, optional - count if text.startswith("-") else count)


def millis(value) -> int:
    return value if isinstance(value, int) else epoch_millis(datetime.fromisoformat(value))


def selected(query: dict) -> frozenset:
    """The keys ``query`` selects: a leaf's from LEAVES, or by its values if it lists times or ids;
    a bool's from its clauses'."""
    (kind, body), = query.items()
    if kind == "terms" and set(body) <= set(TIMES):
        (field, values), = body.items()
        wanted = {millis(value) for value in values}
        return frozenset(
            name for name, moment in TIMES[field].items() if moment and epoch_millis(moment) in wanted
        )
    if kind == "ids":
        return frozenset(name for name in EVERY if key_id(name) in body["values"])
    if kind != "bool":
        return SELECTED[json.dumps(query, sort_keys=True)]
    keys = set(EVERY)
    for clause in clauses(body, "must") + clauses(body, "filter"):
        keys &= selected(clause)
    for clause in clauses(body, "must_not"):
        keys -= selected(clause)
    should = [selected(clause) for clause in clauses(body, "should")]
    has_required = bool(clauses(body, "must") or clauses(body, "filter"))
    needed = minimum_should_match(body.get("minimum_should_match"), len(should), has_required)
    if should and needed:
        keys = {key for key in keys if sum(key in matched for matched in should) >= needed}
    return frozenset(keys)


def measure(query: dict) -> tuple[int, int, int]:
    """``(clauses, terms, bool depth)``: every query inside a bool is a clause; terms and ids values
    are terms."""
    (kind, body), = query.items()
    if kind == "terms":
        return 0, len(next(iter(body.values()))), 0
    if kind == "ids":
        return 0, len(body["values"]), 0
    if kind != "bool":
        return 0, 0, 0
    total = [0, 0, 1]
    for occurrence in OCCURRENCES:
        for clause in clauses(body, occurrence):
            count, terms, depth = measure(clause)
            total = [total[0] + count + 1, total[1] + terms, max(total[2], depth + 1)]
    return tuple(total)


def json_depth(value) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max((json_depth(child) for child in children), default=0)


def assert_answered_as_elasticsearch_would(response, query: dict) -> None:
    """Each limit, in the order the server checks them, then the keys."""
    body = {"query": query, "size": 100}
    clause_count, terms, depth = measure(query)
    too_many = clause_count > MAX_CLAUSES or terms > MAX_TERMS
    if len(json.dumps(body)) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        assert_error(response, 413, "content_too_long_exception")
    elif json_depth(body) > MAX_JSON_DEPTH:
        assert_error(response, 400, "parse_exception", f"nested deeper than {MAX_JSON_DEPTH} levels")
    # Past both limits, the translation names whichever it meets first.
    elif depth > MAX_BOOL_DEPTH and (not too_many or b"max_nested_depth" in response.content):
        assert_error(response, 400, "illegal_argument_exception", "[indices.query.bool.max_nested_depth]")
    elif too_many:
        assert_error(response, 400, "too_many_clauses", f"at most [{MAX_CLAUSES}] clauses")
    else:
        assert names(response) == selected(query)


# ---------------------------------------------------------------------------------------------
# The cases as reported, and each limit exactly


@pytest.mark.parametrize(("query", "expected"), LEAVES.values(), ids=LEAVES.keys())
def test_each_leaf_selects_the_keys_written_beside_it(superuser_client, query, expected):
    assert names(send(superuser_client, query)) == expected


def should_with_fillers(count: int, meaningful: list[dict]) -> list[dict]:
    """``count`` should clauses: ``meaningful`` spread evenly among terms that match no key."""
    clauses = [{"term": {"name": f"absent-{number}"}} for number in range(count - len(meaningful))]
    for position, clause in enumerate(meaningful):
        clauses.insert(position * count // len(meaningful), clause)
    return clauses


TWO_OF_FOUR = [
    {"term": {"name": "alpha"}},  # alpha
    {"term": {"name": "bravo"}},  # bravo
    {"term": {"metadata.team": "ops"}},  # alpha, delta
    {"term": {"username": "bob"}},  # Charlie_%, delta
]


@pytest.mark.parametrize(
    ("count", "minimum"),
    [(100, 2), (100, "2%"), (500, 2), (500, -498), (MAX_CLAUSES, 2), (MAX_CLAUSES, "-1022")],
)
def test_minimum_should_match_over_hundreds_of_should_clauses_finds_the_keys_matching_enough(
    superuser_client, count, minimum
):
    """The case that answered 500. Two clauses match alpha, two delta, one each bravo and
    Charlie_%; all the others match nothing."""
    body = {"bool": {"should": should_with_fillers(count, TWO_OF_FOUR), "minimum_should_match": minimum}}

    assert names(send(superuser_client, body)) == {"alpha", "delta"}


def test_one_bool_may_hold_max_clauses_clauses_and_not_one_more(superuser_client):
    at_limit = {"bool": {"should": should_with_fillers(MAX_CLAUSES, TWO_OF_FOUR), "minimum_should_match": 1}}
    beyond = {"bool": {"should": should_with_fillers(MAX_CLAUSES + 1, TWO_OF_FOUR)}}

    assert names(send(superuser_client, at_limit)) == EVERY - {"echo"}
    assert_error(send(superuser_client, beyond), 400, "too_many_clauses", f"at most [{MAX_CLAUSES}] clauses")


@pytest.mark.parametrize(
    ("occurrence", "clause", "expected"),
    [
        ("must", {"term": {"type": "rest"}}, EVERY),
        ("filter", {"prefix": {"username": "al"}}, {"alpha", "bravo"}),
        ("must_not", {"term": {"metadata.team": "ops"}}, {"bravo", "Charlie_%", "echo"}),
        ("must_not", {"range": {"expiration": {"lt": epoch_millis(T0)}}}, EVERY - {"Charlie_%"}),
        ("should", {"term": {"invalidated": True}}, {"bravo"}),
    ],
)
def test_every_occurrence_takes_max_clauses_clauses(superuser_client, occurrence, clause, expected):
    """SQLite refuses a chain of 1,000 ANDs or ORs, so that is not the SQL of one occurrence;
    must_not still selects the keys that lack the field."""
    assert names(send(superuser_client, {"bool": {occurrence: [clause] * MAX_CLAUSES}})) == expected


@pytest.mark.parametrize("field", ["creation", "expiration", "invalidation"])
@pytest.mark.parametrize("occurrence", ["filter", "must_not"])
def test_terms_on_a_date_takes_max_terms_values(superuser_client, field, occurrence):
    """Whole milliseconds, a time stored without a fraction of a second among them; keys without
    the time match no value, and so do match must_not."""
    times = TIMES[field]
    values = [epoch_millis(moment) for moment in times.values() if moment]
    body = {"bool": {occurrence: {"terms": {field: values + other_millis(MAX_TERMS - len(values))}}}}
    dated = {name for name, moment in times.items() if moment}

    assert names(send(superuser_client, body)) == (dated if occurrence == "filter" else EVERY - dated)
    body["bool"][occurrence]["terms"][field].append(0)
    assert_error(send(superuser_client, body), 400, "too_many_clauses", f"and [{MAX_TERMS}] terms")


def nested(depth: int, innermost: dict) -> dict:
    """``depth`` bools, each the must of the one around it, in the fewest levels of JSON."""
    query = innermost
    for _ in range(depth):
        query = {"bool": {"must": query}}
    return query


def test_bools_nest_to_max_bool_depth_and_one_more_is_refused(superuser_client):
    assert names(send(superuser_client, nested(MAX_BOOL_DEPTH - 1, {"bool": {}}))) == EVERY
    assert_error(
        send(superuser_client, nested(MAX_BOOL_DEPTH, {"bool": {}})),
        400,
        "illegal_argument_exception",
        f"[indices.query.bool.max_nested_depth] ({MAX_BOOL_DEPTH})",
    )


def test_a_body_nested_to_the_depth_limit_is_read_and_one_level_more_is_refused(superuser_client):
    """{"query": ...} and the term's field and value take four levels; the bools take the rest."""
    depth = (MAX_JSON_DEPTH - 4) // 2
    at_limit = {"bool": {"must_not": nested(depth - 1, {"term": {"name": "echo"}})}}
    beyond = {"bool": {"must_not": nested(depth - 1, {"term": {"name": {"value": "echo"}}})}}
    assert json_depth({"query": at_limit, "size": 100}) == MAX_JSON_DEPTH

    assert names(send(superuser_client, at_limit)) == EVERY - {"echo"}
    assert_error(
        send(superuser_client, beyond), 400, "parse_exception", f"nested deeper than {MAX_JSON_DEPTH} levels"
    )


def deepest(step) -> dict:
    """``step`` applied as often as the body's depth limit and the clause limit allow."""
    query = LEAVES["wildcard on nested metadata in any case"][0]
    while True:
        deeper = step(query)
        if json_depth({"query": deeper, "size": 100}) > MAX_JSON_DEPTH or measure(deeper)[0] > MAX_CLAUSES:
            return query
        query = deeper


OPS = {"term": {"metadata.team": "ops"}}
DEEPEST = {
    # SQLite parses these with a stack of 100 tokens; Django's SQL for them kept more pending.
    "minimum_should_match": lambda query: {"bool": {"should": [OPS, query, OPS], "minimum_should_match": 2}},
    "must_not beside filter": lambda query: {"bool": {"filter": OPS, "must_not": query}},
    "minimum_should_match of must_not": lambda query: {
        "bool": {"should": [{"bool": {"must_not": query}}, OPS, OPS], "minimum_should_match": 2}
    },
    "should and must in turn": lambda query: {
        "bool": {"must": OPS, "should": {"bool": {"should": [OPS, query]}}}
    },
    "two deep branches": lambda query: {
        "bool": {"should": [{"bool": {"must_not": [query, OPS]}}, query], "minimum_should_match": "-50%"}
    },
}


@pytest.mark.parametrize("step", DEEPEST.values(), ids=DEEPEST.keys())
def test_the_deepest_bodies_of_each_shape_are_answered(superuser_client, step):
    query = deepest(step)
    assert names(send(superuser_client, query)) == selected(query)


# ---------------------------------------------------------------------------------------------
# Generated trees: every one answered as Elasticsearch would, none with a 5xx

leaves = st.sampled_from([query for query, _ in LEAVES.values()])
minimums = st.integers(-3, 3) | st.sampled_from(["-1", "0%", "34%", "-34%", "50%", "-50%", "100%", "200%"])


def bools(children):
    occurrence = st.lists(children, max_size=3) | children
    return st.builds(
        lambda occurrences, minimum: {"bool": {**occurrences, **minimum}},
        st.fixed_dictionaries({}, optional=dict.fromkeys(OCCURRENCES, occurrence)),
        st.fixed_dictionaries({}, optional={"minimum_should_match": minimums}),
    )


def all_bools(query: dict) -> list[dict]:
    """The bodies of the bools in ``query``, its own first."""
    (kind, body), = query.items()
    if kind != "bool":
        return []
    found = [body]
    for occurrence in OCCURRENCES:
        for clause in clauses(body, occurrence):
            found += all_bools(clause)
    return found


@st.composite
def trees(draw) -> dict:
    """A random tree of bools, and in one of its bools one leaf repeated, so that the whole holds
    a few clauses, exactly MAX_CLAUSES, one more, or thousands."""
    tree = draw(bools(st.recursive(leaves, bools, max_leaves=8)))
    target = draw(st.sampled_from([0, 100, MAX_CLAUSES, MAX_CLAUSES + 1, 3 * MAX_CLAUSES]))
    body = draw(st.sampled_from(all_bools(tree)))
    occurrence = draw(st.sampled_from(OCCURRENCES))
    body[occurrence] = clauses(body, occurrence) + [draw(leaves)] * max(0, target - measure(tree)[0])
    return tree


@EXAMPLES
@given(tree=trees())
def test_generated_trees_of_every_clause_get_elasticsearchs_answer(superuser_client, tree):
    assert_answered_as_elasticsearch_would(send(superuser_client, tree), tree)


@st.composite
def chains(draw) -> dict:
    """Bools nested one in another, to MAX_BOOL_DEPTH and beyond, to the body's depth limit and
    beyond: a nested bool is the only clause of its occurrence (two levels of JSON) or one of a
    list (three)."""
    query = draw(leaves)
    # Most chains fit the body's depth limit only without lists.
    with_lists = draw(st.sampled_from([False, False, True]))
    depths = [1, 2, 5, 20, MAX_BOOL_DEPTH - 1, MAX_BOOL_DEPTH, MAX_BOOL_DEPTH, MAX_BOOL_DEPTH + 1]
    for _ in range(draw(st.sampled_from(depths))):
        occurrence, other = draw(st.permutations(OCCURRENCES))[:2]
        siblings = draw(st.lists(leaves, max_size=2))
        if with_lists and draw(st.booleans()):
            body = {occurrence: [*siblings, query] if draw(st.booleans()) else [query, *siblings]}
        else:
            body = {occurrence: query, **({other: siblings} if siblings else {})}
        body.update(draw(st.fixed_dictionaries({}, optional={"minimum_should_match": minimums})))
        query = {"bool": body}
    return query


@EXAMPLES
@given(chain=chains())
def test_generated_deep_chains_get_elasticsearchs_answer(superuser_client, chain):
    assert_answered_as_elasticsearch_would(send(superuser_client, chain), chain)


def iso(value: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
    return moment.isoformat(timespec="milliseconds")


@st.composite
def long_lists(draw) -> dict:
    """``terms`` on a date, or ``ids``, with up to MAX_TERMS values and one more, in any position."""
    field = draw(st.sampled_from([*TIMES, "ids"]))
    names = draw(st.sets(st.sampled_from(sorted(EVERY))))
    count = draw(st.sampled_from([MAX_DATE_RANGES + 1, 1000, MAX_TERMS, MAX_TERMS + 1]))
    if field == "ids":
        values = [key_id(name) for name in names]
        leaf = {"ids": {"values": values + [f"missing-{n}" for n in range(count - len(values))]}}
    else:
        values = [epoch_millis(TIMES[field][name]) for name in names if TIMES[field][name]]
        values += other_millis(count - len(values))
        if draw(st.booleans()):
            values = [iso(value) for value in values]
        leaf = {"terms": {field: values}}
    occurrence = draw(st.sampled_from([None, *OCCURRENCES]))
    return leaf if occurrence is None else {"bool": {occurrence: [leaf, *draw(st.lists(leaves, max_size=2))]}}


@settings(EXAMPLES, max_examples=20)
@given(query=long_lists())
def test_generated_long_lists_of_times_and_ids_get_elasticsearchs_answer(superuser_client, query):
    assert_answered_as_elasticsearch_would(send(superuser_client, query), query)
