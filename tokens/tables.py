"""The Access tokens list: each pair by its public id, never a secret or a digest."""

import django_tables2 as tables

from accounts.tables import TABLE_ATTRS
from apikeys.tables import DateTimeColumn
from tokens.models import STATES, Token


class SelectionColumn(tables.CheckBoxColumn):
    """A checkbox only on pairs that invalidating would still change."""

    def render(self, value, bound_column, record):
        return super().render(value, bound_column, record) if record.working else ""


class StateColumn(tables.TemplateColumn):
    def __init__(self, **kwargs):
        super().__init__(template_name="tokens/columns/state.html", **kwargs)

    def render(self, record, table, value, bound_column, **kwargs):
        state = record.state()
        return super().render(record, table, (state, STATES[state]), bound_column, **kwargs)

    def order(self, queryset, is_descending):
        return queryset.by_state(descending=is_descending), True


class TokenTable(tables.Table):
    selection = SelectionColumn(
        accessor="pk",
        attrs={
            "th__input": {"id": "select-all", "class": "form-check-input", "aria-label": "Select all"},
            "td__input": {
                "name": "id", "class": "form-check-input token-select",
                "aria-label": lambda record: f"Select token {record.pk}",
            },
            "th": {"class": "selection-column"},
            "td": {"class": "selection-column"},
        },
    )
    id = tables.Column(verbose_name="Token id", attrs={"td": {"class": "font-monospace small"}})
    user = tables.TemplateColumn(
        template_name="tokens/columns/user.html", accessor="user__username", verbose_name="User",
        order_by=("user__username", "-created"),
    )
    realm = tables.Column(
        accessor="user__realm__name", order_by=("user__realm__name", "-created"), verbose_name="Realm"
    )
    grant_type = tables.Column(verbose_name="Grant type", attrs={"td": {"class": "font-monospace small"}})
    created = DateTimeColumn(order_by=("created", "id"))
    expiration = DateTimeColumn(verbose_name="Expires", order_by=("expiration", "id"))
    state = StateColumn(accessor="pk", verbose_name="State")

    class Meta:
        model = Token
        fields = ("selection", "id", "user", "realm", "grant_type", "created", "expiration", "state")
        sequence = fields
        order_by = "-created"
        attrs = {**TABLE_ATTRS, "id": "tokens-table"}
        template_name = "accounts/table.html"
        empty_text = "No access tokens match your search."
        row_attrs = {"data-id": lambda record: record.pk, "data-state": lambda record: record.state()}
