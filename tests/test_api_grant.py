"""The grant API key endpoint (SPEC §2, §4): an administrator makes a key for another user, who
proves themselves with their password in the body, as Elasticsearch's ``POST
/_security/api_key/grant`` does. Every refusal in Elasticsearch's status and words; a password
through grant counts against the same limits as one through HTTP Basic."""

import base64
import json
import os

import pytest
from django.core.cache import caches

from accounts.models import AuditEvent, Role
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

GRANT = "/_security/api_key/grant"
GRANTER_PASSWORD = "granter-password-1"
CAROL_PASSWORD = "carol-password-2"
RUNNER_PASSWORD = "runner-password-3"
NO_NAME = "api key name must be a string"
GRANT_REFUSAL = (
    "action [cluster:admin/xpack/security/api_key/grant] is unauthorized for user [{user}] with "
    "effective roles [{roles}], this action is granted by the cluster privileges "
    "[grant_api_key,manage_api_key,manage_security,all]"
)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Passwords are checked on most requests here; a slow hasher would make each take long."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def carol_grant(**api_key):
    return {
        "grant_type": "password", "username": "carol", "password": CAROL_PASSWORD,
        "api_key": {"name": "carols-key", **api_key},
    }


@pytest.fixture
def granter(make_user):
    return make_user("granter", "grant_api_key", password=GRANTER_PASSWORD)


@pytest.fixture
def carol(make_user):
    """The user keys are granted for: she may not create keys herself."""
    return make_user(
        "carol", "monitor", password=CAROL_PASSWORD, indices=[{"names": ["logs-*"], "privileges": ["read"]}]
    )


@pytest.fixture
def runner(make_user, carol):
    """A user whose role may run as carol, and as nobody else."""
    user = make_user("runner", password=RUNNER_PASSWORD)
    user.roles.add(Role.objects.create(name="runs_as_carol", run_as=["carol"]))
    return user


@pytest.fixture
def grant(client, granter):
    def send(body, authorization=basic("granter", GRANTER_PASSWORD), path=GRANT):
        return client.post(
            path, data=json.dumps(body), content_type="application/json", secure=True,
            HTTP_AUTHORIZATION=authorization,
        )

    return send


def assert_error(response, status, error_type, reason):
    assert response.status_code == status, response.content
    assert response.json()["error"]["type"] == error_type
    assert response.json()["error"]["reason"] == reason
    assert not ApiKey.objects.filter(name="carols-key").exists()


def test_the_key_belongs_to_the_proven_user_and_is_limited_by_her_roles(client, grant, carol):
    response = grant(carol_grant(expiration="1d"))

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"id", "name", "api_key", "encoded", "expiration"}
    assert body["encoded"] == encode_credential(body["id"], body["api_key"])
    key = ApiKey.objects.get(pk=body["id"])
    assert (key.owner, key.realm_name) == (carol, "default_native")
    assert key.limited_by == carol.role_descriptors()
    me = client.get("/_security/_authenticate", secure=True, HTTP_AUTHORIZATION=f"ApiKey {body['encoded']}")
    assert (me.json()["username"], me.json()["api_key"]["id"]) == ("carol", body["id"])


def test_role_descriptors_are_validated_as_on_create_and_index_is_kept_as_indices(grant, carol):
    aliased = {"r": {"index": [{"names": ["logs-a"], "privileges": ["read"]}]}}

    response = grant(carol_grant(role_descriptors=aliased))

    assert response.status_code == 200, response.content
    stored = ApiKey.objects.get(pk=response.json()["id"]).role_descriptors
    assert stored["r"]["indices"][0]["names"] == ["logs-a"]
    refused = grant(carol_grant(role_descriptors={"r": {"cluster": ["manage_apikey"]}}))
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["reason"].startswith("unknown cluster privilege [manage_apikey]")


def test_the_grant_is_audited_with_the_granter_as_actor_and_the_owner_in_the_detail(grant, granter, carol):
    key_id = grant(carol_grant()).json()["id"]

    event = AuditEvent.objects.get(action="api_key_granted")
    assert (event.actor, event.target, event.api_key_ids) == (granter, "carols-key", [key_id])
    assert event.detail == {"owner": "carol", "owner_realm": "default_native", "grant_type": "password"}
    assert CAROL_PASSWORD not in json.dumps(event.detail)


def test_the_audit_log_page_labels_the_grant_and_names_the_owner(client, grant, carol, make_user):
    grant(carol_grant())
    admin = make_user("auditor", "manage_security")
    client.force_login(admin)

    page = client.get("/app/management/security/audit", secure=True).content.decode()

    assert "API key granted" in page
    assert "owner:</span> carol" in page


@pytest.mark.parametrize("privilege", ["manage_api_key", "manage_security"])
def test_manage_api_key_and_manage_security_imply_grant_api_key(grant, make_user, carol, privilege):
    make_user("admin", privilege, password="admin-password-4")

    assert grant(carol_grant(), authorization=basic("admin", "admin-password-4")).status_code == 200


def test_manage_own_api_key_does_not_grant_not_even_for_oneself(grant, make_user, carol):
    make_user("owner", "manage_own_api_key", password="owner-password-5")
    body = {"grant_type": "password", "username": "owner", "password": "owner-password-5",
            "api_key": {"name": "carols-key"}}

    response = grant(body, authorization=basic("owner", "owner-password-5"))

    refusal = GRANT_REFUSAL.format(user="owner", roles="owner_default_native_role")
    assert_error(response, 403, "security_exception", refusal)


def test_a_caller_without_the_privilege_learns_nothing_of_the_password(grant, make_user, carol):
    """The privilege is checked first: a wrong password is neither checked, audited nor counted."""
    make_user("watcher", "monitor", password="watcher-password-6")

    response = grant(
        carol_grant() | {"password": "guess"}, authorization=basic("watcher", "watcher-password-6")
    )

    refusal = GRANT_REFUSAL.format(user="watcher", roles="watcher_default_native_role")
    assert_error(response, 403, "security_exception", refusal)
    assert not AuditEvent.objects.filter(action="authentication_failed").exists()


def test_a_wrong_password_is_elasticsearchs_401_and_audited_for_the_user(grant, carol):
    response = grant(carol_grant() | {"password": "not-carols"})

    assert_error(
        response, 401, "security_exception",
        "unable to authenticate user [carol] for action [cluster:admin/xpack/security/api_key/grant]",
    )
    failed = AuditEvent.objects.get(action="authentication_failed")
    assert (failed.target, failed.detail["reason"]) == ("carol", "wrong password")


@pytest.mark.parametrize("username", ["nobody", "dormant"])
def test_unknown_and_disabled_users_get_the_same_401(grant, make_user, username):
    dormant = make_user("dormant", password="dormant-password-7")
    dormant.enabled = False
    dormant.save()
    password = "dormant-password-7"

    response = grant({"grant_type": "password", "username": username, "password": password,
                      "api_key": {"name": "carols-key"}})

    assert_error(
        response, 401, "security_exception",
        f"unable to authenticate user [{username}] for action [cluster:admin/xpack/security/api_key/grant]",
    )


@pytest.fixture
def limits(settings):
    """Small failed-password limits over a local-memory cache of this test's own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"grant-{os.urandom(8).hex()}",
        }
    }
    caches["default"].clear()
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = 3
    settings.AUTH_FAILURE_WINDOW = "1h"
    return settings


def test_passwords_through_grant_count_in_the_same_bucket_as_basic(client, grant, carol, limits):
    assert [grant(carol_grant() | {"password": "guess"}).status_code for _ in range(3)] == [401] * 3

    # Grant is locked out for carol from this address, the right password too, and so is Basic.
    assert grant(carol_grant()).status_code == 429
    basic_answer = client.get(
        "/_security/_authenticate", secure=True, HTTP_AUTHORIZATION=basic("carol", CAROL_PASSWORD)
    )
    assert basic_answer.status_code == 429
    assert not ApiKey.objects.filter(name="carols-key").exists()


def test_failed_basic_passwords_lock_grant_out_too(client, grant, carol, limits):
    for _ in range(3):
        client.get("/_security/_authenticate", secure=True, HTTP_AUTHORIZATION=basic("carol", "guess"))

    assert grant(carol_grant()).status_code == 429


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"api_key": {"name": "carols-key"}}, "Validation Failed: 1: [grant_type] is required;"),
        ({"grant_type": "client_credentials", "api_key": {"name": "carols-key"}},
         "Validation Failed: 1: grant_type [client_credentials] is not supported;"),
        ({"grant_type": "password", "api_key": {"name": "carols-key"}},
         "Validation Failed: 1: [username] is required for grant_type [password];2: [password] is required "
         "for grant_type [password];"),
        ({"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD, "access_token": "t",
          "api_key": {"name": "carols-key"}},
         "Validation Failed: 1: [access_token] is not supported for grant_type [password];"),
        ({"grant_type": "access_token", "api_key": {"name": "carols-key"}},
         "Validation Failed: 1: [access_token] is required for grant_type [access_token];"),
    ],
    ids=["no grant_type", "unknown grant_type", "no username or password", "password with a token",
         "access_token without one"],
)
def test_malformed_grants_are_elasticsearchs_validation_failures(grant, carol, body, reason):
    assert_error(grant(body), 400, "action_request_validation_exception", reason)


def test_an_access_token_grant_makes_the_key_for_the_tokens_user(client, grant, carol, make_user):
    make_user("minter", "manage_token", password="minter-password-5")
    minted = client.post(
        "/_security/oauth2/token",
        {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD},
        content_type="application/json", secure=True, HTTP_AUTHORIZATION=basic("minter", "minter-password-5"),
    )
    assert minted.status_code == 200, minted.content

    response = grant({"grant_type": "access_token", "access_token": minted.json()["access_token"],
                      "api_key": {"name": "carols-key"}})

    assert response.status_code == 200, response.content
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.owner, key.limited_by) == (carol, carol.role_descriptors())
    assert AuditEvent.objects.get(action="api_key_granted").detail["grant_type"] == "access_token"


def test_an_access_token_grant_with_a_token_that_is_not_one_is_a_401(grant, carol):
    body = {"grant_type": "access_token", "access_token": "dGhpcyBpcyBub3QgYSB0b2tlbg==",
            "api_key": {"name": "carols-key"}}

    assert_error(grant(body), 401, "security_exception", "unable to authenticate with provided credentials")
    refusal = AuditEvent.objects.get(action="authentication_failed")
    assert refusal.detail == {"reason": "access token is malformed"}


@pytest.mark.parametrize(
    ("body", "status", "error_type", "reason"),
    [
        (carol_grant() | {"scope": "x"}, 400, "x_content_parse_exception",
         "[grant_api_key_request] unknown field [scope]"),
        (carol_grant() | {"api_key": {"name": "carols-key", "owner": "x"}}, 400, "illegal_argument_exception",
         "unknown field [owner] in create api key request"),
        (carol_grant() | {"api_key": {}}, 400, "illegal_argument_exception", NO_NAME),
        (carol_grant() | {"api_key": None}, 400, "illegal_argument_exception", NO_NAME),
        (carol_grant() | {"api_key": {"name": "carols-key", "expiration": "forever"}}, 400,
         "illegal_argument_exception", "failed to parse expiration [forever] as a time value: expected a "
         "positive integer followed by one of the units [d, h, m, s, ms, micros, nanos], such as [7d]"),
    ],
    ids=["unknown field", "unknown api_key field", "no name", "no api_key", "bad expiration"],
)
def test_malformed_keys_are_refused_before_the_password_is_checked(
    grant, carol, body, status, error_type, reason
):
    body["password"] = "wrong, and never checked"

    assert_error(grant(body), status, error_type, reason)
    assert not AuditEvent.objects.filter(action="authentication_failed").exists()


def test_a_name_an_active_key_has_is_a_conflict_whoever_owns_it(grant, carol, make_api_key, make_user):
    make_api_key(make_user("someone", "manage_own_api_key"), "carols-key")

    response = grant(carol_grant())

    assert response.status_code == 409, response.content
    assert ApiKey.objects.filter(name="carols-key").count() == 1


def test_the_lifetime_policy_applies(grant, carol, settings):
    settings.API_KEY_MAX_EXPIRATION = "7d"

    assert grant(carol_grant(expiration="30d")).status_code == 400
    assert grant(carol_grant()).status_code == 400


def test_a_caller_using_an_api_key_may_grant_and_the_derived_key_rule_does_not_apply(grant, carol):
    admin_key = grant({"grant_type": "password", "username": "granter", "password": GRANTER_PASSWORD,
                       "api_key": {"name": "granters-own"}}).json()["encoded"]

    narrowed = carol_grant(role_descriptors={"r": {"cluster": ["monitor"]}})

    response = grant(narrowed, authorization=f"ApiKey {admin_key}")

    assert response.status_code == 200, response.content
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert key.owner == carol
    assert key.role_descriptors["r"]["cluster"] == ["monitor"]
    assert key.limited_by == carol.role_descriptors()


def test_run_as_makes_the_key_the_run_as_users_limited_by_her_roles(grant, granter, carol, runner):
    response = grant({"grant_type": "password", "username": "runner", "password": RUNNER_PASSWORD,
                      "run_as": "carol", "api_key": {"name": "carols-key"}})

    assert response.status_code == 200, response.content
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.owner, key.limited_by) == (carol, carol.role_descriptors())
    event = AuditEvent.objects.get(action="api_key_granted")
    assert event.actor == granter
    assert event.detail == {
        "owner": "carol", "owner_realm": "default_native", "grant_type": "password",
        "authenticated_user": "runner", "authenticated_realm": "default_native",
    }


@pytest.mark.parametrize("run_as", ["granter", "nobody"], ids=["not named in run_as", "unknown user"])
def test_run_as_a_user_the_roles_do_not_name_or_that_does_not_exist_is_elasticsearchs_403(
    grant, runner, run_as
):
    response = grant({"grant_type": "password", "username": "runner", "password": RUNNER_PASSWORD,
                      "run_as": run_as, "api_key": {"name": "carols-key"}})

    assert_error(
        response, 403, "security_exception",
        "action [cluster:admin/xpack/security/user/authenticate] is unauthorized for user [runner] with "
        f"effective roles [runs_as_carol], because user [runner] is unauthorized to run as [{run_as}]",
    )


def test_run_as_patterns_are_matched_as_in_roles(grant, make_user, carol):
    wildcard = make_user("wildcard", password="wildcard-password-8")
    wildcard.roles.add(Role.objects.create(name="runs_as_c", run_as=["c*"]))

    response = grant({"grant_type": "password", "username": "wildcard", "password": "wildcard-password-8",
                      "run_as": "carol", "api_key": {"name": "carols-key"}})

    assert response.status_code == 200, response.content


def test_the_reserved_elastic_user_may_be_granted_for_with_its_password(grant, make_user):
    elastic = make_user("elastic", roles=["superuser"], password="elastic-password-9")

    response = grant({"grant_type": "password", "username": "elastic", "password": "elastic-password-9",
                      "api_key": {"name": "carols-key"}})

    assert response.status_code == 200, response.content
    assert ApiKey.objects.get(pk=response.json()["id"]).limited_by == elastic.role_descriptors()
