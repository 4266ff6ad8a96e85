"""API keys (SPEC §1): secondary credentials owned by a user. A key is never modified."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


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

        As in Elasticsearch, an invalidated key whose expiration is older still goes too.
        """
        return self.filter(Q(invalidated__lte=cutoff) | Q(expiration__lte=cutoff))


class ApiKey(models.Model):
    REST = "rest"

    id = models.CharField(max_length=20, primary_key=True, editable=False)
    name = models.CharField(max_length=256)
    hash = models.CharField(max_length=256, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
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
            # The list page: newest first, for everyone or for one owner.
            models.Index(fields=["-created", "id"], name="apikey_created"),
            models.Index(fields=["owner", "-created"], name="apikey_owner_created"),
            models.Index(fields=["name"], name="apikey_name"),
            models.Index(fields=["realm_name", "-created"], name="apikey_realm_created"),
            # Status filters and the retention purge.
            models.Index(fields=["expiration"], name="apikey_expiration"),
            models.Index(fields=["invalidated"], name="apikey_invalidated"),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    def is_expired(self, now=None) -> bool:
        return self.expiration is not None and self.expiration <= (now or timezone.now())

    def is_active(self, now=None) -> bool:
        return self.invalidated is None and not self.is_expired(now)
