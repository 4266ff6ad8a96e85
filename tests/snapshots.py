"""What a refused request must leave as it was, taken whole: every stored field of every realm,
user (its password hash and the role names it holds that no role has included), role, role
holder, API key, application privilege, access token and audit event.

Tests take ``security_state()`` before a refused request and compare it with the state after, so
that a refusal which writes any field of any row fails, whichever field it is.
"""

from accounts.models import AuditEvent, Realm, Role, User
from apikeys.models import ApiKey
from application_privileges.models import ApplicationPrivilege
from tokens.models import Token

# Fields of an audit event that differ between any two events, whatever they record.
AUDIT_EVENT_IDENTITY = ("id", "time")


def security_state(*, authenticated_with: str | None = None) -> dict:
    """Every row, every field, in primary key order. ``authenticated_with`` names the key the
    request authenticates with: authenticating writes its ``last_used``, and nothing else may."""
    keys = list(ApiKey.objects.order_by("pk").values())
    for key in keys:
        if key["id"] == authenticated_with:
            key["last_used"] = "written by authentication"
    return {
        "realms": list(Realm.objects.order_by("pk").values()),
        "users": list(User.objects.order_by("pk").values()),
        "roles": list(Role.objects.order_by("pk").values()),
        "role holders": list(User.roles.through.objects.order_by("user_id", "role_id").values_list()),
        "api keys": keys,
        "application privileges": list(ApplicationPrivilege.objects.order_by("pk").values()),
        "tokens": list(Token.objects.order_by("pk").values()),
        "audit events": list(AuditEvent.objects.order_by("pk").values()),
    }


def new_audit_events(before: dict, after: dict) -> list[dict]:
    """The audit events written between two states, without their id and time. The events that
    were there before must still be there, field for field."""
    earlier = before["audit events"]
    assert after["audit events"][: len(earlier)] == earlier
    return [
        {name: value for name, value in event.items() if name not in AUDIT_EVENT_IDENTITY}
        for event in after["audit events"][len(earlier) :]
    ]


def without_audit_events(state: dict) -> dict:
    return {name: rows for name, rows in state.items() if name != "audit events"}
