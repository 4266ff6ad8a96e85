"""The Roles and Users lists (SPEC §6)."""

import django_tables2 as tables

from accounts.models import Role, User

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
