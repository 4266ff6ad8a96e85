"""Elasticsearch's query DSL over its security indices (SPEC §4), translated into Django ``Q`` objects.

The query APIs of API keys, roles and users accept a subset of the DSL (``match_all``, ``bool``,
``term``, ``terms``, ``prefix``, ``wildcard``, ``range``, ``exists``, ``ids``, ``match``,
``simple_query_string``) over the fields each exposes, plus ``from``/``size``, ``sort`` and
``search_after``. Each API declares its ``Index``: which fields, how an unknown name is refused,
the name of its request payload and its order without a sort; the engine is the same for all.
Field values keep Elasticsearch's semantics: names and metadata values are keywords (exact,
case-sensitive; ``match`` on a keyword is a term match), text fields match words, times are
compared at millisecond precision, ``metadata.<path>`` values compare as text.

Bad input of any shape raises ``ValidationError`` (or a subclass carrying Elasticsearch's error
type) and nothing else. Wildcards become LIKE/GLOB patterns, never regular expressions, so no
pattern can make the database backtrack. A query within the limits below (clauses, terms, bool
depth) always runs: its SQL is shaped to fit SQLite's parser and expression depth (see "The SQL's
shape").
"""

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import reduce
from operator import and_, or_

import re2
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    Expression,
    F,
    Func,
    IntegerField,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, NullIf
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, LessThan, LessThanOrEqual
from django.db.models.sql.where import AND, OR, WhereNode

from restapi.errors import RequestValidationFailed, ValidationError
from restapi.query import simple_query_string

DEFAULT_SIZE = 10
# Elasticsearch's index.max_result_window: from + size may not exceed it.
MAX_RESULT_WINDOW = 10_000
# Elasticsearch's indices.query.bool.max_nested_depth.
MAX_BOOL_DEPTH = 30
# Bounds on one query's size, so that it always fits in one SQL statement.
MAX_CLAUSES = 1024
MAX_TERMS = 4096
MAX_SORT_FIELDS = 16
MAX_METADATA_DEPTH = 16
# Up to this many values, terms on a date is an OR of millisecond ranges that an index can serve.
MAX_DATE_RANGES = 64
# SQLite refuses LIKE and GLOB patterns over 50,000 bytes.
MAX_PATTERN_LENGTH = 4096
METADATA_KEY = re.compile(r"[A-Za-z0-9_@:+\- ]{1,128}")

MATCH_ALL = Q(pk__isnull=False)
MATCH_NONE = Q(pk__in=[])
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
# A day inside datetime's range at each end, so that time zones and rounding cannot overflow.
EARLIEST, LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)


class ParsingError(ValidationError):
    """A malformed query, as Elasticsearch's query parser reports it."""

    type = "parsing_exception"


class ContentParseError(ValidationError):
    """A malformed request body field, as Elasticsearch's object parser reports it."""

    type = "x_content_parse_exception"


class TooManyClauses(ValidationError):
    type = "too_many_clauses"


def storable_text(label: str, value: str) -> str:
    """Text the database can store and compare: no NUL character and no lone surrogate, either of
    which would make the query itself fail."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"[{label}] must not contain unpaired surrogates") from None
    if "\x00" in value:
        raise ValidationError(f"[{label}] must not contain NUL characters")
    return value


def _type_name(value) -> str:
    return {dict: "START_OBJECT", list: "START_ARRAY", type(None): "VALUE_NULL", bool: "VALUE_BOOLEAN"}.get(
        type(value), "VALUE_NUMBER" if isinstance(value, int | float) else "VALUE_STRING"
    )


# ---------------------------------------------------------------------------------------------
# Wildcard patterns

STAR, ANY_CHAR = object(), object()


def wildcard_pattern(pattern: str) -> tuple:
    """Elasticsearch's wildcard syntax: ``*`` any run, ``?`` one character, ``\\`` escapes."""
    tokens, escaped = [], False
    for char in pattern:
        if escaped:
            tokens.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            if not tokens or tokens[-1] is not STAR:
                tokens.append(STAR)
        else:
            tokens.append(ANY_CHAR if char == "?" else char)
    if escaped:
        tokens.append("\\")
    return tuple(tokens)


def _like(tokens: tuple) -> str:
    wildcards = {STAR: "%", ANY_CHAR: "_"}
    return "".join(wildcards.get(token) or re.sub(r"([\\%_])", r"\\\1", token) for token in tokens)


def _glob_char(char: str, case_insensitive: bool) -> str:
    """One literal character of a GLOB pattern; ignoring case, a class of the character and its other
    case, as Lucene's case-insensitive queries match, for SQLite's LOWER and UPPER fold ASCII only."""
    variants = {char}
    if case_insensitive:
        variants |= {other for other in (char.lower(), char.upper()) if len(other) == 1}
    if len(variants) > 1:
        return "[" + "".join(sorted(variants)) + "]"
    return f"[{char}]" if char in "*?[" else char


def _glob(tokens: tuple, case_insensitive: bool = False) -> str:
    wildcards = {STAR: "*", ANY_CHAR: "?"}
    return "".join(wildcards.get(token) or _glob_char(token, case_insensitive) for token in tokens)


# SQLite refuses a LIKE or GLOB pattern longer than this many bytes.
SQLITE_PATTERN_BYTES = 50_000


class WildcardMatch(Func):
    """The expression matches a wildcard pattern. LIKE, or GLOB on SQLite, whose LIKE ignores case;
    both run in linear time, and a pattern with only a trailing ``*`` can use an index."""

    output_field = BooleanField()

    def __init__(self, expression, tokens: tuple, case_insensitive: bool = False):
        too_long = len(tokens) > MAX_PATTERN_LENGTH or (
            case_insensitive and len(_glob(tokens, True).encode()) > SQLITE_PATTERN_BYTES
        )
        if too_long:
            raise ValidationError(f"a pattern may not be longer than [{MAX_PATTERN_LENGTH}] characters")
        super().__init__(expression)
        self.tokens = tokens
        self.case_insensitive = case_insensitive

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        if self.case_insensitive:
            return f"UPPER({sql}) LIKE UPPER(%s) ESCAPE '\\'", (*params, _like(self.tokens))
        return f"{sql} LIKE %s ESCAPE '\\'", (*params, _like(self.tokens))

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        if self.case_insensitive and all(token.isascii() for token in self.tokens if isinstance(token, str)):
            # SQLite's LIKE ignores the case of ASCII letters, and of nothing else: for an ASCII
            # pattern it matches what the GLOB of letter classes matches, five times faster
            # (0.11 s against 0.57 s over a million names).
            return f"{sql} LIKE %s ESCAPE '\\'", (*params, _like(self.tokens))
        return f"{sql} GLOB %s", (*params, _glob(self.tokens, self.case_insensitive))


def name_matches(name: str) -> Q:
    """The get and invalidate APIs' ``name``: exact, or with ``*`` wildcards (a trailing one uses
    the index)."""
    if "*" not in name:
        return Q(name=name)
    first, *rest = name.split("*")
    tokens = [*first]
    for part in rest:
        tokens += [STAR, *part]
    return Q(WildcardMatch(F("name"), tuple(tokens)))


# ---------------------------------------------------------------------------------------------
# Dates

DATE_MATH = re.compile(r"([+-])(\d{1,9})([yMwdhHms])|/([yMwdhHms])")
PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?")
TIME_PARTS = re.compile(r"T(\d{2})(:\d{2})?(:\d{2})?([.,]\d+)?")
DATE_FORMATS = frozenset({"epoch_millis", "strict_date_optional_time", "date_optional_time"})
TIME_ZONE = re.compile(r"([+-])(\d{2}):?(\d{2})")


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    last_day = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


def _floor(moment: datetime, unit: str) -> datetime:
    moment = moment.replace(microsecond=0)
    if unit == "s":
        return moment
    moment = moment.replace(second=0)
    if unit == "m":
        return moment
    moment = moment.replace(minute=0)
    if unit in "hH":
        return moment
    moment = moment.replace(hour=0)
    if unit == "w":
        return moment - timedelta(days=moment.weekday())
    if unit == "d":
        return moment
    return moment.replace(day=1, month=1 if unit == "y" else moment.month)


def _step(moment: datetime, unit: str, count: int) -> datetime:
    if unit in "yM":
        return _add_months(moment, count * (12 if unit == "y" else 1))
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return moment + timedelta(seconds=seconds * count)


def _round(moment: datetime, unit: str, up: bool) -> datetime:
    """Rounding down gives the unit's first millisecond; rounding up its last, as Elasticsearch does
    for ``gt`` and ``lte``."""
    start = _floor(moment, unit)
    return _step(start, unit, 1) - MILLISECOND if up else start


def _iso_date(text: str, zone, round_up: bool) -> datetime:
    """Rounding up fills what the date leaves out as Elasticsearch documents it: month and day 01,
    the time 23:59:59.999 (so ``2024-03`` rounds up to 2024-03-01T23:59:59.999)."""
    partial = PARTIAL_DATE.fullmatch(text)
    if partial:
        moment = datetime(int(partial[1]), int(partial[2] or 1), 1, tzinfo=zone)
    else:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if not round_up:
        return moment
    time = TIME_PARTS.search(text)
    hour, minute, second, fraction = time.groups() if time else (None, None, None, None)
    return moment.replace(
        hour=moment.hour if hour else 23,
        minute=moment.minute if minute else 59,
        second=moment.second if second else 59,
        microsecond=moment.microsecond if fraction else 999_000,
    )


def _date(value, zone, round_up: bool) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(value)
    if isinstance(value, int | float):
        return EPOCH + timedelta(milliseconds=value)
    if re.fullmatch(r"-?\d+", value) and len(value) != 4:
        return EPOCH + timedelta(milliseconds=int(value))
    if value.startswith("now"):
        moment, math = datetime.now(UTC), value[3:]
    else:
        anchor, _, math = value.partition("||")
        moment = _iso_date(anchor, zone, round_up and not math)
    position = 0
    for operation in DATE_MATH.finditer(math):
        if operation.start() != position:
            raise ValueError(value)
        position = operation.end()
        sign, count, unit, rounding = operation.groups()
        if rounding:
            moment = _round(moment.astimezone(zone), rounding, round_up)
        else:
            moment = _step(moment, unit, int(count) * (-1 if sign == "-" else 1))
    if position != len(math):
        raise ValueError(value)
    return moment


def parse_date(value, *, round_up: bool = False, zone=UTC) -> datetime:
    """A date as Elasticsearch reads one: epoch milliseconds, ISO 8601, or date math (``now-1d/d``)."""
    try:
        moment = _date(value, zone, round_up)
        if not EARLIEST <= moment <= LATEST:
            raise ValueError(value)
        # Millisecond precision, as Elasticsearch stores times.
        return moment - timedelta(microseconds=moment.microsecond % 1000)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"failed to parse date field [{value}] with format [strict_date_optional_time||epoch_millis]"
        ) from None


def epoch_millis(moment: datetime) -> int:
    return (moment - EPOCH) // MILLISECOND


def _time_zone(value):
    if value in ("Z", "UTC", "utc", "+00:00"):
        return UTC
    offset = TIME_ZONE.fullmatch(value) if isinstance(value, str) else None
    if offset is None or int(offset[2]) > 18 or int(offset[3]) > 59:
        raise ValidationError(f"[range] [time_zone] [{value}] is not supported: use an offset like [+01:00]")
    minutes = (int(offset[2]) * 60 + int(offset[3])) * (-1 if offset[1] == "-" else 1)
    return timezone(timedelta(minutes=minutes))


# ---------------------------------------------------------------------------------------------
# Fields


def _keyword(query: str, value) -> str:
    """Keyword values: strings, or numbers and booleans in their JSON spelling, as Elasticsearch coerces."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return storable_text(query, value)
    if isinstance(value, int | float):
        return str(value)
    raise ParsingError(f"[{query}] query does not support values of type [{_type_name(value)}]")


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValidationError(f"Can't parse boolean value [{value}], expected [true] or [false]")


class Field:
    """A queryable field: how each query type, sort and ``search_after`` apply to it."""

    es_type = "keyword"
    nullable = False
    sortable = True

    def __init__(self, name: str):
        self.name = name

    def not_supported(self, query: str):
        return ValidationError(
            f"Can only use {query} queries on keyword and text fields - "
            f"not on [{self.name}] which is of type [{self.es_type}]"
        )

    def value(self, query: str, value):
        """A query or ``search_after`` value, converted for comparison with ``expression``."""
        return _keyword(query, value)

    def equals(self, value) -> Q:
        return Q(Exact(self.expression(), value))

    def after(self, value, descending: bool) -> Q:
        comparison = LessThan if descending else GreaterThan
        return Q(comparison(self.expression(), value))

    def term(self, value, case_insensitive: bool = False) -> Q:
        value = self.value("term", value)
        if case_insensitive:
            return self.guard(Q(WildcardMatch(self.expression(), tuple(value), case_insensitive=True)))
        return self.guard(self.equals(value))

    def match(self, value, every_word: bool = False) -> Q:
        """``match``: on a keyword or a date, nothing is analysed and it is a term query."""
        return self.term(value)

    def terms(self, values: list) -> Q:
        return self.guard(Q(In(self.expression(), [self.value("terms", value) for value in values])))

    def like(self, query: str, tokens: tuple, case_insensitive: bool) -> Q:
        return self.guard(Q(WildcardMatch(self.expression(), tokens, case_insensitive)))

    def range(self, bounds: dict, zone) -> Q:
        lookups = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}
        clauses = [
            Q(lookups[op](self.expression(), self.value("range", value))) for op, value in bounds.items()
        ]
        return reduce(and_, clauses, self.exists())

    def exists(self) -> Q:
        return MATCH_ALL

    def guard(self, clause: Q) -> Q:
        """A clause that is false, never unknown, where the field is missing, so that ``must_not`` holds."""
        return clause

    def expression(self):
        raise NotImplementedError

    def sort_expression(self, tie_broken: bool, descending: bool = False):
        """What the field sorts by; ``tie_broken`` when another sort key follows it."""
        return self.expression()

    def sort_value(self, value):
        return value

    def sorted_after(self, alias: str, value, descending: bool) -> Q:
        """Rows whose sort value, annotated as ``alias``, comes after ``value``: ``search_after``."""
        return self.after(value, descending)

    def sorted_equal(self, alias: str, value) -> Q:
        return self.equals(value)


class ColumnField(Field):
    """A keyword stored in a column of the key or of its owner."""

    def __init__(self, name: str, column: str):
        super().__init__(name)
        self.column = column

    def expression(self):
        return F(self.column)

    def terms(self, values: list) -> Q:
        return Q(**{f"{self.column}__in": [self.value("terms", value) for value in values]})


class Millisecond(Func):
    """A time truncated to its millisecond, the precision Elasticsearch stores."""

    output_field = DateTimeField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"DATE_TRUNC('milliseconds', {sql})", params

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores a time as text there, "YYYY-MM-DD HH:MM:SS" and then any fraction.
        sql, params = compiler.compile(self.source_expressions[0])
        return f"SUBSTR({sql} || '.000', 1, 23)", params


class MillisecondIn(Func):
    """The time, truncated to the millisecond, is one of ``moments``: one IN list. SQLite prepares an
    OR of ranges in time quadratic in their bound values, a list in linear time."""

    output_field = BooleanField()

    def __init__(self, expression, moments: list[datetime]):
        super().__init__(expression)
        self.moments = moments

    def _compile(self, compiler, template: str, values: list):
        sql, params = compiler.compile(self.source_expressions[0])
        return template.format(sql, ", ".join(["%s"] * len(values))), (*params, *values)

    def as_sql(self, compiler, connection, **extra):
        return self._compile(compiler, "DATE_TRUNC('milliseconds', {}) IN ({})", self.moments)

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores a time as text there, "YYYY-MM-DD HH:MM:SS" and then any fraction.
        texts = [(connection.ops.adapt_datetimefield_value(moment) + ".000")[:23] for moment in self.moments]
        return self._compile(compiler, "SUBSTR({} || '.000', 1, 23) IN ({})", texts)


class DateField(ColumnField):
    """A time, compared at millisecond precision as Elasticsearch stores it."""

    es_type = "date"

    def __init__(self, name: str, column: str, nullable: bool):
        super().__init__(name, column)
        self.nullable = nullable

    def value(self, query: str, value):
        return parse_date(value)

    def equals(self, value) -> Q:
        return Q(**{f"{self.column}__gte": value, f"{self.column}__lt": value + MILLISECOND})

    def after(self, value, descending: bool) -> Q:
        if descending:
            return Q(**{f"{self.column}__lt": value})
        return Q(**{f"{self.column}__gte": value + MILLISECOND})

    def span(self, value) -> tuple[datetime, datetime]:
        """What a term on a date matches, as in Elasticsearch: the value read rounding down to the value
        read rounding up, so that ``2024-03-01`` is the whole day and an epoch millisecond itself."""
        return parse_date(value), parse_date(value, round_up=True)

    def between(self, first: datetime, last: datetime) -> Q:
        return Q(**{f"{self.column}__gte": first, f"{self.column}__lt": last + MILLISECOND})

    def term(self, value, case_insensitive: bool = False) -> Q:
        return self.guard(self.between(*self.span(value)))

    def terms(self, values: list) -> Q:
        spans = dict.fromkeys(self.span(value) for value in values)
        moments = [first for first, last in spans if first == last]
        if len(moments) > MAX_DATE_RANGES:
            clauses = [Q(MillisecondIn(F(self.column), moments))]
        else:
            clauses = [self.equals(moment) for moment in moments]
        clauses += [self.between(first, last) for first, last in spans if first != last]
        return self.guard(reduce(or_, clauses))

    def like(self, query: str, tokens: tuple, case_insensitive: bool) -> Q:
        raise self.not_supported(query)

    def range(self, bounds: dict, zone) -> Q:
        clauses = []
        for op, value in bounds.items():
            moment = parse_date(value, round_up=op in ("gt", "lte"), zone=zone)
            # Compared in whole milliseconds: "gt X" means the stored millisecond is above X.
            if op in ("gt", "lte"):
                moment += MILLISECOND
            lookup = {"gt": "gte", "lte": "lt"}.get(op, op)
            clauses.append(Q(**{f"{self.column}__{lookup}": moment}))
        # A bound is false where the time is missing, and Django negates it keeping it false there
        # (``must_not``). Without bounds, the field must exist. No IS NOT NULL beside a bound:
        # SQLite's planner takes it for a narrow range and sorts every match rather than walking
        # the page's order (0.4 s at a million keys for the expired ones).
        return reduce(and_, clauses) if clauses else self.exists()

    def exists(self) -> Q:
        return Q(**{f"{self.column}__isnull": False}) if self.nullable else MATCH_ALL

    def guard(self, clause: Q) -> Q:
        return self.exists() & clause if self.nullable else clause

    def sort_expression(self, tie_broken: bool, descending: bool = False):
        # Keys created within one millisecond tie, as in Elasticsearch, and the next sort key orders
        # them; search_after relies on it. Alone, the column keeps the order its indexes serve.
        return Millisecond(F(self.column)) if tie_broken else F(self.column)

    def sort_value(self, value):
        return None if value is None else epoch_millis(value)


class FlagField(Field):
    """A boolean column."""

    es_type = "boolean"

    def __init__(self, name: str, column: str):
        super().__init__(name)
        self.column = column

    def value(self, query: str, value):
        return _boolean(value)

    def expression(self):
        return F(self.column)

    def holds(self, value: bool) -> Q:
        """Rows where the flag is ``value``."""
        return Q(**{self.column: value})

    def term(self, value, case_insensitive: bool = False) -> Q:
        return self._any_of({self.value("term", value)})

    def terms(self, values: list) -> Q:
        return self._any_of({self.value("terms", value) for value in values})

    def like(self, query: str, tokens: tuple, case_insensitive: bool) -> Q:
        raise self.not_supported(query)

    def range(self, bounds: dict, zone) -> Q:
        tests = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
        # Every bound is read first, so that a bad one is refused even where another excludes all.
        limits = {op: int(self.value("range", value)) for op, value in bounds.items()}
        return self._any_of({
            candidate for candidate in (False, True)
            if all(tests[op](int(candidate), limit) for op, limit in limits.items())
        })

    def sort_value(self, value):
        return bool(value)

    def _any_of(self, values: set) -> Q:
        if len(values) == 2:
            return MATCH_ALL
        if not values:
            return MATCH_NONE
        return self.holds(values.pop())


class AnalyzedTextField(ColumnField):
    """Text that Elasticsearch analyses (a description, a full name): ``match`` finds its words, in any
    case; other queries compare the whole text as a keyword. Empty text is no value."""

    es_type = "text"
    nullable = True

    def __init__(self, name: str, column: str, sortable: bool = True):
        super().__init__(name, column)
        self.sortable = sortable

    def expression(self):
        return NullIf(F(self.column), Value(""), output_field=TextField())

    def terms(self, values: list) -> Q:
        return self.guard(super().terms(values))

    def exists(self) -> Q:
        return ~Q(**{self.column: ""})

    def guard(self, clause: Q) -> Q:
        return self.exists() & clause

    def match(self, value, every_word: bool = False) -> Q:
        words = WORD.findall(_keyword("match", value).lower())
        if not words:
            return MATCH_NONE
        clauses = [Q(HasWord(F(self.column), word)) for word in dict.fromkeys(words)]
        return reduce(and_ if every_word else or_, clauses)


# Words as Elasticsearch's standard analyzer roughly splits text: runs of letters, digits and "_".
WORD = re.compile(r"\w+")


class HasWord(Func):
    """The text holds ``word`` (lower case, word characters only) as a whole word, in any case. A
    LIKE or GLOB of the word between non-word characters: linear, and the word needs no escaping.
    SQLite's LOWER folds ASCII letters only."""

    output_field = BooleanField()

    def __init__(self, expression, word: str):
        super().__init__(expression)
        self.word = word

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"LOWER({sql}) ~ %s", (*params, f"(^|[^[:alnum:]_]){self.word}([^[:alnum:]_]|$)")

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(' ' || LOWER({sql}) || ' ') GLOB %s", (*params, f"*[^A-Za-z0-9_]{self.word}[^A-Za-z0-9_]*")


class HasScalar(Func):
    """The JSON value at ``path`` is a string, a number or a boolean: a leaf of Elasticsearch's
    flattened field. An object, an array or a null is no value there. False, never unknown, where
    the path is missing, so that ``must_not`` holds."""

    output_field = BooleanField()

    def __init__(self, expression, path: tuple[str, ...]):
        super().__init__(expression)
        self.path = path

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"COALESCE(JSONB_TYPEOF({sql} #> %s::text[]) IN ('string', 'number', 'boolean'), FALSE)",
            (*params, list(self.path)),
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # METADATA_KEY admits no double quote, so each key may be quoted as it is.
        path = "$" + "".join(f'."{key}"' for key in self.path)
        # The stored text names the last key as it is (METADATA_KEY is ASCII that JSON never escapes):
        # looking for it first spares parsing the metadata of every key that lacks it, most of them
        # when a whole table is read.
        return (
            f"(INSTR({sql}, %s) > 0 AND "
            f"COALESCE(JSON_TYPE({sql}, %s) IN ('text', 'integer', 'real', 'true', 'false'), FALSE))",
            (*params, f'"{self.path[-1]}"', *params, path),
        )


class MetadataField(Field):
    """``metadata.<path>``: a value inside the metadata object, compared as text like Elasticsearch's
    flattened keywords. A key that is absent, or holds an object or a null, has no value: it matches
    nothing (and so does match ``must_not``)."""

    nullable = True

    def __init__(self, name: str, path: tuple[str, ...]):
        super().__init__(name)
        self.path = path

    def _transform(self):
        return reduce(lambda parent, key: KeyTransform(key, parent), self.path[:-1], "metadata")

    def expression(self):
        text = Cast(KeyTextTransform(self.path[-1], self._transform()), TextField())
        return Case(When(self.exists(), then=text), default=Value(None), output_field=TextField())

    def exists(self) -> Q:
        return Q(HasScalar(F("metadata"), self.path))

    def guard(self, clause: Q) -> Q:
        return self.exists() & clause


def json_list_values(vendor: str, key: str | None) -> str:
    """SQL for the values of a JSON list (``{}`` for the column), as a table: its items, or with a
    ``key``, that key's value in each of its objects, or each of them where it is a list."""
    if key is None:
        return "JSON_EACH({})" if vendor == "sqlite" else "JSONB_PATH_QUERY({}, 'strict $[*]')"
    # The key is a field's declared name, never the request's, so it may be written in the SQL.
    if vendor == "sqlite":
        return f"JSON_EACH({{}}) AS entry, JSON_EACH(entry.value, '$.\"{key}\"')"
    # Lax mode: [*] on a single value is that value.
    return f"JSONB_PATH_QUERY({{}}, 'lax $[*].\"{key}\"[*]')"


class AnyJsonValue(Func):
    """Some leaf of a JSON column holds a value that equals one of ``values``, or matches the
    wildcard ``tokens`` (neither: holds any value). Without a ``key``, the leaves are all of them, in
    objects and arrays at any depth: the flattened metadata field's root, whose values are all its
    leaves, each in its JSON spelling. With a ``key``, the column is a list of objects and the
    leaves are each object's ``key``, a value or a list of values (``applications.resources``);
    ``in_list`` without a key, the items of a list."""

    output_field = BooleanField()

    def __init__(
        self, expression, values: tuple = (), tokens: tuple | None = None, case_insensitive=False,
        in_list=False, key=None,
    ):
        super().__init__(expression)
        self.values = values
        self.tokens = tokens
        self.case_insensitive = case_insensitive
        self.in_list = in_list
        self.key = key

    def _compile(self, compiler, source: str, text: str, types: str, like: str):
        sql, params = compiler.compile(self.source_expressions[0])
        source = json_list_values(compiler.connection.vendor, self.key) if self.in_list else source
        if self.tokens is not None:
            condition, values = like.format(text), (self._pattern(compiler),)
        elif self.values:
            condition, values = f"{text} IN ({', '.join(['%s'] * len(self.values))})", self.values
        else:
            condition, values = "TRUE", ()
        return (
            # Every part is this class's own SQL; values are parameters.
            f"EXISTS (SELECT 1 FROM {source.format(sql)} AS leaf WHERE {types} AND {condition})",  # noqa: S608
            (*params, *values),
        )

    def _pattern(self, compiler):
        if compiler.connection.vendor == "sqlite":
            return _glob(self.tokens, self.case_insensitive)
        return _like(self.tokens)

    def as_sql(self, compiler, connection, **extra):
        like = "UPPER({}) LIKE UPPER(%s) ESCAPE '\\'" if self.case_insensitive else "{} LIKE %s ESCAPE '\\'"
        return self._compile(
            compiler, "JSONB_PATH_QUERY({}, 'strict $.**')", "(leaf #>> '{}')",
            "JSONB_TYPEOF(leaf) IN ('string', 'number', 'boolean')", like,
        )

    def as_sqlite(self, compiler, connection, **extra):
        text = (
            "(CASE leaf.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            "ELSE CAST(leaf.atom AS TEXT) END)"
        )
        return self._compile(
            compiler, "JSON_TREE({})", text, "leaf.type IN ('text', 'integer', 'real', 'true', 'false')",
            "{} GLOB %s",
        )


class MetadataRootField(Field):
    """``metadata`` itself: matches where any of its leaves does, as Elasticsearch's flattened field
    does. Term-level queries only; it is neither sorted nor aggregated."""

    nullable = True

    def term(self, value, case_insensitive: bool = False) -> Q:
        value = self.value("term", value)
        if case_insensitive:
            return self.like("term", tuple(value), True)
        return Q(AnyJsonValue(F("metadata"), values=(value,)))

    def terms(self, values: list) -> Q:
        values = tuple(self.value("terms", value) for value in values)
        return Q(AnyJsonValue(F("metadata"), values=values))

    def like(self, query: str, tokens: tuple, case_insensitive: bool) -> Q:
        if len(tokens) > MAX_PATTERN_LENGTH:
            raise ValidationError(f"a pattern may not be longer than [{MAX_PATTERN_LENGTH}] characters")
        return Q(AnyJsonValue(F("metadata"), tokens=tokens, case_insensitive=case_insensitive))

    def range(self, bounds: dict, zone) -> Q:
        raise ValidationError(
            f"range queries are not supported on the field [{self.name}]; name a key, e.g. [{self.name}.key]"
        )

    def exists(self) -> Q:
        return Q(AnyJsonValue(F("metadata")))

    def expression(self):
        raise ValidationError(f"Field [{self.name}] can be searched, but not sorted or aggregated")


class MultiValuedField(Field):
    """A keyword with many values (a role's ``applications.resources``, a user's ``roles``): a query
    matches where any value does; a sort takes the least value ascending, the greatest descending,
    as Elasticsearch sorts a multi-valued field."""

    nullable = True

    def any_value(self, values: tuple = (), tokens: tuple | None = None, case_insensitive=False) -> Q:
        """Rows with a value among ``values``, or matching the wildcard ``tokens`` (neither: any value)."""
        raise NotImplementedError

    def bound(self, greatest: bool):
        """The least (or greatest) value, null where there is none."""
        raise NotImplementedError

    def term(self, value, case_insensitive: bool = False) -> Q:
        value = self.value("term", value)
        if case_insensitive:
            return self.like("term", tuple(value), True)
        return self.any_value(values=(value,))

    def terms(self, values: list) -> Q:
        return self.any_value(values=tuple(self.value("terms", value) for value in values))

    def like(self, query: str, tokens: tuple, case_insensitive: bool) -> Q:
        if len(tokens) > MAX_PATTERN_LENGTH:
            raise ValidationError(f"a pattern may not be longer than [{MAX_PATTERN_LENGTH}] characters")
        return self.any_value(tokens=tokens, case_insensitive=case_insensitive)

    def range(self, bounds: dict, zone) -> Q:
        raise ValidationError(f"range queries are not supported on the multi-valued field [{self.name}]")

    def exists(self) -> Q:
        return self.any_value()

    def sort_expression(self, tie_broken: bool, descending: bool = False):
        return self.bound(greatest=descending)

    def sorted_after(self, alias: str, value, descending: bool) -> Q:
        return Q(**{f"{alias}__{'lt' if descending else 'gt'}": value})

    def sorted_equal(self, alias: str, value) -> Q:
        return Q(**{alias: value})


class JsonListField(MultiValuedField):
    """The items of a JSON list column, or ``key`` of each of its objects, itself a value or a list."""

    def __init__(self, name: str, column: str, key: str | None = None):
        super().__init__(name)
        self.column = column
        self.key = key

    def any_value(self, values: tuple = (), tokens: tuple | None = None, case_insensitive=False) -> Q:
        return Q(AnyJsonValue(F(self.column), values, tokens, case_insensitive, in_list=True, key=self.key))

    def bound(self, greatest: bool):
        return JsonListBound(F(self.column), self.key, greatest=greatest)


class JsonListBound(Func):
    """The least (or greatest) value of a ``JsonListField``; null where it has none."""

    output_field = TextField()

    def __init__(self, expression, key: str | None, greatest: bool):
        super().__init__(expression)
        self.key = key
        self.greatest = greatest

    def _compile(self, compiler, template: str):
        sql, params = compiler.compile(self.source_expressions[0])
        leaves = json_list_values(compiler.connection.vendor, self.key).format(sql)
        bound = "MAX" if self.greatest else "MIN"
        return template.format(bound=bound, leaves=leaves), params

    def as_sql(self, compiler, connection, **extra):
        return self._compile(
            compiler,
            "(SELECT {bound}(leaf #>> '{{}}') FROM {leaves} AS leaf WHERE JSONB_TYPEOF(leaf) = 'string')",
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self._compile(
            compiler, "(SELECT {bound}(leaf.atom) FROM {leaves} AS leaf WHERE leaf.type = 'text')"
        )


# Elasticsearch's index order; here the row's id, which never changes.
DOC = ColumnField("_doc", "id")


@dataclass(frozen=True)
class Index:
    """What one query API exposes of its security index, as Elasticsearch declares it per API: the
    fields by name (a ``metadata`` field opens ``metadata.<path>`` too), the wording of its
    refusals, its request payload's name, its order without a sort, how document ids read, and
    what parses its aggregations (None: it takes none)."""

    fields: dict[str, Field]
    # "Field [x] is not allowed <refusal>"
    refusal: str
    # "Query type [x] is not <unsupported>"
    unsupported: str
    payload: str
    default_sort: Field = DOC
    # Elasticsearch's document id of a row: this prefix, then this column's value.
    id_prefix: str = ""
    id_column: str = "id"
    aggregations: Callable | None = None

    def field(self, name) -> Field:
        """The field a query names, or Elasticsearch's refusal for any other name."""
        if isinstance(name, str) and "*" in name:
            raise ValidationError(f"Field name pattern [{name}] is not allowed {self.refusal}")
        if isinstance(name, str):
            if name in self.fields:
                return self.fields[name]
            path = tuple(name.split("."))[1:]
            if (
                name.startswith("metadata.")
                and "metadata" in self.fields
                and len(path) <= MAX_METADATA_DEPTH
                and all(METADATA_KEY.fullmatch(key) and not key.isdigit() for key in path)
            ):
                return MetadataField(name, path)
        raise ValidationError(f"Field [{name}] is not allowed {self.refusal}")

    def not_supported(self, what: str, verb: str = "is") -> ValidationError:
        return ValidationError(f"{what} {verb} not {self.unsupported}")

    def ids(self, values: list[str]) -> Q:
        """The ``ids`` query: rows whose Elasticsearch document id is one of ``values``."""
        prefix = len(self.id_prefix)
        ids = [value[prefix:] for value in values if value.startswith(self.id_prefix)]
        return Q(**{f"{self.id_column}__in": ids}) if ids else MATCH_NONE


# ---------------------------------------------------------------------------------------------
# Query clauses


def _check_options(query: str, options: dict, allowed: set) -> None:
    for key, value in options.items():
        if key not in allowed | {"boost", "_name"}:
            raise ParsingError(f"[{query}] query does not support [{key}]")
        if key == "boost" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ParsingError(f"[{query}] query does not support [boost] of type [{_type_name(value)}]")
        if key in ("_name", "rewrite") and not isinstance(value, str):
            raise ParsingError(f"[{query}] query does not support [{key}] of type [{_type_name(value)}]")
        if key in ("case_insensitive", "include_lower", "include_upper") and not isinstance(value, bool):
            raise ParsingError(f"[{query}] query does not support [{key}] of type [{_type_name(value)}]")


def _object(query: str, body) -> dict:
    if not isinstance(body, dict):
        raise ParsingError(f"[{query}] query malformed, no start_object after query name")
    return body


def _single_field(query: str, body) -> tuple[str, object]:
    """``{"field": value}``: the one field a term-level query names."""
    fields = [key for key in _object(query, body) if key not in ("boost", "_name")]
    if len(fields) != 1:
        raise ParsingError(
            f"[{query}] query doesn't support multiple fields, found [{fields[0]}] and [{fields[1]}]"
            if fields else f"[{query}] query malformed, no field specified"
        )
    _check_options(query, {key: value for key, value in body.items() if key != fields[0]}, set())
    return fields[0], body[fields[0]]


def _value_and_options(query: str, value, value_keys: tuple[str, ...], allowed: set) -> tuple[object, dict]:
    """A field's value: either given directly or as ``{"value": ..., options}``."""
    if not isinstance(value, dict):
        return value, {}
    _check_options(query, value, allowed | set(value_keys))
    present = [key for key in value_keys if key in value]
    if not present:
        raise ParsingError(f"[{query}] query requires [{value_keys[0]}]")
    return value[present[-1]], value


class _Translator:
    """One query's translation; counts clauses and terms so that every query stays bounded."""

    def __init__(self, index: Index):
        self.index = index
        self.clauses = 0
        self.terms = 0

    def count(self, clauses: int = 0, terms: int = 0) -> None:
        self.clauses += clauses
        self.terms += terms
        if self.clauses > MAX_CLAUSES or self.terms > MAX_TERMS:
            raise TooManyClauses(
                f"query is too large: at most [{MAX_CLAUSES}] clauses and [{MAX_TERMS}] terms are allowed"
            )

    def query(self, value, depth: int = 0) -> Q:
        if not isinstance(value, dict) or not value:
            raise ParsingError("query malformed, must start with start_object")
        if len(value) > 1:
            first = next(iter(value))
            raise ParsingError(f"[{first}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
        kind, body = next(iter(value.items()))
        handler = QUERY_TYPES.get(kind)
        if handler is None:
            if kind in UNSUPPORTED_QUERY_TYPES:
                raise self.index.not_supported(f"Query type [{kind}]")
            raise ParsingError(f"unknown query [{kind}]")
        if depth:
            # A clause is a query inside a bool, so that one bool may hold MAX_CLAUSES of them.
            self.count(clauses=1)
        return handler(self, body, depth)

    def match_all_query(self, body, depth) -> Q:
        _check_options("match_all", _object("match_all", body), set())
        return MATCH_ALL

    def bool_query(self, body, depth) -> Q:
        if depth >= MAX_BOOL_DEPTH:
            raise ValidationError(
                "The nested depth of the query exceeds the maximum nested depth for bool queries "
                f"set in [indices.query.bool.max_nested_depth] ({MAX_BOOL_DEPTH})"
            )
        options = _object("bool", body)
        _check_options("bool", options, {"must", "filter", "should", "must_not", "minimum_should_match",
                                         "adjust_pure_negative"})
        occurs = {}
        for occur in ("must", "filter", "should", "must_not"):
            clauses = options.get(occur, [])
            if isinstance(clauses, dict):
                clauses = [clauses]
            if not isinstance(clauses, list):
                raise ParsingError(f"[bool] query does not support [{occur}] of type [{_type_name(clauses)}]")
            occurs[occur] = [self.query(clause, depth + 1) for clause in clauses]
        if "adjust_pure_negative" in options and not isinstance(options["adjust_pure_negative"], bool):
            raise ParsingError("[bool] query does not support [adjust_pure_negative] of non-boolean value")
        required = occurs["must"] + occurs["filter"]
        should = occurs["should"]
        clauses = required + [~clause for clause in occurs["must_not"]]
        if should:
            default = 0 if required else 1
            minimum = _minimum_should_match(options.get("minimum_should_match"), len(should), default)
            if minimum:
                clauses.append(_at_least(minimum, should))
        return reduce(and_, clauses) if clauses else MATCH_ALL

    def term_query(self, body, depth) -> Q:
        name, value = _single_field("term", body)
        value, options = _value_and_options("term", value, ("value",), {"case_insensitive"})
        return self.index.field(name).term(value, options.get("case_insensitive", False))

    def match_query(self, body, depth) -> Q:
        name, value = _single_field("match", body)
        value, options = _value_and_options("match", value, ("query",), {"operator"})
        operator = options.get("operator", "or")
        if operator not in ("or", "and", "OR", "AND"):
            raise ParsingError(f"[match] query does not support [operator] value [{operator}]")
        return self.index.field(name).match(value, every_word=operator.lower() == "and")

    def terms_query(self, body, depth) -> Q:
        name, values = _single_field("terms", body)
        if isinstance(values, dict):
            raise self.index.not_supported("terms query with terms lookup")
        if not isinstance(values, list):
            raise ParsingError(f"[terms] query does not support [{name}] of type [{_type_name(values)}]")
        self.count(terms=len(values))
        return self.index.field(name).terms(values) if values else MATCH_NONE

    def prefix_query(self, body, depth) -> Q:
        name, value = _single_field("prefix", body)
        value, options = _value_and_options("prefix", value, ("value",), {"case_insensitive", "rewrite"})
        tokens = (*_keyword("prefix", value), STAR)
        return self.index.field(name).like("prefix", tokens, options.get("case_insensitive", False))

    def wildcard_query(self, body, depth) -> Q:
        name, value = _single_field("wildcard", body)
        value, options = _value_and_options(
            "wildcard", value, ("value", "wildcard"), {"case_insensitive", "rewrite"}
        )
        field = self.index.field(name)
        tokens = wildcard_pattern(_keyword("wildcard", value))
        if not tokens:
            return field.term("", options.get("case_insensitive", False))
        return field.like("wildcard", tokens, options.get("case_insensitive", False))

    def range_query(self, body, depth) -> Q:
        name, options = _single_field("range", body)
        if not isinstance(options, dict):
            raise ParsingError(f"[range] query does not support [{name}] of type [{_type_name(options)}]")
        _check_options("range", options, {"gt", "gte", "lt", "lte", "from", "to", "include_lower",
                                          "include_upper", "format", "time_zone", "relation"})
        if "relation" in options:
            raise self.index.not_supported("range query with relation")
        for date_format in str(options.get("format", "epoch_millis")).split("||"):
            if date_format not in DATE_FORMATS:
                raise self.index.not_supported(f"[range] [format] [{date_format}]")
        zone = _time_zone(options["time_zone"]) if "time_zone" in options else UTC
        bounds = {}
        for key, value in options.items():
            if value is None or key not in ("gt", "gte", "lt", "lte", "from", "to"):
                continue
            if key == "from":
                key = "gte" if options.get("include_lower", True) else "gt"
            elif key == "to":
                key = "lte" if options.get("include_upper", True) else "lt"
            # As in Elasticsearch, a later bound on the same side replaces an earlier one.
            side = key.rstrip("e")
            bounds = {op: bound for op, bound in bounds.items() if op.rstrip("e") != side} | {key: value}
        return self.index.field(name).range(bounds, zone)

    def exists_query(self, body, depth) -> Q:
        options = _object("exists", body)
        _check_options("exists", options, {"field"})
        if "field" not in options:
            raise ParsingError("[exists] must be provided with a [field]")
        return self.index.field(options["field"]).exists()

    def ids_query(self, body, depth) -> Q:
        options = _object("ids", body)
        _check_options("ids", options, {"values"})
        values = options.get("values", [])
        if not isinstance(values, list):
            raise ParsingError(f"[ids] query does not support [values] of type [{_type_name(values)}]")
        self.count(terms=len(values))
        return self.index.ids([_keyword("ids", value) for value in values])

    def simple_query_string_query(self, body, depth) -> Q:
        options = _object("simple_query_string", body)
        _check_options("simple_query_string", options, SIMPLE_QUERY_STRING_OPTIONS)
        text = options.get("query")
        if not isinstance(text, str):
            raise ParsingError("[simple_query_string] query text missing")
        text = storable_text("simple_query_string", text)
        specs = options.get("fields", ["*"]) or ["*"]
        if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
            raise ParsingError("[simple_query_string] query does not support [fields] of that type")
        # Querying every field is lenient, as in Elasticsearch: a date field simply does not match a word.
        lenient = options.get("lenient", False) or "*" in specs
        if not isinstance(lenient, bool):
            raise ParsingError("[simple_query_string] query does not support [lenient] of that type")
        operator = options.get("default_operator", "or")
        if not isinstance(operator, str) or operator.lower() not in ("or", "and"):
            raise ParsingError(f"[simple_query_string] default operator [{operator}] is not allowed")
        try:
            flags = simple_query_string.parse_flags(options.get("flags", "ALL"))
        except ValueError as error:
            raise ValidationError(f"Unknown [simple_query_string] flag [{error.args[0]}]") from None
        try:
            tree = simple_query_string.parse(text, flags, operator.lower(), MAX_BOOL_DEPTH - depth - 1)
        except simple_query_string.TooDeep:
            raise ValidationError(
                "The nested depth of the query exceeds the maximum nested depth for bool queries "
                f"set in [indices.query.bool.max_nested_depth] ({MAX_BOOL_DEPTH})"
            ) from None
        fields = _query_string_fields(self.index, specs)
        clause = self._query_string_clause(tree, fields, lenient) if tree is not None and fields else None
        if clause is None:
            return MATCH_NONE
        if isinstance(tree, simple_query_string.Group) and tree.operator == "or" and clause.connector == OR:
            children = list(clause.children)
            minimum = _minimum_should_match(options.get("minimum_should_match"), len(children), 1)
            return _at_least(minimum, children) if minimum else MATCH_ALL
        return clause

    def _query_string_clause(self, node, fields: list[Field], lenient: bool) -> Q | None:
        """One node of a parsed simple query string; None for what no field can take."""
        if isinstance(node, simple_query_string.Not):
            inner = self._query_string_clause(node.clause, fields, lenient)
            return None if inner is None else ~inner
        if isinstance(node, simple_query_string.Group):
            clauses = [self._query_string_clause(child, fields, lenient) for child in node.clauses]
            clauses = [clause for clause in clauses if clause is not None]
            if not clauses:
                return None
            return Q(*clauses, _connector=AND if node.operator == "and" else OR)
        if node.fuzziness:
            raise self.index.not_supported("fuzzy queries", verb="are")
        alternatives = []
        for field in fields:
            self.count(clauses=1)
            try:
                if node.prefix:
                    alternatives.append(field.like("prefix", (*node.text, STAR), False))
                else:
                    alternatives.append(field.match(node.text))
            except ValidationError:
                if not lenient:
                    raise
        return reduce(or_, alternatives) if alternatives else None

QUERY_TYPES = {
    "match_all": _Translator.match_all_query,
    "bool": _Translator.bool_query,
    "term": _Translator.term_query,
    "terms": _Translator.terms_query,
    "match": _Translator.match_query,
    "prefix": _Translator.prefix_query,
    "wildcard": _Translator.wildcard_query,
    "range": _Translator.range_query,
    "exists": _Translator.exists_query,
    "ids": _Translator.ids_query,
    "simple_query_string": _Translator.simple_query_string_query,
}
SIMPLE_QUERY_STRING_OPTIONS = {
    "query", "fields", "default_operator", "analyzer", "flags", "lenient", "minimum_should_match",
    "quote_field_suffix", "analyze_wildcard", "auto_generate_synonyms_phrase_query", "fuzzy_max_expansions",
    "fuzzy_prefix_length", "fuzzy_transpositions",
}


def _query_string_fields(index: Index, specs: list[str]) -> list[Field]:
    """The fields a simple query string searches: named ones (a ``^boost`` is accepted and has no
    effect, as there is no score), or those a ``*`` pattern matches. As in Elasticsearch, a name that is
    no field of the index is left out rather than refused; with none left, the query matches nothing."""
    names = []
    for spec in specs:
        name, _, boost = spec.partition("^")
        if boost:
            try:
                float(boost)
            except ValueError:
                raise ValidationError(f"[simple_query_string] field [{spec}] has a malformed boost") from None
        if "*" in name:
            tokens = wildcard_pattern(name.replace("\\", "\\\\").replace("?", "\\?"))
            # A user's pattern: matched by RE2, in linear time, as every user-supplied pattern is.
            program = re2.compile(_regex(tokens))
            names += [field for field in index.fields if program.fullmatch(field)]
        elif name in index.fields or name.startswith("metadata."):
            names.append(name)
    fields = []
    for name in dict.fromkeys(names):
        try:
            fields.append(index.field(name))
        except ValidationError:
            continue
    return fields


def _regex(tokens: tuple) -> str:
    return "".join(".*" if token is STAR else re.escape(token) for token in tokens)
# Real Elasticsearch queries that the API key query refuses by name rather than as unknown.
UNSUPPORTED_QUERY_TYPES = frozenset("""
    boosting combined_fields constant_score dis_max function_score fuzzy geo_bounding_box
    geo_distance geo_shape has_child has_parent intervals match_bool_prefix match_none match_phrase
    match_phrase_prefix more_like_this multi_match nested parent_id percolate pinned query_string
    regexp script script_score shape span_first span_near span_not span_or
    span_term terms_set wrapper
""".split())


def _minimum_should_match(value, optional: int, default: int) -> int:
    """Elasticsearch's ``minimum_should_match``: an integer or a percentage, either possibly negative."""
    if value is None:
        return default
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = re.fullmatch(r"(-?)(\d{1,9})(%?)", text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(f"[bool] query does not support [minimum_should_match] value [{value}]")
    negative, number, percent = match[1], int(match[2]), match[3]
    count = optional * number // 100 if percent else number
    return max(0, optional - count if negative else count)


def _at_least(minimum: int, clauses: list[Q]) -> Q:
    if minimum > len(clauses):
        return MATCH_NONE
    if minimum == 1:
        return reduce(or_, clauses)
    if minimum == len(clauses):
        return reduce(and_, clauses)
    return Q(AtLeast(minimum, tuple(clauses)))


def translate_query(query, index: Index) -> Q:
    """The ``query`` of a request to ``index``'s query API as a ``Q``; ``ValidationError`` for any bad
    input. ``MATCH_ALL`` itself for a query every row matches, which callers may leave out."""
    where = _Translator(index).query(query)
    return MATCH_ALL if where is MATCH_ALL else Q(Condition(where))


# ---------------------------------------------------------------------------------------------
# The SQL's shape
#
# Django writes the clauses of one bool as one flat AND/OR chain, and SQLite parses a chain of n
# operators into an expression n levels deep: it refuses 1,000 ("Expression tree is too large").
# Its parser, in turn, holds at most 100 pending tokens ("parser stack overflow"): each NOT, CASE
# or operand to the right of an operator that encloses a nested clause keeps a few pending. So
# long chains are cut into groups; NOT is pushed down to the single clauses (De Morgan, which
# holds for SQL's unknowns too); and the deepest operand of each chain comes first, where it
# leaves nothing pending. The SQL then nests no deeper than the request body, whatever the clause
# counts. PostgreSQL parses without such limits; it gets the same shape.

# Operands joined flat in one chain; longer chains nest in groups of this many.
GROUP_SIZE = 8
DE_MORGAN = {AND: OR, OR: AND}


@dataclass(frozen=True)
class AtLeast:
    """``minimum_should_match`` above one: at least ``minimum`` of ``clauses`` hold."""

    minimum: int
    clauses: tuple[Q, ...]


class Group(WhereNode):
    """An AND or OR of clauses, always in parentheses, so that it reads as one operand."""

    resolved = True


class Holds(Expression):
    """1 where a condition is true, 0 where it is false or unknown: a term of ``AtLeast``'s sum.
    A ``compound`` condition is a ``Group`` or a comparison, either of which binds tighter than IS."""

    output_field = IntegerField()

    def __init__(self, condition, compound: bool):
        super().__init__()
        self.condition = condition
        self.compound = compound

    def get_source_expressions(self):
        return [self.condition]

    def set_source_expressions(self, expressions):
        (self.condition,) = expressions

    def _compile(self, compiler, template: str):
        try:
            sql, params = compiler.compile(self.condition)
        except EmptyResultSet:
            return "0", ()
        except FullResultSet:
            return "1", ()
        return template.format(sql), params

    def as_sql(self, compiler, connection, **extra):
        return self._compile(compiler, "CASE WHEN {} THEN 1 ELSE 0 END")

    def as_sqlite(self, compiler, connection, **extra):
        # IS TRUE keeps fewer tokens pending than CASE, which stays for the single clauses.
        return self._compile(compiler, "({} IS TRUE)" if self.compound else "CASE WHEN {} THEN 1 ELSE 0 END")


def _grouped(parts: list, group) -> list:
    """``parts`` (deepest first) as at most GROUP_SIZE operands: the first alone, at the front of the
    chain, and the rest in a tree of groups (``group`` makes one) whose height grows with log n."""
    if len(parts) <= GROUP_SIZE:
        return parts
    rest = parts[1:]
    while len(rest) > GROUP_SIZE:
        chunks = [rest[start : start + GROUP_SIZE] for start in range(0, len(rest), GROUP_SIZE)]
        rest = [group(chunk) if len(chunk) > 1 else chunk[0] for chunk in chunks]
    return [parts[0], group(rest)]


def _deepest_first(parts: list[tuple[object, int]]) -> list[tuple[object, int]]:
    return sorted(parts, key=lambda part: part[1], reverse=True)


def _sum(terms: list, template: str = "(%(expressions)s)") -> Func:
    return Func(*terms, template=template, arg_joiner=" + ", output_field=IntegerField())


def _at_least_sql(clause: AtLeast, resolve, negated: bool) -> tuple[object, int]:
    """The sum of its clauses that hold, compared with the minimum: below it when negated."""
    parts = _deepest_first([_shallow(child, resolve) for child in clause.clauses])
    terms = [Holds(node, compound=depth > 0) for node, depth in parts]
    total = _sum(_grouped(terms, _sum), template="%(expressions)s")
    comparison = LessThan if negated else GreaterThanOrEqual
    return comparison(total, clause.minimum), 1 + parts[0][1]


def _shallow(clause, resolve, negated: bool = False) -> tuple[object, int]:
    """A translated clause (negated if ``negated``) as resolved SQL, and how deeply that nests.

    Clauses of single fields are ``resolve``d by Django, negated there, so that its rules for
    negating a lookup apply; AND, OR and ``AtLeast`` are regrouped as described above.
    """
    if isinstance(clause, AtLeast):
        return _at_least_sql(clause, resolve, negated)
    if not isinstance(clause, Q):
        clause = Q(clause)
    negated ^= clause.negated
    compound = any(isinstance(child, Q | AtLeast) for child in clause.children)
    if not compound and len(clause.children) <= GROUP_SIZE:
        return resolve(Q(*clause.children, _connector=clause.connector, _negated=negated)), 0
    if len(clause.children) == 1:
        return _shallow(clause.children[0], resolve, negated)
    connector = DE_MORGAN[clause.connector] if negated else clause.connector
    parts = _deepest_first([_shallow(child, resolve, negated) for child in clause.children])
    chain = _grouped([node for node, _ in parts], lambda group: Group(group, connector))
    return Group(chain, connector), 1 + parts[0][1]


class Condition(Expression):
    """A translated query, resolved as SQL of the shape described above."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, where: Q):
        super().__init__()
        self.where = where

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        def resolve(clause: Q):
            return clause.resolve_expression(query, allow_joins, reuse, summarize)

        return _shallow(self.where, resolve)[0]


# ---------------------------------------------------------------------------------------------
# Sort, paging and search_after


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool = False
    nulls_first: bool = False

    def order_by(self, alias: str):
        # Columns that are never null keep a plain order, so that their indexes serve it.
        nulls = {}
        if self.field.nullable:
            nulls = {"nulls_first": True} if self.nulls_first else {"nulls_last": True}
        return F(alias).desc(**nulls) if self.descending else F(alias).asc(**nulls)


def _sort_key(index: Index, name, options) -> SortKey:
    field = DOC if name == "_doc" else index.field(name)
    if isinstance(field, MetadataRootField):
        field.expression()
    if not field.sortable:
        raise ValidationError(f"sorting is not supported for field [{name}]")
    if isinstance(options, str):
        options = {"order": options}
    if not isinstance(options, dict):
        raise ValidationError("mal-formatted sort object")
    unknown = sorted(set(options) - {"order", "missing"})
    if unknown:
        raise ParsingError(f"[field_sort] unknown field [{unknown[0]}]")
    order = options.get("order", "asc")
    if not isinstance(order, str) or order.lower() not in ("asc", "desc"):
        raise ValidationError(f"Unknown SortOrder [{order}]")
    missing = options.get("missing", "_last")
    if missing not in ("_first", "_last"):
        raise ValidationError(f"[field_sort] [missing] must be [_first] or [_last], not [{missing}]")
    return SortKey(field, descending=order.lower() == "desc", nulls_first=missing == "_first")


def parse_sort(sort, index: Index) -> tuple[SortKey, ...]:
    """``sort``: a field name, ``{field: order}``, ``{field: {"order": ...}}``, or a list of those."""
    items = sort if isinstance(sort, list) else [sort]
    if len(items) > MAX_SORT_FIELDS:
        raise ValidationError(f"[sort] may name at most [{MAX_SORT_FIELDS}] fields")
    keys = []
    for item in items:
        if isinstance(item, str):
            keys.append(_sort_key(index, item, "asc"))
        elif isinstance(item, dict) and len(item) == 1:
            keys.append(_sort_key(index, *next(iter(item.items()))))
        else:
            raise ValidationError("mal-formatted sort object")
    return tuple(keys)


def parse_url_sort(value: str) -> list:
    """The URL form ``field:order,field``, as the official client sends a sort written that way."""
    return [{name: order or "asc"} for name, _, order in (item.partition(":") for item in value.split(","))]


def _search_after_value(key: SortKey, value):
    if value is None:
        return None
    try:
        return key.field.value("search_after", value)
    except ValidationError:
        raise ValidationError(f"Failed to parse search_after value for field [{key.field.name}].") from None


def _after(keys: tuple[SortKey, ...], values: list) -> Q:
    """Rows strictly after ``values`` in the sort order; ties on every sort value are skipped, as in
    Elasticsearch, so a sort that ends with a unique field pages without gaps or repeats."""
    alternatives, equal_so_far = [], []
    for index, (key, value) in enumerate(zip(keys, values, strict=True)):
        alias = f"sort_value_{index}"
        if value is None:
            beyond = Q(**{f"{alias}__isnull": False}) if key.nulls_first else MATCH_NONE
            equal = Q(**{f"{alias}__isnull": True})
        else:
            beyond = key.field.sorted_after(alias, value, key.descending)
            if key.field.nullable and not key.nulls_first:
                beyond |= Q(**{f"{alias}__isnull": True})
            equal = key.field.sorted_equal(alias, value)
        alternatives.append(reduce(and_, [*equal_so_far, beyond]))
        equal_so_far.append(equal)
    return reduce(or_, alternatives)


@dataclass(frozen=True)
class QueryRequest:
    """A parsed request to a query API."""

    index: Index
    where: Q
    sort: tuple[SortKey, ...]
    start: int
    size: int
    search_after: tuple | None
    aggregations: tuple = ()


QUERY_REQUEST_FIELDS = frozenset({"query", "from", "size", "sort", "search_after"})
AGGREGATIONS = frozenset({"aggs", "aggregations"})


def _integer(body: dict, name: str, default: int, payload: str) -> int:
    value = body.get(name, default)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContentParseError(f"[{payload}] failed to parse field [{name}]")
    if value < 0:
        raise RequestValidationFailed(f"[{name}] parameter cannot be negative but was [{value}]")
    return value


def parse_query_request(body, index: Index, url_sort: str | None = None) -> QueryRequest:
    """The body of a request to ``index``'s query API (and its URL ``sort``), validated."""
    payload = index.payload
    if not isinstance(body, dict):
        raise ContentParseError(f"[{payload}] expected an object, but found [{_type_name(body)}]")
    allowed = QUERY_REQUEST_FIELDS | (AGGREGATIONS if index.aggregations else frozenset())
    for key, value in body.items():
        if key not in allowed:
            raise ContentParseError(f"[{payload}] unknown field [{key}]")
        if value is None:
            raise ContentParseError(f"[{payload}] {key} doesn't support values of type: VALUE_NULL")
    if "aggs" in body and "aggregations" in body:
        raise ParsingError("Found two aggregation definitions: [aggs] and [aggregations]")
    start, size = _integer(body, "from", 0, payload), _integer(body, "size", DEFAULT_SIZE, payload)
    if start + size > MAX_RESULT_WINDOW:
        raise ValidationError(
            f"Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] "
            f"but was [{start + size}]. See the scroll api for a more efficient way to request large data "
            "sets. This limit can be set by changing the [index.max_result_window] index level setting."
        )
    if url_sort is not None and "sort" in body:
        raise ValidationError("[sort] may be given in the body or in the URL, not in both")
    if "sort" in body:
        sort = parse_sort(body["sort"], index)
    else:
        sort = parse_sort(parse_url_sort(url_sort), index) if url_sort is not None else ()
    search_after = body.get("search_after")
    if search_after is not None:
        if not isinstance(search_after, list):
            raise ContentParseError(f"[{payload}] search_after doesn't support values of type: "
                                    f"{_type_name(search_after)}")
        if not sort:
            raise ValidationError("[search_after] requires a [sort]")
        if len(search_after) != len(sort):
            raise ValidationError(
                f"search_after has {len(search_after)} value(s) but sort has {len(sort)}."
            )
        if start:
            raise ValidationError("`from` parameter must be set to 0 when `search_after` is used.")
        search_after = tuple(
            _search_after_value(key, value) for key, value in zip(sort, search_after, strict=True)
        )
    where = translate_query(body["query"], index) if "query" in body else MATCH_ALL
    aggs = body.get("aggs", body.get("aggregations"))
    aggregations = index.aggregations(aggs) if aggs is not None else ()
    return QueryRequest(index, where, sort, start, size, search_after, aggregations)


def search(rows, query: QueryRequest) -> tuple[int, list[tuple[object, list | None]]]:
    """``(total, [(row, sort values or None)])``: the page of ``rows`` the query asks for.

    Every order ends with the id, so pages are stable; its direction is the opposite of the first
    sort key's, which an API key's (created DESC, id) index serves. Without a sort the order is the
    index's default, like Elasticsearch's index order.
    """
    matching = rows.filter(query.where)
    total = matching.count()
    sort = query.sort or (SortKey(query.index.default_sort),)
    aliases = {
        f"sort_value_{position}": key.field.sort_expression(
            tie_broken=position < len(sort) - 1, descending=key.descending
        )
        for position, key in enumerate(sort)
    }
    ordering = [key.order_by(alias) for key, alias in zip(sort, aliases, strict=True)]
    if DOC not in [key.field for key in sort]:
        ordering.append(F("id").asc() if sort[0].descending else F("id").desc())
    page = matching.annotate(**aliases).order_by(*ordering)
    if query.search_after is not None:
        page = page.filter(_after(query.sort, list(query.search_after)))
    page = page[query.start : query.start + query.size]
    return total, [(row, _sort_values(row, query.sort)) for row in page]


def _sort_values(row, sort: tuple[SortKey, ...]) -> list | None:
    """``_sort`` of one row, only when the request asked for a sort, as in Elasticsearch."""
    if not sort:
        return None
    return [item.field.sort_value(getattr(row, f"sort_value_{index}")) for index, item in enumerate(sort)]
