"""Management commands are thin callers of the same services as the API and the UI."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role, User
from apikeys.models import ApiKey
from apikeys.services import authenticate_api_key

pytestmark = pytest.mark.django_db


def run(*args, **env):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_bootstrap_creates_elastic_superuser_with_password_from_environment(monkeypatch):
    monkeypatch.setenv("ELASTIC_PASSWORD", "a-long-bootstrap-secret")
    out, _ = run("bootstrap")
    elastic = User.objects.get(username="elastic", realm__name="default_native")
    assert elastic.check_password("a-long-bootstrap-secret")
    assert list(elastic.roles.values_list("name", flat=True)) == ["superuser"]
    assert "a-long-bootstrap-secret" not in out


def test_bootstrap_prints_a_generated_password_once_and_then_leaves_it_alone(monkeypatch):
    monkeypatch.delenv("ELASTIC_PASSWORD", raising=False)
    out, _ = run("bootstrap")
    password = out.strip().splitlines()[-1].split(": ")[-1]
    assert User.objects.get(username="elastic").check_password(password)
    again, _ = run("bootstrap")
    assert password not in again and "already exists" in again
    assert User.objects.get(username="elastic").check_password(password)


def test_create_role_then_user_then_key_that_authenticates(monkeypatch):
    monkeypatch.setenv("CRON_PASSWORD", "cron-user-password-1")
    run(
        "create_role",
        "cron",
        "--cluster",
        "manage_own_api_key,monitor",
        "--indices",
        '[{"names": ["logs-*"], "privileges": ["read"]}]',
    )
    run(
        "create_user",
        "cron",
        "--roles",
        "cron",
        "--password-env",
        "CRON_PASSWORD",
        "--email",
        "cron@example.com",
    )
    out, err = run("create_api_key", "--user", "cron", "--name", "nightly", "--expiration", "30d")
    created = json.loads(out)
    assert set(created) == {"id", "name", "api_key", "encoded", "expiration"}
    assert "will not be able to view it again" in err
    principal = authenticate_api_key("ApiKey " + created["encoded"])
    assert principal.user.username == "cron"
    [indices] = Role.objects.get(name="cron").indices
    assert (indices["names"], indices["privileges"]) == (["logs-*"], ["read"])


def test_create_role_refuses_unknown_privileges_by_name():
    with pytest.raises(CommandError, match="manage_apikey"):
        run("create_role", "typo", "--cluster", "manage_apikey")
    assert not Role.objects.filter(name="typo").exists()


def test_create_role_refuses_to_change_the_built_in_superuser():
    with pytest.raises(CommandError, match="reserved"):
        run("create_role", "superuser", "--cluster", "monitor")
    assert Role.objects.get(name="superuser").cluster == ["all"]


def test_create_api_key_reports_bad_json_and_bad_expiration_clearly(users):
    with pytest.raises(CommandError, match="--metadata is not valid JSON"):
        run("create_api_key", "--user", "own_keys", "--name", "x", "--metadata", "{")
    with pytest.raises(CommandError, match="1w"):
        run("create_api_key", "--user", "own_keys", "--name", "x", "--expiration", "1w")
    with pytest.raises(CommandError, match="does not exist"):
        run("create_api_key", "--user", "nobody", "--name", "x")
    assert not ApiKey.objects.exists()


def test_invalidate_api_keys_acts_with_the_privileges_of_the_acting_user(users, make_api_key):
    theirs = make_api_key(users["api_key_admin"], "theirs")
    mine = make_api_key(users["own_keys"], "mine")
    out, _ = run("invalidate_api_keys", "--as", "own_keys", f"--id={theirs.id}", f"--id={mine.id}")
    result = json.loads(out)
    assert result["invalidated_api_keys"] == [mine.id]
    assert result["error_count"] == 1
    out, _ = run("invalidate_api_keys", "--as", "elastic", "--username", "api_key_admin")
    assert json.loads(out)["invalidated_api_keys"] == [theirs.id]


def test_invalidate_api_keys_without_privilege_is_a_clear_error(users, make_api_key):
    key = make_api_key(users["own_keys"], "kept")
    with pytest.raises(CommandError, match="unauthorized"):
        run("invalidate_api_keys", "--as", "monitor_only", f"--id={key.id}")


def test_seed_demo_fills_an_empty_database_with_keys_in_every_state():
    run("bootstrap")
    out, _ = run("seed_demo")
    assert "password" in out
    keys = ApiKey.objects.all()
    assert keys.active().exists() and keys.expired().exists() and keys.invalidated().exists()
    assert keys.exclude(role_descriptors={}).exists()
    assert keys.filter(realm_name="default_file").exists()
    assert User.objects.filter(username="bob").count() == 2


def test_seed_demo_never_runs_on_a_database_that_has_data(users, make_api_key):
    make_api_key(users["own_keys"], "real")
    with pytest.raises(CommandError, match="empty database"):
        run("seed_demo")
    assert ApiKey.objects.count() == 1


def test_seed_demo_respects_a_maximum_lifetime_policy(settings):
    settings.API_KEY_MAX_EXPIRATION = "30d"
    run("bootstrap")
    run("seed_demo")
    live = ApiKey.objects.filter(invalidated__isnull=True)
    assert not live.filter(expiration__isnull=True).exists()
    assert all(key.expiration - key.created <= timedelta(days=30) for key in live)
