"""The Application privileges list."""

import json
from collections.abc import Callable

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html_join

from accounts.tables import TABLE_ATTRS
from application_privileges.models import ApplicationPrivilege

# Longest metadata summary shown in a row; the edit form shows it whole.
METADATA_SUMMARY_LENGTH = 60
BUTTON = '<a class="btn btn-sm btn-outline-{}" href="{}" aria-label="{} {}">{}</a>'


class ApplicationPrivilegeTable(tables.Table):
    application = tables.Column(order_by=("application", "name"), attrs={"td": {"class": "font-monospace"}})
    name = tables.Column(verbose_name="Privilege", order_by=("name", "application"),
                         attrs={"td": {"class": "font-monospace fw-semibold"}})
    actions = tables.TemplateColumn(
        template_name="application_privileges/columns/actions.html", orderable=False,
    )
    metadata = tables.Column(orderable=False, empty_values=({},), default="",
                             attrs={"td": {"class": "font-monospace small text-body-secondary"}})
    controls = tables.Column(
        verbose_name="", orderable=False, empty_values=(), attrs={"td": {"class": "text-end text-nowrap"}},
    )

    class Meta:
        model = ApplicationPrivilege
        fields = ("application", "name", "actions", "metadata", "controls")
        order_by = "application"
        attrs = {**TABLE_ATTRS, "id": "application-privileges-table"}
        template_name = "accounts/table.html"
        empty_text = "No application privileges match your search."
        row_attrs = {"data-privilege": lambda record: f"{record.application}:{record.name}"}

    def __init__(self, *args, rights: Callable[[str], tuple[bool, bool]], **kwargs):
        """``rights(application)``: whether the viewer may edit, and delete, its privileges."""
        self.rights = rights
        super().__init__(*args, **kwargs)

    def render_controls(self, record):
        may_edit, may_delete = self.rights(record.application)
        buttons = [
            ("application-privilege-edit", "primary", "Edit", may_edit),
            ("application-privilege-delete", "danger", "Delete", may_delete),
        ]
        return format_html_join(" ", BUTTON, (
            (colour, reverse(url, args=[record.application, record.name]), label, record, label)
            for url, colour, label, shown in buttons if shown
        ))

    def render_metadata(self, value):
        summary = json.dumps(value, sort_keys=True)
        if len(summary) > METADATA_SUMMARY_LENGTH:
            return summary[: METADATA_SUMMARY_LENGTH - 1] + "…"
        return summary
