"""API keys (SPEC §1): secondary credentials owned by a user. A key's id, name, owner and secret never
change; its owner may update its role descriptors, metadata and expiration."""

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, When
from django.db.models.lookups import IsNull
from django.utils import timezone

from apikeys.lookups import Among

# What the API Keys page lists unless asked for invalidated keys (SPEC §6), and what its indexes
# cover, so that a page walks one index in display order and stops after a page.
LISTED = Q(invalidated__isnull=True)


def stops_working():
    """When a key stops or stopped working: the earlier of its invalidation and its expiration,
    null while it has neither. The retention purge finds its keys by this through an index."""
    return Case(
        When(invalidated__isnull=True, then=F("expiration")),
        When(expiration__isnull=True, then=F("invalidated")),
        When(invalidated__lt=F("expiration"), then=F("invalidated")),
        default=F("expiration"),
        output_field=models.DateTimeField(),
    )


def by_expiration(descending: bool) -> list:
    """Soonest expiration first and keys that never expire last (or all reversed): the same order
    on every database. The list page reads it from the ``apikey_listed_expiration`` index as two
    parts, the keys with an expiration and those without (``apikeys.tables``)."""
    never, when, tie = IsNull(F("expiration"), True), F("expiration"), F("id")
    if descending:
        return [never.desc(), when.desc(), tie.desc()]
    return [never.asc(), when.asc(), tie.asc()]


class ApiKeyQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(Q(expiration__isnull=True) | Q(expiration__gt=now), invalidated__isnull=True)

    def expired(self, now=None):
        return self.filter(expiration__lte=now or timezone.now(), invalidated__isnull=True)

    def invalidated(self):
        return self.filter(invalidated__isnull=False)

    def expiring_within(self, window, now=None):
        """Active keys that expire before ``now + window``: their owners are warned (SPEC §5)."""
        now = now or timezone.now()
        return self.active(now).filter(expiration__lte=now + window)

    def past_retention(self, cutoff):
        """Invalidated or expired at or before ``cutoff``: due for deletion (SPEC §5).

        As in Elasticsearch, an invalidated key whose expiration is older still goes too. Ordered
        by when the keys stopped working, which the ``apikey_stops_working`` index gives as is.
        """
        return (
            self.annotate(stops_working=stops_working())
            .filter(stops_working__lte=cutoff)
            .order_by("stops_working", "pk")
        )


class ApiKey(models.Model):
    REST = "rest"

    id = models.CharField(max_length=20, primary_key=True, editable=False)
    name = models.CharField(max_length=256)
    hash = models.CharField(max_length=256, editable=False)
    # Indexed by apikey_owner_created, which leads with the owner: a second index would only cost
    # every insert and invalidation its upkeep.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys", db_index=False
    )
    # Snapshot of the owner's realm when the key was created, as Elasticsearch reports it.
    realm_name = models.CharField(max_length=64)
    realm_type = models.CharField(max_length=16)
    type = models.CharField(max_length=16, default=REST)
    created = models.DateTimeField(default=timezone.now)
    expiration = models.DateTimeField(null=True, blank=True)
    invalidated = models.DateTimeField(null=True, blank=True)
    role_descriptors = models.JSONField(default=dict, blank=True)
    limited_by = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)
    # When the owner was told that the key expires soon; set once, so the warning is sent once.
    expiry_notified = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "id"]
        constraints = [
            # Names are unique among keys that are not invalidated, across all owners (SPEC §1).
            models.UniqueConstraint(
                fields=["name"], condition=Q(invalidated__isnull=True), name="apikey_name_unique_active"
            ),
        ]
        indexes = [
            # The list page as first shown, newest first: with the name (and the always null
            # invalidated, which SQLite wants for the index to cover the query), a name search and
            # the rows a deep page skips are read from the index alone.
            models.Index(
                fields=["-created", "id", "name", "invalidated"], condition=LISTED, name="apikey_listed"
            ),
            # Expiration, status and last use orders, each read as a few ranges of one of these
            # (``apikeys.tables``): plain columns, so that a range on the column bounds the scan,
            # and each range holds null or non-null values alone, which the databases order alike.
            # Invalidated keys have their own, for the Status order when they are listed too.
            models.Index(fields=["expiration", "id"], condition=LISTED, name="apikey_listed_expiration"),
            models.Index(
                fields=["expiration", "id"],
                condition=Q(invalidated__isnull=False),
                name="apikey_invalidated_expiration",
            ),
            models.Index(fields=["last_used", "id"], condition=LISTED, name="apikey_listed_last_used"),
            # Every key, newest first (other statuses), and one owner's keys. Ending with invalidated,
            # the owner's index also counts keys by owner, active or not, from the index alone: the
            # username aggregation Kibana's API keys page asks for.
            models.Index(fields=["-created", "id"], name="apikey_created"),
            models.Index(fields=["owner", "-created", "id", "invalidated"], name="apikey_owner_created"),
            # Keys by type, active or not, counted from the index alone (the types aggregation); with the
            # owner, keys by owner and by (owner, type) too: PostgreSQL deduplicates its entries, which
            # makes it a tenth of the owner's index, and the username aggregations read it instead.
            models.Index(fields=["type", "owner", "invalidated"], name="apikey_type"),
            # On SQLite, migration 0006 also indexes (name, metadata, invalidated) for aggregations.
            models.Index(fields=["name"], name="apikey_name"),
            # Keys by realm; ending with invalidated and expiration, it also answers a realm_name terms
            # aggregation over active keys, with an expired (or active) count beneath, from the index alone.
            models.Index(
                fields=["realm_name", "-created", "invalidated", "expiration"], name="apikey_realm_created"
            ),
            # The retention purge. No index leads with expiration or invalidated alone: SQLite's
            # planner would take one for a status filter and sort every match instead of
            # walking the page's index and stopping after one page.
            models.Index(stops_working(), "id", name="apikey_stops_working"),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    def is_expired(self, now=None) -> bool:
        return self.expiration is not None and self.expiration <= (now or timezone.now())

    def is_active(self, now=None) -> bool:
        return self.invalidated is None and not self.is_expired(now)


ApiKey._meta.get_field("id").register_lookup(Among)


class CredentialEpoch(models.Model):
    """One row whose ``value`` changes, in the same transaction, with every write that can change
    whether an API key authenticates or as whom: a key's columns other than its use, a key
    deleted while not invalidated, its owner's identity, the owner's realm.

    Database triggers keep it (migration 0011), so that no write path, bulk update or other host
    can forget to. Workers remember keys between requests and trust a remembered key only while
    this value is the one it was read under (``apikeys.key_cache``; docs/security.md).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="credential_epoch_single_row")]

    def __str__(self):
        return f"credential epoch {self.value}"
