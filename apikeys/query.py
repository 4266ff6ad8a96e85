"""Which fields of an API key the query API key API exposes, and how it refuses the others: the
API key index of the query engine (``restapi.query.dsl``)."""

from django.db.models import BooleanField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Lower

from accounts.models import User
from restapi.query.dsl import (
    ColumnField,
    DateField,
    FlagField,
    Index,
    MetadataRootField,
    QueryRequest,
    WildcardMatch,
    parse_query_request,
)


class InvalidatedField(FlagField):
    """Whether the key is invalidated: a boolean derived from the invalidation time."""

    def expression(self):
        return ExpressionWrapper(Q(invalidated__isnull=False), output_field=BooleanField())

    def holds(self, value: bool) -> Q:
        return Q(invalidated__isnull=not value)


class OwnerField(ColumnField):
    """The owner's username, matched among the users first: the keys are then read through the
    owner index, not by walking every key in date order and joining its owner. Ignoring case, the
    users are found through their lower(username) index."""

    def __init__(self, name: str):
        super().__init__(name, "owner__username")

    def term(self, value, case_insensitive: bool = False) -> Q:
        value = self.value("term", value)
        if case_insensitive:
            users = User.objects.alias(lower=Lower("username")).filter(lower=Lower(Value(value)))
        else:
            users = User.objects.filter(username=value)
        return Q(owner__in=list(users.values_list("pk", flat=True)))

    def terms(self, values: list) -> Q:
        usernames = [self.value("terms", value) for value in values]
        return Q(owner__in=list(User.objects.filter(username__in=usernames).values_list("pk", flat=True)))

    def like(self, query: str, tokens: tuple, case_insensitive: bool) -> Q:
        # A pattern may match many users: they stay a subquery rather than a list of ids.
        matching = User.objects.filter(WildcardMatch(F("username"), tokens, case_insensitive))
        return Q(owner__in=matching.values("pk"))


def _aggregations(body):
    # Imported here: aggregations are built on this module's index.
    from apikeys.aggregations import parse_aggregations

    return parse_aggregations(body)


FIELDS = {
    "name": ColumnField("name", "name"),
    "type": ColumnField("type", "type"),
    "username": ColumnField("username", "owner__username"),
    "realm_name": ColumnField("realm_name", "realm_name"),
    "creation": DateField("creation", "created", nullable=False),
    "expiration": DateField("expiration", "expiration", nullable=True),
    "invalidation": DateField("invalidation", "invalidated", nullable=True),
    "invalidated": InvalidatedField("invalidated", "invalidated"),
    "metadata": MetadataRootField("metadata"),
}
API_KEYS = Index(
    FIELDS,
    refusal="for API Key query or aggregation",
    unsupported="supported for API Key query",
    payload="query_api_key_request_payload",
    # Creation, oldest first, as Elasticsearch's index order.
    default_sort=FIELDS["creation"],
    aggregations=_aggregations,
)


# The API Keys page searches with the same engine, and two more fields: the owner read through the
# users (same matches as the API's username field) and when the key was last used.
PAGE_FIELDS = {
    **FIELDS,
    "username": OwnerField("username"),
    "last_used": DateField("last_used", "last_used", nullable=True),
}
API_KEYS_PAGE = Index(
    PAGE_FIELDS,
    refusal=API_KEYS.refusal,
    unsupported=API_KEYS.unsupported,
    payload=API_KEYS.payload,
    default_sort=PAGE_FIELDS["creation"],
)


def parse_api_key_query(body, url_sort: str | None = None) -> QueryRequest:
    """The body of ``POST|GET /_security/_query/api_key`` (and its URL ``sort``), validated."""
    return parse_query_request(body, API_KEYS, url_sort)
