"""SPEC §2: who may list, view, invalidate and create API keys — for users and for API keys."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.exceptions import PermissionDenied
from accounts.principals import Principal
from apikeys import selectors
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

HOLDERS = ["superuser", "security_admin", "api_key_admin", "security_reader", "own_keys", "monitor_only"]
SEES_EVERY_KEY = {"superuser", "security_admin", "api_key_admin", "security_reader"}
SEES_OWN_KEYS = SEES_EVERY_KEY | {"own_keys"}
INVALIDATES_ANY_KEY = {"superuser", "security_admin", "api_key_admin"}
INVALIDATES_OWN_KEYS = INVALIDATES_ANY_KEY | {"own_keys"}
CREATES_KEYS = INVALIDATES_OWN_KEYS
STATES = ["active", "expired", "invalidated"]

_serial = iter(range(10**6))


@pytest.fixture
def stored_key():
    """A key row as the create service stores it, whatever the owner may do today: roles can
    change after a key was created, and these rules must hold for such keys too."""

    def store(owner, name, state="active", role_descriptors=None, limited_by=None):
        now = timezone.now()
        return ApiKey.objects.create(
            id=f"key{next(_serial):017d}",
            name=name,
            hash="x",
            owner=owner,
            realm_name=owner.realm.name,
            realm_type=owner.realm.type,
            expiration=now - timedelta(days=1) if state == "expired" else None,
            invalidated=now if state == "invalidated" else None,
            role_descriptors=role_descriptors or {},
            limited_by=owner.role_descriptors() if limited_by is None else limited_by,
        )

    return store


@pytest.fixture
def bobs_key(bob, stored_key):
    return stored_key(bob, "bobs-key")


def ids_or_none(select, principal) -> set[str] | None:
    """The ids a selector returns, or None when it refuses the principal altogether."""
    try:
        return set(select(principal).values_list("id", flat=True))
    except PermissionDenied:
        return None


# --- every holder × every rule ----------------------------------------------------------------


@pytest.mark.parametrize("holder", HOLDERS)
def test_only_manage_api_key_or_read_security_holders_see_other_users_keys(users, bobs_key, holder):
    principal = Principal(users[holder])
    expected = holder in SEES_EVERY_KEY
    assert selectors.can_view_all_api_keys(principal) is expected
    assert selectors.can_view_api_key(principal, bobs_key) is expected
    assert (bobs_key.id in (ids_or_none(selectors.visible_api_keys, principal) or ())) is expected


@pytest.mark.parametrize("holder", HOLDERS)
def test_only_holders_of_a_key_privilege_see_their_own_keys(users, stored_key, bobs_key, holder):
    own = stored_key(users[holder], f"{holder}-key")
    principal = Principal(users[holder])
    expected = holder in SEES_OWN_KEYS
    assert selectors.can_view_api_keys(principal) is expected
    assert selectors.can_view_api_key(principal, own) is expected
    visible = ids_or_none(selectors.visible_api_keys, principal)
    if expected:
        assert own.id in visible
    else:
        assert visible is None


@pytest.mark.parametrize("holder", HOLDERS)
def test_only_manage_api_key_holders_invalidate_other_users_keys(users, bobs_key, holder):
    principal = Principal(users[holder])
    expected = holder in INVALIDATES_ANY_KEY
    assert selectors.can_invalidate_any_api_key(principal) is expected
    assert selectors.can_invalidate(principal, bobs_key) is expected
    assert (bobs_key.id in (ids_or_none(selectors.invalidatable_api_keys, principal) or ())) is expected


@pytest.mark.parametrize("holder", HOLDERS)
def test_only_manage_own_api_key_holders_invalidate_their_own_keys(users, stored_key, holder):
    own = stored_key(users[holder], f"{holder}-key")
    principal = Principal(users[holder])
    expected = holder in INVALIDATES_OWN_KEYS
    assert selectors.can_invalidate(principal, own) is expected
    invalidatable = ids_or_none(selectors.invalidatable_api_keys, principal)
    if expected:
        assert own.id in invalidatable
    else:
        assert invalidatable is None


@pytest.mark.parametrize("holder", HOLDERS)
def test_only_the_owner_rotates_a_key_whatever_else_the_caller_may_do(users, stored_key, bobs_key, holder):
    own = stored_key(users[holder], f"{holder}-key")
    principal = Principal(users[holder])
    assert selectors.can_rotate(principal, own) is (holder in INVALIDATES_OWN_KEYS)
    assert selectors.can_rotate(principal, bobs_key) is False


def test_a_key_rotates_only_itself_not_its_owners_other_keys(users, stored_key):
    owner = users["superuser"]
    first, second = stored_key(owner, "first"), stored_key(owner, "second")
    assert selectors.can_rotate(Principal(owner, api_key=first), first)
    assert not selectors.can_rotate(Principal(owner, api_key=first), second)


@pytest.mark.parametrize("holder", HOLDERS)
def test_only_manage_own_api_key_or_higher_holders_create_keys(users, holder):
    assert selectors.can_create_api_key(Principal(users[holder])) is (holder in CREATES_KEYS)


@pytest.mark.parametrize("holder", HOLDERS)
def test_api_key_administrators_see_and_invalidate_every_key(users, holder):
    principal = Principal(users[holder])
    assert selectors.is_api_key_admin(principal) is (holder in INVALIDATES_ANY_KEY)
    assert selectors.is_read_only_api_key_viewer(principal) is (holder == "security_reader")


@pytest.mark.parametrize("holder", HOLDERS)
def test_row_level_checks_agree_with_the_querysets(users, stored_key, bobs_key, holder):
    keys = [bobs_key]
    for name in HOLDERS:
        keys.extend(stored_key(users[name], f"{name}-{state}-key", state) for state in STATES)
    principal = Principal(users[holder])
    visible = ids_or_none(selectors.visible_api_keys, principal) or set()
    invalidatable = ids_or_none(selectors.invalidatable_api_keys, principal) or set()
    for key in keys:
        assert selectors.can_view_api_key(principal, key) is (key.id in visible), key.name
        assert selectors.can_invalidate(principal, key) is (key.id in invalidatable), key.name


# --- combinations and edge cases --------------------------------------------------------------


def test_manage_own_api_key_user_cannot_invalidate_someone_elses_key(users, bobs_key):
    principal = Principal(users["own_keys"])
    assert not selectors.can_invalidate(principal, bobs_key)
    assert not selectors.invalidatable_api_keys(principal).filter(pk=bobs_key.pk).exists()


def test_manage_own_api_key_user_sees_only_their_own_keys(users, stored_key, bobs_key):
    own = stored_key(users["own_keys"], "mine")
    assert set(selectors.visible_api_keys(Principal(users["own_keys"]))) == {own}


def test_read_security_user_sees_every_key_but_may_invalidate_none(users, bobs_key):
    principal = Principal(users["security_reader"])
    assert bobs_key in selectors.visible_api_keys(principal)
    assert not selectors.can_invalidate(principal, bobs_key)
    with pytest.raises(PermissionDenied):
        selectors.invalidatable_api_keys(principal)


def test_read_security_with_manage_own_api_key_sees_every_key_but_invalidates_only_its_own(
    make_user, stored_key, bobs_key
):
    carol = make_user("carol", "read_security", "manage_own_api_key")
    own = stored_key(carol, "carols-key")
    principal = Principal(carol)
    assert set(selectors.visible_api_keys(principal)) == {own, bobs_key}
    assert set(selectors.invalidatable_api_keys(principal)) == {own}
    assert selectors.can_invalidate(principal, own)
    assert not selectors.can_invalidate(principal, bobs_key)
    assert not selectors.is_api_key_admin(principal)
    assert not selectors.is_read_only_api_key_viewer(principal)


def test_the_same_username_in_another_realm_is_not_the_owner(make_user, file_realm, stored_key):
    native_alice = make_user("alice", "manage_own_api_key")
    file_alice = make_user("alice", "manage_own_api_key", realm=file_realm)
    key = stored_key(native_alice, "native-alices-key")
    principal = Principal(file_alice)
    assert not selectors.can_view_api_key(principal, key)
    assert not selectors.can_invalidate(principal, key)
    assert not selectors.visible_api_keys(principal).exists()
    assert not selectors.invalidatable_api_keys(principal).exists()
    assert selectors.can_invalidate(Principal(native_alice), key)


@pytest.mark.parametrize("state", STATES)
def test_keys_in_every_state_are_visible_and_invalidatable_alike(users, stored_key, bob, state):
    key = stored_key(bob, f"{state}-key", state)
    for principal, sees, invalidates in [
        (Principal(bob), True, True),
        (Principal(users["security_reader"]), True, False),
        (Principal(users["api_key_admin"]), True, True),
        (Principal(users["own_keys"]), False, False),
    ]:
        assert (key.id in (ids_or_none(selectors.visible_api_keys, principal) or ())) is sees
        assert (key.id in (ids_or_none(selectors.invalidatable_api_keys, principal) or ())) is invalidates


def test_listing_without_privilege_is_refused_naming_the_action_and_the_user(users):
    with pytest.raises(PermissionDenied) as denied:
        selectors.visible_api_keys(Principal(users["monitor_only"]))
    assert denied.value.status == 403
    assert denied.value.reason.startswith(
        "action [cluster:admin/xpack/security/api_key/get] is unauthorized for user [monitor_only] "
        "with effective roles [monitor_only_default_native_role]"
    )
    assert "read_security" in denied.value.reason


def test_invalidating_without_privilege_is_refused_naming_the_action(users):
    with pytest.raises(PermissionDenied) as denied:
        selectors.invalidatable_api_keys(Principal(users["security_reader"]))
    assert denied.value.reason.startswith(
        "action [cluster:admin/xpack/security/api_key/invalidate] is unauthorized for user [security_reader]"
    )


def test_listed_keys_come_with_owner_and_realm_in_one_query(
    users, stored_key, bob, django_assert_num_queries
):
    for number in range(3):
        stored_key(bob, f"key-{number}")
    principal = Principal(users["api_key_admin"])
    assert selectors.can_view_all_api_keys(principal)  # the user's roles are read once, before counting
    with django_assert_num_queries(1):
        owners = {(key.owner.username, key.owner.realm.name) for key in selectors.visible_api_keys(principal)}
    assert owners == {("bob", "default_native")}


# --- principals that are API keys -------------------------------------------------------------

MONITOR_ONLY = {"monitor": {"cluster": ["monitor"], "indices": [], "run_as": [], "metadata": {}}}


def test_a_monitor_key_of_a_superuser_cannot_list_keys(users, stored_key, bobs_key):
    key = stored_key(users["superuser"], "monitoring", role_descriptors=MONITOR_ONLY)
    principal = Principal(users["superuser"], api_key=key)
    assert not selectors.can_view_api_keys(principal)
    assert not selectors.can_view_api_key(principal, key)
    with pytest.raises(PermissionDenied) as denied:
        selectors.visible_api_keys(principal)
    assert f"is unauthorized for API key id [{key.id}] of user [elastic]" in denied.value.reason
    with pytest.raises(PermissionDenied):
        selectors.invalidatable_api_keys(principal)


def test_a_key_created_by_the_service_is_limited_by_its_descriptors(users, make_api_key):
    key = make_api_key(users["superuser"], "monitoring", role_descriptors=MONITOR_ONLY)
    assert not selectors.can_view_api_keys(Principal(users["superuser"], api_key=key))


def test_a_key_with_empty_descriptors_acts_with_its_owners_snapshot(users, stored_key, bobs_key):
    key = stored_key(users["api_key_admin"], "admin-automation")
    principal = Principal(users["api_key_admin"], api_key=key)
    assert selectors.is_api_key_admin(principal)
    assert selectors.can_invalidate(principal, bobs_key)


def test_a_key_never_exceeds_its_owners_snapshot(users, stored_key, bobs_key):
    asks_for_everything = {"all": {"cluster": ["all"], "indices": [], "run_as": [], "metadata": {}}}
    key = stored_key(users["own_keys"], "overreaching", role_descriptors=asks_for_everything)
    principal = Principal(users["own_keys"], api_key=key)
    assert not selectors.can_view_all_api_keys(principal)
    assert not selectors.can_invalidate(principal, bobs_key)
    assert set(selectors.invalidatable_api_keys(principal)) == {key}


def test_the_snapshot_counts_not_the_owners_current_roles(make_user, stored_key, bobs_key):
    demoted = make_user("demoted", "monitor")
    key = stored_key(demoted, "from-better-days", limited_by={"admin": {"cluster": ["manage_api_key"]}})
    assert selectors.can_invalidate(Principal(demoted, api_key=key), bobs_key)
    assert not selectors.can_invalidate(Principal(demoted), bobs_key)


def test_a_manage_own_api_key_key_manages_itself_only(users, stored_key, bobs_key):
    own_keys = users["own_keys"]
    key = stored_key(own_keys, "automation")
    sibling = stored_key(own_keys, "sibling")
    principal = Principal(own_keys, api_key=key)
    assert set(selectors.visible_api_keys(principal)) == {key}
    assert set(selectors.invalidatable_api_keys(principal)) == {key}
    assert selectors.visibility_scope(principal) == f"api_key:{key.id}"
    assert selectors.can_view_api_key(principal, key) and selectors.can_invalidate(principal, key)
    assert not selectors.can_view_api_key(principal, sibling)
    assert not selectors.can_invalidate(principal, sibling)
    assert not selectors.can_view_api_key(principal, bobs_key)


def test_a_manage_api_key_key_manages_every_key(users, stored_key, bobs_key):
    admin = users["api_key_admin"]
    key = stored_key(admin, "automation")
    principal = Principal(admin, api_key=key)
    assert bobs_key in set(selectors.invalidatable_api_keys(principal))
    assert selectors.can_invalidate(principal, bobs_key)


@pytest.mark.parametrize(
    ("selection", "allowed"),
    [
        ({"ids": ["{key}"]}, True),
        ({"ids": ["{key}"], "owner": True}, True),
        ({"ids": ["{sibling}"]}, False),
        ({"ids": ["{key}", "{sibling}"]}, False),
        ({}, False),
        ({"owner": True}, False),
        ({"name": "automation"}, False),
        ({"username": "own_keys", "realm_name": "default_native"}, False),
    ],
)
@pytest.mark.parametrize("action", [selectors.GET_ACTION, selectors.INVALIDATE_ACTION])
def test_a_key_selects_only_itself_by_id(users, stored_key, selection, allowed, action):
    own_keys = users["own_keys"]
    key, sibling = stored_key(own_keys, "automation"), stored_key(own_keys, "sibling")
    principal = Principal(own_keys, api_key=key)
    named = {"{key}": key.id, "{sibling}": sibling.id}
    if "ids" in selection:
        selection = {**selection, "ids": [named[item] for item in selection["ids"]]}

    if allowed:
        selectors.check_api_key_selection(principal, action, **selection)
    else:
        with pytest.raises(PermissionDenied, match=f"API key id \\[{key.id}\\]"):
            selectors.check_api_key_selection(principal, action, **selection)


@pytest.mark.parametrize(
    ("selection", "allowed"),
    [
        ({}, True),
        ({"ids": ["x" * 20]}, True),
        ({"name": "*"}, True),
        ({"owner": True}, True),
        ({"username": "own_keys", "realm_name": "default_native"}, True),
        ({"username": "own_keys"}, False),
        ({"realm_name": "default_native"}, False),
        ({"username": "bob", "realm_name": "default_native"}, False),
        ({"username": "own_keys", "realm_name": "default_file"}, False),
    ],
)
@pytest.mark.parametrize("action", [selectors.GET_ACTION, selectors.INVALIDATE_ACTION])
def test_an_own_keys_user_selects_by_owner_only_as_itself(users, selection, allowed, action):
    principal = Principal(users["own_keys"])

    if allowed:
        selectors.check_api_key_selection(principal, action, **selection)
    else:
        with pytest.raises(PermissionDenied, match="user \\[own_keys\\]"):
            selectors.check_api_key_selection(principal, action, **selection)


@pytest.mark.parametrize("caller", ["api_key_admin", "security_admin", "superuser"])
def test_administrators_select_any_owner(users, caller):
    for action in (selectors.GET_ACTION, selectors.INVALIDATE_ACTION):
        selectors.check_api_key_selection(
            Principal(users[caller]), action, username="bob", realm_name="default_file"
        )
