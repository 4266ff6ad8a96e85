"""An independent reading of the query API key DSL: which keys Elasticsearch would return for a query,
computed in plain Python over the keys' fields as the API shows them.

It shares no code with ``restapi.query.dsl``: dates, wildcards, flattened metadata and ``bool`` are
written out again from Elasticsearch's documented semantics, so that the SQL translation can be
checked against it (tests/test_query_dsl.py).

- keyword fields (``name``, ``type``, ``username``, ``realm_name``): exact, case-sensitive, ordered
  by code point (Lucene compares UTF-8 bytes, which orders as code points do);
- ``metadata.<path>``: a flattened field, every leaf a keyword in its JSON spelling; an object or a
  ``null`` is no value, so ``exists`` is false for it;
- dates (``creation``, ``expiration``, ``invalidation``): epoch milliseconds; a term is the range from
  the value read rounding down to the value read rounding up (a day given as ``2024-03-01`` is the
  whole day), missing parts of a date filled as Elasticsearch's range query documents;
- ``invalidated``: a boolean.
"""

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


class Refused(Exception):
    """The query is one Elasticsearch would refuse."""


def millis(moment: datetime) -> int:
    return (moment - EPOCH) // MS


# ---------------------------------------------------------------------------------------------
# Documents


def flatten(metadata: dict) -> dict[str, list[str]]:
    """``{"a": {"b": 1}, "c": true}`` -> ``{"a.b": ["1"], "c": ["true"]}``: leaves only, nulls dropped."""
    leaves: dict[str, list[str]] = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        elif isinstance(value, list):
            for child in value:
                walk(prefix, child)
        elif value is None:
            return
        elif isinstance(value, bool):
            leaves.setdefault(prefix, []).append("true" if value else "false")
        else:
            leaves.setdefault(prefix, []).append(value if isinstance(value, str) else repr(value))

    walk("", metadata)
    return leaves


def document(key_id, name, username, realm_name, created, expiration, invalidated, metadata) -> dict:
    """A key as the query sees it; times as epoch milliseconds."""
    return {
        "id": key_id,
        "name": name,
        "type": "rest",
        "username": username,
        "realm_name": realm_name,
        "creation": millis(created),
        "expiration": None if expiration is None else millis(expiration),
        "invalidation": None if invalidated is None else millis(invalidated),
        "invalidated": invalidated is not None,
        "metadata": flatten(metadata),
    }


KEYWORDS = ("name", "type", "username", "realm_name")
DATES = ("creation", "expiration", "invalidation")


def field_kind(field) -> str:
    if field in KEYWORDS:
        return "keyword"
    if field in DATES:
        return "date"
    if field == "invalidated":
        return "boolean"
    if isinstance(field, str) and field.startswith("metadata.") and all(field.split(".")[1:]):
        return "metadata"
    if field == "metadata":
        # the flattened field's root: every leaf at once
        return "metadata"
    raise Refused(f"field {field!r}")


def values(doc: dict, field: str) -> list:
    kind = field_kind(field)
    if field == "metadata":
        return [leaf for leaves in doc["metadata"].values() for leaf in leaves]
    if kind == "metadata":
        return doc["metadata"].get(field[len("metadata.") :], [])
    value = doc[field]
    return [] if value is None else [value]


# ---------------------------------------------------------------------------------------------
# Values


def keyword(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise Refused(f"keyword value {value!r}")


def boolean(value) -> bool:
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    raise Refused(f"boolean value {value!r}")


ISO = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def _iso(text: str, round_up: bool) -> int:
    """strict_date_optional_time; rounding up fills what is missing with 01 for month and day, 23:59:59
    and 999,999,999 nanoseconds for the time, as the range query documentation says."""
    parts = ISO.fullmatch(text)
    if parts is None:
        raise Refused(f"date {text!r}")

    def part(name, down, up):
        return int(parts[name]) if parts[name] is not None else (up if round_up else down)

    fraction = parts["fraction"]
    if fraction is None:
        milli = 999 if round_up else 0
    else:
        milli = int(fraction.ljust(9, "0")[:3])
    zone = parts["zone"]
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        moment = datetime(
            int(parts["year"]),
            part("month", 1, 1),
            part("day", 1, 1),
            part("hour", 0, 23),
            part("minute", 0, 59),
            part("second", 0, 59),
            milli * 1000,
            tzinfo=UTC,
        )
    except ValueError:
        raise Refused(f"date {text!r}") from None
    return millis(moment - offset)


def _start_of(moment: datetime, unit: str) -> datetime:
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in "hH":
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def _plus(moment: datetime, count: int, unit: str) -> datetime:
    if unit in "yM":
        months = moment.month - 1 + count * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        for day in range(moment.day, 0, -1):  # the last day of a shorter month
            try:
                return moment.replace(year=year, month=month, day=day)
            except ValueError:
                continue
    seconds = {"w": 7 * 86400, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return moment + timedelta(seconds=count * seconds)


def date(value, round_up: bool, now: int) -> int:
    """A date as the date field of the API key index reads it (strict_date_optional_time||epoch_millis,
    with date math), in epoch milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Refused(f"date {value!r}")
    if isinstance(value, int):
        return value
    if value.startswith("now"):
        anchor, math = now, value[3:]
    elif "||" in value:
        text, math = value.split("||", 1)
        anchor = _iso(text, round_up=False) if ISO.fullmatch(text) else _epoch(text)
    else:
        return _iso(value, round_up) if ISO.fullmatch(value) else _epoch(value)
    moment = EPOCH + anchor * MS
    position = 0
    for operation in MATH.finditer(math):
        if operation.start() != position:
            raise Refused(f"date math {value!r}")
        position = operation.end()
        sign, count, unit, rounding = operation.groups()
        if rounding:
            start = _start_of(moment, rounding)
            moment = _plus(start, 1, rounding) - MS if round_up else start
        else:
            moment = _plus(moment, int(count) * (1 if sign == "+" else -1), unit)
    if position != len(math):
        raise Refused(f"date math {value!r}")
    return millis(moment)


def _epoch(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise Refused(f"date {text!r}")
    return int(text)


# ---------------------------------------------------------------------------------------------
# Wildcards


def wildcard_matches(pattern: str, text: str, case_insensitive: bool) -> bool:
    """``*`` any run, ``?`` one character, ``\\`` makes the next character literal; by dynamic
    programming over the two strings, no regular expression."""
    tokens, escaped = [], False
    for char in pattern:
        if escaped:
            tokens.append(("char", char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            tokens.append(("star", None))
        elif char == "?":
            tokens.append(("one", None))
        else:
            tokens.append(("char", char))
    if escaped:
        tokens.append(("char", "\\"))
    if case_insensitive:
        text = text.lower()
        tokens = [(kind, char.lower() if char else char) for kind, char in tokens]
    reachable = {0}
    for kind, char in tokens:
        following = set()
        for position in sorted(reachable):
            if kind == "star":
                following.update(range(position, len(text) + 1))
            elif position < len(text) and (kind == "one" or text[position] == char):
                following.add(position + 1)
        reachable = following
    return len(text) in reachable


def same(a: str, b: str, case_insensitive: bool) -> bool:
    return a.lower() == b.lower() if case_insensitive else a == b


# ---------------------------------------------------------------------------------------------
# Queries


def _one_field(body: dict):
    if not isinstance(body, dict) or len(body) != 1:
        raise Refused("one field")
    return next(iter(body.items()))


def _value(value, key: str):
    if isinstance(value, dict):
        return value[key], value.get("case_insensitive", False)
    return value, False


class Evaluator:
    """Matches one query against documents; ``now`` is the current time in epoch milliseconds."""

    def __init__(self, docs: list[dict], now: int):
        self.docs = docs
        self.now = now

    def matching(self, query) -> set[str]:
        """The ids of the documents ``query`` selects."""
        test = self.compile(query)
        return {doc["id"] for doc in self.docs if test(doc)}

    def compile(self, query):
        """A predicate over a document; refuses a bad query before looking at any document."""
        if not isinstance(query, dict) or len(query) != 1:
            raise Refused("query")
        kind, body = next(iter(query.items()))
        return getattr(self, kind)(body)

    def match_all(self, body):
        return lambda doc: True

    def ids(self, body):
        wanted = set(body["values"])
        return lambda doc: doc["id"] in wanted

    def term(self, body, query="term"):
        field, value = _one_field(body)
        value, case_insensitive = _value(value, "query" if query == "match" else "value")
        if query == "match":
            case_insensitive = False
        return self._equals(field, [value], case_insensitive)

    def match(self, body):
        return self.term(body, query="match")

    def terms(self, body):
        field, wanted = _one_field(body)
        return self._equals(field, wanted, False)

    def _equals(self, field, wanted: list, case_insensitive: bool):
        kind = field_kind(field)
        if kind == "date":
            spans = [(date(v, False, self.now), date(v, True, self.now)) for v in wanted]
            return lambda doc: any(low <= ms <= high for ms in values(doc, field) for low, high in spans)
        if kind == "boolean":
            flags = {boolean(v) for v in wanted}
            return lambda doc: doc["invalidated"] in flags
        texts = [keyword(v) for v in wanted]
        return lambda doc: any(same(v, t, case_insensitive) for v in values(doc, field) for t in texts)

    def prefix(self, body):
        field, value = _one_field(body)
        value, case_insensitive = _value(value, "value")
        if field_kind(field) not in ("keyword", "metadata"):
            raise Refused("prefix on " + field)
        start = keyword(value)
        fold = str.lower if case_insensitive else str
        return lambda doc: any(fold(v).startswith(fold(start)) for v in values(doc, field))

    def wildcard(self, body):
        field, value = _one_field(body)
        if isinstance(value, dict):
            pattern, case_insensitive = (
                value.get("value", value.get("wildcard")),
                value.get("case_insensitive", False),
            )
        else:
            pattern, case_insensitive = value, False
        if field_kind(field) not in ("keyword", "metadata"):
            raise Refused("wildcard on " + field)
        pattern = keyword(pattern)
        return lambda doc: any(wildcard_matches(pattern, v, case_insensitive) for v in values(doc, field))

    def range(self, body):
        field, options = _one_field(body)
        kind = field_kind(field)
        bounds = {}
        for op, value in options.items():
            if op == "from":
                op = "gte" if options.get("include_lower", True) else "gt"
            elif op == "to":
                op = "lte" if options.get("include_upper", True) else "lt"
            elif op not in ("gt", "gte", "lt", "lte"):
                continue
            # One lower and one upper bound: the range query's parser keeps the last of each side.
            bounds = {other: bound for other, bound in bounds.items() if other[:2] != op[:2]}
            bounds[op] = value
        if kind == "date":
            # gt and lte read their bound rounding up, gte and lt rounding down.
            limits = {op: date(v, op in ("gt", "lte"), self.now) for op, v in bounds.items()}
            convert = None
        elif kind == "boolean":
            limits = {op: int(boolean(v)) for op, v in bounds.items()}
            convert = int
        else:
            limits = {op: keyword(v) for op, v in bounds.items()}
            convert = None
        tests = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }

        def holds(doc):
            found = values(doc, field)
            if convert:
                found = [convert(v) for v in found]
            return any(all(tests[op](v, limit) for op, limit in limits.items()) for v in found)

        return holds

    def exists(self, body):
        field = body["field"]
        field_kind(field)
        return lambda doc: bool(values(doc, field))

    def bool(self, body):
        def clauses(occur):
            found = body.get(occur, [])
            return [self.compile(clause) for clause in (found if isinstance(found, list) else [found])]

        must = clauses("must") + clauses("filter")
        must_not = clauses("must_not")
        should = clauses("should")
        minimum = minimum_should_match(body.get("minimum_should_match"), len(should), 0 if must else 1)

        def holds(doc):
            if not all(test(doc) for test in must) or any(test(doc) for test in must_not):
                return False
            return not should or sum(1 for test in should if test(doc)) >= minimum

        return holds


def minimum_should_match(value, optional: int, default: int) -> int:
    """An integer or a percentage of the optional clauses, either of them possibly negative (then
    counted down from the total); a percentage is truncated towards zero."""
    if value is None:
        return default
    text = str(value)
    if text.endswith("%"):
        share = optional * int(text[:-1]) / 100  # negative for a negative percentage, even above -1
        result = optional + int(share) if share < 0 else int(share)
    else:
        number = int(text)
        result = optional + number if number < 0 else number
    return max(result, 0)


# ---------------------------------------------------------------------------------------------
# Sort


def sort_value(doc: dict, field: str, descending: bool):
    """The value a document sorts by: the least of its values ascending, the greatest descending;
    ``None`` where it has none."""
    found = values(doc, field)
    if not found:
        return None
    return max(found) if descending else min(found)


def compare(first: dict, second: dict, sort: list[tuple[str, bool]]) -> int:
    """Below zero if ``first`` sorts before ``second``, zero on a tie. Missing values come last in
    either direction, Elasticsearch's default ``"missing": "_last"``."""
    for field, descending in sort:
        a, b = sort_value(first, field, descending), sort_value(second, field, descending)
        if a == b:
            continue
        if a is None or b is None:
            return 1 if a is None else -1
        order = -1 if a < b else 1
        return -order if descending else order
    return 0


# ---------------------------------------------------------------------------------------------
# simple_query_string
#
# Read left to right: whitespace separates terms, "+" and "|" set how the next term joins what came
# before (the default operator otherwise), each "-" in front of a term flips it, "(...)" is one term,
# "..." a phrase (one keyword), a trailing unescaped "*" a prefix, "\\" escapes one character. A
# term that no field can take is dropped, and so is an empty group.

SQS_FIELDS = (
    "name", "type", "username", "realm_name", "creation", "expiration", "invalidation", "invalidated",
    "metadata",
)


def _sqs_fields(specs) -> list[str]:
    chosen = []
    for spec in specs:
        name = spec.split("^")[0]
        if "*" in name:
            pattern = "^" + ".*".join(re.escape(part) for part in name.split("*")) + "$"
            chosen += [field for field in SQS_FIELDS if re.match(pattern, field)]
        else:
            try:
                field_kind(name)
            except Refused:
                continue
            chosen.append(name)
    return list(dict.fromkeys(chosen))


def _sqs_tokens(text: str) -> list:
    """("op", char) and ("word", text, prefix) items."""
    items, position = [], 0
    while position < len(text):
        char = text[position]
        if char in "+|-()":
            items.append(("op", char))
            position += 1
        elif char.isspace():
            position += 1
        elif char == '"':
            end = position + 1
            word = ""
            while end < len(text) and text[end] != '"':
                if text[end] == "\\" and end + 1 < len(text):
                    end += 1
                word += text[end]
                end += 1
            if end >= len(text):
                raise Refused("unclosed phrase")
            if word:
                items.append(("word", word, False))
            position = end + 1
        else:
            word, escaped_last = "", False
            while position < len(text):
                char = text[position]
                if char == "\\" and position + 1 < len(text):
                    word += text[position + 1]
                    escaped_last = True
                    position += 2
                    continue
                if char.isspace() or char in '+|()"':
                    break
                if char == "~":
                    raise Refused("fuzziness")
                word += char
                escaped_last = False
                position += 1
            if word.endswith("*") and not escaped_last:
                items.append(("word", word[:-1], True))
            else:
                items.append(("word", word, False))
    return items


class SimpleQueryString:
    def __init__(self, evaluator, body: dict):
        self.evaluator = evaluator
        specs = body.get("fields") or ["*"]
        self.fields = _sqs_fields(specs)
        self.lenient = body.get("lenient", False) or "*" in specs
        self.operator = body.get("default_operator", "or").lower()
        self.minimum = body.get("minimum_should_match")
        self.items = _sqs_tokens(body["query"])

    def predicate(self):
        if not self.fields:
            return lambda doc: False
        self.position = 0
        kind, tests = self._sequence()
        if not tests:
            return lambda doc: False
        if kind == "or":
            needed = minimum_should_match(self.minimum, len(tests), 1)
            return lambda doc: sum(1 for test in tests if test(doc)) >= needed
        return lambda doc: all(test(doc) for test in tests)

    def _sequence(self):
        """The clauses of one level as (operator, tests) of its last run of one operator."""
        kind, tests, operator, flips = None, [], None, 0
        while self.position < len(self.items):
            item = self.items[self.position]
            self.position += 1
            if item == ("op", ")"):
                break
            if item == ("op", "+"):
                operator = "and" if tests else operator
                continue
            if item == ("op", "|"):
                operator = "or" if tests else operator
                continue
            if item == ("op", "-"):
                flips += 1
                continue
            if item == ("op", "("):
                inner_kind, inner = self._sequence()
                test = None
                if inner:
                    test = self._joined(inner_kind, inner)
            else:
                test = self._word(item[1], item[2])
            if test is not None:
                if flips % 2:
                    test = (lambda inner: lambda doc: not inner(doc))(test)
                if not tests:
                    tests = [test]
                else:
                    joined_by = operator or self.operator
                    if kind != joined_by and len(tests) > 1:
                        tests = [self._joined(kind, tests)]
                    kind = joined_by
                    tests.append(test)
            flips, operator = 0, None
        return kind or self.operator, tests

    @staticmethod
    def _joined(kind, tests):
        if kind == "and":
            return lambda doc: all(test(doc) for test in tests)
        return lambda doc: any(test(doc) for test in tests)

    def _word(self, word: str, prefix: bool):
        tests = []
        for field in self.fields:
            query = {"prefix": {field: word}} if prefix else {"term": {field: word}}
            try:
                tests.append(self.evaluator.compile(query))
            except Refused:
                if not self.lenient:
                    raise
        if not tests:
            return None
        return lambda doc: any(test(doc) for test in tests)


def _simple_query_string(self, body):
    return SimpleQueryString(self, body).predicate()


Evaluator.simple_query_string = _simple_query_string


# ---------------------------------------------------------------------------------------------
# Aggregations: counted over documents, one bucket at a time


def _iso_millis(ms: int) -> str:
    moment = EPOCH + ms * MS
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _bucket_value(field: str, value):
    if field_kind(field) == "boolean":
        return {"key": 1 if value else 0, "key_as_string": "true" if value else "false"}
    if field_kind(field) == "date":
        return {"key": value, "key_as_string": _iso_millis(value)}
    return {"key": value}


def _check(evaluator, aggs: dict) -> None:
    """Refuses a bad request before counting anything, as a search is parsed whole before it runs:
    a bad filter under a bucket that turns out empty is refused all the same."""
    for definition in aggs.values():
        kind = next(key for key in definition if key not in ("aggs", "aggregations", "meta"))
        body = definition[kind]
        if kind == "filter":
            evaluator.compile(body)
        elif kind == "filters":
            for query in body["filters"].values() if isinstance(body["filters"], dict) else body["filters"]:
                evaluator.compile(query)
        elif kind in ("range", "date_range"):
            for item in body["ranges"]:
                for side in ("from", "to"):
                    if item.get(side) is not None:
                        date(item[side], False, evaluator.now)
        elif "field" in body:
            field_kind(body["field"])
        _check(evaluator, definition.get("aggs") or definition.get("aggregations") or {})


def aggregate(evaluator, docs: list[dict], aggs: dict, typed: bool = False) -> dict:
    """The ``aggregations`` of a response for ``aggs`` over ``docs``."""
    _check(evaluator, aggs)
    answer = {}
    for name, definition in aggs.items():
        kind = next(key for key in definition if key not in ("aggs", "aggregations", "meta"))
        subs = definition.get("aggs") or definition.get("aggregations") or {}
        body = definition[kind]
        result, label = _one(evaluator, docs, kind, body, subs, typed)
        answer[f"{label}#{name}" if typed else name] = result
    return answer


def _with_subs(evaluator, bucket: dict, docs, subs, typed):
    if subs:
        bucket.update(aggregate(evaluator, docs, subs, typed))
    return bucket


def _one(evaluator, docs, kind, body, subs, typed):
    if kind == "terms":
        field = body["field"]
        counts = {}
        for doc in docs:
            for value in set(values(doc, field)):
                counts[value] = counts.get(value, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        top = ranked[: body.get("size", 10)]
        buckets = [
            _with_subs(evaluator, {**_bucket_value(field, value), "doc_count": count},
                       [doc for doc in docs if value in values(doc, field)], subs, typed)
            for value, count in top
        ]
        label = "lterms" if field_kind(field) in ("date", "boolean") else "sterms"
        other = sum(count for _, count in ranked[len(top):])
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}, label
    if kind in ("cardinality", "value_count"):
        found = [value for doc in docs for value in values(doc, body["field"])]
        return {"value": len(set(found)) if kind == "cardinality" else len(found)}, kind
    if kind == "missing":
        chosen = [doc for doc in docs if not values(doc, body["field"])]
        return _with_subs(evaluator, {"doc_count": len(chosen)}, chosen, subs, typed), kind
    if kind == "filter":
        test = evaluator.compile(body)
        chosen = [doc for doc in docs if test(doc)]
        return _with_subs(evaluator, {"doc_count": len(chosen)}, chosen, subs, typed), kind
    if kind == "filters":
        named = isinstance(body["filters"], dict)
        entries = sorted(body["filters"].items()) if named else [(None, q) for q in body["filters"]]
        tests = [evaluator.compile(query) for _, query in entries]
        other_key = body.get("other_bucket_key")
        if body.get("other_bucket", other_key is not None):
            entries.append((other_key or "_other_", None))
            tests.append(lambda doc, tests=list(tests): not any(test(doc) for test in tests))
        keyed = named and body.get("keyed", True)
        buckets = []
        for (key, _), test in zip(entries, tests, strict=True):
            chosen = [doc for doc in docs if test(doc)]
            bucket = {"doc_count": len(chosen)}
            if named and not keyed:
                bucket = {"key": key, **bucket}
            buckets.append((key, _with_subs(evaluator, bucket, chosen, subs, typed)))
        return {"buckets": dict(buckets) if keyed else [bucket for _, bucket in buckets]}, kind
    if kind in ("range", "date_range"):
        field = body["field"]
        if field_kind(field) != "date":
            raise Refused("range on " + field)
        ranges = []
        for item in body["ranges"]:
            low = None if item.get("from") is None else date(item["from"], False, evaluator.now)
            high = None if item.get("to") is None else date(item["to"], False, evaluator.now)
            ranges.append((low, high, item.get("key")))
        ranges.sort(key=lambda r: (r[0] is not None, r[0] or 0, r[1] is None, r[1] or 0))
        buckets = []
        for low, high, key in ranges:
            chosen = [
                doc for doc in docs
                if any((low is None or v >= low) and (high is None or v < high) for v in values(doc, field))
            ]
            bucket = {"key": key or f"{'*' if low is None else _iso_millis(low)}-"
                                    f"{'*' if high is None else _iso_millis(high)}"}
            if low is not None:
                bucket |= {"from": float(low), "from_as_string": _iso_millis(low)}
            if high is not None:
                bucket |= {"to": float(high), "to_as_string": _iso_millis(high)}
            bucket["doc_count"] = len(chosen)
            buckets.append(_with_subs(evaluator, bucket, chosen, subs, typed))
        if body.get("keyed"):
            return {"buckets": {bucket.pop("key"): bucket for bucket in buckets}}, kind
        return {"buckets": buckets}, kind
    if kind == "composite":
        sources = [(name, spec["terms"]["field"], spec["terms"].get("order", "asc") == "desc")
                   for source in body["sources"] for name, spec in source.items()]
        groups = {}
        for doc in docs:
            found = [values(doc, field) for _, field, _ in sources]
            if all(found):
                # single-valued fields in this corpus: one combination per document
                groups.setdefault(tuple(vs[0] for vs in found), []).append(doc)

        def order(combination):
            return tuple(_Reverse(v) if descending else v
                         for v, (_, _, descending) in zip(combination, sources, strict=True))

        ranked = sorted(groups, key=order)
        if "after" in body:
            after = tuple(body["after"][name] for name, _, _ in sources)
            ranked = [c for c in ranked if order(c) > order(after)]
        buckets = []
        for combination in ranked[: body.get("size", 10)]:
            key = {name: value for (name, _, _), value in zip(sources, combination, strict=True)}
            buckets.append(_with_subs(evaluator, {"key": key, "doc_count": len(groups[combination])},
                                      groups[combination], subs, typed))
        result = {"after_key": buckets[-1]["key"]} if buckets else {}
        return {**result, "buckets": buckets}, kind
    raise Refused("aggregation " + kind)


class _Reverse:
    """Orders its value the other way round."""

    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return other.value < self.value

    def __gt__(self, other):
        return other.value > self.value

    def __eq__(self, other):
        return self.value == other.value
