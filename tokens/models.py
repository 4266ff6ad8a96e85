"""Access tokens (Elasticsearch's token service): a short-lived bearer credential for a user and the
refresh token that may replace it once. One row per pair, as Elasticsearch keeps one document."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# A refresh token works this long after its pair was made, and may be used once (Elasticsearch's).
REFRESH_LIFETIME = timedelta(hours=24)
# Within this window after a refresh, the same refresh token answers with the same new pair, so
# that clients racing to refresh all end up with one working pair.
REFRESH_GRACE = timedelta(seconds=30)


class TokenQuerySet(models.QuerySet):
    def active(self, now=None):
        """Pairs of which some part still works: the access token, or a refresh token not yet used."""
        now = now or timezone.now()
        access = Q(invalidated__isnull=True, expiration__gt=now)
        refresh = Q(
            refresh_invalidated__isnull=True, refreshed__isnull=True, created__gt=now - REFRESH_LIFETIME
        ) & ~Q(refresh_hash="")
        return self.filter(access | refresh)

    def past_retention(self, cutoff):
        """Pairs whose access token and refresh token had both stopped working at ``cutoff``."""
        access_done = Q(expiration__lte=cutoff) | Q(invalidated__lte=cutoff)
        refresh_done = (
            Q(refresh_hash="")
            | Q(refresh_invalidated__lte=cutoff)
            | Q(refreshed__lte=cutoff - REFRESH_GRACE)
            | Q(created__lte=cutoff - REFRESH_LIFETIME)
        )
        return self.filter(access_done & refresh_done)


class Token(models.Model):
    """The secrets are never stored: only a SHA-256 digest of each (they are 240 random bits)."""

    id = models.CharField(max_length=20, primary_key=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens")
    # Who asked for the pair: only they may refresh it, Elasticsearch's "creating client".
    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    grant_type = models.CharField(max_length=32)
    access_hash = models.CharField(max_length=64, editable=False)
    # Empty when the pair has no refresh token (client_credentials).
    refresh_hash = models.CharField(max_length=64, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now)
    expiration = models.DateTimeField()
    invalidated = models.DateTimeField(null=True, blank=True)
    refresh_invalidated = models.DateTimeField(null=True, blank=True)
    refreshed = models.DateTimeField(null=True, blank=True)
    # The pair that replaced this one, encrypted with a key derived from this pair's refresh token:
    # readable only by whoever presents that token again within REFRESH_GRACE.
    superseding = models.BinaryField(null=True, blank=True, editable=False)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "id"]
        indexes = [
            models.Index(fields=["user", "-created"], name="token_user_created"),
            models.Index(fields=["expiration"], name="token_expiration"),
        ]

    def __str__(self):
        return f"token {self.id} of {self.user_id}"

    def is_active(self, now=None) -> bool:
        """Whether the access token authenticates."""
        return self.invalidated is None and self.expiration > (now or timezone.now())
