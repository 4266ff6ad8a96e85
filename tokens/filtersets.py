"""Filters of the Access tokens list: whose tokens, and in which state."""

import django_filters
from django import forms
from django.utils.http import urlencode

from accounts.models import Realm
from tokens.models import STATES, Token


class TokenFilterSet(django_filters.FilterSet):
    user = django_filters.CharFilter(
        field_name="user__username", label="User",
        widget=forms.TextInput(attrs={"placeholder": "User name", "class": "form-control"}),
    )
    realm = django_filters.ModelChoiceFilter(
        field_name="user__realm", queryset=Realm.objects.all(), to_field_name="name",
        empty_label="All realms",
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    state = django_filters.ChoiceFilter(
        choices=list(STATES.items()), empty_label="Any state", method="filter_state",
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    class Meta:
        model = Token
        fields = ["user", "realm", "state"]

    def filter_state(self, queryset, name, value):
        return queryset.in_state(value)


def user_filter(user) -> str:
    """The query string that filters the list to one user's tokens."""
    return urlencode({"user": user.username, "realm": user.realm.name})
