"""Shared fixtures: realms, users holding each privilege of SPEC §2, and keys in each state."""

import os
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from accounts.models import Realm, Role, User
from accounts.principals import Principal

# The real gunicorn server and the real browser, as fixtures for every test module.
pytest_plugins = ["tests.server", "tests.browser"]


def pytest_configure(config):
    """Each test process a cache of its own, as it has a database of its own: the processes are
    separate installations, and what one writes to a shared cache (a throttling counter, a new
    verification epoch) must not reach into another's test while it runs. Servers the tests start
    have their own data directories, and so their own caches, anyway."""
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    cache = settings.CACHES["default"]
    if worker and cache["BACKEND"].endswith("FileBasedCache"):
        cache["LOCATION"] = f"{cache['LOCATION']}-{worker}"
    elif worker:
        cache["KEY_PREFIX"] = f"{cache.get('KEY_PREFIX', '')}{worker}"


def pytest_collection_modifyitems(config, items):
    """Modules that start a server or drive a browser run first. Under ``--dist loadfile`` a worker
    takes a whole module at a time, in collection order: a long module taken last kept one worker
    busy for a minute while the other had nothing left to do. Ordered so, the last modules are the
    short ones. The order within a module is unchanged."""

    def starts_something(item) -> bool:
        return any(item.get_closest_marker(name) for name in ("server", "browser")) or any(
            name in item.fixturenames for name in ("keyward_server", "browser", "tmp_path_factory")
        )

    slow_modules = {item.module.__name__ for item in items if starts_something(item)}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)


# Every run, CI's and a developer's alike, generates the same examples unless HYPOTHESIS_PROFILE
# says otherwise, so a failure seen once is seen again. "dev" explores with a fresh seed each run
# and keeps what failed in .hypothesis/ to try first next time. Both print the failing example's
# @reproduce_failure decorator. On a shared machine a timing limit fails at random, so neither
# profile has a deadline or checks speed. Loaded here, before any test module builds its own
# settings on top of the profile.
hypothesis_settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "dev",
    max_examples=100,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")

# One role per cluster privilege that decides something about API keys (SPEC §2).
PRIVILEGED_ROLES = {
    "superuser": None,  # built in
    "security_admin": ["manage_security"],
    "api_key_admin": ["manage_api_key"],
    "security_reader": ["read_security"],
    "own_keys": ["manage_own_api_key"],
    "monitor_only": ["monitor"],
}


@pytest.fixture(autouse=True)
def no_purge_on_request(settings):
    """The server's background purge would delete keys at unpredictable moments; tests of it turn
    it back on."""
    settings.API_KEY_PURGE_ON_REQUEST = False


@pytest.fixture(autouse=True)
def no_overview_cache(settings):
    """Counted on every page view: the test databases come and go under one shared cache.
    tests/test_ui_lifecycle.py turns the cache on in a cache of its own."""
    settings.API_KEY_OVERVIEW_MAX_AGE = "0"


@pytest.fixture
def native_realm(db):
    return Realm.objects.get(name="default_native")


@pytest.fixture
def file_realm(db):
    return Realm.objects.get(name="default_file")


@pytest.fixture
def make_role(db):
    def make(name, cluster=(), indices=(), run_as=(), metadata=None):
        return Role.objects.create(
            name=name,
            cluster=list(cluster),
            indices=list(indices),
            run_as=list(run_as),
            metadata=metadata or {},
        )

    return make


@pytest.fixture
def make_user(db, native_realm):
    """make_user("alice", "manage_own_api_key", realm=...) — a user holding those cluster privileges."""

    def make(username, *cluster, realm=None, roles=(), password=None, indices=()):
        user = User.objects.create(username=username, realm=realm or native_realm, full_name=username.title())
        if password:
            user.set_password(password)
            user.save()
        else:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        if cluster or indices:
            role = Role.objects.create(
                name=f"{username}_{user.realm.name}_role", cluster=list(cluster), indices=list(indices)
            )
            user.roles.add(role)
        for role_name in roles:
            user.roles.add(Role.objects.get(name=role_name))
        return user

    return make


@pytest.fixture
def users(make_user):
    """One user per privilege of interest, keyed like PRIVILEGED_ROLES."""
    made = {}
    for name, cluster in PRIVILEGED_ROLES.items():
        if cluster is None:
            made[name] = make_user("elastic", roles=["superuser"])
        else:
            made[name] = make_user(name, *cluster)
    return made


@pytest.fixture
def principal():
    return Principal


@pytest.fixture
def make_api_key(db):
    """make_api_key(owner, "name", state="active"|"expired"|"invalidated") via the real service."""
    from apikeys.services import create_api_key

    def make(owner, name, state="active", role_descriptors=None, metadata=None, expiration=None):
        created = create_api_key(
            Principal(owner),
            name=name,
            expiration=expiration,
            role_descriptors=role_descriptors or {},
            metadata=metadata or {},
        )
        key = created.api_key
        now = timezone.now()
        if state == "expired":
            key.expiration = now - timedelta(days=1)
            key.save(update_fields=["expiration"])
        elif state == "invalidated":
            key.invalidated = now
            key.save(update_fields=["invalidated"])
        elif state != "active":
            raise ValueError(state)
        key.secret = created.secret
        return key

    return make


@pytest.fixture
def client_for():
    """client_for(user) — a Django test client logged in as that user (pass secure=True for HTTPS)."""

    def make(user, **kwargs):
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice", "manage_own_api_key")


@pytest.fixture
def bob(make_user):
    return make_user("bob", "manage_own_api_key")


@pytest.fixture(autouse=True, scope="session")
def no_throttling_in_servers():
    """Many tests fail authentication on purpose; the servers they start count nothing."""
    for name in ("KEYWARD_AUTH_FAILURE_LIMIT_PER_IP", "KEYWARD_AUTH_FAILURE_LIMIT_PER_USERNAME"):
        os.environ.setdefault(name, "0")


@pytest.fixture(autouse=True)
def no_throttling(settings):
    """Authentication failure limits are off unless a test turns them on (tests/test_throttling.py)."""
    settings.AUTH_FAILURE_LIMIT_PER_IP = 0
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = 0
