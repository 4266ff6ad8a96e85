"""Name patterns supplied by users (SPEC §3): Elasticsearch's wildcard patterns and ``/regex/`` in
Lucene's RegExp syntax, matched by RE2 in linear time; what RE2 cannot express is refused with a
400 that says why."""

import base64
import itertools
import json
import signal
from contextlib import contextmanager

import pytest

from accounts.models import Role
from accounts.patterns import (
    MAX_REGEX_LENGTH,
    NamePatterns,
    PatternError,
    compile_pattern,
    covers,
    lucene_to_re2,
)
from accounts.privileges import PrivilegeSet
from apikeys.credentials import encode_credential

BACKTRACKING = "/(a+)+b/"
HAS_PRIVILEGES = "/_security/user/_has_privileges"
HANG_BOUND = 20  # seconds; Python's backtracking re needs hours for the names below


def matches(pattern: str, name: str) -> bool:
    return NamePatterns([pattern]).matches(name)


@contextmanager
def finishes_within(seconds: int):
    """Fail instead of hanging: Python's ``re`` checks for signals while it backtracks, so the alarm
    interrupts a catastrophic match that a thread's join could not (the match holds the GIL)."""

    def interrupt(signum, frame):
        raise AssertionError(f"still matching after {seconds} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- what Lucene's syntax means ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        # literals, and the whole name only
        ("/logs/", "logs", True),
        ("/logs/", "logs-1", False),
        ("/logs/", "my-logs", False),
        ("/ogs/", "logs", False),
        # ^ and $ are ordinary characters
        ("/^logs$/", "^logs$", True),
        ("/^logs$/", "logs", False),
        # . is any one character, newlines and characters outside the BMP included
        ("/l.gs/", "logs", True),
        ("/l.gs/", "lgs", False),
        ("/l.gs/", "l\ngs", True),
        ("/l.gs/", "l\U0001f600gs", True),
        # classes, ranges, negation, and characters literal inside a class
        ("/logs-[0-9a-f]/", "logs-c", True),
        ("/logs-[0-9a-f]/", "logs-g", False),
        ("/logs-[^0-9]/", "logs-x", True),
        ("/logs-[^0-9]/", "logs-7", False),
        ("/[.]/", ".", True),
        ("/[.]/", "x", False),
        ("/[]a]/", "]", True),
        ("/[-a]/", "-", True),
        ("/[\\]]/", "]", True),
        ("/[\\\\-a]/", "-", True),
        # predefined classes, ASCII only as in Lucene
        ("/logs-\\d+/", "logs-2024", True),
        ("/logs-\\d+/", "logs-x", False),
        ("/\\w+/", "log_s9", True),
        ("/\\w/", "é", False),
        ("/\\W/", "é", True),
        ("/\\s/", "\t", True),
        ("/\\s/", "\f", False),
        ("/\\S/", "x", True),
        ("/\\D/", "5", False),
        # repeats, stacked as Lucene stacks them
        ("/a?b/", "b", True),
        ("/a*b/", "aaab", True),
        ("/a+b/", "b", False),
        ("/a{3}/", "aaa", True),
        ("/a{3}/", "aaaa", False),
        ("/a{2,}/", "aaaaa", True),
        ("/a{2,3}/", "a", False),
        ("/a{2,3}/", "aaa", True),
        ("/a+?/", "", True),
        ("/a**/", "aa", True),
        # union, grouping, the empty group
        ("/logs|metrics/", "metrics", True),
        ("/(logs|metrics)-1/", "logs-1", True),
        ("/(logs|metrics)-1/", "logs", False),
        ("/a()b/", "ab", True),
        ("/(ab)+/", "abab", True),
        ("/(ab)+/", "aba", False),
        # quoted strings are literal
        ('/"logs.*"/', "logs.*", True),
        ('/"logs.*"/', "logs-1", False),
        ('/a""b/', "ab", True),
        # @ is any string, # is no string at all
        ("/logs-@/", "logs-anything\n", True),
        ("/@/", "", True),
        ("/#/", "", False),
        ("/#|logs/", "logs", True),
        # numeric intervals: same widths fix the width, different widths allow leading zeros
        ("/logs-<1-12>/", "logs-7", True),
        ("/logs-<1-12>/", "logs-007", True),
        ("/logs-<1-12>/", "logs-13", False),
        ("/logs-<01-12>/", "logs-07", True),
        ("/logs-<01-12>/", "logs-7", False),
        ("/logs-<12-01>/", "logs-12", True),
        ("/<0-2147483647>/", "2147483647", True),
        # escapes
        ("/logs\\.1/", "logs.1", True),
        ("/logs\\.1/", "logsx1", False),
        ("/a\\*/", "a*", True),
        ("/a\\\\b/", "a\\b", True),
        ('/\\"/', '"', True),
        # where Lucene reads an operator character as a literal one
        ("/*/", "*", True),
        ("/&a/", "&a", True),
        ("/a|)/", ")", True),
        ("/{1}/", "{1}", True),
        ("/a}/", "a}", True),
        ("/a]/", "a]", True),
        # the empty regex matches the empty name
        ("//", "", True),
        ("//", "a", False),
    ],
)
def test_lucene_regex_syntax(pattern, name, expected):
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "anything\nat all", True),
        ("logs-*", "logs-", True),
        ("logs-*", "xlogs-1", False),
        ("log?", "logs", True),
        ("log?", "log", False),
        ("log?", "log\U0001f600", True),
        ("logs[1]", "logs[1]", True),
        ("logs[1]", "logs1", False),
        ("logs\\*", "logs\\-1", True),
        ("logs.*", "logs.1", True),
        ("logs.*", "logsx1", False),
        ("a+b", "a+b", True),
        ("a+b", "aab", False),
        ("^logs$", "^logs$", True),
        ("(a|b)", "(a|b)", True),
        ("(a|b)", "a", False),
        ("/", "/", True),
        ("/logs", "/logs", True),
        ("*a" * 30 + "b", "a" * 100_000, False),
    ],
)
def test_wildcard_syntax_keeps_only_star_and_question_mark(pattern, name, expected):
    assert matches(pattern, name) is expected


@pytest.mark.parametrize("pattern", ["*", "?", "\ud800*", "/./", "/[^a]/", "/\ud800/"])
def test_names_with_a_lone_surrogate_are_matched_as_one_character(pattern):
    assert matches(pattern, "\ud800")


def test_many_patterns_match_when_any_does():
    names = NamePatterns(["logs", "metrics-*", "/audit-<1-9>/", "/(/"])

    assert [names.matches(name) for name in ("logs", "metrics-x", "audit-3", "audit-10", "(")] == [
        True, True, True, False, False
    ]


def test_wildcard_patterns_of_thousands_of_characters_still_match():
    pattern = "logs-" + "?" * 1000 + "*" + "x" * 5000

    assert matches(pattern, "logs-" + "é" * 1200 + "x" * 5000)
    assert not matches(pattern, "logs-" + "é" * 999 + "x" * 5000)


def in_lucene_interval(text: str, interval: str) -> bool:
    """Lucene's definition of ``<low-high>``, written out: digits only, the value in range (either
    way round), and exactly as many digits as the bounds when both are written with as many."""
    low, high = interval.split("-")
    width = len(low) if len(low) == len(high) else 0
    value_range = sorted((int(low), int(high)))
    return (
        text.isascii() and text.isdigit()
        and value_range[0] <= int(text) <= value_range[1]
        and (not width or len(text) == width)
    )


@pytest.mark.parametrize(
    "interval",
    ["0-0", "0-9", "5-12", "1-100", "007-007", "017-342", "000-999", "99-1001", "0003-2024", "10-19",
     "190-210", "210-190", "0-10", "09-10"],
)
def test_numeric_intervals_match_exactly_the_numbers_in_range(interval):
    names = NamePatterns([f"/<{interval}>/"])
    for length in range(1, 5):
        for digits in itertools.product("0123456789", repeat=length):
            text = "".join(digits)
            assert names.matches(text) is in_lucene_interval(text, interval), text


def test_intervals_in_fixed_width_with_long_zero_padding_translate_without_recursion():
    pattern = "/<" + "0" * 400 + "1-" + "0" * 400 + "9>/"

    assert matches(pattern, "0" * 400 + "5")
    assert not matches(pattern, "5")


def test_deep_nesting_within_the_length_limit_translates_without_recursion():
    depth = MAX_REGEX_LENGTH // 2 - 1

    assert matches("/" + "(" * depth + "a" + ")" * depth + "/", "a")


def test_translation_is_anchored_only_by_full_matching():
    assert "^" not in lucene_to_re2("logs") and "$" not in lucene_to_re2("logs")
    assert not NamePatterns(["/logs/"]).matches("logs\n")


# --- what is refused, and why -----------------------------------------------------------------


REFUSED = [
    ("/a~b/", "the complement operator [~] is not supported"),
    ("/~(logs)/", "the complement operator [~] is not supported"),
    ("/logs-.*&.*-1/", "the intersection operator [&] is not supported"),
    ("/" + "a" * (MAX_REGEX_LENGTH + 1) + "/", "more than the maximum of [1000] (index.max_regex_length)"),
    ("/(logs/", "unbalanced parentheses: the [(] at position 0 is never closed"),
    ("/logs)/", "unbalanced parentheses: unexpected [)] at position 4"),
    ("/((a)/", "unbalanced parentheses"),
    ("/[/", "unexpected end of the regular expression"),
    ("/[ab/", "the character class at position 0 is never closed"),
    ("/[z-a]/", "invalid character range [z-a]"),
    ("/logs\\q/", "invalid character class [\\q]"),
    ('/"logs/', "never closed"),
    ("/a{2/", "expected [}] at position 3"),
    ("/a{x}/", "expected a number at position 2"),
    ("/a{3,2}/", "invalid repetition range {3,2}"),
    ("/a{1001}/", "repetition count [1001] is larger than 1000"),
    ("/((a{100}){100})/", "nested repetitions would repeat more than 1000 times"),
    ("/logs-<n>/", "named automata such as [<n>] are not supported"),
    ("/logs-<1-x>/", "invalid numeric interval [<1-x>]"),
    ("/<1-9999999999>/", "at most 2147483647"),
    ("/logs|/", "unexpected end of the regular expression"),
    ("/" + ".{1000}" * 20 + "/", "the pattern is too large to compile"),
    ("logs-" + "?" * 3000 + "*", "the pattern is too large to compile"),
]


@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
def test_patterns_re2_cannot_run_are_refused_with_a_reason(pattern, reason):
    with pytest.raises(PatternError) as refused:
        compile_pattern(pattern)

    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("/a~b/", "a~b"),
        ("/logs-.*&.*-1/", "logs-x&y-1"),
        ("/a{1001}/", "a" * 1001),
        ("/" + ".{1000}" * 20 + "/", "x" * 20_000),
        ("logs-" + "?" * 3000 + "*", "logs-" + "x" * 3000),
        ("/(logs/", "(logs"),
    ],
)
def test_a_refused_pattern_stored_earlier_matches_nothing(pattern, name):
    """Not even what a Python regex would have read into it."""
    held = PrivilegeSet({"r": {"indices": [{"names": [pattern, "ok"], "privileges": ["read"]}]}})

    assert not held.has_index(name, "read")
    assert held.has_index("ok", "read")


@pytest.fixture
def as_admin(client, make_user, make_api_key):
    key = make_api_key(make_user("elastic", roles=["superuser"]), "admin-key")
    header = "ApiKey " + encode_credential(key.id, key.secret)

    def request(method, path, body):
        return client.generic(
            method, path, data=json.dumps(body), content_type="application/json", secure=True,
            headers={"Authorization": header},
        )

    return request


@pytest.mark.django_db
@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
def test_put_role_refuses_an_uncompilable_index_pattern_and_stores_nothing(as_admin, pattern, reason):
    body = {"indices": [{"names": ["logs-*", pattern], "privileges": ["read"]}]}

    response = as_admin("PUT", "/_security/role/patterned", body)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "illegal_argument_exception"
    assert error["root_cause"] == [{"type": error["type"], "reason": error["reason"]}]
    assert response.json()["status"] == 400
    assert f"invalid index name pattern [{pattern}]: " in error["reason"]
    assert reason in error["reason"]
    assert not Role.objects.filter(name="patterned").exists()


@pytest.mark.django_db
def test_put_role_names_the_refused_operator(as_admin):
    body = {"indices": [{"names": ["/a~b/"], "privileges": ["read"]}]}

    response = as_admin("PUT", "/_security/role/r", body)

    assert response.json()["error"]["reason"] == (
        "failed to parse indices privileges for role [r]. "
        "invalid index name pattern [/a~b/]: the complement operator [~] is not supported"
    )


@pytest.mark.django_db
def test_put_role_accepts_lucene_syntax_re2_can_run(as_admin):
    names = ["/logs-<1-12>/", '/"audit.log"-@/', "/[^.].*/", "/(a+)+b/", "/^x$/"]
    body = {"indices": [{"names": names, "privileges": ["read"]}]}

    response = as_admin("PUT", "/_security/role/lucene", body)

    assert response.status_code == 200, response.content
    assert Role.objects.get(name="lucene").indices[0]["names"] == names


# --- the reported attack ----------------------------------------------------------------------


@pytest.mark.django_db
def test_nested_quantifier_pattern_answers_has_privileges_at_once(client, make_user, make_api_key):
    grant = {"names": [BACKTRACKING], "privileges": ["read"]}
    owner = make_user("owner", "manage_own_api_key", indices=[grant])
    key = make_api_key(owner, "owner-key")
    header = {"Authorization": "ApiKey " + encode_credential(key.id, key.secret)}

    for name in ("a" * 34, "a" * 100_000):
        body = json.dumps({"index": [{"names": [name], "privileges": ["read"]}]})
        with finishes_within(HANG_BOUND):
            response = client.post(
                HAS_PRIVILEGES, data=body, content_type="application/json",
                secure=True, headers=header,
            )
        assert response.status_code == 200
        assert response.json()["index"] == {name: {"read": False}}
        assert response.json()["has_all_requested"] is False


def test_nested_quantifier_pattern_keeps_the_servers_workers_alive(keyward_server):
    """The report: two such requests kept both gunicorn workers busy past gunicorn's timeout, which
    killed them. Each request here must answer within 20 s, from the same workers."""
    admin = keyward_server.elastic_api_key("pattern-admin")
    client = keyward_server.connection(timeout=HANG_BOUND)
    try:
        role = {"indices": [{"names": [BACKTRACKING], "privileges": ["read"]}]}
        assert keyward_server.request(client, "PUT", "/_security/role/backtracking", admin, role)[0] == 200
        user = {"password": "a-long-test-password", "roles": ["backtracking"]}
        assert keyward_server.request(client, "PUT", "/_security/user/victim", admin, user)[0] == 200
        victim = "Basic " + base64.b64encode(b"victim:a-long-test-password").decode()
        workers = sorted(keyward_server.worker_pids())

        for name in ("a" * 34, "a" * 100_000):
            body = {"index": [{"names": [name], "privileges": ["read"]}]}
            status, answer = keyward_server.request(client, "POST", HAS_PRIVILEGES, victim, body)
            assert (status, answer["index"]) == (200, {name: {"read": False}})
    finally:
        client.close()

    assert sorted(keyward_server.worker_pids()) == workers


@pytest.mark.parametrize(
    ("granted", "requested", "covered"),
    [
        (["*"], "a*", True),
        (["data:read/*"], "data:read/x*", True),
        (["data:read/*"], "data:*", False),
        (["data:read/*", "data:write/*"], "data:*", False),
        (["a?", "a??*"], "a?*", True),
        (["a*", "b*"], "?*", False),
        (["*a*"], "*a", True),
        (["*a"], "*a*", False),
        (["a"], "a*", False),
        (["object/1"], "object/?", False),
        # A granted regex covers the names it matches, never a requested pattern (err towards "no").
        (["/obj.*/"], "object/1", True),
        (["/obj.*/"], "obj*", False),
        (["obj*"], "/obj.*/", False),
    ],
)
def test_a_pattern_is_covered_only_if_every_name_it_matches_is(granted, requested, covered):
    assert covers(granted, requested) is covered
