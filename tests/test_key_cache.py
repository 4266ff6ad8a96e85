"""Keys remembered between requests (``apikeys.key_cache``): the credential epoch that the database
triggers change with every write that could change a key's answer, and nothing else; a remembered
key trusted only under the epoch it was read in; nothing remembered inside a transaction.

The tests that need the cache to remember run outside a test transaction (``transactional_db``),
as requests do. Several workers and invalidation on the next request are held by
tests/test_concurrency.py against a real gunicorn."""

import base64
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.exceptions import AuthenticationFailed
from accounts.models import Realm, User
from accounts.principals import Principal
from apikeys.key_cache import (
    HOST_RECHECK_SECONDS,
    HostEpoch,
    cache_epoch,
    current_epoch,
    host_epoch,
    key_cache,
)
from apikeys.models import ApiKey, CredentialEpoch
from apikeys.services import authenticate_api_key, clear_api_key_cache, create_api_key, invalidate_api_keys

# Every column of the three tables, by whether a change to it can change a key's answer. A column
# added to a model must be put in one of these, and a watched one needs a migration of the triggers.
WATCHED = {
    ApiKey: {
        "name", "hash", "owner", "realm_name", "realm_type", "type", "created", "expiration",
        "invalidated", "role_descriptors", "limited_by", "metadata",
    },
    User: {"realm", "username", "full_name", "email", "enabled", "metadata"},
    Realm: {"name", "type"},
}
NOT_WATCHED = {
    ApiKey: {"id", "last_used", "expiry_notified"},
    User: {"id", "password", "last_login", "pending_roles", "date_joined", "session_generation"},
    Realm: {"id", "order"},
}


def epoch() -> int:
    """The database's epoch as a request reads it: a transactional test run before may have emptied
    its table, which the first read fills again."""
    return current_epoch()


def header(key) -> str:
    return "ApiKey " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()


def other_value(field, instance, other_realm, other_user):
    """A value for ``field`` that differs from the instance's and that the column accepts."""
    current = getattr(instance, field.attname)
    if field.is_relation:
        return (other_realm if field.related_model is Realm else other_user).pk
    if field.get_internal_type() == "DateTimeField":
        return (current or timezone.now()) - timedelta(days=3)
    if field.get_internal_type() == "BooleanField":
        return not current
    if field.get_internal_type() == "JSONField":
        return {"changed": True}
    if field.get_internal_type() in ("PositiveIntegerField", "IntegerField"):
        return (current or 0) + 1
    return f"{current}-changed"[: field.max_length]


def test_every_column_is_either_watched_or_known_not_to_matter():
    for model in WATCHED:
        columns = {field.name for field in model._meta.concrete_fields}
        assert columns == WATCHED[model] | NOT_WATCHED[model], model.__name__


@pytest.mark.parametrize("model", [ApiKey, User, Realm], ids=lambda model: model.__name__)
def test_a_change_to_a_watched_column_changes_the_epoch_and_any_other_does_not(
    model, make_user, make_api_key
):
    owner = make_user("epoch_owner", "manage_own_api_key")
    other_user = make_user("epoch_other", "manage_own_api_key")
    other_realm = Realm.objects.create(name="epoch_realm", type="native", order=9)
    instance = {
        ApiKey: lambda: make_api_key(owner, "epoch-key"),
        User: lambda: owner,
        Realm: lambda: other_realm,
    }[model]()
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        before = epoch()
        realm = Realm.objects.exclude(pk=getattr(instance, "realm_id", None)).first()
        value = other_value(field, instance, realm, other_user)
        model.objects.filter(pk=instance.pk).update(**{field.attname: value})
        changed = epoch() != before
        assert changed == (field.name in WATCHED[model]), f"{model.__name__}.{field.name}"


def test_a_bulk_invalidation_changes_the_epoch(users, make_api_key):
    keys = [make_api_key(users["own_keys"], f"bulk-{number}") for number in range(3)]
    before = epoch()
    ApiKey.objects.filter(pk__in=[key.pk for key in keys]).update(invalidated=timezone.now())
    assert epoch() != before
    before = epoch()
    ApiKey.objects.filter(pk__in=[key.pk for key in keys]).update(last_used=timezone.now())
    assert epoch() == before


def test_deleting_a_key_changes_the_epoch_unless_it_was_invalidated(users, make_api_key):
    active = make_api_key(users["own_keys"], "deleted-active")
    invalidated = make_api_key(users["own_keys"], "deleted-invalidated", state="invalidated")
    before = epoch()
    ApiKey.objects.filter(pk=invalidated.pk).delete()
    assert epoch() == before
    ApiKey.objects.filter(pk=active.pk).delete()
    assert epoch() != before


def test_deleting_a_user_or_realm_changes_the_epoch(make_user):
    realm = Realm.objects.create(name="gone_realm", type="native", order=9)
    user = make_user("gone_user", "manage_own_api_key", realm=realm)
    before = epoch()
    User.objects.filter(pk=user.pk).delete()
    assert epoch() != before
    before = epoch()
    Realm.objects.filter(pk=realm.pk).delete()
    assert epoch() != before


def test_creating_a_key_leaves_the_epoch_alone(users, make_api_key):
    before = epoch()
    make_api_key(users["own_keys"], "new-key")
    assert epoch() == before


# ---------------------------------------------------------------------------------------------
# The cache, as requests use it: outside any transaction


def new_key(owner, name):
    created = create_api_key(Principal(owner), name=name, expiration=None, role_descriptors={}, metadata={})
    created.api_key.secret = created.secret
    return created.api_key


@pytest.fixture
def remembered(transactional_db, make_user):
    """A key of a user, authenticated once outside a transaction, so remembered."""
    key_cache.clear()
    owner = make_user("cache_owner", "manage_own_api_key")
    key = new_key(owner, "cached")
    authenticate_api_key(header(key))
    assert len(key_cache) == 1
    yield key
    key_cache.clear()


def key_reads(queries) -> list:
    return [query for query in queries.captured_queries if "apikeys_apikey" in query["sql"]]


def test_a_remembered_key_is_not_read_again(remembered):
    with CaptureQueriesContext(connection) as queries:
        principal = authenticate_api_key(header(remembered))
    assert principal.api_key.id == remembered.id
    assert key_reads(queries) == []


def test_an_invalidation_is_seen_by_the_next_request(remembered):
    owner = User.objects.get(username="cache_owner")
    invalidate_api_keys(Principal(owner), ids=[remembered.id])
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(remembered))


@pytest.mark.parametrize(
    "change",
    [
        lambda key: ApiKey.objects.filter(pk=key.pk).update(invalidated=timezone.now()),
        lambda key: ApiKey.objects.filter(pk=key.pk).update(expiration=timezone.now() - timedelta(seconds=1)),
        lambda key: User.objects.filter(pk=key.owner_id).update(enabled=False),
        lambda key: ApiKey.objects.filter(pk=key.pk).delete(),
        lambda key: ApiKey.objects.filter(pk=key.pk).update(hash="salted_sha256$x$y"),
    ],
    ids=["invalidated", "expired", "owner disabled", "deleted", "secret changed"],
)
def test_any_write_behind_the_cache_is_seen_by_the_next_request(remembered, change):
    change(remembered)
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(remembered))


def test_a_key_that_expires_while_remembered_is_refused(remembered):
    entry = key_cache.get(remembered.id, cache_epoch())
    entry.key.expiration = timezone.now() - timedelta(seconds=1)  # time passing, not a write
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(remembered))


def test_a_wrong_secret_is_refused_for_a_remembered_key(remembered):
    remembered.secret = remembered.secret[:-1] + ("A" if remembered.secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(remembered))


def test_the_principal_holds_copies_no_request_can_change_for_another(remembered):
    first = authenticate_api_key(header(remembered))
    first.api_key.name = "changed in memory"
    first.user.username = "changed in memory"
    second = authenticate_api_key(header(remembered))
    assert (second.api_key.name, second.user.username) == ("cached", "cache_owner")
    assert second.user.realm is not first.user.realm


def test_clearing_the_api_key_cache_forgets_remembered_keys(remembered, make_user):
    admin = make_user("cache_admin", "manage_security")
    before = current_epoch()
    clear_api_key_cache(Principal(admin), ["*"])
    assert current_epoch() != before
    with CaptureQueriesContext(connection) as queries:
        authenticate_api_key(header(remembered))
    assert key_reads(queries) != []


def test_nothing_read_inside_a_transaction_is_remembered(remembered):
    key_cache.clear()
    with transaction.atomic():
        authenticate_api_key(header(remembered))
    assert len(key_cache) == 0


def test_a_rolled_back_write_leaves_nothing_behind(remembered):
    with transaction.atomic():
        ApiKey.objects.filter(pk=remembered.pk).update(invalidated=timezone.now())
        with pytest.raises(AuthenticationFailed):
            authenticate_api_key(header(remembered))
        transaction.set_rollback(True)
    assert authenticate_api_key(header(remembered)).api_key.id == remembered.id


def test_a_flushed_epoch_comes_back_as_a_value_never_seen(remembered):
    old = current_epoch()
    CredentialEpoch.objects.all().delete()
    assert current_epoch() not in (old, 0)
    with CaptureQueriesContext(connection) as queries:
        authenticate_api_key(header(remembered))
    assert key_reads(queries) != []


def test_a_cache_of_no_keys_reads_every_key(remembered, settings):
    settings.API_KEY_CACHE_MAX_KEYS = 0
    with CaptureQueriesContext(connection) as queries:
        authenticate_api_key(header(remembered))
    assert key_reads(queries) != []


def test_the_cache_holds_at_most_its_size(transactional_db, make_user, settings):
    settings.API_KEY_CACHE_MAX_KEYS = 2
    key_cache.clear()
    owner = make_user("many_keys", "manage_own_api_key")
    for number in range(4):
        authenticate_api_key(header(new_key(owner, f"k{number}")))
    assert len(key_cache) == 2
    key_cache.clear()


# ---------------------------------------------------------------------------------------------
# The host scope on PostgreSQL: this host's generation in shared memory


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="on SQLite the database's epoch is shared memory already"
)


def write_from_elsewhere(sql, *params):
    """A write on a connection of its own that Django never sees, as another host's would be."""
    import psycopg

    settings_dict = connection.settings_dict
    with psycopg.connect(
        dbname=settings_dict["NAME"], user=settings_dict["USER"], password=settings_dict["PASSWORD"],
        host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432, autocommit=True,
    ) as other:
        other.execute(sql, params)


@postgresql_only
def test_the_host_scope_reads_this_hosts_generation_not_the_database(remembered, settings):
    settings.API_KEY_CACHE_SCOPE = "host"
    authenticate_api_key(header(remembered))
    with CaptureQueriesContext(connection) as queries:
        authenticate_api_key(header(remembered))
    assert queries.captured_queries == []


@postgresql_only
def test_in_the_host_scope_a_write_here_is_seen_by_the_next_request(remembered, settings):
    settings.API_KEY_CACHE_SCOPE = "host"
    authenticate_api_key(header(remembered))
    generation = host_epoch.generation()
    ApiKey.objects.filter(pk=remembered.pk).update(invalidated=timezone.now())
    assert host_epoch.generation() != generation
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(remembered))


@postgresql_only
def test_in_the_host_scope_a_write_in_a_transaction_is_seen_once_it_commits(remembered, settings):
    settings.API_KEY_CACHE_SCOPE = "host"
    authenticate_api_key(header(remembered))
    with transaction.atomic():
        ApiKey.objects.filter(pk=remembered.pk).update(invalidated=timezone.now())
        with pytest.raises(AuthenticationFailed):  # the transaction's own write, from the database
            authenticate_api_key(header(remembered))
    with pytest.raises(AuthenticationFailed):
        authenticate_api_key(header(remembered))


@postgresql_only
def test_a_use_of_the_key_moves_nothing_on(remembered, settings):
    settings.API_KEY_CACHE_SCOPE = "host"
    generation = host_epoch.generation()
    ApiKey.objects.filter(pk=remembered.pk).update(last_used=timezone.now())
    assert host_epoch.generation() == generation


@postgresql_only
def test_a_write_from_elsewhere_is_seen_at_once_in_the_cluster_scope_and_within_a_second_in_the_host_scope(
    remembered, settings
):
    settings.API_KEY_CACHE_SCOPE = "cluster"
    authenticate_api_key(header(remembered))
    write_from_elsewhere("UPDATE apikeys_apikey SET metadata = '{\"from\": \"elsewhere\"}' WHERE id = %s",
                         remembered.id)
    assert authenticate_api_key(header(remembered)).api_key.metadata == {"from": "elsewhere"}

    settings.API_KEY_CACHE_SCOPE = "host"
    authenticate_api_key(header(remembered))
    write_from_elsewhere("UPDATE apikeys_apikey SET invalidated = now() WHERE id = %s", remembered.id)
    deadline = time.monotonic() + HOST_RECHECK_SECONDS + 0.5
    while time.monotonic() < deadline:
        try:
            authenticate_api_key(header(remembered))
        except AuthenticationFailed:
            break
        time.sleep(0.05)
    else:
        pytest.fail("a write made elsewhere was not seen within the host scope's recheck")


def test_the_generation_moves_on_for_every_new_database_epoch(tmp_path):
    epoch = HostEpoch(tmp_path / "epoch")
    seen = {epoch.generation()}
    for database_epoch in (5, 5, 6, 5, 7, 7):
        epoch.publish(database_epoch)
        seen.add(epoch.generation())
    # Moved on for 5 (the first), 6, 5 again (an older read published late) and 7.
    assert epoch.generation() == 4 and len(seen) == 5
