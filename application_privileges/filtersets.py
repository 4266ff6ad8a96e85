"""Search and filters of the Application privileges list."""

import django_filters
from django import forms
from django.db.models import Q

from application_privileges.models import ApplicationPrivilege


class ApplicationPrivilegeFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Search by application or privilege name",
                                        "class": "form-control"}),
    )
    application = django_filters.ChoiceFilter(
        empty_label="All applications", widget=forms.Select(attrs={"class": "form-select"}),
    )

    class Meta:
        model = ApplicationPrivilege
        fields = ["q", "application"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The applications offered are those the list holds.
        applications = self.queryset.order_by("application").values_list("application", flat=True).distinct()
        self.filters["application"].extra["choices"] = [(name, name) for name in applications]

    def search(self, queryset, name, value):
        return queryset.filter(Q(application__icontains=value) | Q(name__icontains=value))
