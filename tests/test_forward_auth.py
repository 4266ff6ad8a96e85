"""Forward authentication (``GET /_security/_forward_auth``): a reverse proxy asks whether the
client's ``Authorization`` header is good, who it names and whether they hold the privileges the
URL requires, and gets 200 with identity headers, 401, 403, 429 or 400 in Elasticsearch's shapes."""

import base64
import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accounts import throttling
from accounts.models import Role, User
from accounts.principals import Principal
from apikeys.api.forward_auth import parse_requirements
from apikeys.credentials import encode_credential
from apikeys.services import create_api_key
from restapi.errors import ValidationError
from restapi.wire import authenticate_header
from tokens.services import get_token

pytestmark = pytest.mark.django_db

PATH = "/_security/_forward_auth"
PASSWORD = "forward-auth-passphrase-1"
CHALLENGE = authenticate_header()["WWW-Authenticate"]
IDENTITY = (
    "X-Keyward-User",
    "X-Keyward-Realm",
    "X-Keyward-Api-Key-Id",
    "X-Keyward-Api-Key-Name",
    "X-Keyward-Roles",
)
LOGS_READ = {"names": ["logs-*"], "privileges": ["read", "view_index_metadata"]}
PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(make_user, make_role):
    """A user with two roles: monitor and read on logs-*, and the right to make keys."""
    make_role("log_reader", indices=[LOGS_READ])
    return make_user("owner", "monitor", "manage_own_api_key", roles=["log_reader"], password=PASSWORD)


def api_key(key) -> str:
    return "ApiKey " + encode_credential(key.id, key.secret)


def basic(username, password) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def forward(client, authorization=None, query="", method="get", secure=True, **extra):
    headers = {"Authorization": authorization} if authorization else {}
    return getattr(client, method)(PATH + query, secure=secure, headers=headers, **extra)


def identity(response) -> dict:
    return {name: response[name] for name in IDENTITY if name in response}


def assert_es_error(response, status, error_type, reason):
    assert response.status_code == status, response.content
    cause = {"type": error_type, "reason": reason}
    assert response.json() == {"error": {"root_cause": [cause], **cause}, "status": status}
    assert not identity(response)


def assert_unauthenticated(response, reason):
    assert_es_error(response, 401, "security_exception", reason)
    assert response["WWW-Authenticate"] == CHALLENGE


# ---------------------------------------------------------------------------------------------
# Who the credentials name


def test_a_good_api_key_passes_with_its_owner_its_own_id_and_name_and_its_descriptors_roles(
    client, owner, make_api_key
):
    key = make_api_key(owner, "ingest", role_descriptors={"writer": {"cluster": ["monitor"]}, "a-reader": {}})

    response = forward(client, api_key(key))

    assert response.status_code == 200
    assert response.content == b""
    assert identity(response) == {
        "X-Keyward-User": "owner",
        "X-Keyward-Realm": "default_native",
        "X-Keyward-Api-Key-Id": key.id,
        "X-Keyward-Api-Key-Name": "ingest",
        "X-Keyward-Roles": "a-reader,writer",
    }


def test_a_key_without_descriptors_names_the_roles_of_its_limited_by_snapshot(
    client, owner, make_api_key, make_role
):
    key = make_api_key(owner, "cron")
    owner.roles.add(make_role("given_later", cluster=["manage"]))

    response = forward(client, api_key(key))

    assert response.status_code == 200
    assert response["X-Keyward-Roles"] == "log_reader,owner_default_native_role"


def test_an_api_keys_realm_is_its_owners(client, make_user, make_api_key, file_realm):
    filed = make_user("filed", "manage_own_api_key", realm=file_realm)
    key = make_api_key(filed, "from-file")

    response = forward(client, api_key(key))

    assert identity(response) == {
        "X-Keyward-User": "filed",
        "X-Keyward-Realm": "default_file",
        "X-Keyward-Api-Key-Id": key.id,
        "X-Keyward-Api-Key-Name": "from-file",
        "X-Keyward-Roles": "filed_default_file_role",
    }


def test_a_basic_user_passes_with_their_defined_roles_and_no_key_headers(client, owner):
    owner.pending_roles = ["not_defined_yet"]
    owner.save(update_fields=["pending_roles"])

    response = forward(client, basic("owner", PASSWORD))

    assert response.status_code == 200
    assert identity(response) == {
        "X-Keyward-User": "owner",
        "X-Keyward-Realm": "default_native",
        "X-Keyward-Roles": "log_reader,owner_default_native_role",
    }


def test_a_bearer_token_passes_as_its_user(client, owner, make_role):
    owner.roles.add(make_role("token_maker", cluster=["manage_token"]))
    issued = get_token(Principal(owner), None, grant_type="client_credentials")

    response = forward(client, f"Bearer {issued.access_token}")

    assert response.status_code == 200
    assert identity(response) == {
        "X-Keyward-User": "owner",
        "X-Keyward-Realm": "default_native",
        "X-Keyward-Roles": "log_reader,owner_default_native_role,token_maker",
    }


def test_head_answers_the_same_without_a_body(client, owner, make_api_key):
    key = make_api_key(owner, "ingest")

    got, head = forward(client, api_key(key)), forward(client, api_key(key), method="head")
    refused = forward(client, api_key(key), "?cluster=manage", method="head")

    assert head.status_code == 200 and head.content == b""
    assert identity(head) == identity(got)
    assert refused.status_code == 403 and refused.content == b""


def test_a_keyward_login_session_is_no_credential_here(client_for, owner):
    response = client_for(owner).get(PATH, secure=True)

    assert_unauthenticated(response, f"missing authentication credentials for REST request [{PATH}]")


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("state", ["invalidated", "expired"])
def test_an_invalidated_or_expired_key_is_refused_with_the_plain_401(client, owner, make_api_key, state):
    key = make_api_key(owner, "gone", state=state)

    assert_unauthenticated(forward(client, api_key(key)), "unable to authenticate with provided credentials")


def test_an_unknown_key_or_a_wrong_secret_is_refused_with_the_plain_401(client, owner, make_api_key):
    key = make_api_key(owner, "real")

    for credential in (encode_credential("A" * 20, key.secret), encode_credential(key.id, "B" * 22)):
        assert_unauthenticated(
            forward(client, f"ApiKey {credential}"), "unable to authenticate with provided credentials"
        )


def test_missing_or_wrong_credentials_are_refused_with_the_challenge(client, owner):
    assert_unauthenticated(forward(client), f"missing authentication credentials for REST request [{PATH}]")
    assert_unauthenticated(
        forward(client, basic("owner", "wrong")),
        f"unable to authenticate user [owner] for REST request [{PATH}]",
    )
    assert_unauthenticated(
        forward(client, "Bearer nothing-of-the-kind"), "unable to authenticate with provided credentials"
    )


def test_an_expired_access_token_is_refused(client, owner, make_role):
    owner.roles.add(make_role("token_maker", cluster=["manage_token"]))
    issued = get_token(Principal(owner), None, grant_type="client_credentials")
    issued.token.expiration = timezone.now() - timedelta(seconds=1)
    issued.token.save(update_fields=["expiration"])

    response = forward(client, f"Bearer {issued.access_token}")

    assert response.status_code == 401
    assert not identity(response)


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "options"])
def test_every_method_is_answered_as_get_is_for_envoy(client, owner, make_api_key, method):
    key = make_api_key(owner, "ingest")

    response = forward(client, api_key(key), method=method)
    refused = forward(client, "ApiKey bm90LWEta2V5", method=method)

    assert response.status_code == 200
    assert identity(response) == identity(forward(client, api_key(key)))
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        ("key", "api keys are not enabled: API key authentication requires HTTPS"),
        ("basic", "forward authentication is not enabled: it requires HTTPS"),
    ],
)
def test_plain_http_is_refused_as_by_the_other_api_key_endpoints(
    client, owner, make_api_key, authorization, reason
):
    credential = (
        api_key(make_api_key(owner, "ingest")) if authorization == "key" else basic("owner", PASSWORD)
    )

    response = forward(client, credential, secure=False)

    assert_es_error(response, 400, "feature_not_enabled_exception", reason)


class TestThrottling:
    LIMIT = 3

    @pytest.fixture(autouse=True)
    def limits(self, settings, monkeypatch):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "forward-auth",
            }
        }
        caches["default"].clear()
        settings.AUTH_FAILURE_LIMIT_PER_IP = self.LIMIT
        settings.AUTH_FAILURE_LIMIT_PER_USERNAME = self.LIMIT
        settings.AUTH_FAILURE_WINDOW = "60s"
        monkeypatch.setattr(throttling, "clock", lambda: 1_000_000 * 60 + 0.5)

    def test_bad_keys_over_the_limit_get_429_with_retry_after_and_a_good_key_still_passes(
        self, client, owner, make_api_key
    ):
        key = make_api_key(owner, "ingest")
        bad = f"ApiKey {encode_credential(key.id, 'B' * 22)}"
        for _ in range(self.LIMIT):
            assert forward(client, bad).status_code == 401

        throttled = forward(client, bad)

        assert_es_error(
            throttled,
            429,
            "security_exception",
            "too many failed authentication attempts; try again in [60] seconds",
        )
        assert throttled["Retry-After"] == "60"
        assert "WWW-Authenticate" not in throttled
        assert forward(client, api_key(key)).status_code == 200

    def test_a_username_under_attack_gets_429_even_with_its_right_password(self, client, owner):
        for _ in range(self.LIMIT):
            assert forward(client, basic("owner", "guess")).status_code == 401

        throttled = forward(client, basic("owner", PASSWORD))

        assert throttled.status_code == 429
        assert throttled["Retry-After"] == "60"


# ---------------------------------------------------------------------------------------------
# Required privileges


@pytest.fixture
def narrowed(owner, make_api_key):
    """A key whose descriptors grant more than its owner holds: monitor and manage, logs-* read and
    write. Its effective privileges are the intersection: monitor, and read on logs-*."""
    return make_api_key(
        owner,
        "narrowed",
        role_descriptors={
            "narrow": {
                "cluster": ["monitor", "manage"],
                "indices": [{"names": ["logs-*", "metrics-*"], "privileges": ["read", "write"]}],
            }
        },
    )


@pytest.mark.parametrize(
    "query",
    [
        "?cluster=monitor",
        "?index=logs-2024:read",
        "?index=logs-*:read,view_index_metadata&cluster=monitor",
        "?cluster=monitor,monitor&cluster=monitor",
        "?index=logs-*:read&index=logs-2:view_index_metadata",
    ],
)
def test_a_principal_holding_every_required_privilege_passes(client, owner, query):
    response = forward(client, basic("owner", PASSWORD), query)

    assert response.status_code == 200, response.content
    assert response["X-Keyward-User"] == "owner"


def test_a_principal_lacking_a_privilege_gets_403_naming_everything_it_lacks(client, owner):
    response = forward(
        client,
        basic("owner", PASSWORD),
        "?cluster=monitor,manage_security&cluster=manage&index=logs-*:read,write&index=metrics-1:read",
    )

    assert_es_error(
        response,
        403,
        "security_exception",
        "forward authentication is unauthorized for user [owner] with effective roles "
        "[log_reader,owner_default_native_role], lacking cluster privileges [manage_security,manage]; "
        "index privileges [write] on [logs-*]; index privileges [read] on [metrics-1]",
    )


def test_a_keys_privileges_are_its_descriptors_intersected_with_its_owners(client, narrowed):
    assert forward(client, api_key(narrowed), "?cluster=monitor&index=logs-1:read").status_code == 200

    response = forward(client, api_key(narrowed), "?cluster=manage&index=metrics-1:read")

    assert_es_error(
        response,
        403,
        "security_exception",
        f"forward authentication is unauthorized for API key id [{narrowed.id}] of user [owner] with "
        "effective roles [narrow], lacking cluster privileges [manage]; "
        "index privileges [read] on [metrics-1]",
    )


CLUSTER_NAMES = ["monitor", "manage", "manage_security", "read_security", "manage_own_api_key", "all"]
INDEX_NAMES = ["logs-1", "logs-*", "metrics-1", "*"]
INDEX_PRIVILEGES = ["read", "write", "view_index_metadata", "all", "create_doc", "indices:data/read/search"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cluster=st.lists(st.sampled_from(CLUSTER_NAMES), max_size=3),
    index=st.lists(
        st.tuples(
            st.sampled_from(INDEX_NAMES), st.lists(st.sampled_from(INDEX_PRIVILEGES), min_size=1, max_size=3)
        ),
        max_size=3,
    ),
)
def test_forward_auth_passes_exactly_when_has_privileges_says_has_all_requested(
    client, narrowed, cluster, index
):
    assume(cluster or index)
    query = {"cluster": [",".join(cluster)]} if cluster else {}
    query["index"] = [f"{name}:{','.join(privileges)}" for name, privileges in index]
    body = {
        "cluster": cluster,
        "index": [{"names": [name], "privileges": privileges} for name, privileges in index],
    }

    response = client.get(PATH, query, secure=True, headers={"Authorization": api_key(narrowed)})
    answer = client.post(
        "/_security/user/_has_privileges",
        json.dumps(body),
        content_type="application/json",
        secure=True,
        headers={"Authorization": api_key(narrowed)},
    ).json()

    assert response.status_code == (200 if answer["has_all_requested"] else 403), (answer, response.content)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (
            "?index=logs",
            "failed to parse [index] value [logs]: expected "
            "[<index name or pattern>:<privilege>[,<privilege>...]]",
        ),
        (
            "?index=/logs:read",
            "failed to parse [index] value [/logs:read]: expected "
            "[<index name or pattern>:<privilege>[,<privilege>...]]",
        ),
        (
            "?index=:read",
            "failed to parse [index] value [:read]: expected "
            "[<index name or pattern>:<privilege>[,<privilege>...]]",
        ),
        (
            "?index=logs-*:",
            "failed to parse indices privileges for role [forward_auth]. "
            "[privileges] must not contain empty strings",
        ),
        ("?cluster=", "failed to parse role [forward_auth]. [cluster] must not contain empty strings"),
        (
            "?cluster=monitor,,manage",
            "failed to parse role [forward_auth]. [cluster] must not contain empty strings",
        ),
        (
            "?clusters=monitor",
            f"request [{PATH}] contains unrecognized parameter: [clusters] -> did you mean [cluster]?",
        ),
        ("?cluster=monitor&name=x", f"request [{PATH}] contains unrecognized parameter: [name]"),
    ],
)
def test_a_malformed_requirement_or_unknown_parameter_is_a_400(client, owner, query, reason):
    assert_es_error(
        forward(client, basic("owner", PASSWORD), query), 400, "illegal_argument_exception", reason
    )


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("?cluster=monitor,no_such_privilege", {"cluster": ["monitor", "no_such_privilege"]}),
        (
            "?index=logs-*:read,frobnicate",
            {"index": [{"names": ["logs-*"], "privileges": ["read", "frobnicate"]}]},
        ),
        ("?index=/[/:read", {"index": [{"names": ["/[/"], "privileges": ["read"]}]}),
    ],
)
def test_unknown_privileges_and_bad_patterns_are_refused_in_has_privileges_words(client, owner, query, body):
    refused = forward(client, basic("owner", PASSWORD), query)
    has_privileges = client.post(
        "/_security/user/_has_privileges",
        json.dumps(body),
        content_type="application/json",
        secure=True,
        headers={"Authorization": basic("owner", PASSWORD)},
    )

    assert refused.status_code == has_privileges.status_code == 400
    assert refused.json()["error"]["reason"] == has_privileges.json()["error"]["reason"].replace(
        "[owner]", "[forward_auth]"
    )


def test_requirements_are_read_without_a_request(rf):
    query = rf.get(PATH, {"cluster": ["monitor,manage"], "index": ["logs-*:read", "/a:b/:write"]}).GET

    assert parse_requirements(query).requested["cluster"] == ["monitor", "manage"]
    assert [entry["names"] for entry in parse_requirements(query).requested["indices"]] == [
        ["logs-*"],
        ["/a:b/"],
    ]
    assert not parse_requirements(rf.get(PATH).GET)
    with pytest.raises(ValidationError):
        parse_requirements(rf.get(PATH, {"index": "nothing"}).GET)


# ---------------------------------------------------------------------------------------------
# Header values


def test_header_values_are_percent_encoded_outside_printable_ascii_and_for_percent_and_comma(
    client, make_user, make_api_key, make_role
):
    user = make_user("Zoë 100%,\r\nX-Injected: yes", "manage_own_api_key")
    user.roles.add(make_role("ops, on call"))
    key = make_api_key(user, "naïve key,\u200b100%")

    response = forward(client, api_key(key))

    assert identity(response) == {
        "X-Keyward-User": "Zo%C3%AB%20100%25%2C%0D%0AX-Injected:%20yes",
        "X-Keyward-Realm": "default_native",
        "X-Keyward-Api-Key-Id": key.id,
        "X-Keyward-Api-Key-Name": "na%C3%AFve%20key%2C%E2%80%8B100%25",
        "X-Keyward-Roles": "Zo%C3%AB%20100%25%2C%0D%0AX-Injected:%20yes_default_native_role,"
        "ops%2C%20on%20call",
    }
    assert "X-Injected" not in response


# Any text a database stores (no NUL, no lone surrogate); key names by their own rules (SPEC §7).
NAMES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=24)
KEY_NAMES = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=24).filter(
    lambda name: name == name.strip() and not name.startswith("_")
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=NAMES, roles=st.lists(NAMES, min_size=1, max_size=3, unique=True), key_name=KEY_NAMES)
def test_any_names_come_back_from_their_headers(client, native_realm, username, roles, key_name):
    with transaction.atomic():
        user = User.objects.create(username=username, realm=native_realm)
        user.roles.add(*(Role.objects.create(name=name, cluster=["manage_own_api_key"]) for name in roles))
        created = create_api_key(Principal(user), name=key_name)
        response = forward(client, f"ApiKey {created.encoded}")
        transaction.set_rollback(True)

    assert response.status_code == 200
    values = identity(response)
    assert all(PRINTABLE_ASCII.fullmatch(value) for value in values.values()), values
    assert unquote(values["X-Keyward-User"]) == username
    assert unquote(values["X-Keyward-Api-Key-Name"]) == key_name
    assert [unquote(role) for role in values["X-Keyward-Roles"].split(",")] == sorted(roles)


# ---------------------------------------------------------------------------------------------
# Cost: a proxy asks once for every request it serves


def test_a_key_costs_one_query_and_a_user_with_requirements_reads_their_roles_once(
    client, owner, make_api_key, django_assert_max_num_queries
):
    key = make_api_key(owner, "ingest")
    forward(client, api_key(key))  # the first request may record last_used

    requirements = "?cluster=monitor&index=logs-*:read"
    with django_assert_max_num_queries(1):
        assert forward(client, api_key(key), requirements).status_code == 200
    # The realm chain's lookup of the realm and the user, then the user's roles.
    with django_assert_max_num_queries(3):
        assert forward(client, basic("owner", PASSWORD), requirements).status_code == 200
