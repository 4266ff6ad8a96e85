"""Creating, invalidating and authenticating API keys through the one service layer (SPEC §1–§3, §5)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.exceptions import AuthenticationFailed, Conflict, PermissionDenied, ValidationError
from accounts.principals import Principal
from apikeys.credentials import encode_credential
from apikeys.hashers import verify_api_key_hash
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key, create_api_key, invalidate_api_keys

pytestmark = pytest.mark.django_db

READ_LOGS = {"reader": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}


def header(key):
    return "ApiKey " + encode_credential(key.id, key.secret)


# Creating


def test_created_key_returns_its_secret_once_and_stores_only_a_hash(users):
    created = create_api_key(Principal(users["own_keys"]), name="cron")
    stored = ApiKey.objects.get(pk=created.api_key.id)
    assert len(stored.id) == 20 and len(created.secret) == 22
    assert created.secret not in stored.hash
    assert stored.hash.startswith("salted_sha256$")
    assert verify_api_key_hash(created.secret, stored.hash)
    assert created.encoded == encode_credential(stored.id, created.secret)


def test_created_key_snapshots_owner_realm_and_roles_as_limited_by(users):
    owner = users["own_keys"]
    key = create_api_key(Principal(owner), name="snap").api_key
    key.refresh_from_db()
    assert (key.realm_name, key.realm_type, key.type) == ("default_native", "native", "rest")
    assert key.limited_by == owner.role_descriptors()
    assert key.limited_by["own_keys_default_native_role"]["cluster"] == ["manage_own_api_key"]


def test_key_without_expiration_never_expires_and_with_one_expires_then(users):
    forever = create_api_key(Principal(users["own_keys"]), name="forever").api_key
    week = create_api_key(Principal(users["own_keys"]), name="week", expiration="7d").api_key
    assert forever.expiration is None
    assert timedelta(days=7) - timedelta(seconds=5) < week.expiration - week.created <= timedelta(days=7)


def test_maximum_lifetime_setting_refuses_longer_keys(users, settings):
    settings.API_KEY_MAX_EXPIRATION = "30d"
    with pytest.raises(ValidationError, match="maximum"):
        create_api_key(Principal(users["own_keys"]), name="too-long", expiration="31d")
    assert not ApiKey.objects.exists()


def test_user_without_manage_own_api_key_cannot_create_a_key(users):
    with pytest.raises(PermissionDenied):
        create_api_key(Principal(users["monitor_only"]), name="nope")
    with pytest.raises(PermissionDenied):
        create_api_key(Principal(users["security_reader"]), name="nope")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("name", ["", " padded", "padded ", "_reserved", "x" * 257, "line\nbreak", None, 42])
def test_bad_names_are_refused_and_nothing_is_created(users, name):
    with pytest.raises(ValidationError):
        create_api_key(Principal(users["own_keys"]), name=name)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("metadata", [[], "text", {"_internal": 1}])
def test_bad_metadata_is_refused(users, metadata):
    with pytest.raises(ValidationError):
        create_api_key(Principal(users["own_keys"]), name="meta", metadata=metadata)


def test_unknown_privilege_in_role_descriptors_is_refused_by_name(users):
    with pytest.raises(ValidationError, match="manage_apikey"):
        create_api_key(
            Principal(users["own_keys"]), name="typo", role_descriptors={"r": {"cluster": ["manage_apikey"]}}
        )


def test_active_names_are_globally_unique_across_owners(users):
    create_api_key(Principal(users["own_keys"]), name="shared-name")
    with pytest.raises(Conflict, match="shared-name"):
        create_api_key(Principal(users["api_key_admin"]), name="shared-name")


def test_name_is_free_again_once_the_key_is_invalidated(users, make_api_key):
    make_api_key(users["own_keys"], "reused", state="invalidated")
    assert create_api_key(Principal(users["own_keys"]), name="reused").api_key.name == "reused"


def test_database_enforces_name_uniqueness_not_only_a_precheck(users, make_api_key):
    from django.db import IntegrityError, transaction

    key = make_api_key(users["own_keys"], "unique")
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.create(
            id="B" * 20, name="unique", hash="x", owner=key.owner, realm_name="r", realm_type="native"
        )


DERIVED_RULE = (
    "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)"
)


def test_a_derived_key_has_explicitly_empty_role_descriptors_and_no_privileges(users):
    parent = create_api_key(Principal(users["superuser"]), name="parent").api_key
    child = create_api_key(
        Principal(parent.owner, api_key=parent), name="child", role_descriptors={"none": {}}
    ).api_key

    assert child.limited_by == {}
    assert child.role_descriptors["none"]["cluster"] == [] and child.role_descriptors["none"]["indices"] == []
    privileges = Principal(child.owner, api_key=child).privileges
    assert not any(privileges.has_cluster(name) for name in ("monitor", "manage_own_api_key", "all"))
    assert not privileges.has_index("logs", "read")


@pytest.mark.parametrize(
    "role_descriptors",
    [
        None,
        {},
        {"reader": READ_LOGS["reader"]},
        {"none": {}, "keys": {"cluster": ["manage_own_api_key"]}},
        {"as": {"run_as": ["bob"]}},
        {"tagged": {"metadata": {"team": "ops"}}},
    ],
    ids=["absent", "empty object", "a privilege", "one of two", "run_as", "metadata"],
)
def test_a_key_may_create_only_a_key_that_asks_for_no_privileges(users, role_descriptors):
    """A 5-second superuser key must not mint a never-expiring child with its rights."""
    parent = create_api_key(Principal(users["superuser"]), name="parent", expiration="5s").api_key

    with pytest.raises(ValidationError) as refused:
        create_api_key(
            Principal(parent.owner, api_key=parent), name="child", role_descriptors=role_descriptors
        )

    assert refused.value.reason == DERIVED_RULE
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["parent"]


# Invalidating


def test_owner_invalidates_own_key_by_id(users, make_api_key):
    key = make_api_key(users["own_keys"], "mine")
    result = invalidate_api_keys(Principal(users["own_keys"]), ids=[key.id])
    assert result.invalidated == [key.id] and not result.errors
    key.refresh_from_db()
    assert key.invalidated is not None


def test_invalidating_twice_reports_previously_invalidated(users, make_api_key):
    key = make_api_key(users["own_keys"], "twice")
    invalidate_api_keys(Principal(users["own_keys"]), ids=[key.id])
    result = invalidate_api_keys(Principal(users["own_keys"]), ids=[key.id])
    assert result.invalidated == [] and result.previously_invalidated == [key.id]


def test_manage_own_api_key_user_cannot_invalidate_someone_elses_key(users, make_api_key):
    other = make_api_key(users["api_key_admin"], "admins")
    mine = make_api_key(users["own_keys"], "mine")
    result = invalidate_api_keys(Principal(users["own_keys"]), ids=[other.id, mine.id])
    assert result.invalidated == [mine.id]
    assert [error["id"] for error in result.errors] == [other.id]
    other.refresh_from_db()
    assert other.invalidated is None


def test_unknown_and_forbidden_ids_get_the_same_error(users, make_api_key):
    other = make_api_key(users["api_key_admin"], "admins")
    result = invalidate_api_keys(Principal(users["own_keys"]), ids=[other.id, "x" * 20])
    assert [error["type"] for error in result.errors] == ["resource_not_found_exception"] * 2
    assert result.errors[0]["reason"].replace(other.id, "ID") == result.errors[1]["reason"].replace(
        "x" * 20, "ID"
    )


def test_api_key_admin_invalidates_anyones_keys_by_username(users, make_api_key):
    keys = [make_api_key(users["own_keys"], f"k{n}") for n in range(3)]
    untouched = make_api_key(users["superuser"], "untouched")
    result = invalidate_api_keys(Principal(users["api_key_admin"]), username="own_keys")
    assert sorted(result.invalidated) == sorted(key.id for key in keys)
    untouched.refresh_from_db()
    assert untouched.invalidated is None


def test_read_security_alone_cannot_invalidate(users, make_api_key):
    key = make_api_key(users["own_keys"], "safe")
    with pytest.raises(PermissionDenied):
        invalidate_api_keys(Principal(users["security_reader"]), ids=[key.id])
    key.refresh_from_db()
    assert key.invalidated is None


def test_invalidate_by_name_with_wildcard_and_by_realm(users, make_api_key):
    ci = [make_api_key(users["own_keys"], name) for name in ("ci-a", "ci-b")]
    other = make_api_key(users["own_keys"], "prod-ci")
    result = invalidate_api_keys(Principal(users["api_key_admin"]), name="ci-*")
    assert sorted(result.invalidated) == sorted(key.id for key in ci)
    result = invalidate_api_keys(Principal(users["api_key_admin"]), name="*-c?")
    assert result.invalidated == []
    result = invalidate_api_keys(Principal(users["api_key_admin"]), realm_name="default_native")
    assert other.id in result.invalidated


def test_owner_flag_limits_to_the_callers_keys(users, make_api_key):
    own = make_api_key(users["api_key_admin"], "admin-own")
    make_api_key(users["own_keys"], "not-admins")
    result = invalidate_api_keys(Principal(users["api_key_admin"]), owner=True)
    assert result.invalidated == [own.id]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ids": []},
        {"ids": [""]},
        {"ids": "abc"},
        {"ids": ["a"], "name": "b"},
        {"ids": ["a"], "username": "b"},
        {"owner": True, "realm_name": "default_native"},
        {"name": ""},
        {"owner": "yes"},
    ],
)
def test_malformed_invalidation_requests_are_refused(users, make_api_key, kwargs):
    key = make_api_key(users["own_keys"], "stays")
    with pytest.raises(ValidationError):
        invalidate_api_keys(Principal(users["api_key_admin"]), **kwargs)
    key.refresh_from_db()
    assert key.invalidated is None


def _bulk_keys(owner, count: int, prefix: str) -> list[str]:
    now = timezone.now()
    keys = ApiKey.objects.bulk_create(
        ApiKey(
            id=f"{prefix}{n:019d}",
            name=f"bulk-{prefix}-{n}",
            hash="x",
            owner=owner,
            realm_name="default_native",
            realm_type="native",
            created=now,
        )
        for n in range(count)
    )
    return [key.id for key in keys]


@pytest.mark.parametrize("by", ["ids", "username"])
def test_bulk_invalidation_runs_the_same_queries_for_ten_keys_as_for_thirty_three_thousand(users, by):
    """One SELECT … FOR UPDATE and one UPDATE whatever the count, even past SQLite's limit of
    32,766 parameters per statement; nothing per key."""
    admin = Principal(users["api_key_admin"])
    assert admin.privileges  # the admin's roles are read once, before either call
    statements = {}
    for count, prefix, owner in ((10, "a", users["own_keys"]), (33_000, "b", users["security_admin"])):
        ids = _bulk_keys(owner, count, prefix)
        request = {"ids": ids} if by == "ids" else {"username": owner.username}
        with CaptureQueriesContext(connection) as queries:
            result = invalidate_api_keys(admin, **request)
        assert sorted(result.invalidated) == sorted(ids) and not result.errors
        assert ApiKey.objects.filter(pk__in=ids[:1000], invalidated__isnull=True).count() == 0
        statements[count] = [query["sql"].split(" ", 1)[0] for query in queries.captured_queries]
    assert statements[10] == statements[33_000]
    assert statements[10].count("UPDATE") == 1


def test_bulk_invalidation_reports_unknown_ids_among_many(users):
    ids = _bulk_keys(users["own_keys"], 3000, "c")
    result = invalidate_api_keys(Principal(users["api_key_admin"]), ids=[*ids, "no-such-key", ids[0]])
    assert len(result.invalidated) == 3000
    assert [error["id"] for error in result.errors] == ["no-such-key"]


# Authenticating


def test_valid_key_authenticates_as_its_owner_through_the_key(users, make_api_key):
    key = make_api_key(users["own_keys"], "auth")
    principal = authenticate_api_key(header(key))
    assert principal.user == users["own_keys"] and principal.api_key.id == key.id


def test_scheme_is_matched_case_insensitively(users, make_api_key):
    key = make_api_key(users["own_keys"], "case")
    assert authenticate_api_key("apikey " + encode_credential(key.id, key.secret)).api_key.id == key.id


@pytest.mark.parametrize("state", ["expired", "invalidated"])
def test_expired_and_invalidated_keys_fail_like_a_wrong_secret(users, make_api_key, state):
    key = make_api_key(users["own_keys"], "dead", state=state)
    wrong = make_api_key(users["own_keys"], "alive")
    with pytest.raises(AuthenticationFailed) as dead_error:
        authenticate_api_key(header(key))
    with pytest.raises(AuthenticationFailed) as wrong_error:
        authenticate_api_key("ApiKey " + encode_credential(wrong.id, "A" * 22))
    with pytest.raises(AuthenticationFailed) as unknown_error:
        authenticate_api_key("ApiKey " + encode_credential("Z" * 20, "A" * 22))
    assert dead_error.value.reason == wrong_error.value.reason == unknown_error.value.reason
    assert state in dead_error.value.audit_detail["reason"]
    assert key.secret not in str(dead_error.value.audit_detail)


def test_invalidated_key_fails_on_the_very_next_request(users, make_api_key):
    key = make_api_key(users["own_keys"], "next")
    authenticate_api_key(header(key))
    invalidate_api_keys(Principal(users["own_keys"]), ids=[key.id])
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(key))


def test_key_of_a_disabled_user_fails(users, make_api_key):
    key = make_api_key(users["own_keys"], "disabled")
    users["own_keys"].enabled = False
    users["own_keys"].save()
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(key))


def test_last_used_is_written_at_most_once_a_minute(users, make_api_key):
    key = make_api_key(users["own_keys"], "used")
    authenticate_api_key(header(key))
    key.refresh_from_db()
    first = key.last_used
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        authenticate_api_key(header(key))
    assert not [query for query in queries.captured_queries if query["sql"].startswith("UPDATE")]
    ApiKey.objects.filter(pk=key.pk).update(last_used=first - timedelta(minutes=2))
    authenticate_api_key(header(key))
    key.refresh_from_db()
    assert key.last_used > first - timedelta(minutes=1)


def test_pbkdf2_setting_hashes_new_keys_and_old_keys_still_verify(users, make_api_key, settings):
    old = make_api_key(users["own_keys"], "old-sha")
    settings.API_KEY_HASH_ALGORITHM = "pbkdf2_sha256"
    settings.API_KEY_PBKDF2_ITERATIONS = 1000
    new = make_api_key(users["own_keys"], "new-pbkdf2")
    assert ApiKey.objects.get(pk=new.id).hash.startswith("pbkdf2_sha256$1000$")
    assert authenticate_api_key(header(old)).api_key.id == old.id
    assert authenticate_api_key(header(new)).api_key.id == new.id
