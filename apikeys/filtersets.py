"""Search and filters of the API Keys page (SPEC §6): the search box, status, last use, and owner and
realm for those who see every key.

Not django-filter's FilterSet: the search box and each filter become clauses of one query DSL
request, run by the engine of ``POST /_security/_query/api_key`` (``apikeys.query.API_KEYS_PAGE``),
so the page filters exactly as the API does. Every value lives in the URL, so a search can be
bookmarked.
"""

from django import forms
from django.db.models import Q

from accounts.models import Realm
from apikeys import search_bar
from apikeys.aggregations import aggregate
from apikeys.query import API_KEYS_PAGE, parse_api_key_query
from restapi.errors import ValidationError
from restapi.query.dsl import parse_query_request

ALL = "all"
STATUS_CHOICES = [
    ("active", "Active"),
    ("expiring", "Expiring soon"),
    ("expired", "Expired"),
    ("invalidated", "Invalidated"),
    (ALL, "All statuses"),
]
# Like Kibana, the page leaves invalidated keys out until asked for them.
DEFAULT_STATUS_LABEL = "Active and expired"
UNUSED_CHOICES = [(str(days), f"Unused for {days} days") for days in (7, 30, 90)]
MAX_OWNERS = 20
# The owner field suggests the usernames with the most keys, this many of them.
SUGGESTED_OWNERS = 100


def realm_choices():
    return [("", "All realms"), *((realm.name, realm.name) for realm in Realm.objects.all())]


class OwnersInput(forms.TextInput):
    """Several owners: comma-separated in one field, the field repeated in the URL, or both."""

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name, "")]
        return ", ".join(value for value in values if value)


class ApiKeyFilters(forms.Form):
    q = forms.CharField(
        required=False,
        strip=True,
        label="Search",
        widget=forms.TextInput(
            attrs={
                "class": "form-control",
                "type": "search",
                "placeholder": "Search: filebeat, owner:bob, -status:expired, name:ci-* OR type:rest",
                "aria-describedby": "search-help",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", DEFAULT_STATUS_LABEL), *STATUS_CHOICES],
        label="Status",
        widget=forms.Select(attrs={"class": "form-select apply-on-change"}),
    )
    unused = forms.ChoiceField(
        required=False,
        choices=[("", "Any last use"), *UNUSED_CHOICES],
        label="Last used",
        widget=forms.Select(attrs={"class": "form-select apply-on-change"}),
    )
    owner = forms.CharField(
        required=False,
        label="Owner",
        widget=OwnersInput(
            attrs={
                "class": "form-control apply-on-pick",
                "placeholder": "Usernames",
                "list": "owner-suggestions",
                "autocomplete": "off",
            }
        ),
    )
    realm = forms.ChoiceField(
        required=False,
        label="Realm",
        widget=forms.Select(attrs={"class": "form-select apply-on-change"}),
    )

    def __init__(self, *args, view_all: bool = False, **kwargs):
        """``view_all``: the owner and realm filters exist only for those who see every key."""
        super().__init__(*args, **kwargs)
        self.search = None
        if not view_all:
            del self.fields["owner"]
            del self.fields["realm"]
        else:
            # Read once: callable choices are read again each time the field validates or renders.
            self.fields["realm"].choices = realm_choices()

    def clean_q(self):
        text = self.cleaned_data["q"]
        try:
            self.search = search_bar.parse(text)
        except search_bar.SearchSyntaxError as error:
            raise forms.ValidationError(error.message) from None
        return text

    def clean_owner(self):
        names = (name.strip() for name in self.cleaned_data["owner"].split(","))
        owners = list(dict.fromkeys(name for name in names if name))
        if len(owners) > MAX_OWNERS:
            raise forms.ValidationError(f"Choose at most {MAX_OWNERS} owners.")
        return owners

    def query(self) -> dict:
        """The search and the filters as one query DSL request (call after ``is_valid``)."""
        data = self.cleaned_data
        clauses = [self.search] if self.search else []
        status = data["status"]
        if status and status != ALL:
            clauses.append(search_bar.status_query(status))
        elif not status and not search_bar.names_field(data["q"], "status"):
            # Invalidated keys stay out by default, unless the search box asks about status.
            clauses.append({"term": {"invalidated": False}})
        if data["unused"]:
            clauses.append(_unused_for(int(data["unused"])))
        if data.get("owner"):
            owners = [search_bar.owner_query(name) for name in data["owner"]]
            clauses.append(owners[0] if len(owners) == 1 else search_bar.any_of(owners))
        if data.get("realm"):
            clauses.append({"term": {"realm_name": data["realm"]}})
        return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}

    def where(self) -> Q | None:
        """The keys that match, as a condition of the engine; None (with the error added to the
        form) when the search or a filter is wrong."""
        if not self.is_valid():
            return None
        try:
            return parse_query_request({"query": self.query()}, API_KEYS_PAGE).where
        except ValidationError as error:
            # Within the box's grammar only limits are left: a pattern or a query too large.
            self.add_error("q", f"This search cannot be run: {error.reason}.")
            return None


def _unused_for(days: int) -> dict:
    """Not used for ``days``: created before then, and last used before then or never. A key is used
    only after it is created, so the creation bound changes no answer; it lets the page read the
    listed keys from the cutoff on, instead of walking every newer key first (0.54 s at a million)."""
    cutoff = f"now-{days}d"
    never_used = {"bool": {"must_not": [{"exists": {"field": "last_used"}}]}}
    used_before = {"range": {"last_used": {"lt": cutoff}}}
    created_before = {"range": {"creation": {"lt": cutoff}}}
    return {"bool": {"filter": [created_before, search_bar.any_of([used_before, never_used])]}}


def owner_suggestions(keys) -> list[str]:
    """The usernames that own the most of ``keys``, by name: the query API's terms aggregation on
    ``username``, as Kibana's page asks it."""
    aggs = {"owners": {"terms": {"field": "username", "size": SUGGESTED_OWNERS}}}
    request = parse_api_key_query({"size": 0, "aggs": aggs})
    buckets = aggregate(keys.select_related(None), None, request.aggregations)["owners"]["buckets"]
    # By name in any case, then by exact name, so that "Alice" and "alice" always come in one order.
    return sorted({bucket["key"] for bucket in buckets}, key=lambda name: (name.lower(), name))
