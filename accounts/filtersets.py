"""Search and filters of the Roles and Users lists (SPEC §6)."""

import django_filters
from django import forms
from django.db.models import Q

from accounts.models import Realm, Role, User


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
