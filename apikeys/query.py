"""Which fields of an API key the query API key API exposes, and how it refuses the others: the
API key index of the query engine (``restapi.query.dsl``)."""

from django.db.models import BooleanField, ExpressionWrapper, Q

from restapi.query.dsl import (
    ColumnField,
    DateField,
    FlagField,
    Index,
    MetadataRootField,
    QueryRequest,
    parse_query_request,
)


class InvalidatedField(FlagField):
    """Whether the key is invalidated: a boolean derived from the invalidation time."""

    def expression(self):
        return ExpressionWrapper(Q(invalidated__isnull=False), output_field=BooleanField())

    def holds(self, value: bool) -> Q:
        return Q(invalidated__isnull=not value)


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


def parse_api_key_query(body, url_sort: str | None = None) -> QueryRequest:
    """The body of ``POST|GET /_security/_query/api_key`` (and its URL ``sort``), validated."""
    return parse_query_request(body, API_KEYS, url_sort)
