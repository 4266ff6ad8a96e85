"""The API Keys table (SPEC §6) and the paginator that keeps it fast at a million keys."""

import math
from dataclasses import dataclass
from datetime import timedelta

import django_tables2 as tables
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.db.models.functions import Lower
from django.db.models.lookups import Exact, IsNull
from django.db.models.sql.where import AND, WhereNode
from django.utils import timezone
from django_tables2.paginators import LazyPaginator
from django_tables2.rows import BoundRows

from apikeys import selectors
from apikeys.models import ApiKey, by_expiration
from apikeys.timeunits import configured_time_value

INVALIDATED = ApiKey._meta.get_field("invalidated")
# Beyond this offset a page number is refused before it reaches the database as a huge OFFSET.
MAX_OFFSET = 2**40


@dataclass(frozen=True)
class Status:
    label: str
    badge: str  # Bootstrap's text-bg-* colour


def api_key_status(key: ApiKey, now=None) -> Status:
    """Active, "Expires in N days" (within ``API_KEY_EXPIRY_WARNING``), Expired or Invalidated, as
    Kibana shows it."""
    now = now or timezone.now()
    if key.invalidated is not None:
        return Status("Invalidated", "secondary")
    if key.is_expired(now):
        return Status("Expired", "danger")
    if key.expiration is not None and key.expiration - now <= configured_time_value("API_KEY_EXPIRY_WARNING"):
        days = max(1, math.ceil((key.expiration - now) / timedelta(days=1)))
        return Status(f"Expires in {days} day{'' if days == 1 else 's'}", "warning")
    return Status("Active", "success")


class ApiKeyPaginator(LazyPaginator):
    """Pages without a COUNT: django-tables2's ``LazyPaginator`` reads one row past the page to
    know whether another page follows, so a page view costs one LIMIT/OFFSET query whatever the
    number of keys. Every order matches an index, or a few ranges of one read one after the
    other (``ApiKeyTable.parts``), so that query stops after one page; only a deep OFFSET reads
    further.

    A page is read ids first (``RowsByIds``): the ids come from the index alone however deep the
    page, then only that page's rows are read.

    The total is counted only when a page past the end is asked for (an old link after keys
    went away), to land on the last page instead of an empty one. A page number that is not a
    number, or below 1, is page 1.
    """

    def __init__(self, object_list, per_page, **kwargs):
        super().__init__(RowsByIds(object_list), per_page, **kwargs)

    def validate_number(self, number):
        try:
            number = super().validate_number(number)
        except (PageNotAnInteger, EmptyPage):
            return 1
        if (number - 1) * self.per_page > MAX_OFFSET:
            raise EmptyPage("That page contains no results")
        return number

    def page(self, number):
        try:
            return super().page(number)
        except EmptyPage:
            last = max(1, math.ceil(len(self.object_list) / self.per_page))
            return super().page(last)


class RowsByIds:
    """A table's rows as the paginator slices them: the window's primary keys first, in the
    table's order, then those rows alone.

    Skipping to a deep page then reads the index and not the table: PostgreSQL fetches the row
    of every key an OFFSET skips (0.6 s for page 10,000 at a million keys) unless the query needs
    no more than the index holds. Rows that are not a queryset's are sliced as they are.
    """

    def __init__(self, rows: BoundRows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, window: slice) -> BoundRows:
        queryset = getattr(self.rows.data, "data", None)
        if not isinstance(queryset, QuerySet):
            return self.rows[window]
        # Tables other than the API keys' (the audit log's) read their order as one part.
        parts = getattr(self.rows.table, "parts", lambda rows: [rows])(queryset)
        ids = window_ids(parts, window.start or 0, window.stop)
        # By primary key alone: with the listing's conditions too, SQLite's planner may read them
        # through another index (every key of a realm, 0.3 s at a million) instead of the ids.
        rows = queryset.order_by()
        rows.query.clear_where()
        found = rows.in_bulk(ids)
        # A row deleted between the two reads is left out, as if the page had been read after.
        return BoundRows([found[pk] for pk in ids if pk in found], table=self.rows.table)


def window_ids(parts: list[QuerySet], start: int, stop: int) -> list:
    """The primary keys from ``start`` to ``stop`` of the parts read one after the other.

    A part that ends before ``start`` is counted up to ``start`` at most: it costs what an
    OFFSET over it would, and a page within the first part costs one query.
    """
    ids, skip = [], start
    for part in parts:
        found = list(part.values_list("pk", flat=True)[skip : skip + stop - start - len(ids)])
        ids += found
        if len(ids) == stop - start:
            break
        skip = 0 if found else skip - part[:skip].count()
    return ids


class DateTimeColumn(tables.TemplateColumn):
    """A date as a ``<time>`` element: short text, the full UTC time on hover."""

    empty_values = (None,)

    def __init__(self, **kwargs):
        super().__init__(template_name="apikeys/datetime.html", **kwargs)


class ExpirationColumn(DateTimeColumn):
    def order(self, queryset, is_descending):
        """Keys that never expire come after every date, on every database."""
        return queryset.order_by(*by_expiration(is_descending)), True

    def parts(self, queryset, is_descending):
        """The keys with an expiration, then those without (the reverse when descending)."""
        parts = [queryset.filter(expiration__isnull=False), queryset.filter(expiration__isnull=True)]
        return expiration_order(parts[::-1] if is_descending else parts, is_descending)


def expiration_order(parts: list[QuerySet], is_descending: bool) -> list[QuerySet]:
    """Each part in the order of the (expiration, id) indexes of listed and of invalidated keys."""
    ordering = ("-expiration", "-id") if is_descending else ("expiration", "id")
    return [part.order_by(*ordering) for part in parts]


class LastUsedColumn(tables.TemplateColumn):
    """How long ago the key last authenticated; "Never" for a key never used. Keys never used come
    last in both directions, on every database."""

    empty_values = (None,)

    def __init__(self, **kwargs):
        super().__init__(template_name="apikeys/time_ago.html", default="Never", **kwargs)

    def order(self, queryset, is_descending):
        if is_descending:
            return queryset.order_by(F("last_used").desc(nulls_last=True), "-id"), True
        return queryset.order_by(F("last_used").asc(nulls_last=True), "id"), True

    def parts(self, queryset, is_descending):
        """Keys used, then keys never used, each in the order of the ``apikey_listed_last_used``
        index: NULLS LAST, which SQLite lacks in an index, is the second range."""
        ordering = ("-last_used", "-id") if is_descending else ("last_used", "id")
        return [
            queryset.filter(last_used__isnull=False).order_by(*ordering),
            queryset.filter(last_used__isnull=True).order_by(*ordering),
        ]


class OwnerColumn(tables.Column):
    """Owners by username, case-insensitively: the order of the users' lower(username) index, so
    the page is read owner by owner, each owner's keys from the (owner, -created, id) index,
    instead of sorting every key.

    The condition on lower(username), true of every user, is what makes SQLite's planner, which
    has no statistics, start from that index rather than from the keys.
    """

    def order(self, queryset, is_descending):
        queryset = queryset.alias(owner_lower=Lower("owner__username")).filter(owner_lower__gte="")
        if is_descending:
            return queryset.order_by(F("owner_lower").desc(), "-owner_id", "created", "-id"), True
        return queryset.order_by("owner_lower", "owner_id", "-created", "id"), True


class StatusColumn(tables.TemplateColumn):
    """Sorted Active, Expired, Invalidated; soonest expiry first among active keys."""

    def __init__(self, **kwargs):
        super().__init__(template_name="apikeys/status_badge.html", **kwargs)

    def render(self, record, table, value, bound_column, **kwargs):
        return super().render(record, table, api_key_status(record), bound_column, **kwargs)

    def order(self, queryset, is_descending):
        now = timezone.now()
        rank = Case(
            When(invalidated__isnull=False, then=Value(2)),
            When(expiration__lte=now, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
        direction = "-" if is_descending else ""
        ordering = (f"{direction}status_rank", *by_expiration(is_descending))
        return queryset.annotate(status_rank=rank).order_by(*ordering), True

    def parts(self, queryset, is_descending):
        """The same order as ranges of the expiration order: among keys not invalidated, those
        expiring after now, then those that never expire, then the expired ones; invalidated keys
        last. Ranges that the listing's own condition on ``invalidated`` leaves out are not asked
        for: the database would not see that they are empty before reading them."""
        now = timezone.now()
        listed = queryset.filter(invalidated__isnull=True)
        invalidated = queryset.filter(invalidated__isnull=False)
        required = invalidated_condition(queryset)
        parts = []
        if required is not True:
            parts += [
                listed.filter(expiration__gt=now),
                listed.filter(expiration__isnull=True),
                listed.filter(expiration__lte=now),
            ]
        if required is not False:
            parts += [
                invalidated.filter(expiration__isnull=False),
                invalidated.filter(expiration__isnull=True),
            ]
        parts = expiration_order(parts, is_descending)
        return parts[::-1] if is_descending else parts


def invalidated_condition(queryset: QuerySet) -> bool | None:
    """``True`` if the listing requires ``invalidated IS NOT NULL``, ``False`` if it requires
    ``invalidated IS NULL`` (the page's default), ``None`` if it admits both. The condition counts
    wherever every enclosing node is a plain AND, as the search's clauses nest it."""
    return _required_invalidated(queryset.query.where)


def _required_invalidated(node) -> bool | None:
    if isinstance(node, IsNull) and getattr(node.lhs, "target", None) == INVALIDATED:
        return not node.rhs
    if isinstance(node, Exact) and node.rhs is True:
        # The query engine's conditions: a WHERE node compared with true.
        return _required_invalidated(node.lhs)
    if not isinstance(node, WhereNode) or node.connector != AND or node.negated:
        return None
    for child in node.children:
        required = _required_invalidated(child)
        if required is not None:
            return required
    return None


class SelectionColumn(tables.CheckBoxColumn):
    """A checkbox only on rows the viewer may invalidate."""

    def render(self, value, bound_column, record, table, **kwargs):
        if not table.may_invalidate(record):
            return ""
        return super().render(value, bound_column, record)


class InvalidateColumn(tables.TemplateColumn):
    """The row's own "Invalidate" action, on the same rows as the checkbox."""

    def __init__(self, **kwargs):
        super().__init__(template_name="apikeys/row_actions.html", **kwargs)

    def render(self, record, table, value, bound_column, **kwargs):
        return super().render(record, table, table.may_invalidate(record), bound_column, **kwargs)


class ApiKeyTable(tables.Table):
    selection = SelectionColumn(
        accessor="pk",
        attrs={
            "th__input": {"id": "select-all", "class": "form-check-input", "aria-label": "Select all"},
            "td__input": {
                "name": "id",
                "class": "form-check-input api-key-select",
                "aria-label": lambda record: f"Select {record.name}",
            },
            "th": {"class": "selection-column"},
            "td": {"class": "selection-column"},
        },
    )
    name = tables.Column(
        linkify=("api_key_details", [tables.A("pk")]),
        order_by=("name", "id"),
        attrs={"a": {"class": "fw-semibold api-key-name"}, "td": {"class": "name-column"}},
    )
    owner = OwnerColumn(
        accessor="owner__username", verbose_name="Owner", attrs={"td": {"data-label": "Owner"}}
    )
    # Newest first within a realm, as the (realm_name, -created) index reads.
    realm = tables.Column(
        accessor="realm_name",
        order_by=("realm_name", "-created", "id"),
        verbose_name="Realm",
        attrs={"td": {"data-label": "Realm"}},
    )
    created = DateTimeColumn(order_by=("created", "-id"), attrs={"td": {"data-label": "Created"}})
    expiration = ExpirationColumn(
        verbose_name="Expires", default="Never", attrs={"td": {"data-label": "Expires"}}
    )
    last_used = LastUsedColumn(
        verbose_name="Last used", attrs={"td": {"class": "text-nowrap", "data-label": "Last used"}}
    )
    status = StatusColumn(accessor="pk", verbose_name="Status", attrs={"td": {"data-label": "Status"}})
    actions = InvalidateColumn(
        accessor="pk",
        verbose_name="Actions",
        orderable=False,
        attrs={"th": {"class": "text-end"}, "td": {"class": "text-end actions-column"}},
    )

    class Meta:
        model = ApiKey
        fields = [
            "selection", "name", "owner", "realm", "created", "expiration", "last_used", "status", "actions"
        ]
        sequence = fields
        order_by = "-created"
        template_name = "apikeys/api_keys_table.html"
        empty_text = "No API keys match your search."
        attrs = {"class": "table table-hover align-middle mb-0", "id": "api-keys-table"}
        row_attrs = {"data-id": lambda record: record.pk}

    def __init__(self, *args, principal, **kwargs):
        """Owner and Realm only for those who see every key; no selection for read-only viewers."""
        self.principal = principal
        hidden = []
        if not selectors.can_view_all_api_keys(principal):
            hidden += ["owner", "realm"]
        if not selectors.can_manage_own_api_keys(principal):
            hidden += ["selection", "actions"]
        super().__init__(*args, exclude=hidden, **kwargs)

    def parts(self, queryset: QuerySet) -> list[QuerySet]:
        """The ordered keys as parts read one after the other, each in the order of an index: the
        column sorted on splits its order where one index range does not hold it."""
        if len(self.order_by) == 1:
            order = self.order_by[0]
            column = self.columns[order.bare].column
            if hasattr(column, "parts"):
                return column.parts(queryset, order.is_descending)
        return [queryset]

    def may_invalidate(self, key: ApiKey) -> bool:
        return key.invalidated is None and selectors.can_invalidate(self.principal, key)
