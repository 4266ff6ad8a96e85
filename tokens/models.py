"""Access tokens (Elasticsearch's token service): a short-lived bearer credential for a user and the
refresh token that may replace it once. One row per pair, as Elasticsearch keeps one document."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Case, ExpressionWrapper, IntegerField, Q, Value, When
from django.utils import timezone

# A refresh token works this long after its pair was made, and may be used once (Elasticsearch's).
REFRESH_LIFETIME = timedelta(hours=24)
# Within this window after a refresh, the same refresh token answers with the same new pair, so
# that clients racing to refresh all end up with one working pair.
REFRESH_GRACE = timedelta(seconds=30)


# What the tokens page shows of a pair, from its access token: working and its refresh token unused,
# working though its refresh token was used, expired, or invalidated.
ACTIVE, REFRESH_USED, EXPIRED, INVALIDATED = "active", "refresh_used", "expired", "invalidated"
STATES = {ACTIVE: "Active", REFRESH_USED: "Refresh used", EXPIRED: "Expired", INVALIDATED: "Invalidated"}


def _access_works(now) -> Q:
    return Q(invalidated__isnull=True, expiration__gt=now)


def _working(now) -> Q:
    """Some part of the pair still works: the access token, or a refresh token not yet used."""
    refresh = Q(
        refresh_invalidated__isnull=True, refreshed__isnull=True, created__gt=now - REFRESH_LIFETIME
    ) & ~Q(refresh_hash="")
    return _access_works(now) | refresh


def _in_state(state: str, now) -> Q:
    return {
        ACTIVE: _access_works(now) & Q(refreshed__isnull=True),
        REFRESH_USED: _access_works(now) & Q(refreshed__isnull=False),
        EXPIRED: Q(invalidated__isnull=True, expiration__lte=now),
        INVALIDATED: Q(invalidated__isnull=False),
    }[state]


class TokenQuerySet(models.QuerySet):
    def active(self, now=None):
        """Pairs of which some part still works: what invalidating them would stop."""
        return self.filter(_working(now or timezone.now()))

    def with_working(self, now=None):
        """Each pair marked ``working`` when it is one of ``active()``: what invalidating would change."""
        working = ExpressionWrapper(_working(now or timezone.now()), output_field=BooleanField())
        return self.annotate(working=working)

    def in_state(self, state: str, now=None):
        return self.filter(_in_state(state, now or timezone.now()))

    def by_state(self, descending=False, now=None):
        """Ordered Active, Refresh used, Expired, Invalidated (or back), newest first within each."""
        now = now or timezone.now()
        rank = Case(
            *(When(_in_state(state, now), then=Value(position)) for position, state in enumerate(STATES)),
            output_field=IntegerField(),
        )
        direction = "-" if descending else ""
        return self.annotate(state_rank=rank).order_by(f"{direction}state_rank", "-created", "id")

    def state_counts(self, now=None) -> dict[str, int]:
        """How many pairs are in each state, in one query."""
        now = now or timezone.now()
        return self.aggregate(
            **{state: models.Count("pk", filter=_in_state(state, now)) for state in STATES}
        )

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

    def state(self, now=None) -> str:
        """The pair's state as ``TokenQuerySet.in_state`` selects it."""
        if self.invalidated is not None:
            return INVALIDATED
        if not self.is_active(now):
            return EXPIRED
        return ACTIVE if self.refreshed is None else REFRESH_USED
