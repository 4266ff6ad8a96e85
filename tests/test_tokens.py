"""Access tokens, as Elasticsearch's token service (``POST|DELETE /_security/oauth2/token``): minted
by password, for the caller itself or for a refresh token; used as ``Authorization: Bearer``;
refreshed once, with its 30-second grace window; expired and invalidated at once; refused over
plain HTTP; purged with keys. Every refusal in Elasticsearch's status and shape, changing nothing."""

import base64
import io
import json
import os
import time
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone

from accounts import services as account_services
from accounts.models import AuditEvent
from tests.snapshots import new_audit_events, security_state, without_audit_events
from tokens.models import Token

pytestmark = pytest.mark.django_db

TOKEN = "/_security/oauth2/token"
ADMIN_PASSWORD = "token-admin-password-1"
CAROL_PASSWORD = "carol-password-2"
UNSUPPORTED = (
    "Validation Failed: 1: grant_type only supports the values: [password, refresh_token, "
    "client_credentials];"
)
NOTHING_INVALIDATED = {"invalidated_tokens": 0, "previously_invalidated_tokens": 0, "error_count": 0}
EXPIRED_CHALLENGE = (
    'Bearer realm="security", error="invalid_token", error_description="The access token expired"'
)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def own_cache(settings):
    """A fresh local-memory cache, for the tests that count failures in it."""
    locmem = "django.core.cache.backends.locmem.LocMemCache"
    settings.CACHES = {"default": {"BACKEND": locmem, "LOCATION": os.urandom(8).hex()}}
    caches["default"].clear()


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def admin(make_user):
    """A token administrator: manage_token, and nothing about keys or users."""
    return make_user("tokenadmin", "manage_token", password=ADMIN_PASSWORD)


@pytest.fixture
def carol(make_user):
    return make_user("carol", "monitor", password=CAROL_PASSWORD)


@pytest.fixture
def call(client):
    def send(method, body=None, authorization=basic("tokenadmin", ADMIN_PASSWORD), path=TOKEN, secure=True):
        data = "" if body is None else json.dumps(body)
        headers = {"Authorization": authorization} if authorization else {}
        return client.generic(
            method, path, data, content_type="application/json", secure=secure, headers=headers
        )

    return send


@pytest.fixture
def carols_tokens(call, admin, carol):
    response = call("POST", {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def whoami(call, access_token, secure=True):
    return call("GET", authorization=f"Bearer {access_token}", path="/_security/_authenticate", secure=secure)


def oauth_error(response, error, description):
    assert response.status_code == 400, response.content
    assert response.json() == {"error": error, "error_description": description}


def es_error(response, status, error_type, reason):
    assert response.status_code == status, response.content
    assert response.json()["error"]["type"] == error_type
    assert response.json()["error"]["reason"] == reason


# ---------------------------------------------------------------------------------------------
# Minting and using


def test_a_password_grant_mints_a_pair_for_the_proven_user(call, carols_tokens, carol):
    assert set(carols_tokens) == {"access_token", "type", "expires_in", "refresh_token", "authentication"}
    assert carols_tokens["type"] == "Bearer"
    assert carols_tokens["expires_in"] == 20 * 60
    assert carols_tokens["authentication"]["username"] == "carol"
    assert carols_tokens["authentication"]["authentication_type"] == "realm"
    token = Token.objects.get()
    assert (token.user, token.client.username, token.grant_type) == (carol, "tokenadmin", "password")

    me = whoami(call, carols_tokens["access_token"])

    assert me.status_code == 200, me.content
    assert me.json()["username"] == "carol"
    assert me.json()["authentication_type"] == "token"
    assert me.json()["authentication_realm"] == {"name": "default_native", "type": "native"}


def test_the_response_is_not_stored_by_caches(call, admin, carol):
    response = call("POST", {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD})

    assert response["Cache-Control"] == "no-store"


def test_client_credentials_mint_a_token_for_the_caller_without_a_refresh_token(call, admin):
    response = call("POST", {"grant_type": "client_credentials", "scope": "anything"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert "refresh_token" not in body
    assert body["scope"] == "full"
    assert whoami(call, body["access_token"]).json()["username"] == "tokenadmin"


def test_client_credentials_are_refused_to_api_key_credentials(call, make_user, make_api_key):
    key = make_api_key(make_user("keyed", "manage_token", "manage_own_api_key"), "keyed-key")
    credential = base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()
    before = security_state(authenticated_with=key.id)

    response = call("POST", {"grant_type": "client_credentials"}, authorization=f"ApiKey {credential}")

    reason = "an access token cannot be created with API key credentials"
    es_error(response, 400, "illegal_argument_exception", reason)
    assert security_state(authenticated_with=key.id) == before


def test_a_token_acts_with_its_users_roles_of_the_moment(call, carols_tokens, carol):
    def has_monitor():
        response = call(
            "POST", {"cluster": ["monitor"]}, authorization=f"Bearer {carols_tokens['access_token']}",
            path="/_security/user/_has_privileges",
        )
        assert response.status_code == 200, response.content
        return response.json()["has_all_requested"]

    assert has_monitor()
    carol.roles.clear()
    assert not has_monitor()


def test_the_lifetime_is_a_setting_and_an_expired_token_says_so(settings, call, admin, carol):
    settings.TOKEN_LIFETIME = "1s"
    body = call("POST", {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD}).json()
    assert body["expires_in"] == 1
    assert whoami(call, body["access_token"]).status_code == 200
    time.sleep(1.1)
    before = security_state()

    refused = whoami(call, body["access_token"])

    es_error(refused, 401, "security_exception", "token expired")
    assert refused["WWW-Authenticate"] == EXPIRED_CHALLENGE
    after = security_state()
    assert without_audit_events(after) == without_audit_events(before)
    [event] = new_audit_events(before, after)
    token_id = body["access_token"][:20]
    assert event["detail"] == {"reason": f"access token [{token_id}] has expired", "token_id": token_id}


@pytest.mark.parametrize("lifetime", ["0s", "2h", "soon"])
def test_a_lifetime_outside_elasticsearchs_bounds_is_a_configuration_error(settings, lifetime):
    from django.core.exceptions import ImproperlyConfigured

    from tokens.services import token_lifetime

    settings.TOKEN_LIFETIME = lifetime
    with pytest.raises(ImproperlyConfigured):
        token_lifetime()


@pytest.mark.parametrize(
    "lifetime, problem",
    [("0s", "must be positive"), ("2h", "must be between"), ("soon", "as a time value")],
)
def test_a_lifetime_outside_elasticsearchs_bounds_stops_the_startup_checks(settings, lifetime, problem):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.TOKEN_LIFETIME = lifetime
    with pytest.raises(SystemCheckError, match=rf"tokens\.E001\) .*TOKEN_LIFETIME.*{problem}"):
        call_command("check")
    settings.TOKEN_LIFETIME = "20m"
    call_command("check")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer not-a-token", "Bearer " + "A" * 60, "bearer " + "A" * 59 + "=", "Bearer a b"],
    ids=["empty", "short", "unknown", "bad character", "two words"],
)
def test_a_token_that_is_not_one_gets_the_plain_401_and_changes_nothing_but_the_audit(call, admin, header):
    before = security_state()

    refused = call("GET", authorization=header, path="/_security/_authenticate")

    es_error(refused, 401, "security_exception", "unable to authenticate with provided credentials")
    assert "Bearer" in refused["WWW-Authenticate"]
    after = security_state()
    assert without_audit_events(after) == without_audit_events(before)
    assert [event["action"] for event in new_audit_events(before, after)] == ["authentication_failed"]


def test_a_wrong_secret_with_a_real_id_is_refused(call, carols_tokens):
    access = carols_tokens["access_token"]

    refused = whoami(call, access[:20] + access[20:][::-1])

    es_error(refused, 401, "security_exception", "unable to authenticate with provided credentials")


def test_a_disabled_or_deleted_users_tokens_stop_working(call, carols_tokens, admin, users):
    administrator = users["superuser"]
    account_services.set_user_enabled("carol", False, acting_user=administrator)
    es_error(whoami(call, carols_tokens["access_token"]), 401, "security_exception",
             "unable to authenticate with provided credentials")
    refresh = call("POST", {"grant_type": "refresh_token", "refresh_token": carols_tokens["refresh_token"]})
    oauth_error(refresh, "invalid_grant", "could not refresh the requested token")

    account_services.delete_user("carol", acting_user=administrator)

    assert not Token.objects.exists()
    es_error(whoami(call, carols_tokens["access_token"]), 401, "security_exception",
             "unable to authenticate with provided credentials")


def test_failing_tokens_from_one_address_are_throttled_and_a_valid_one_is_not(
    own_cache, settings, call, carols_tokens
):
    settings.AUTH_FAILURE_LIMIT_PER_IP = 3
    for _ in range(3):
        assert whoami(call, "B" * 60).status_code == 401

    assert whoami(call, "B" * 60).status_code == 429
    assert whoami(call, carols_tokens["access_token"]).status_code == 200


# ---------------------------------------------------------------------------------------------
# Refreshing


def assert_only_refusal_audited(before, reason):
    """Nothing changed but the one audit row of the refused refresh token, with its reason."""
    after = security_state()
    assert without_audit_events(after) == without_audit_events(before)
    [event] = new_audit_events(before, after)
    assert (event["action"], event["outcome"]) == ("authentication_failed", "failure")
    assert event["detail"]["reason"] == f"refresh token refused: {reason}"


def refresh(call, refresh_token, **kwargs):
    return call("POST", {"grant_type": "refresh_token", "refresh_token": refresh_token}, **kwargs)


def test_a_refresh_token_gives_a_new_pair_once_and_the_same_pair_again_within_30_seconds(call, carols_tokens):
    first = refresh(call, carols_tokens["refresh_token"])
    assert first.status_code == 200, first.content
    new = first.json()
    assert new["access_token"] != carols_tokens["access_token"]
    assert new["refresh_token"] != carols_tokens["refresh_token"]
    assert new["authentication"]["username"] == "carol"
    assert whoami(call, new["access_token"]).json()["username"] == "carol"

    again = refresh(call, carols_tokens["refresh_token"])

    assert again.status_code == 200, again.content
    assert (again.json()["access_token"], again.json()["refresh_token"]) == (
        new["access_token"], new["refresh_token"]
    )
    assert Token.objects.count() == 2
    # The new pair refreshes in its turn.
    assert refresh(call, new["refresh_token"]).status_code == 200


def test_a_refresh_token_used_more_than_30_seconds_ago_is_refused(call, carols_tokens):
    assert refresh(call, carols_tokens["refresh_token"]).status_code == 200
    Token.objects.filter(refreshed__isnull=False).update(refreshed=timezone.now() - timedelta(seconds=31))
    before = security_state()

    refused = refresh(call, carols_tokens["refresh_token"])

    oauth_error(refused, "invalid_grant", "token has already been refreshed more than 30 seconds in the past")
    assert_only_refusal_audited(before, "token has already been refreshed more than 30 seconds in the past")


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"refresh_invalidated": timezone.now()}, "token has been invalidated"),
        ({"created": timezone.now() - timedelta(hours=24, seconds=1)}, "refresh token is expired"),
    ],
    ids=["invalidated", "older than 24 hours"],
)
def test_a_refresh_token_that_stopped_working_is_an_invalid_grant(call, carols_tokens, change, description):
    Token.objects.update(**change)
    before = security_state()

    oauth_error(refresh(call, carols_tokens["refresh_token"]), "invalid_grant", description)
    assert_only_refusal_audited(before, description)


def test_only_the_client_that_asked_for_the_pair_may_refresh_it(call, carols_tokens, make_user):
    make_user("other", "manage_token", password="other-password-3")

    refused = refresh(call, carols_tokens["refresh_token"], authorization=basic("other", "other-password-3"))

    oauth_error(refused, "invalid_grant", "tokens must be refreshed by the creating client")


@pytest.mark.parametrize("which", ["unknown", "an access token", "malformed"])
def test_what_is_not_a_refresh_token_could_not_refresh(call, carols_tokens, which):
    value = {"unknown": "C" * 60, "an access token": carols_tokens["access_token"], "malformed": "x"}[which]

    oauth_error(refresh(call, value), "invalid_grant", "could not refresh the requested token")


# ---------------------------------------------------------------------------------------------
# Invalidating


def test_an_invalidated_access_token_fails_on_the_very_next_request(call, carols_tokens):
    access = carols_tokens["access_token"]
    assert whoami(call, access).status_code == 200

    response = call("DELETE", {"token": access})

    assert response.status_code == 200, response.content
    assert response.json() == {"invalidated_tokens": 1, "previously_invalidated_tokens": 0, "error_count": 0}
    refused = whoami(call, access)
    es_error(refused, 401, "security_exception", "token expired")
    assert refused["WWW-Authenticate"] == EXPIRED_CHALLENGE
    again = call("DELETE", {"token": access}).json()
    assert (again["invalidated_tokens"], again["previously_invalidated_tokens"]) == (0, 1)
    # As in Elasticsearch, the refresh token is apart: it still gives a new pair.
    assert refresh(call, carols_tokens["refresh_token"]).status_code == 200


def test_an_invalidated_refresh_token_refreshes_no_more(call, carols_tokens):
    response = call("DELETE", {"refresh_token": carols_tokens["refresh_token"]})

    assert response.json()["invalidated_tokens"] == 1
    oauth_error(refresh(call, carols_tokens["refresh_token"]), "invalid_grant", "token has been invalidated")
    assert whoami(call, carols_tokens["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "selection", [{"username": "carol"}, {"realm_name": "default_native", "username": "carol"}]
)
def test_invalidating_by_username_ends_every_pair_of_that_user(call, carols_tokens, admin, carol, selection):
    second = call("POST", {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD}).json()
    own = call("POST", {"grant_type": "client_credentials"}).json()

    response = call("DELETE", selection)

    assert response.json()["invalidated_tokens"] == 2
    for pair in (carols_tokens, second):
        assert whoami(call, pair["access_token"]).status_code == 401
        oauth_error(refresh(call, pair["refresh_token"]), "invalid_grant", "token has been invalidated")
    assert whoami(call, own["access_token"]).status_code == 200
    event = AuditEvent.objects.filter(action="tokens_invalidated").get()
    assert (event.actor_username, event.target, event.count) == ("tokenadmin", "carol", 2)


def test_invalidating_by_realm_ends_every_pair_of_its_users(call, carols_tokens, admin):
    own = call("POST", {"grant_type": "client_credentials"}).json()

    response = call("DELETE", {"realm_name": "default_native"})

    assert response.json()["invalidated_tokens"] == 2
    assert whoami(call, own["access_token"]).status_code == 401


def test_a_token_that_does_not_exist_counts_as_nothing(call, admin):
    for body in ({"token": "D" * 60}, {"refresh_token": "nonsense"}, {"username": "nobody"}):
        response = call("DELETE", body)
        assert response.json() == NOTHING_INVALIDATED


@pytest.mark.parametrize(
    ("body", "status", "error_type", "reason"),
    [
        ({}, 400, "action_request_validation_exception",
         "Validation Failed: 1: token string must be provided when not specifying a realm name or a "
         "username;"),
        ({"token": "x", "username": "carol"}, 400, "action_request_validation_exception",
         "Validation Failed: 1: token string must not be provided when realm name or username is specified;"),
        ({"token": "x", "refresh_token": "y"}, 400, "illegal_argument_exception",
         "only one of [token, refresh_token] may be sent per request"),
        ({"tokens": ["x"]}, 400, "x_content_parse_exception", "[invalidate_token] unknown field [tokens]"),
        ({"token": ["x"]}, 400, "x_content_parse_exception",
         "[invalidate_token] failed to parse field [token]"),
    ],
    ids=["nothing", "token and username", "token and refresh_token", "unknown field", "not a string"],
)
def test_malformed_invalidations_are_refused_and_change_nothing(
    call, carols_tokens, body, status, error_type, reason
):
    before = security_state()

    es_error(call("DELETE", body), status, error_type, reason)
    assert security_state() == before


# ---------------------------------------------------------------------------------------------
# Refusals of the get token API


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        ({}, "unsupported_grant_type",
         UNSUPPORTED),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type",
         UNSUPPORTED),
        ({"grant_type": "password"}, "invalid_request",
         "Validation Failed: 1: username is missing;2: password is missing;"),
        ({"grant_type": "password", "username": "carol", "password": "", "refresh_token": "r"},
         "invalid_request",
         "Validation Failed: 1: refresh_token is not supported with the password grant_type;2: password is "
         "missing;"),
        ({"grant_type": "client_credentials", "username": "carol"}, "invalid_request",
         "Validation Failed: 1: username is not supported with the client_credentials grant_type;"),
        ({"grant_type": "refresh_token"}, "invalid_request",
         "Validation Failed: 1: refresh_token is missing;"),
    ],
    ids=["no grant_type", "unknown grant_type", "no username or password", "password with refresh_token",
         "client_credentials with username", "no refresh_token"],
)
def test_malformed_token_requests_are_oauth_errors(call, admin, carol, body, error, description):
    before = security_state()

    oauth_error(call("POST", body), error, description)
    assert security_state() == before


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"grant_type": "password", "user": "carol"}, "[token_request] unknown field [user]"),
        ({"grant_type": "password", "username": 7, "password": "x"},
         "[token_request] failed to parse field [username]"),
    ],
    ids=["unknown field", "not a string"],
)
def test_unparseable_token_requests_are_elasticsearch_errors(call, admin, body, reason):
    es_error(call("POST", body), 400, "x_content_parse_exception", reason)


def test_a_wrong_password_is_a_401_and_counts_like_http_basic(own_cache, settings, call, admin, carol):
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = 2
    wrong = {"grant_type": "password", "username": "carol", "password": "wrong"}
    for _ in range(2):
        es_error(call("POST", wrong), 401, "security_exception",
                 "unable to authenticate user [carol] for action [cluster:admin/xpack/security/token/create]")

    throttled = call("POST", {"grant_type": "password", "username": "carol", "password": CAROL_PASSWORD})

    assert throttled.status_code == 429, throttled.content
    assert not Token.objects.exists()


def test_without_manage_token_nothing_is_minted_and_no_password_is_checked(
    own_cache, settings, call, carol, make_user
):
    make_user("keyholder", "manage_api_key", password="keyholder-password-4")
    settings.AUTH_FAILURE_LIMIT_PER_USERNAME = 1
    before = security_state()

    for password in ("wrong", "wrong again", CAROL_PASSWORD):
        es_error(
            call("POST", {"grant_type": "password", "username": "carol", "password": password},
                 authorization=basic("keyholder", "keyholder-password-4")),
            403, "security_exception",
            "action [cluster:admin/xpack/security/token/create] is unauthorized for user [keyholder] with "
            "effective roles [keyholder_default_native_role], this action is granted by the cluster "
            "privileges [manage_token,manage_security,all]",
        )
    assert security_state() == before


def test_without_manage_token_no_token_is_invalidated(call, carols_tokens, make_user):
    make_user("keyholder", "manage_api_key", password="keyholder-password-4")
    before = security_state()

    refused = call("DELETE", {"username": "carol"}, authorization=basic("keyholder", "keyholder-password-4"))

    assert refused.status_code == 403, refused.content
    assert security_state() == before


def test_manage_security_implies_manage_token(call, carol, make_user):
    make_user("securityadmin", "manage_security", password="security-password-5")

    response = call("POST", {"grant_type": "client_credentials"},
                    authorization=basic("securityadmin", "security-password-5"))

    assert response.status_code == 200, response.content


def test_the_token_service_answers_only_over_https(call, carols_tokens, admin):
    before = security_state()

    for method, body in (("POST", {"grant_type": "client_credentials"}), ("DELETE", {"username": "carol"})):
        es_error(call(method, body, secure=False), 400, "feature_not_enabled_exception",
                 "security tokens are not enabled")
    # A token that crossed the network in clear text is refused, never ignored.
    es_error(whoami(call, carols_tokens["access_token"], secure=False), 400, "feature_not_enabled_exception",
             "security tokens are not enabled: token authentication requires HTTPS")
    assert security_state() == before


def test_tokens_are_audited_by_their_public_id(call, carols_tokens):
    new = refresh(call, carols_tokens["refresh_token"]).json()
    call("DELETE", {"token": new["access_token"]})

    events = {event.action: event for event in AuditEvent.objects.filter(action__startswith="token")}
    assert events["token_created"].detail["token_id"] == carols_tokens["access_token"][:20]
    assert events["token_created"].target == "carol"
    assert events["token_refreshed"].detail == {
        "token_id": new["access_token"][:20], "refreshed_token_id": carols_tokens["access_token"][:20]
    }
    assert events["tokens_invalidated"].detail["token_ids"] == [new["access_token"][:20]]


# ---------------------------------------------------------------------------------------------
# Retention


def test_tokens_past_retention_are_purged_with_the_keys(settings, call, carols_tokens, admin):
    settings.API_KEY_RETENTION_PERIOD = "1d"
    own = call("POST", {"grant_type": "client_credentials"}).json()
    long_ago = timezone.now() - timedelta(days=3)
    Token.objects.filter(pk=carols_tokens["access_token"][:20]).update(
        created=long_ago, expiration=long_ago + timedelta(minutes=20)
    )

    out = io.StringIO()
    call_command("purge_api_keys", stdout=out)

    assert list(Token.objects.values_list("pk", flat=True)) == [own["access_token"][:20]]
    assert "1 access token past retention" in out.getvalue()
    assert AuditEvent.objects.filter(action="tokens_purged", count=1).exists()


def test_a_pair_whose_refresh_token_still_works_is_kept(settings, call, carols_tokens):
    settings.API_KEY_RETENTION_PERIOD = "1s"
    Token.objects.update(expiration=timezone.now() - timedelta(hours=1))

    call_command("purge_api_keys", stdout=io.StringIO())

    assert Token.objects.count() == 1
    assert refresh(call, carols_tokens["refresh_token"]).status_code == 200


def test_a_pair_is_kept_for_the_retention_period_after_its_refresh_token_expires(settings, carols_tokens):
    settings.API_KEY_RETENTION_PERIOD = "1d"
    now = timezone.now()
    Token.objects.update(created=now - timedelta(hours=30), expiration=now - timedelta(hours=29))

    call_command("purge_api_keys", stdout=io.StringIO())
    assert Token.objects.count() == 1

    Token.objects.update(created=timezone.now() - timedelta(hours=49))
    call_command("purge_api_keys", stdout=io.StringIO())
    assert not Token.objects.exists()
