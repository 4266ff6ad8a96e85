"""Aggregations of the query API key API (``aggs``/``aggregations``), computed by the database.

Elasticsearch allows, for API keys, the bucket aggregations ``terms``, ``composite`` (of ``terms``
sources), ``range``, ``date_range``, ``missing``, ``filter``, ``filters`` and ``global``, and the
metrics ``cardinality`` and ``value_count``, over the fields the query may name
(``apikeys.query.API_KEYS``). Each aggregation is one SQL statement (GROUP BY, or COUNTs with
a FILTER), never a walk over keys in Python. A sub-aggregation that counts (filter, filters,
missing, range, date_range, the metrics) becomes conditional counts of its parent's statement; a
terms, composite or global beneath a bucket runs once per bucket of its parent, so the buckets that
carry those are bounded. Filters are queries of the same DSL, translated by the query engine
(``restapi.query.dsl``).
"""

import re
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, Q, Value

from accounts.exceptions import ValidationError
from apikeys.query import API_KEYS, FIELDS, InvalidatedField
from restapi.query.dsl import (
    EPOCH,
    MATCH_ALL,
    MATCH_NONE,
    MILLISECOND,
    ColumnField,
    DateField,
    Field,
    MetadataField,
    MetadataRootField,
    ParsingError,
    epoch_millis,
    parse_date,
    translate_query,
)

DEFAULT_SIZE = 10
# Elasticsearch's search.max_buckets: every bucket of every aggregation of one request counts.
MAX_BUCKETS = 65_536
# Buckets whose sub-aggregations each run their own statements: a bound on one request's work.
MAX_BUCKETS_WITH_SUBS = 1_000
NAME = re.compile(r"[^\[\]>]+")
DEFAULT_OTHER_BUCKET_KEY = "_other_"
SUB_AGGREGATIONS = ("aggs", "aggregations")

# Elasticsearch aggregations that the API key query refuses by name, rather than as unknown.
UNSUPPORTED_TYPES = frozenset("""
    adjacency_matrix auto_date_histogram avg boxplot categorize_text children date_histogram
    diversified_sampler extended_stats frequent_item_sets geo_bounds geo_centroid geo_distance
    geohash_grid geotile_grid histogram ip_prefix ip_range matrix_stats max median_absolute_deviation
    min multi_terms nested parent percentile_ranks percentiles random_sampler rare_terms
    reverse_nested sampler scripted_metric significant_terms significant_text stats string_stats sum
    t_test top_hits top_metrics variable_width_histogram weighted_avg
""".split())
PIPELINE_TYPES = frozenset("""
    avg_bucket bucket_count_ks_test bucket_correlation bucket_script bucket_selector bucket_sort
    change_point cumulative_cardinality cumulative_sum derivative extended_stats_bucket inference
    max_bucket min_bucket moving_fn moving_percentiles normalize percentiles_bucket serial_diff
    stats_bucket sum_bucket
""".split())


class AggregationInitializationError(ValidationError):
    type = "aggregation_initialization_exception"


class TooManyBuckets(ValidationError):
    type = "too_many_buckets_exception"


def _too_many_buckets(limit: int) -> TooManyBuckets:
    return TooManyBuckets(
        f"Trying to create too many buckets. Must be less than or equal to: [{limit}] but this number of "
        "buckets was exceeded. This limit can be set by changing the [search.max_buckets] cluster level "
        "setting."
    )


def date_string(millis: int) -> str:
    """A date as Elasticsearch formats one by default (strict_date_optional_time, in UTC)."""
    moment = EPOCH + millis * MILLISECOND
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Fields: how each kind groups, names its buckets and selects the keys of one bucket


def aggregation_field(name) -> Field:
    field = API_KEYS.field(name)
    if isinstance(field, MetadataRootField):
        field.expression()
    return field


def _group_expression(field: Field):
    # Dates group by the millisecond, the precision Elasticsearch stores.
    return field.sort_expression(tie_broken=True)


def _bucket_key(field: Field, value) -> dict:
    """``key`` (and ``key_as_string``) of a terms bucket: dates and booleans are numbers there."""
    if isinstance(field, DateField):
        millis = epoch_millis(value)
        return {"key": millis, "key_as_string": date_string(millis)}
    if isinstance(field, InvalidatedField):
        return {"key": int(bool(value)), "key_as_string": "true" if value else "false"}
    return {"key": value}


def _source_value(field: Field, value):
    """A composite source's value: dates as epoch milliseconds, booleans as booleans."""
    if isinstance(field, DateField):
        return epoch_millis(value)
    if isinstance(field, InvalidatedField):
        return bool(value)
    return value


def _equals(field: Field, value) -> Q:
    """The keys of one bucket: those whose field holds ``value`` (as grouped)."""
    if isinstance(field, InvalidatedField):
        return Q(invalidated__isnull=not value)
    return field.guard(field.equals(value))


def _with_value(keys, field: Field):
    """The keys where ``field`` has a value; the keys themselves for a column every key has, so that
    no condition keeps SQLite from counting from an index alone."""
    exists = field.exists()
    return keys if exists is MATCH_ALL else keys.filter(exists)


def _count_where(where: Q) -> Count:
    """Keys that satisfy ``where``, counted within one statement: ``COUNT(1) FILTER (WHERE ...)``."""
    return Count(Value(1), filter=where)


def _both(first: Q | None, second: Q | None) -> Q | None:
    if first is None or first is MATCH_ALL:
        return second
    if second is None or second is MATCH_ALL:
        return first
    return first & second


@dataclass(frozen=True)
class Tally:
    """One number a sub-aggregation needs from its parent's statement: the keys that satisfy ``where``
    (all of them when None), or the (distinct) values of ``expression`` among them."""

    where: Q | None = None
    expression: object = None
    distinct: bool = False

    def count(self, base: Q | None = None) -> Count:
        """The tally among the keys of one bucket: a group's own, or those that satisfy ``base``."""
        counted = Value(1) if self.expression is None else self.expression
        return Count(counted, distinct=self.distinct, filter=_both(base, self.where))


def _tally_columns(tallies: list[Tally]) -> dict[str, Count]:
    """The tallies as the columns of a grouped statement, each within the group's keys."""
    return {f"tally_{index}": tally.count() for index, tally in enumerate(tallies)}


def _terms_type(field: Field) -> str:
    return "lterms" if isinstance(field, DateField | InvalidatedField) else "sterms"


def _es_type(field: Field) -> str:
    return "keyword" if isinstance(field, MetadataField) else field.es_type


# ---------------------------------------------------------------------------------------------
# Reading a request


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ParsingError(f"[{what}] expected an object")
    return value


def _check_keys(kind: str, body: dict, allowed: set) -> None:
    for key in body:
        if key not in allowed:
            raise ParsingError(f"[{kind}] unknown field [{key}]")


def _positive(kind: str, name: str, body: dict, key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParsingError(f"[{kind}] failed to parse field [{key}]")
    if value < 1:
        raise ValidationError(f"[{key}] must be greater than 0. Found [{value}] in [{name}]")
    return value


def _value_field(kind: str, name: str, body: dict) -> Field:
    if "script" in body:
        raise ValidationError(f"Unsupported script value source for [{name}] agg")
    if "field" not in body:
        raise ValidationError("Required one of fields [field, script], but none were specified.")
    return aggregation_field(body["field"])


@dataclass
class Scope:
    """What every aggregation of one request shares: the keys the caller may see (for ``global``)
    and the buckets created so far."""

    visible: object
    typed_keys: bool
    buckets: int = 0
    buckets_with_subs: int = 0

    def count(self, buckets: int, with_subs: bool) -> None:
        self.buckets += buckets
        if self.buckets > MAX_BUCKETS:
            raise _too_many_buckets(MAX_BUCKETS)
        if with_subs:
            self.buckets_with_subs += buckets
            if self.buckets_with_subs > MAX_BUCKETS_WITH_SUBS:
                raise _too_many_buckets(MAX_BUCKETS_WITH_SUBS)


# Up to this many keys, SQLite counts the conditions of a bucket among the keys its WHERE selects;
# above it, in one pass over the table (see Selection.count_each).
SMALL_SELECTION = 50_000


@dataclass(frozen=True)
class Selection:
    """The keys an aggregation runs over: those of ``visible`` that satisfy ``where`` (all of them
    when it is None), ``size`` of them when that is known."""

    visible: object
    where: Q | None = None
    size: int | None = None

    def keys(self):
        return self.visible if self.where is None else self.visible.filter(self.where)

    def narrowed(self, where: Q, size: int | None) -> "Selection":
        if where is MATCH_ALL:
            return Selection(self.visible, self.where, size)
        return Selection(self.visible, where if self.where is None else self.where & where, size)

    def count_each(self, wheres: list[Q], tallies: list[list[Tally]] | None = None) -> list[list[int]]:
        """How many of the keys satisfy each condition, followed by the tallies of the keys of each
        (its sub-aggregations'), in one statement.

        SQLite plans without statistics: for a WHERE such as ``invalidated IS NULL`` it walks a partial
        index and reads each of the table's rows at random, seconds at a million keys, where one pass
        over the table takes a fraction of a second. So there, unless the selection is known to be
        small, its own condition joins each count's FILTER and the statement reads the table once.
        """
        one_pass = (
            connection.vendor == "sqlite" and self.where is not None
            and (self.size is None or self.size > SMALL_SELECTION)
        )
        keys = self.visible if one_pass else self.keys()
        tallies = tallies or [[] for _ in wheres]
        columns = {}
        for index, (where, others) in enumerate(zip(wheres, tallies, strict=True)):
            base = _both(self.where, where) if one_pass else where
            for number, tally in enumerate([Tally(), *others]):
                columns[f"count_{index}_{number}"] = tally.count(base)
        counts = keys.aggregate(**columns)
        return [
            [counts[f"count_{index}_{number}"] for number in range(1 + len(others))]
            for index, others in enumerate(tallies)
        ]


class Aggregation:
    """One named aggregation of a request, with its sub-aggregations."""

    type = ""
    metric = False

    def __init__(self, name: str, body: dict, subs: tuple, meta: dict | None):
        self.name = name
        self.subs = subs
        self.meta = meta
        self.parse(body)
        # Sub-aggregations that are counts (filter, filters, missing, range, metrics, and so on down)
        # are tallied by the parent's own statement, with conditional counts; the others (terms,
        # composite, global) run statements of their own for each of the parent's buckets.
        self.folded = tuple(sub for sub in subs if sub.tallies(None) is not None)
        self.unfolded = tuple(sub for sub in subs if sub not in self.folded)
        self.folds = bool(self.folded)

    def parse(self, body: dict) -> None:
        raise NotImplementedError

    def typed_name(self) -> str:
        return self.type

    def compute(self, selection: Selection, scope: Scope) -> dict:
        raise NotImplementedError

    def tallies(self, where: Q | None) -> list[Tally] | None:
        """What this aggregation counts among the keys of a parent's bucket that satisfy ``where`` (all
        of them when None), as tallies of the parent's statement; None when it needs its own."""
        return None

    def from_tallies(self, values, scope: Scope) -> dict:
        """The result from the values of ``tallies``, taken from the iterator ``values`` in order."""
        raise NotImplementedError

    def sub_tallies(self, where: Q | None) -> list[Tally]:
        return [tally for sub in self.folded for tally in sub.tallies(where)]

    def result(self, selection: Selection | None, scope: Scope, tallied=None) -> dict:
        answer = self.compute(selection, scope) if tallied is None else self.from_tallies(tallied, scope)
        return {**answer, "meta": self.meta} if self.meta is not None else answer

    def with_subs(self, bucket: dict, selection: Selection | None, where: Q, scope: Scope,
                  tallied=None) -> dict:
        """A bucket with the results of the sub-aggregations over its own keys: from the values
        ``tallied`` by the parent's statement for those folded into it, by statements of their own for
        the others (all of them when ``tallied`` is None)."""
        results = aggregate_results(None, self.folded, scope, tallied) if tallied is not None else {}
        others = self.subs if tallied is None else self.unfolded
        if others:
            results.update(aggregate_results(selection.narrowed(where, bucket["doc_count"]), others, scope))
        for sub in self.subs:
            bucket[_label(sub, scope)] = results[_label(sub, scope)]
        return bucket

    def counted(self, count: int, scope: Scope, folded: bool | None = None) -> None:
        folded = self.folds if folded is None else folded
        scope.count(count, with_subs=bool(self.unfolded) or (bool(self.folded) and not folded))


class Terms(Aggregation):
    type = "terms"

    def parse(self, body):
        _check_keys(self.type, body, {"field", "size", "shard_size", "min_doc_count", "shard_min_doc_count",
                                       "order", "show_term_doc_count_error", "execution_hint", "collect_mode",
                                       "script"})
        self.field = _value_field(self.type, self.name, body)
        self.size = _positive(self.type, self.name, body, "size", DEFAULT_SIZE)
        minimum = body.get("min_doc_count", 1)
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
            raise ParsingError(f"[{self.type}] failed to parse field [min_doc_count]")
        if minimum == 0:
            raise ValidationError(
                f"[min_doc_count] of [0] is not supported for API Key aggregation [{self.name}]"
            )
        self.min_doc_count = minimum
        self.order = self._order(body.get("order", [{"_count": "desc"}, {"_key": "asc"}]))

    def _order(self, order) -> list[tuple[str, bool]]:
        items = order if isinstance(order, list) else [order]
        keys = []
        for item in items:
            if not isinstance(item, dict) or len(item) != 1:
                raise ParsingError("[terms] failed to parse field [order]")
            (what, direction), = item.items()
            if direction not in ("asc", "desc"):
                raise ParsingError(f"Unknown order direction [{direction}]")
            if what not in ("_count", "_key"):
                raise ValidationError(
                    f"Ordering [{self.name}] by [{what}] is not supported for API Key aggregations"
                )
            keys.append((what, direction == "desc"))
        if not any(what == "_key" for what, _ in keys):
            # Buckets of equal count are ordered by key, as Elasticsearch breaks ties.
            keys.append(("_key", False))
        return keys

    def typed_name(self):
        return _terms_type(self.field)

    def compute(self, selection, scope):
        keys = selection.keys()
        with_value = _with_value(keys, self.field)
        by_owner = self.field is FIELDS["username"]
        tallies = self.sub_tallies(None) if self.folds else None
        if by_owner and tallies and any(tally.distinct for tally in tallies):
            # Distinct values do not add up over the owners that share a username.
            tallies = None
        grouped = self._by_owner if by_owner else self._grouped
        rows, total = grouped(with_value, tallies or [])
        self.counted(len(rows), scope, folded=tallies is not None)
        # The keys in no bucket: only counted when the buckets may not hold them all.
        other = 0
        if len(rows) == self.size:
            if total is None:
                total = with_value.order_by().count()
            other = total - sum(count for _, count, _ in rows)
        buckets = [
            self.with_subs({**_bucket_key(self.field, term), "doc_count": count}, selection,
                           _equals(self.field, term), scope, None if tallies is None else iter(values))
            for term, count, values in rows
        ]
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}

    def _ordering(self, count: str, term: str) -> list[str]:
        return [
            ("-" if descending else "") + (count if what == "_count" else term)
            for what, descending in self.order
        ]

    def _grouped(self, keys, tallies: list[Tally]) -> tuple[list[tuple[object, int, list[int]]], None]:
        """The buckets, each with its term, its count and the values of ``tallies`` among its keys."""
        columns = _tally_columns(tallies)
        groups = keys.annotate(term=_group_expression(self.field)).values("term").annotate(
            doc_count=Count("*"), **columns
        )
        ranked = groups.order_by(*self._ordering("doc_count", "term"))
        if self.field is FIELDS["name"] and self.order == [("_count", True), ("_key", False)]:
            # Names are unique among active keys, so nearly every name is a single key's: rather than sort
            # a million groups by their counts, the few repeated names, then the first of the others
            # as the name index orders them.
            rows = list(ranked.filter(doc_count__gte=max(2, self.min_doc_count))[: self.size])
            if len(rows) < self.size and self.min_doc_count <= 1:
                rows += groups.filter(doc_count=1).order_by("term")[: self.size - len(rows)]
        else:
            rows = ranked.filter(doc_count__gte=self.min_doc_count)[: self.size]
        return [(row["term"], row["doc_count"], [row[name] for name in columns]) for row in rows], None

    def _by_owner(self, keys, tallies: list[Tally]) -> tuple[list[tuple[object, int, list[int]]], int]:
        """Usernames: the database counts keys (and ``tallies``) by owner, from an index that holds
        the owner, and adds the owners' counts up by username, which owners of two realms may share;
        with every username's count, the keys beyond the buckets need no count of their own."""
        columns = _tally_columns(tallies)
        by_owner = keys.values("owner_id").annotate(doc_count=Count("*"), **columns).order_by()
        totals = _by_username(by_owner, "owner_id", ["owner_id"], ["doc_count", *columns])
        ranked = [
            (username, counts[0], list(counts[1:])) for username, *counts in totals
            if counts[0] >= self.min_doc_count
        ]
        for what, descending in reversed(self.order):
            ranked.sort(key=(lambda item: item[1]) if what == "_count" else (lambda item: item[0]),
                        reverse=descending)
        return ranked[: self.size], sum(counts[0] for _, *counts in totals)


@dataclass(frozen=True)
class Source:
    """One ``terms`` source of a composite aggregation."""

    name: str
    field: Field
    descending: bool


class Composite(Aggregation):
    type = "composite"

    def parse(self, body):
        _check_keys(self.type, body, {"sources", "size", "after"})
        sources = body.get("sources")
        if not isinstance(sources, list) or not sources:
            raise ParsingError("Composite [sources] cannot be null or empty")
        self.sources = tuple(self._source(source) for source in sources)
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValidationError(f"Composite source names must be unique, found duplicates in [{self.name}]")
        self.size = _positive(self.type, self.name, body, "size", DEFAULT_SIZE)
        self.after = self._after(body["after"]) if "after" in body else None

    def _source(self, source) -> Source:
        if not isinstance(source, dict) or len(source) != 1:
            raise ParsingError("[composite] each source must be an object with a single name")
        (name, definition), = source.items()
        if not isinstance(definition, dict) or len(definition) != 1:
            raise ParsingError(f"[composite] source [{name}] must name one value source type")
        (kind, options), = definition.items()
        options = _object(options, kind)
        if "script" in options:
            raise ValidationError(
                f"Unsupported script value source for [{name}] of composite agg [{self.name}]"
            )
        if kind != "terms":
            raise ValidationError(
                f"Unsupported value source type for [{name}] of composite agg [{self.name}]."
                "Only [terms] value sources are allowed."
            )
        _check_keys(kind, options, {"field", "order", "missing_bucket", "missing_order", "value_type"})
        if options.get("missing_bucket", False) is not False:
            raise ValidationError(
                f"[missing_bucket] is not supported for API Key composite agg [{self.name}]"
            )
        order = options.get("order", "asc")
        if order not in ("asc", "desc"):
            raise ParsingError(f"Unknown order direction [{order}]")
        if "field" not in options:
            raise ValidationError("Required one of fields [field, script], but none were specified.")
        return Source(name, aggregation_field(options["field"]), order == "desc")

    def _after(self, after) -> list:
        after = _object(after, "after")
        if set(after) != {source.name for source in self.sources}:
            raise ValidationError(
                f"[after] has [{len(after)}] value(s) but [sources] has [{len(self.sources)}]"
            )
        values = []
        for source in self.sources:
            value = after[source.name]
            try:
                values.append(source.field.value("search_after", value))
            except ValidationError:
                raise ValidationError(f"Failed to parse [after] value for source [{source.name}]") from None
        return values

    def _after_filter(self) -> Q:
        """Groups strictly after ``after`` in the sources' order, as search_after pages keys."""
        alternatives, equal_so_far = [], []
        for source, value in zip(self.sources, self.after, strict=True):
            alternatives.append(reduce(and_, [*equal_so_far, source.field.after(value, source.descending)]))
            equal_so_far.append(source.field.equals(value))
        return reduce(or_, alternatives)

    def compute(self, selection, scope):
        with_values = reduce(_with_value, [source.field for source in self.sources], selection.keys())
        if self.after is not None:
            with_values = with_values.filter(self._after_filter())
        aliases = {
            f"source_{index}": _group_expression(source.field) for index, source in enumerate(self.sources)
        }
        ordering = [
            ("-" if source.descending else "") + alias
            for alias, source in zip(aliases, self.sources, strict=True)
        ]
        tallies = self.sub_tallies(None) if self.folds else []
        columns = _tally_columns(tallies)
        if self._by_owner_applies(tallies):
            rows = self._by_owner(with_values, columns)
        else:
            rows = list(
                with_values.annotate(**aliases).values(*aliases).annotate(doc_count=Count("*"), **columns)
                .order_by(*ordering)[: self.size]
            )
        self.counted(len(rows), scope)
        buckets = []
        for row in rows:
            values = [row[alias] for alias in aliases]
            where = reduce(and_, [_equals(source.field, value) for source, value in zip(self.sources, values,
                                                                                            strict=True)])
            key = {
                source.name: _source_value(source.field, value)
                for source, value in zip(self.sources, values, strict=True)
            }
            bucket = {"key": key, "doc_count": row["doc_count"]}
            tallied = iter([row[name] for name in columns]) if self.folds else None
            buckets.append(self.with_subs(bucket, selection, where, scope, tallied))
        answer = {}
        if buckets:
            answer["after_key"] = buckets[-1]["key"]
        answer["buckets"] = buckets
        return answer

    def _by_owner_applies(self, tallies: list[Tally]) -> bool:
        """One username among keyword sources, and tallies that add up over the owners of one username."""
        fields = [source.field for source in self.sources]
        return (
            fields.count(FIELDS["username"]) == 1 and all(type(field) is ColumnField for field in fields)
            and not any(tally.distinct for tally in tallies)
        )

    def _by_owner(self, keys, columns: dict[str, Count]) -> list[dict]:
        """The groups by owner rather than by username, which joins the owner to every key: counted from
        an index that holds the owner (and the type), then added up by username in the same statement.
        The sources besides the username are keywords, which the database returns as they are."""
        inner = {
            f"source_{index}": F("owner_id") if source.field is FIELDS["username"] else F(source.field.column)
            for index, source in enumerate(self.sources)
        }
        owner = next(alias for alias, field in inner.items() if field.name == "owner_id")
        grouped = keys.annotate(**inner).values(*inner).annotate(doc_count=Count("*"), **columns).order_by()
        order = [(position, source.descending) for position, source in enumerate(self.sources, start=1)]
        fetched = _by_username(grouped, owner, list(inner), ["doc_count", *columns], order, self.size)
        names = [*inner, "doc_count", *columns]
        return [dict(zip(names, row, strict=True)) for row in fetched]


def _by_username(grouped, owner: str, columns: list[str], sums: list[str], order=(),
                 limit: int | None = None) -> list[tuple]:
    """Keys grouped by owner (``grouped``: a values query of ``columns``, ``owner`` among them, and the
    counts ``sums``) added up by username in one statement, since owners of two realms may share one:
    rows of the columns, the owner's username in place of ``owner``, then the sums. ``order``: (column
    position, descending) pairs; ``limit``: how many rows at most."""
    quote = connection.ops.quote_name
    users = quote(get_user_model()._meta.db_table)
    try:
        sql, params = grouped.query.sql_with_params()
    except EmptyResultSet:
        return []
    chosen = [
        f"{users}.{quote('username')}" if column == owner else f"grouped.{quote(column)}"
        for column in columns
    ]
    totals = [f"SUM(grouped.{quote(name)})" for name in sums]
    positions = ", ".join(str(position) for position in range(1, len(chosen) + 1))
    # Names quoted by the database's own rules; every value is a parameter.
    statement = (
        f"SELECT {', '.join(chosen + totals)} FROM ({sql}) grouped INNER JOIN {users} "  # noqa: S608
        f"ON {users}.{quote('id')} = grouped.{quote(owner)} GROUP BY {positions}"
    )
    if order:
        statement += " ORDER BY " + ", ".join(
            f"{position} {'DESC' if descending else 'ASC'}" for position, descending in order
        )
    if limit is not None:
        statement += " LIMIT %s"
        params = (*params, limit)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        # PostgreSQL sums counts as numerics.
        return [(*row[: len(chosen)], *map(int, row[len(chosen):])) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Range:
    key: str | None
    start: int | None
    end: int | None


class CountedBuckets(Aggregation):
    """``filters``, ``range`` and ``date_range``: a fixed list of buckets, each a condition, all
    counted in one statement, with the tallies of each bucket's sub-aggregations when they fold."""

    def _wheres(self) -> list[Q]:
        raise NotImplementedError

    def compute(self, selection, scope):
        wheres = self._wheres()
        tallies = [self.sub_tallies(where) for where in wheres] if self.folds else None
        counts = selection.count_each(wheres, tallies)
        return self.answer(iter(value for bucket in counts for value in bucket), selection, scope)

    def tallies(self, where):
        """Within a parent's bucket: each bucket's count followed by its sub-aggregations' tallies."""
        if self.unfolded:
            return None
        tallies = []
        for own in self._wheres():
            within = _both(where, own)
            tallies += [Tally(within), *self.sub_tallies(within)]
        return tallies

    def from_tallies(self, values, scope):
        return self.answer(values, None, scope)


class DateRange(CountedBuckets):
    """``date_range`` (dates or date math) and ``range`` (epoch milliseconds), on the date fields."""

    type = "date_range"

    def parse(self, body):
        _check_keys(self.type, body, {"field", "ranges", "keyed", "script"})
        self.field = _value_field(self.type, self.name, body)
        if not isinstance(self.field, DateField):
            raise ValidationError(
                f"Field [{self.field.name}] of type [{_es_type(self.field)}] is not supported for "
                f"aggregation [{self.type}]"
            )
        ranges = body.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise ValidationError(f"No [ranges] specified for the [{self.name}] aggregation")
        self.keyed = body.get("keyed", False)
        if not isinstance(self.keyed, bool):
            raise ParsingError(f"[{self.type}] failed to parse field [keyed]")
        parsed = [self._range(_object(item, "ranges")) for item in ranges]
        # Elasticsearch orders the buckets by their bounds, whatever the request's order.
        self.ranges = sorted(
            parsed, key=lambda r: (r.start is not None, r.start or 0, r.end is None, r.end or 0)
        )

    def bound(self, value) -> int:
        return epoch_millis(parse_date(value))

    def _range(self, item: dict) -> Range:
        _check_keys("range", item, {"key", "from", "to"})
        key = item.get("key")
        if key is not None and not isinstance(key, str):
            raise ParsingError("[range] failed to parse field [key]")
        start, end = (None if item.get(side) is None else self.bound(item[side]) for side in ("from", "to"))
        return Range(key, start, end)

    def _wheres(self) -> list[Q]:
        column = self.field.column
        wheres = []
        for item in self.ranges:
            where = self.field.exists()
            if item.start is not None:
                where &= Q(**{f"{column}__gte": EPOCH + item.start * MILLISECOND})
            if item.end is not None:
                where &= Q(**{f"{column}__lt": EPOCH + item.end * MILLISECOND})
            wheres.append(where)
        return wheres

    def answer(self, values, selection: Selection | None, scope: Scope) -> dict:
        """The buckets, from each one's count followed by its sub-aggregations' tallies, if folded."""
        wheres = self._wheres()
        self.counted(len(self.ranges), scope)
        buckets = []
        for item, where in zip(self.ranges, wheres, strict=True):
            bucket = {}
            for side, value in (("from", item.start), ("to", item.end)):
                if value is not None:
                    bucket[side] = float(value)
                    bucket[f"{side}_as_string"] = date_string(value)
            key = item.key or "-".join(
                date_string(value) if value is not None else "*" for value in (item.start, item.end)
            )
            bucket = {"key": key, **bucket, "doc_count": next(values)}
            buckets.append(self.with_subs(bucket, selection, where, scope, values if self.folds else None))
        if self.keyed:
            return {"buckets": {bucket.pop("key"): bucket for bucket in buckets}}
        return {"buckets": buckets}


class NumericRange(DateRange):
    type = "range"

    def bound(self, value) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParsingError("[range] failed to parse field [from]")
        return int(value)


class SingleBucket(Aggregation):
    """``missing``, ``filter`` and ``global``: one bucket, its count and its sub-aggregations."""

    def where(self) -> Q:
        raise NotImplementedError

    def compute(self, selection, scope):
        where = self.where()
        self.counted(1, scope)
        keys = selection.narrowed(where, None).keys()
        if not self.folds:
            return self.with_subs({"doc_count": keys.count()}, selection, where, scope)
        counts = keys.aggregate(**_tally_columns([Tally(), *self.sub_tallies(None)]))
        values = iter(counts.values())
        return self.with_subs({"doc_count": next(values)}, selection, where, scope, values)

    def tallies(self, where):
        if self.unfolded:
            return None
        within = _both(where, self.where())
        return [Tally(within), *self.sub_tallies(within)]

    def from_tallies(self, values, scope):
        self.counted(1, scope)
        return self.with_subs({"doc_count": next(values)}, None, self.where(), scope, values)


class Missing(SingleBucket):
    type = "missing"

    def parse(self, body):
        _check_keys(self.type, body, {"field", "script"})
        self.field = _value_field(self.type, self.name, body)

    def where(self):
        exists = self.field.exists()
        # A column every key has is never missing.
        return MATCH_NONE if exists is MATCH_ALL else ~exists


class Filter(SingleBucket):
    type = "filter"

    def parse(self, body):
        self.query = translate_query(body, API_KEYS)

    def where(self):
        return self.query


class Global(SingleBucket):
    """Every key the caller may see, whatever the query."""

    type = "global"

    def parse(self, body):
        _check_keys(self.type, body, set())

    def compute(self, selection, scope):
        return super().compute(Selection(scope.visible), scope)

    def tallies(self, where):
        # Its keys are not the parent bucket's.
        return None

    def where(self):
        return MATCH_ALL


class Filters(CountedBuckets):
    type = "filters"

    def parse(self, body):
        _check_keys(self.type, body, {"filters", "other_bucket", "other_bucket_key", "keyed"})
        filters = body.get("filters")
        if isinstance(filters, dict):
            # Elasticsearch orders keyed filters by their names.
            self.named = True
            self.filters = [(key, filters[key]) for key in sorted(filters)]
        elif isinstance(filters, list):
            self.named = False
            self.filters = [(None, item) for item in filters]
        else:
            raise ParsingError("[filters] cannot be empty.")
        if not self.filters:
            raise ValidationError(f"[filters] cannot be empty in [{self.name}]")
        self.queries = [translate_query(query, API_KEYS) for _, query in self.filters]
        self.keyed = body.get("keyed", True)
        other_key = body.get("other_bucket_key")
        if other_key is not None and not isinstance(other_key, str):
            raise ParsingError("[filters] failed to parse field [other_bucket_key]")
        self.other = body.get("other_bucket", other_key is not None)
        if not isinstance(self.other, bool) or not isinstance(self.keyed, bool):
            raise ParsingError("[filters] failed to parse field [other_bucket]")
        self.other_key = other_key or DEFAULT_OTHER_BUCKET_KEY
        others = {"bool": {"must_not": [query for _, query in self.filters]}}
        self.other_query = translate_query(others, API_KEYS) if self.other else None

    def _wheres(self) -> list[Q]:
        return [*self.queries, *([self.other_query] if self.other else [])]

    def answer(self, values, selection: Selection | None, scope: Scope) -> dict:
        """The buckets, from each one's count followed by its sub-aggregations' tallies, if folded."""
        wheres = self._wheres()
        self.counted(len(wheres), scope)
        names = [name for name, _ in self.filters] + ([self.other_key] if self.other else [])
        buckets = []
        for name, where in zip(names, wheres, strict=True):
            bucket = {"doc_count": next(values)}
            if self.named and not self.keyed:
                bucket = {"key": name, **bucket}
            tallied = values if self.folds else None
            buckets.append((name, self.with_subs(bucket, selection, where, scope, tallied)))
        if self.named and self.keyed:
            return {"buckets": dict(buckets)}
        return {"buckets": [bucket for _, bucket in buckets]}


class Metric(Aggregation):
    metric = True
    distinct = False

    def parse(self, body):
        _check_keys(self.type, body, {"field", "script", "precision_threshold"})
        self.field = _value_field(self.type, self.name, body)

    def compute(self, selection, scope):
        if self.distinct and self.field is FIELDS["username"]:
            # The usernames of the keys' owners, each owner read once rather than joined to every key.
            owners = get_user_model().objects.filter(pk__in=selection.keys().order_by().values("owner_id"))
            return owners.aggregate(value=Count("username", distinct=True))
        counted = _with_value(selection.keys(), self.field).aggregate(
            value=Count(_group_expression(self.field), distinct=self.distinct)
        )
        return {"value": counted["value"]}

    def tallies(self, where):
        exists = self.field.exists()
        return [Tally(_both(where, exists), _group_expression(self.field), self.distinct)]

    def from_tallies(self, values, scope):
        return {"value": next(values)}


class Cardinality(Metric):
    type = "cardinality"
    distinct = True


class ValueCount(Metric):
    type = "value_count"


TYPES = {
    aggregation.type: aggregation
    for aggregation in (
        Terms, Composite, DateRange, NumericRange, Missing, Filter, Filters, Global, Cardinality, ValueCount
    )
}


def parse_aggregations(value, what: str = "aggs") -> tuple[Aggregation, ...]:
    """The ``aggs`` of a request (or of one aggregation), validated as Elasticsearch validates them."""
    if not isinstance(value, dict):
        raise ParsingError(f"Expected [START_OBJECT] under [{what}], but got a different token")
    aggregations = []
    for name, definition in value.items():
        if not NAME.fullmatch(name):
            raise ParsingError(
                f"Invalid aggregation name [{name}]. Aggregation names can contain any character except '[', "
                "']', and '>'"
            )
        if not isinstance(definition, dict):
            raise ParsingError(f"Aggregation definition for [{name}] must be an object")
        if all(key in definition for key in SUB_AGGREGATIONS):
            raise ParsingError(f"Found two sub aggregation definitions under [{name}]")
        kinds = [key for key in definition if key not in (*SUB_AGGREGATIONS, "meta")]
        if not kinds:
            raise ParsingError(f"Missing definition for aggregation [{name}]")
        if len(kinds) > 1:
            raise ParsingError(
                f"Found two aggregation type definitions in [{name}]: [{kinds[0]}] and [{kinds[1]}]"
            )
        kind = kinds[0]
        if kind in PIPELINE_TYPES:
            raise ValidationError(f"Unsupported pipeline aggregation of type [{kind}]")
        if kind in UNSUPPORTED_TYPES:
            raise ValidationError(f"Unsupported API Keys agg [{name}] of type [{kind}]")
        if kind not in TYPES:
            raise ParsingError(f"Unknown aggregation type [{kind}]")
        meta = definition.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise ParsingError(f"[{name}] [meta] must be an object")
        subs_value = next((definition[key] for key in SUB_AGGREGATIONS if key in definition), None)
        subs = parse_aggregations(subs_value, name) if subs_value is not None else ()
        if subs and TYPES[kind].metric:
            raise AggregationInitializationError(
                f"Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations"
            )
        aggregations.append(TYPES[kind](name, _object(definition[kind], kind), subs, meta))
    return tuple(aggregations)


def aggregate_results(selection: Selection | None, aggregations: tuple[Aggregation, ...], scope: Scope,
                      tallied=None) -> dict:
    """Each aggregation's result over the selected keys, by its name (``type#name`` with ``typed_keys``):
    computed by its own statements, or from the values ``tallied`` by its parent's."""
    return {
        _label(aggregation, scope): aggregation.result(selection, scope, tallied)
        for aggregation in aggregations
    }


def _label(aggregation: Aggregation, scope: Scope) -> str:
    return f"{aggregation.typed_name()}#{aggregation.name}" if scope.typed_keys else aggregation.name


def aggregate(visible, where: Q | None, aggregations: tuple[Aggregation, ...], typed_keys: bool = False,
              total: int | None = None) -> dict:
    """The ``aggregations`` of a query API key response: over the ``visible`` keys that satisfy
    ``where`` (every visible key when None; ``total`` of them when known), and over every visible one
    for ``global``."""
    # match_all selects every key: no condition, which would keep a count from an index alone.
    where = None if where is MATCH_ALL else where
    return aggregate_results(Selection(visible, where, total), aggregations, Scope(visible, typed_keys))
