"""The Roles, Users and Audit log lists (SPEC §6)."""

import django_tables2 as tables
from django.utils.html import format_html

from accounts import audit
from accounts.filtersets import AUDIT_ACTIONS, AUDIT_OUTCOMES
from accounts.models import AuditEvent, Role, User
from apikeys.tables import DateTimeColumn

TABLE_ATTRS = {"class": "table table-hover align-middle mb-0", "thead": {"class": "table-light"}}


class RoleTable(tables.Table):
    name = tables.TemplateColumn(template_name="accounts/columns/role_name.html", verbose_name="Role")
    cluster = tables.TemplateColumn(
        template_name="accounts/columns/cluster_privileges.html", verbose_name="Cluster privileges",
        orderable=False,
    )
    indices = tables.TemplateColumn(
        template_name="accounts/columns/index_privileges.html", verbose_name="Index privileges",
        orderable=False,
    )
    actions = tables.TemplateColumn(
        template_name="accounts/columns/role_actions.html", verbose_name="", orderable=False,
        attrs={"td": {"class": "text-end text-nowrap"}},
    )

    class Meta:
        model = Role
        fields = ("name", "cluster", "indices", "actions")
        attrs = {**TABLE_ATTRS, "id": "roles-table"}
        template_name = "accounts/table.html"
        empty_text = "No roles match your search."
        row_attrs = {"data-role": lambda record: record.name}


class UserTable(tables.Table):
    username = tables.TemplateColumn(template_name="accounts/columns/username.html", verbose_name="User name")
    full_name = tables.Column(verbose_name="Full name", default="")
    email = tables.Column(verbose_name="Email address", default="")
    realm = tables.Column(accessor="realm__name", order_by=("realm__order", "username"), verbose_name="Realm")
    roles = tables.TemplateColumn(template_name="accounts/columns/user_roles.html", orderable=False)
    enabled = tables.TemplateColumn(template_name="accounts/columns/user_status.html", verbose_name="Status")

    class Meta:
        model = User
        fields = ("username", "full_name", "email", "realm", "roles", "enabled")
        attrs = {**TABLE_ATTRS, "id": "users-table"}
        template_name = "accounts/table.html"
        empty_text = "No users match your search."
        row_attrs = {"data-user": lambda record: f"{record.realm.name}/{record.username}"}


# Bootstrap's text-bg-* colour of each audit action and outcome.
AUDIT_ACTION_COLOURS = {
    audit.API_KEY_CREATED: "primary",
    audit.API_KEY_GRANTED: "primary",
    audit.API_KEYS_INVALIDATED: "warning",
    audit.API_KEY_ROTATED: "info",
    audit.API_KEY_UPDATED: "info",
    audit.API_KEYS_UPDATED: "info",
    audit.API_KEYS_PURGED: "secondary",
    audit.AUTHENTICATION_FAILED: "danger",
    audit.AUTHENTICATION_THROTTLED: "danger",
    audit.USER_CHANGED: "info",
    audit.USER_DELETED: "dark",
    audit.ROLE_CHANGED: "info",
    audit.ROLE_DELETED: "dark",
    audit.APPLICATION_PRIVILEGES_CHANGED: "info",
    audit.APPLICATION_PRIVILEGES_DELETED: "dark",
}
AUDIT_OUTCOME_COLOURS = {AuditEvent.SUCCESS: "success", AuditEvent.FAILURE: "danger"}


class BadgeColumn(tables.Column):
    """A code shown as a labelled, coloured badge; an unknown code as itself, in grey."""

    def __init__(self, labels: dict, colours: dict, **kwargs):
        self.labels, self.colours = labels, colours
        super().__init__(**kwargs)

    def render(self, value):
        return format_html(
            '<span class="badge rounded-pill text-bg-{}" data-code="{}">{}</span>',
            self.colours.get(value, "secondary"), value, self.labels.get(value, value),
        )


class AuditEventTable(tables.Table):
    time = DateTimeColumn(order_by=("time", "id"), orderable=True, attrs={"td": {"class": "text-nowrap"}})
    action = BadgeColumn(AUDIT_ACTIONS, AUDIT_ACTION_COLOURS)
    outcome = BadgeColumn(AUDIT_OUTCOMES, AUDIT_OUTCOME_COLOURS)
    # The name and realm as they were at the time, never the user row: no query per row.
    actor = tables.TemplateColumn(
        template_name="accounts/audit_actor.html", accessor="actor_username", verbose_name="User"
    )
    target = tables.TemplateColumn(template_name="accounts/audit_target.html")
    count = tables.Column(empty_values=(0,), default="", attrs={"td": {"class": "text-end"}})
    detail = tables.TemplateColumn(template_name="accounts/audit_detail.html", verbose_name="Details")

    class Meta:
        model = AuditEvent
        fields = ("time", "action", "outcome", "actor", "target", "count", "detail")
        orderable = False  # newest first, or oldest first: the only orders the time index serves
        order_by = "-time"
        attrs = {**TABLE_ATTRS, "id": "audit-table"}
        template_name = "accounts/table.html"
        empty_text = "No audit events match your search."
        row_attrs = {"data-action": lambda record: record.action}
