"""Who may see, invalidate and update which API keys (SPEC §2): the one place these rules live.

The web UI, the REST API and the management commands all ask these functions, so they cannot
disagree. A principal's privileges are its user's roles, or for an API key the key's descriptors
intersected with its ``limited_by`` snapshot; implications (``manage_security`` ⊃
``manage_api_key`` ⊃ ``manage_own_api_key``, ``manage_security`` ⊃ ``read_security``) are the
privilege engine's business, so each rule names only the least privilege that grants it.

``manage_own_api_key`` means what Elasticsearch's privilege of that name means: a user acts on
the keys they own; a request authenticated with an API key acts on that key alone, by its id,
never on its owner's other keys (an API key owns no keys).
"""

from django.db.models import QuerySet

from accounts.exceptions import PermissionDenied, ValidationError
from accounts.principals import Principal
from accounts.selectors import MONITOR_HEALTH_ACTION, MONITOR_MAIN_ACTION
from apikeys.models import ApiKey
from restapi.query.dsl import name_matches

GET_ACTION = "cluster:admin/xpack/security/api_key/get"
INVALIDATE_ACTION = "cluster:admin/xpack/security/api_key/invalidate"
CREATE_ACTION = "cluster:admin/xpack/security/api_key/create"
GRANT_ACTION = "cluster:admin/xpack/security/api_key/grant"
# Elasticsearch clears every security cache through one action, naming the cache in the request.
CLEAR_CACHE_ACTION = "cluster:admin/xpack/security/cache/clear"
UPDATE_ACTION = "cluster:admin/xpack/security/api_key/update"
BULK_UPDATE_ACTION = "cluster:admin/xpack/security/api_key/bulk_update"
# Elasticsearch refuses an update made with API key credentials outright, whatever the key holds.
UPDATE_THROUGH_API_KEY = "authentication via API key not supported: only the owner user can update an API key"

# The privileges that grant each action, least first, as Elasticsearch lists them in its denial.
GRANTED_BY = {
    GET_ACTION: ["manage_own_api_key", "read_security", "manage_api_key", "manage_security", "all"],
    INVALIDATE_ACTION: ["manage_own_api_key", "manage_api_key", "manage_security", "all"],
    CREATE_ACTION: ["manage_own_api_key", "manage_api_key", "manage_security", "all"],
    GRANT_ACTION: ["grant_api_key", "manage_api_key", "manage_security", "all"],
    CLEAR_CACHE_ACTION: ["manage_security", "all"],
    UPDATE_ACTION: ["manage_own_api_key", "manage_api_key", "manage_security", "all"],
    BULK_UPDATE_ACTION: ["manage_own_api_key", "manage_api_key", "manage_security", "all"],
    MONITOR_MAIN_ACTION: ["monitor", "manage", "all"],
    MONITOR_HEALTH_ACTION: ["monitor", "manage", "all"],
}


def can_view_all_api_keys(principal: Principal) -> bool:
    """Every key, with owner and realm: ``manage_api_key`` or ``read_security``."""
    return any(principal.has_cluster_privilege(name) for name in ("manage_api_key", "read_security"))


def can_invalidate_any_api_key(principal: Principal) -> bool:
    return principal.has_cluster_privilege("manage_api_key")


def can_manage_own_api_keys(principal: Principal) -> bool:
    return principal.has_cluster_privilege("manage_own_api_key")


def can_create_api_key(principal: Principal) -> bool:
    return can_manage_own_api_keys(principal)


def can_grant_api_key(principal: Principal) -> bool:
    """Create a key for another user who proves themselves in the request: ``grant_api_key``, which
    ``manage_api_key`` implies. ``manage_own_api_key`` does not: not even for oneself."""
    return principal.has_cluster_privilege("grant_api_key")


def can_clear_api_key_cache(principal: Principal) -> bool:
    """Elasticsearch's security cache action: ``manage_security``, not ``manage_api_key``."""
    return principal.has_cluster_privilege("manage_security")


def can_view_api_keys(principal: Principal) -> bool:
    """Whether the API keys page and listing endpoints are open to the principal at all."""
    return can_view_all_api_keys(principal) or can_manage_own_api_keys(principal)


def can_view_limited_by(principal: Principal) -> bool:
    """Owners' ``limited_by`` snapshots: a key may read them (its own included) only with
    ``manage_api_key``, as Elasticsearch documents; a user may wherever it sees the key."""
    return principal.api_key is None or can_invalidate_any_api_key(principal)


def is_api_key_admin(principal: Principal) -> bool:
    """Sees every key and may invalidate any of them ("You are an API key administrator")."""
    return can_view_all_api_keys(principal) and can_invalidate_any_api_key(principal)


def is_read_only_api_key_viewer(principal: Principal) -> bool:
    """Sees every key but may invalidate none of them (``read_security`` alone)."""
    return can_view_all_api_keys(principal) and not can_manage_own_api_keys(principal)


def unauthorized(principal: Principal, action: str, beyond_own: bool = False) -> PermissionDenied:
    """Elasticsearch's denial for ``action``, naming who asked and what would have granted it;
    ``beyond_own`` when the request reaches past what ``manage_own_api_key`` covers, which then
    does not grant it."""
    user = principal.user.username
    who = f"API key id [{principal.api_key.id}] of user [{user}]" if principal.api_key else f"user [{user}]"
    roles = ",".join(sorted(principal.role_descriptors))
    reason = f"action [{action}] is unauthorized for {who} with effective roles [{roles}]"
    granted_by = [
        name for name in GRANTED_BY.get(action, ()) if not (beyond_own and name == "manage_own_api_key")
    ]
    if granted_by:
        reason += f", this action is granted by the cluster privileges [{','.join(granted_by)}]"
    return PermissionDenied(reason)


# The visibility scope of those who see every key.
ALL_KEYS = "all"


def _all_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("owner", "owner__realm")


def _own_scope(principal: Principal) -> str:
    if principal.api_key is not None:
        return f"api_key:{principal.api_key.id}"
    return f"owner:{principal.user.pk}"


def keys_of_scope(scope: str) -> QuerySet[ApiKey]:
    """The keys of a ``visibility_scope``."""
    kind, _, value = scope.partition(":")
    if kind == ALL_KEYS:
        return _all_keys()
    if kind == "api_key":
        return _all_keys().filter(pk=value)
    return _all_keys().filter(owner_id=int(value))


def visibility_scope(principal: Principal) -> str:
    """Which keys the principal may list and view: ``all``, ``owner:<id>`` for a user's own, or
    ``api_key:<id>`` for a key that sees only itself. What is computed over them can be shared by
    every principal of the same scope."""
    if can_view_all_api_keys(principal):
        return ALL_KEYS
    if can_manage_own_api_keys(principal):
        return _own_scope(principal)
    raise unauthorized(principal, GET_ACTION)


def visible_api_keys(principal: Principal) -> QuerySet[ApiKey]:
    """The keys of the principal's ``visibility_scope``."""
    return keys_of_scope(visibility_scope(principal))


def check_api_key_selection(
    principal: Principal,
    action: str,
    *,
    ids=(),
    name=None,
    username=None,
    realm_name=None,
    owner=False,
) -> None:
    """Refuse, as Elasticsearch's ``manage_own_api_key`` does, a get or invalidate request that
    names more than the principal's own keys; a principal that may act on every key passes.

    A key acting on itself only must name itself, and only itself, by id. A user may select by
    ``username`` and ``realm_name`` only by naming both, as themselves: another owner is a 403,
    never a silently narrowed selection. Ids, names and ``owner`` narrow to the user's own keys.
    """
    if action == GET_ACTION and can_view_all_api_keys(principal):
        return
    if action == INVALIDATE_ACTION and can_invalidate_any_api_key(principal):
        return
    if not can_manage_own_api_keys(principal):
        raise unauthorized(principal, action)
    if principal.api_key is not None:
        if not ids or any(key_id != principal.api_key.id for key_id in ids):
            raise unauthorized(principal, action, beyond_own=True)
        return
    if username is None and realm_name is None:
        return
    if (username, realm_name) != (principal.user.username, principal.realm_name):
        raise unauthorized(principal, action, beyond_own=True)


def filter_api_keys(
    keys: QuerySet[ApiKey],
    *,
    ids=None,
    name=None,
    username=None,
    realm_name=None,
    owner=None,
    active_only=False,
) -> QuerySet[ApiKey]:
    """Narrow ``keys`` as the get and invalidate APIs select them: ids, a name (``*`` wildcards), the
    owner's username, the realm, one owner, or only active keys."""
    if ids is not None:
        keys = keys.filter(id__in=ids)
    if name:
        keys = keys.filter(name_matches(name))
    if username:
        keys = keys.filter(owner__username=username)
    if realm_name:
        keys = keys.filter(realm_name=realm_name)
    if owner is not None:
        keys = keys.filter(owner=owner)
    if active_only:
        keys = keys.active()
    return keys


def invalidatable_api_keys(principal: Principal) -> QuerySet[ApiKey]:
    """The keys the principal may invalidate: all of them, its user's own, or the key itself."""
    if can_invalidate_any_api_key(principal):
        return _all_keys()
    if can_manage_own_api_keys(principal):
        return keys_of_scope(_own_scope(principal))
    raise unauthorized(principal, INVALIDATE_ACTION)


def _owns_and_manages(principal: Principal, key: ApiKey) -> bool:
    """The key is the principal's own to manage: its user's, or for a key only itself."""
    if not can_manage_own_api_keys(principal):
        return False
    if principal.api_key is not None:
        return principal.api_key.id == key.id
    return principal.owns(key)


def can_view_api_key(principal: Principal, key: ApiKey) -> bool:
    """Row-level form of ``visible_api_keys``."""
    return can_view_all_api_keys(principal) or _owns_and_manages(principal, key)


def can_invalidate(principal: Principal, key: ApiKey) -> bool:
    """Row-level form of ``invalidatable_api_keys``."""
    return can_invalidate_any_api_key(principal) or _owns_and_manages(principal, key)


def can_rotate(principal: Principal, key: ApiKey) -> bool:
    """Only the owner rotates, and a key only itself: the new secret goes to whoever asks, so an
    administrator rotating someone else's key would walk away with that person's privileges."""
    if not (principal.owns(key) and can_manage_own_api_keys(principal)):
        return False
    return principal.api_key is None or principal.api_key.id == key.id


def updatable_api_keys(principal: Principal, action: str = UPDATE_ACTION) -> QuerySet[ApiKey]:
    """The keys the principal may update: its user's own, whatever else it may see or invalidate.

    As in Elasticsearch, only the owner updates a key, as a user: an administrator's update would
    put the key under the administrator's roles, and a key may not reach for its own limits.
    ``manage_own_api_key`` or higher is asked first (403), then that no API key is acting (400).
    """
    if not can_manage_own_api_keys(principal):
        raise unauthorized(principal, action)
    if principal.api_key is not None:
        raise ValidationError(UPDATE_THROUGH_API_KEY)
    return keys_of_scope(_own_scope(principal))


def can_update(principal: Principal, key: ApiKey) -> bool:
    """Row-level form of ``updatable_api_keys``: the owner, as a user, may update the key."""
    return principal.api_key is None and principal.owns(key) and can_manage_own_api_keys(principal)
