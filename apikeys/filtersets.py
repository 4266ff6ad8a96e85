"""Filters of the API Keys page (SPEC §6): name search, status, last use, and owner and realm for
those who see every key."""

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from accounts.models import Realm, User
from apikeys.models import ApiKey

ACTIVE, EXPIRED, INVALIDATED, ALL = "active", "expired", "invalidated", "all"
STATUS_CHOICES = [
    (ACTIVE, "Active"),
    (EXPIRED, "Expired"),
    (INVALIDATED, "Invalidated"),
    (ALL, "All statuses"),
]
# Like Kibana, the page leaves invalidated keys out until asked for them.
DEFAULT_STATUS_LABEL = "Active and expired"
UNUSED_CHOICES = [(str(days), f"Unused for {days} days") for days in (7, 30, 90)]


def realm_choices():
    return [(realm.name, realm.name) for realm in Realm.objects.all()]


class ApiKeyFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="name",
        lookup_expr="icontains",
        label="Search",
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": "Search by name", "type": "search"}
        ),
    )
    status = django_filters.ChoiceFilter(
        choices=STATUS_CHOICES,
        method="filter_status",
        empty_label=DEFAULT_STATUS_LABEL,
        label="Status",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    unused = django_filters.ChoiceFilter(
        choices=UNUSED_CHOICES,
        method="filter_unused",
        empty_label="Any last use",
        label="Last used",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    owner = django_filters.CharFilter(
        method="filter_owner",
        label="Owner",
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "Username"}),
    )
    realm = django_filters.ChoiceFilter(
        field_name="realm_name",
        choices=realm_choices,
        empty_label="All realms",
        label="Realm",
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    class Meta:
        model = ApiKey
        fields = ["name", "status", "unused", "owner", "realm"]

    def __init__(self, *args, view_all: bool = False, **kwargs):
        """``view_all``: the owner and realm filters exist only for those who see every key."""
        super().__init__(*args, **kwargs)
        if not view_all:
            del self.filters["owner"]
            del self.filters["realm"]

    def filter_status(self, queryset, name, value):
        if value == ACTIVE:
            return queryset.active()
        if value == EXPIRED:
            return queryset.expired()
        if value == INVALIDATED:
            return queryset.invalidated()
        return queryset

    def filter_owner(self, queryset, name, value):
        """The owners' ids come first (one per realm that has the username), so the keys are read
        through the owner index rather than by walking every key in date order."""
        owners = list(User.objects.filter(username=value).values_list("pk", flat=True))
        return queryset.filter(owner__in=owners)

    def filter_unused(self, queryset, name, value):
        """Not used since the cutoff: last used before it, or never used and created before it."""
        cutoff = timezone.now() - timedelta(days=int(value))
        return queryset.filter(Q(last_used__lt=cutoff) | Q(last_used__isnull=True, created__lt=cutoff))

    def filter_queryset(self, queryset):
        """No status chosen (or an unknown one) means active and expired keys."""
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(invalidated__isnull=True)
        return queryset
