"""The audit trail: every security event goes to the ``AuditEvent`` table and to a structured log line.

``record`` is the one way to write an event (``raise_count`` only brings the count of a throttling
summary up to date), called by the services and ``accounts.throttling`` (never by views), so the
web UI, the REST API and the commands are audited alike. Secrets are never passed in.
"""

import json
import logging

from accounts.models import AuditEvent

log = logging.getLogger("keyward.audit")

# Actions, in Elasticsearch's audit vocabulary where it has one.
API_KEY_CREATED = "api_key_created"
# A key made for another user, who proved themselves in the request: the actor is the granter,
# the detail names the owner.
API_KEY_GRANTED = "api_key_granted"
API_KEYS_INVALIDATED = "api_keys_invalidated"
API_KEY_ROTATED = "api_key_rotated"
API_KEY_UPDATED = "api_key_updated"
API_KEYS_UPDATED = "api_keys_updated"
API_KEYS_PURGED = "api_keys_purged"
# Access tokens: the detail names the pair by its public id, never by a token.
TOKEN_CREATED = "token_created"
TOKEN_REFRESHED = "token_refreshed"
TOKENS_INVALIDATED = "tokens_invalidated"
TOKENS_PURGED = "tokens_purged"
# Events about one key name, which they record as their target (a rotation's two keys share it).
ONE_KEY_ACTIONS = frozenset({API_KEY_CREATED, API_KEY_GRANTED, API_KEY_ROTATED, API_KEY_UPDATED})
AUTHENTICATION_FAILED = "authentication_failed"
# Keyward's own: one row per throttled bucket and window, counting the attempts refused.
AUTHENTICATION_THROTTLED = "authentication_throttled"
USER_CHANGED = "user_changed"
USER_DELETED = "user_deleted"
ROLE_CHANGED = "role_changed"
ROLE_DELETED = "role_deleted"
APPLICATION_PRIVILEGES_CHANGED = "application_privileges_changed"
APPLICATION_PRIVILEGES_DELETED = "application_privileges_deleted"


def record(
    action,
    *,
    principal=None,
    user=None,
    outcome=AuditEvent.SUCCESS,
    target="",
    api_key_ids=(),
    count=None,
    **detail,
) -> AuditEvent:
    """Write one event; ``principal`` (or a bare ``user``) is who acted, None for the system."""
    actor = principal.user if principal is not None else user
    via_api_key = principal.api_key.id if principal is not None and principal.api_key is not None else ""
    api_key_ids = list(api_key_ids)
    event = AuditEvent.objects.create(
        action=action,
        outcome=outcome,
        actor=actor,
        actor_username=actor.username if actor else "",
        actor_realm=actor.realm.name if actor else "",
        via_api_key=via_api_key,
        target=target,
        api_key_ids=api_key_ids,
        count=len(api_key_ids) if count is None else count,
        detail=detail,
    )
    _log(event)
    return event


def raise_count(event_id: int, count: int) -> None:
    """Bring a summary event's count up to ``count``, never down (workers may race), and log it again."""
    if AuditEvent.objects.filter(pk=event_id, count__lt=count).update(count=count):
        event = AuditEvent.objects.filter(pk=event_id).first()
        if event is not None:
            _log(event)


def _log(event: AuditEvent) -> None:
    """The event as one structured log line, beside its row."""
    log.info(
        json.dumps(
            {
                "event": event.action,
                "outcome": event.outcome,
                "user": event.actor_username or None,
                "realm": event.actor_realm or None,
                "api_key": event.via_api_key or None,
                "target": event.target or None,
                "api_key_ids": event.api_key_ids[:100],
                "count": event.count,
                **event.detail,
            },
            default=str,
            sort_keys=True,
        )
    )
