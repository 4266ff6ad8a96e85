"""A key's secret, and an access or refresh token, is shown once and kept nowhere (SPEC §1, §3, §6).

Keys are made the three ways there are (REST API, create page, command), used, and refused with
wrong secrets; then every place a secret could leak to is searched for it: each row of each table,
the logs, the audit trail, the cache, error bodies and every response but the one-time reveal.
Around it: the reveal is never cached, the cookies carry their flags, the deploy check is clean.
"""

import base64
import io
import json
import logging
import pickle

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

from accounts.models import AuditEvent
from apikeys.credentials import encode_credential
from apikeys.hashers import verification_cache

pytestmark = pytest.mark.django_db

API_KEYS_PAGE = "/app/management/security/api_keys"
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "hygiene"}}


def forms_of(secret: str, key_id: str) -> list[str]:
    """Every spelling a leak could take: the secret, ``id:secret``, and its base64."""
    id_and_secret = f"{key_id}:{secret}"
    return [secret, id_and_secret, base64.b64encode(id_and_secret.encode()).decode()]


def every_row_of_every_table() -> str:
    """The whole database as text, read table by table with the raw cursor."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


@pytest.fixture
def locmem_cache(settings):
    """A local-memory cache in place of the file cache, so its contents can be read back."""
    settings.CACHES = LOCMEM
    yield caches["default"]
    caches["default"].clear()


@pytest.fixture
def admin(users):
    return users["superuser"]


@pytest.fixture
def admin_credential(admin, make_api_key):
    key = make_api_key(admin, "hygiene-session")
    return encode_credential(key.id, key.secret)


@pytest.fixture
def created_keys(admin, admin_credential, client_for, client, caplog, locmem_cache):
    """Keys made through the REST API, the create page and the command, each used once and then
    refused with a wrong secret; returns each key's (id, secret) and the responses seen on the way."""
    for logger in ("", "django", "keyward.audit"):
        caplog.set_level(logging.DEBUG, logger=logger)
    # SQL and its parameters are logged at DEBUG too, as with DEBUG on.
    connection.force_debug_cursor = True
    made, responses = [], []

    api = client.post(
        "/_security/api_key",
        {"name": "hygiene-api", "metadata": {"team": "ops"}, "role_descriptors": {"none": {}}},
        content_type="application/json", secure=True,
        headers={"Authorization": f"ApiKey {admin_credential}"},
    )
    assert api.status_code == 200, api.content
    made.append((api.json()["id"], api.json()["api_key"]))

    browser = client_for(admin)
    posted = browser.post(f"{API_KEYS_PAGE}/create", {"name": "hygiene-ui"}, secure=True)
    page = browser.get(posted["Location"], secure=True)
    assert page.status_code == 200, page.content
    ui_key = page.context["key"]
    made.append((ui_key.id, json.loads(next(f["value"] for f in page.context["formats"] if f["id"] == "json"))
                 ["api_key"]))

    out = io.StringIO()
    call_command("create_api_key", "--user", admin.username, "--name", "hygiene-command",
                 stdout=out, stderr=io.StringIO())
    printed = json.loads(out.getvalue())
    made.append((printed["id"], printed["api_key"]))

    for key_id, secret in made:
        good = client.get("/_security/_authenticate", secure=True,
                          headers={"Authorization": f"ApiKey {encode_credential(key_id, secret)}"})
        assert good.status_code == 200, good.content
        for wrong in (encode_credential(key_id, secret[::-1]), encode_credential("x" * 20, secret), secret):
            refused = client.get("/_security/_authenticate", secure=True,
                                 headers={"Authorization": f"ApiKey {wrong}"})
            assert refused.status_code in (400, 401), refused.content
            responses.append(refused)
        responses.append(browser.get(f"{API_KEYS_PAGE}/{key_id}", secure=True))

    responses.append(browser.get(API_KEYS_PAGE, secure=True))
    responses.append(client.get("/_security/api_key", secure=True,
                                headers={"Authorization": f"ApiKey {admin_credential}"}))
    responses.append(client.post("/_security/_query/api_key", {"size": 100}, content_type="application/json",
                                 secure=True, headers={"Authorization": f"ApiKey {admin_credential}"}))
    assert ui_key.name == "hygiene-ui"
    connection.force_debug_cursor = False
    return made, responses


def test_a_secret_is_stored_in_no_table(created_keys):
    made, _ = created_keys
    dump = every_row_of_every_table()
    assert "hygiene-api" in dump  # the dump does see the keys' rows
    for key_id, secret in made:
        for leak in forms_of(secret, key_id):
            assert leak not in dump


def test_a_secret_is_never_logged(created_keys, caplog):
    made, _ = created_keys
    records = caplog.get_records("setup") + caplog.records
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in records)
    # The create and the refusal paths did log, and were captured.
    assert all(event in logged for event in ("api_key_created", "authentication_failed", "INSERT INTO"))
    for key_id, secret in made:
        for leak in forms_of(secret, key_id):
            assert leak not in logged


def test_a_secret_is_not_in_the_audit_trail(created_keys):
    made, _ = created_keys
    events = "\n".join(repr(row) for row in AuditEvent.objects.values())
    assert events
    for key_id, secret in made:
        for leak in forms_of(secret, key_id):
            assert leak not in events


def test_a_secret_is_not_in_the_cache(created_keys, locmem_cache):
    made, _ = created_keys
    stored = b"".join(
        key.encode() + (value if isinstance(value, bytes) else pickle.dumps(value))
        for key, value in locmem_cache._cache.items()
    )
    for key_id, secret in made:
        for leak in forms_of(secret, key_id):
            assert leak.encode() not in stored


def test_a_secret_is_shown_by_no_response_but_the_reveal(created_keys):
    made, responses = created_keys
    for response in responses:
        body = response.content.decode()
        for key_id, secret in made:
            for leak in forms_of(secret, key_id):
                assert leak not in body, response.request["PATH_INFO"]


def test_a_refused_credential_is_not_echoed(client, admin, make_api_key):
    key = make_api_key(admin, "echo")
    for header in (
        f"ApiKey {encode_credential(key.id, key.secret + 'x')}",
        f"ApiKey {key.secret}",
        f"ApiKey {key.id}:{key.secret}",
        f"ApiKey {encode_credential(key.id, key.secret)}!!",
    ):
        response = client.get("/_security/api_key", secure=True, headers={"Authorization": header})
        assert response.status_code in (400, 401), response.content
        assert key.secret not in response.content.decode()
        assert response.json()["error"]["type"]


def test_slow_hash_verification_cache_holds_no_plain_secret(settings, client, admin, make_api_key):
    settings.API_KEY_HASH_ALGORITHM = "pbkdf2_sha256"
    verification_cache.clear()
    key = make_api_key(admin, "slow")
    response = client.get("/_security/_authenticate", secure=True,
                          headers={"Authorization": f"ApiKey {encode_credential(key.id, key.secret)}"})
    assert response.status_code == 200
    assert len(verification_cache) == 1
    held = pickle.dumps(dict(verification_cache._entries))
    assert key.secret.encode() not in held


# ---------------------------------------------------------------------------------------------
# Access and refresh tokens: in the response that mints them, and nowhere else


@pytest.fixture
def minted_tokens(admin, client, caplog, locmem_cache, settings):
    """Tokens minted every way there is (password, refresh, the grace window's second answer,
    client_credentials), each used, refused with a wrong secret and invalidated; returns every
    token string and the responses that are not the minting ones."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    admin.set_password("hygiene-password-1")
    admin.save()
    for logger in ("", "django", "keyward.audit"):
        caplog.set_level(logging.DEBUG, logger=logger)
    connection.force_debug_cursor = True
    authorization = "Basic " + base64.b64encode(f"{admin.username}:hygiene-password-1".encode()).decode()

    def call(method, path, body=None, auth=authorization):
        return client.generic(method, path, json.dumps(body) if body else "", content_type="application/json",
                              secure=True, headers={"Authorization": auth})

    minted = [call("POST", "/_security/oauth2/token",
                   {"grant_type": "password", "username": admin.username, "password": "hygiene-password-1"})]
    refresh = {"grant_type": "refresh_token", "refresh_token": minted[0].json()["refresh_token"]}
    # The second refresh, within the grace window, answers the same pair from its sealed copy.
    minted += [call("POST", "/_security/oauth2/token", refresh) for _ in range(2)]
    minted.append(call("POST", "/_security/oauth2/token", {"grant_type": "client_credentials"}))
    assert all(response.status_code == 200 for response in minted), [r.content for r in minted]
    pairs = {response.json()["access_token"]: response.json() for response in minted}.values()
    tokens = {pair[field] for pair in pairs for field in ("access_token", "refresh_token") if field in pair}
    responses = []
    for body in pairs:
        bearer = f"Bearer {body['access_token']}"
        responses.append(call("GET", "/_security/_authenticate", auth=bearer))
        assert responses[-1].status_code == 200
        responses.append(call("GET", "/_security/_authenticate", auth=bearer[:-1] + "x"))
        responses.append(call("DELETE", "/_security/oauth2/token", {"token": body["access_token"]}))
        responses.append(call("GET", "/_security/_authenticate", auth=bearer))
        assert responses[-1].status_code == 401
    second_refresh = minted[1].json()["refresh_token"]
    responses.append(call("DELETE", "/_security/oauth2/token", {"refresh_token": second_refresh}))
    responses.append(call("POST", "/_security/oauth2/token",
                          {"grant_type": "refresh_token", "refresh_token": second_refresh}))
    connection.force_debug_cursor = False
    return tokens, responses


def test_a_token_is_stored_in_no_table(minted_tokens):
    tokens, _ = minted_tokens
    dump = every_row_of_every_table()
    assert "token_created" in dump  # the dump does see the audit rows of the tokens
    for token in tokens:
        assert token not in dump
        assert token[20:] not in dump  # nor the secret after the public id


def test_a_token_is_never_logged_nor_in_the_audit_trail(minted_tokens, caplog):
    tokens, _ = minted_tokens
    records = caplog.get_records("setup") + caplog.records
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in records)
    assert all(event in logged for event in ("token_created", "token_refreshed", "tokens_invalidated",
                                             "authentication_failed", "INSERT INTO"))
    events = "\n".join(repr(row) for row in AuditEvent.objects.values())
    for token in tokens:
        assert token[20:] not in logged
        assert token[20:] not in events


def test_a_token_is_not_in_the_cache(minted_tokens, locmem_cache):
    tokens, _ = minted_tokens
    stored = b"".join(
        key.encode() + (value if isinstance(value, bytes) else pickle.dumps(value))
        for key, value in locmem_cache._cache.items()
    )
    for token in tokens:
        assert token[20:].encode() not in stored


def test_a_token_is_shown_by_no_response_but_the_one_that_mints_it(minted_tokens):
    tokens, responses = minted_tokens
    for response in responses:
        for token in tokens:
            assert token[20:] not in response.content.decode(), response.request["PATH_INFO"]


# ---------------------------------------------------------------------------------------------
# The reveal is never stored by a browser or a proxy


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_the_create_api_response_is_not_stored(client, admin_credential):
    body = {"name": "fresh", "role_descriptors": {"none": {}}}
    response = client.post("/_security/api_key", body, content_type="application/json",
                           secure=True, headers={"Authorization": f"ApiKey {admin_credential}"})
    assert response.status_code == 200
    assert no_store(response)


def test_the_reveal_page_is_not_stored(client_for, admin):
    browser = client_for(admin)
    posted = browser.post(f"{API_KEYS_PAGE}/create", {"name": "fresh"}, secure=True)
    assert posted.status_code == 303 and no_store(posted)
    response = browser.get(posted["Location"], secure=True)
    assert response.status_code == 200
    assert response.context["formats"]
    assert no_store(response)


def test_the_rotate_reveals_are_not_stored(client, client_for, admin, make_api_key):
    key = make_api_key(admin, "rotated-in-browser")
    browser = client_for(admin)
    posted = browser.post(f"{API_KEYS_PAGE}/{key.id}/rotate", secure=True)
    page = browser.get(posted["Location"], secure=True)
    assert page.status_code == 200 and page.context["formats"]
    assert no_store(page)

    key = make_api_key(admin, "rotated-over-api")
    api = client.post(f"/_security/api_key/{key.id}/_rotate", content_type="application/json", secure=True,
                      headers={"Authorization": f"ApiKey {encode_credential(key.id, key.secret)}"})
    assert api.status_code == 200, api.content
    assert no_store(api)


# ---------------------------------------------------------------------------------------------
# Cookies and deployment checks


def test_login_over_https_sets_strict_secure_cookies(client, make_user):
    make_user("carol", "manage_own_api_key", password="a-long-password-9921")
    client.get("/login", secure=True)
    csrf = client.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Strict"

    response = client.post(
        "/login", {"username": "carol", "password": "a-long-password-9921",
                   "csrfmiddlewaretoken": csrf.value}, secure=True,
    )

    assert response.status_code == 302, response.content
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Strict"


def test_deploy_check_is_clean():
    call_command("check", deploy=True, fail_level="WARNING")
