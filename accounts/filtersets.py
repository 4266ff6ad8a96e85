"""Search and filters of the Roles, Users and Audit log lists (SPEC §6)."""

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from accounts.models import AuditEvent, Realm, Role, User

# The audit actions, as the filter offers them and the table labels them.
AUDIT_ACTIONS = {
    audit.API_KEY_CREATED: "API key created",
    audit.API_KEY_GRANTED: "API key granted",
    audit.API_KEYS_INVALIDATED: "API keys invalidated",
    audit.API_KEY_ROTATED: "API key rotated",
    audit.API_KEY_UPDATED: "API key updated",
    audit.API_KEYS_UPDATED: "API keys updated",
    audit.API_KEYS_PURGED: "API keys purged",
    audit.AUTHENTICATION_FAILED: "Authentication failed",
    audit.AUTHENTICATION_THROTTLED: "Authentication throttled",
    audit.USER_CHANGED: "User changed",
    audit.USER_DELETED: "User deleted",
    audit.ROLE_CHANGED: "Role changed",
    audit.ROLE_DELETED: "Role deleted",
    audit.APPLICATION_PRIVILEGES_CHANGED: "Application privileges changed",
    audit.APPLICATION_PRIVILEGES_DELETED: "Application privileges deleted",
}
AUDIT_OUTCOMES = {AuditEvent.SUCCESS: "Success", AuditEvent.FAILURE: "Failure"}
AUDIT_PERIODS = {
    "hour": ("Last hour", timedelta(hours=1)),
    "day": ("Last 24 hours", timedelta(days=1)),
    "week": ("Last 7 days", timedelta(weeks=1)),
}


class RoleFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Search roles by name", "class": "form-control"}),
    )

    class Meta:
        model = Role
        fields = ["q"]


class UserFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Search by username, full name or email",
                                        "class": "form-control"}),
    )
    realm = django_filters.ModelChoiceFilter(
        queryset=Realm.objects.all(), to_field_name="name", empty_label="All realms",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    status = django_filters.ChoiceFilter(
        field_name="enabled", label="Status", empty_label="Any status",
        choices=[("enabled", "Enabled"), ("disabled", "Disabled")], method="filter_status",
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    class Meta:
        model = User
        fields = ["q", "realm", "status"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(username__icontains=value) | Q(full_name__icontains=value) | Q(email__icontains=value)
        )

    def filter_status(self, queryset, name, value):
        return queryset.filter(enabled=value == "enabled")


class AuditEventFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        field_name="target", lookup_expr="icontains", label="Target",
        widget=forms.SearchInput(attrs={"placeholder": "Target: user, role or key name",
                                        "class": "form-control"}),
    )
    action = django_filters.ChoiceFilter(
        choices=list(AUDIT_ACTIONS.items()), empty_label="All actions",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    outcome = django_filters.ChoiceFilter(
        choices=list(AUDIT_OUTCOMES.items()), empty_label="Any outcome",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    actor = django_filters.CharFilter(
        method="filter_actor", label="User",
        widget=forms.TextInput(attrs={"placeholder": "User name", "class": "form-control"}),
    )
    since = django_filters.ChoiceFilter(
        label="Time", method="filter_since", empty_label="All time",
        choices=[(period, label) for period, (label, _) in AUDIT_PERIODS.items()],
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["q", "action", "outcome", "actor", "since"]

    def filter_actor(self, queryset, name, value):
        """Who acted, or, for a failed authentication, whom the credentials claimed to be."""
        return queryset.filter(
            Q(actor_username=value) | Q(action=audit.AUTHENTICATION_FAILED, detail__username=value)
        )

    def filter_since(self, queryset, name, value):
        _, length = AUDIT_PERIODS[value]
        return queryset.filter(time__gte=timezone.now() - length)
