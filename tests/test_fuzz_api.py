"""Bad input never breaks the service (SPEC §7): generated requests get an error in the right shape
and status, never a 500; a refused request changes nothing; and what succeeds is what the OpenAPI
document says it is.

Schemathesis walks every operation of the OpenAPI document that ``/api/schema/`` serves and sends
what it generates from it (valid and invalid), in process, to the WSGI application over HTTPS, as
three callers: a superuser's API key, a user holding ``manage_own_api_key`` in a login session,
and that user's API key, which acts on itself only. Every 2xx body is validated against the
document with a JSON Schema validator. Hypothesis then aims at the inputs the document cannot
describe: the ``Authorization`` header itself, the create request's fields, and the bulk
invalidation form. Each example runs in a savepoint that is rolled back, so every example starts
from the same state. The examples are the same on every run under the "ci" profile of
``tests/conftest.py``.
"""

import base64
import functools
from dataclasses import dataclass, field

import jsonschema
import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.middleware.csrf import get_token
from django.test import RequestFactory
from django.utils import timezone
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from accounts.models import Role, User
from apikeys.credentials import encode_credential
from apikeys.forms import MAX_SELECTED_API_KEYS
from apikeys.models import ApiKey
from restapi.schema import HTTP_METHODS, generated_schema

pytestmark = pytest.mark.django_db

# The profile (tests/conftest.py) decides the seed and the example database; these only the counts.
FUZZ = settings(max_examples=25, suppress_health_check=list(HealthCheck))
FUZZ_MORE = settings(FUZZ, max_examples=100)
OPERATIONS = [
    (path, method.upper())
    for path, item in generated_schema()["paths"].items()
    for method in HTTP_METHODS
    if method in item
]


@functools.cache
def api_schema():
    """The document as the application serves it, bound to the application itself."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


def security_state() -> tuple:
    """Everything a refused request must leave as it was: every stored field of every key (but
    ``last_used``, which authenticating the request itself writes), user and role, and who holds
    which role."""
    keys = [{**row, "last_used": None} for row in ApiKey.objects.order_by("pk").values()]
    users = list(User.objects.order_by("pk").values())
    roles = list(Role.objects.order_by("pk").values())
    holders = list(User.roles.through.objects.order_by("user_id", "role_id").values_list())
    return (keys, users, roles, holders)


# Elasticsearch answers a lookup of something absent with 404 and one of these, not an error.
NOT_FOUND_ANSWERS = ({}, {"found": False}, {"api_keys": []})


def is_error_body(path: str, status: int, body) -> bool:
    """Elasticsearch's error body, or Kibana's on ``/api/...``; a 405 is Elasticsearch's short form;
    the token endpoint's refused grants are OAuth 2.0's, as Elasticsearch answers them."""
    if not isinstance(body, dict):
        return False
    if path == TOKEN_ENDPOINT and status == 400 and set(body) == {"error", "error_description"}:
        return body["error"] in ("invalid_request", "unsupported_grant_type", "invalid_grant")
    if status == 404 and body in NOT_FOUND_ANSWERS and not path.startswith("/api/"):
        return True
    if status == 404 and path.startswith("/_security/privilege/") and nothing_found(body):
        return True
    if path.startswith("/api/"):
        return body.get("statusCode") == status and {"error", "message"} <= set(body)
    if body.get("status") != status:
        return False
    error = body.get("error")
    if status == 405:
        return isinstance(error, str)
    return isinstance(error, dict) and {"root_cause", "type", "reason"} <= set(error)


def nothing_found(body: dict) -> bool:
    """Elasticsearch's answer to deleting application privileges none of which exists."""
    return all(
        isinstance(named, dict) and all(result == {"found": False} for result in named.values())
        for named in body.values()
    )


def is_unrouted(status: int, body) -> bool:
    """Elasticsearch's answer to a path no operation matches (a generated path parameter can make
    one), given before it looks at the credential."""
    if status != 404 or not isinstance(body, dict):
        return False
    reason = body["message"] if "statusCode" in body else body.get("error", {}).get("reason", "")
    return reason.startswith("no handler found for uri")


def in_savepoint(check):
    """Run one example and undo whatever it changed."""
    with transaction.atomic():
        check()
        transaction.set_rollback(True)


# ---------------------------------------------------------------------------------------------
# What the document promises for a 2xx


def as_json_schema(node):
    """OpenAPI 3.0's schema objects in JSON Schema's terms: ``nullable`` is a union with null, and
    an object that lists its properties has no others, so an undocumented field is a mismatch too."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        name: as_json_schema(value)
        for name, value in node.items()
        if not (name == "nullable" and isinstance(value, bool))
    }
    if node.get("type") == "object" and isinstance(node.get("properties"), dict):
        converted.setdefault("additionalProperties", False)
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def success_validators() -> dict:
    """``{(path, METHOD, status): validator or None}`` for every 2xx the served document describes;
    None where it describes no body."""
    document = as_json_schema(api_schema().raw_schema)
    validators = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    # The components ride along so that "#/components/..." resolves from the root.
                    schema = jsonschema.Draft4Validator(
                        {"allOf": [schema], "components": document["components"]},
                        format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
                    )
                validators[(path, method.upper(), int(status))] = schema
    return validators


def assert_documented_success(path: str, method: str, response) -> None:
    """A 2xx is one the document lists for the operation, with a body its schema accepts."""
    key = (path, method, response.status_code)
    assert key in success_validators(), f"{method} {path} answered an undocumented {response.status_code}"
    validator = success_validators()[key]
    if validator is None:
        assert not response.content, response.text
        return
    errors = sorted(validator.iter_errors(response.json()), key=lambda error: list(error.absolute_path))
    assert not errors, f"{method} {path} {response.status_code}: " + "; ".join(
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}" for error in errors[:5]
    )


def test_schema_check_rejects_a_body_the_document_does_not_describe(
    superuser_client_session, keep_the_test_connection_open
):
    """The validator is not vacuous: a key missing a required field, with a field of the wrong type
    or an undocumented one, is each a mismatch."""
    validator = success_validators()[("/_security/api_key", "GET", 200)]
    key = superuser_client_session.get("/_security/api_key", secure=True).json()["api_keys"][0]
    assert validator.is_valid({"api_keys": [key]})

    missing = {name: value for name, value in key.items() if name != "realm"}
    wrong_type = {**key, "creation": str(key["creation"])}
    undocumented = {**key, "secret": "x"}
    for body in ({"api_keys": [missing]}, {"api_keys": [wrong_type]}, {"api_keys": [undocumented]}, key):
        assert not validator.is_valid(body), body


# ---------------------------------------------------------------------------------------------
# Generated requests, as three callers

# The user and role APIs, which a manage_own_api_key caller may never use...
ADMINISTRATION = ("/_security/user", "/_security/role", "/api/security/role", "/_security/privilege")
# ...but for these, open to every authenticated caller.
SELF_SERVICE = ("/_security/user/_has_privileges", "/_security/user/_privileges", "/_security/_authenticate")
# The token service, for manage_token alone; a generated username and password prove no one (401).
TOKEN_ENDPOINT = "/_security/oauth2/token"
# Forward authentication reads the Authorization header alone: a login session gets 401 there
# (tests/test_forward_auth.py), so only the keys are fuzzed on it.
HEADER_ONLY = ("/_security/_forward_auth",)
# Elasticsearch answers a wait that timed out with 408 and the health body, ``timed_out``.
CLUSTER_HEALTH = "/_cluster/health"


@dataclass
class Caller:
    """Who sends the generated requests: the headers and cookies that authenticate them, the keys
    they may act on (None: any), and the keys their successful answers may show."""

    name: str
    headers: dict
    cookies: dict = field(default_factory=dict)
    may_change: set | None = None
    may_see: set | None = None
    owner: User | None = None
    examples: int = 12

    def expected_statuses(self, path: str) -> set[int]:
        """The statuses the caller may get: a request it may not make is refused with 403 unless it
        is malformed (400, as Elasticsearch validates a request before it authorizes it); a 401
        would mean the credential itself stopped working."""
        if path == TOKEN_ENDPOINT:
            return {200, 400, 401} if self.may_change is None else {400, 403}
        if path == CLUSTER_HEALTH:
            return {200, 400, 408} if self.may_change is None else {400, 403}
        if self.may_change is None:
            # Only the owner of a key may rotate it, a superuser included.
            return {200, 204, 400, 404, 409} | ({403} if path.endswith("/_rotate") else set())
        if is_administration(path):
            return {400, 403}
        return {200, 400, 403, 404, 409}


@pytest.fixture
def keep_the_test_connection_open():
    """The WSGI app, called directly, closes the database connection after each request, as it
    must in production; the test's transaction lives on that connection, so keep it, as Django's
    test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(users, make_api_key, make_user, make_role):
    """The superuser's and the own-keys user's keys, another user's, and things to administer."""
    make_user("target", "manage_own_api_key")
    make_role("target_role", cluster=["monitor"])
    return {
        "superuser": make_api_key(users["superuser"], "fuzz-session"),
        "own session": make_api_key(users["own_keys"], "own-session"),
        "own other": make_api_key(users["own_keys"], "own-other"),
        "own invalidated": make_api_key(users["own_keys"], "own-invalidated", state="invalidated"),
        "someone else's": make_api_key(users["api_key_admin"], "someone-elses"),
    }


@pytest.fixture
def superuser_credential(world):
    key = world["superuser"]
    return encode_credential(key.id, key.secret)


@pytest.fixture
def superuser_client_session(client, superuser_credential):
    client.defaults["HTTP_AUTHORIZATION"] = f"ApiKey {superuser_credential}"
    return client


def session_cookies(client_for, user) -> tuple[dict, str]:
    """A login session as the browser holds it, with the CSRF token the Console page sends."""
    browser = client_for(user)
    token = get_token(RequestFactory().get("/"))
    cookies = {
        django_settings.SESSION_COOKIE_NAME: browser.cookies[django_settings.SESSION_COOKIE_NAME].value,
        django_settings.CSRF_COOKIE_NAME: token,
    }
    return cookies, token


SUPERUSER_KEY, SESSION = "superuser's key", "manage_own_api_key user"
OWN_KEY = "manage_own_api_key user's key"


def is_administration(path: str) -> bool:
    return path.startswith(ADMINISTRATION) and path not in SELF_SERVICE


# Administration refuses the own-keys user's session and its key alike (403, or 400 for a malformed
# request): there the key's cases stand for both, and the session is fuzzed on every other route
# but forward authentication's.
CASES = [
    (path, method, caller)
    for path, method in OPERATIONS
    for caller in (SUPERUSER_KEY, SESSION, OWN_KEY)
    if not (caller == SESSION and (is_administration(path) or path in HEADER_ONLY))
]


@pytest.fixture
def caller(request, world, users, client_for) -> Caller:
    own_keys = users["own_keys"]
    own = {world["own session"].id, world["own other"].id, world["own invalidated"].id}
    if request.param == SUPERUSER_KEY:
        key = world["superuser"]
        return Caller(request.param, {"Authorization": f"ApiKey {encode_credential(key.id, key.secret)}"})
    if request.param == SESSION:
        cookies, token = session_cookies(client_for, own_keys)
        headers = {"X-CSRFToken": token, "Origin": "https://localhost", "Referer": "https://localhost/"}
        return Caller(
            request.param, headers, cookies, may_change=own, may_see=own, owner=own_keys, examples=5
        )
    key = world["own session"]
    itself = {key.id}
    return Caller(
        request.param, {"Authorization": f"ApiKey {encode_credential(key.id, key.secret)}"},
        may_change=itself, may_see=itself, owner=own_keys, examples=5,
    )


def keys_beyond(caller: Caller) -> list[dict]:
    """Every stored field of every key the caller may not change."""
    rows = ApiKey.objects.order_by("pk").values()
    return [{**row, "last_used": None} for row in rows if row["id"] not in caller.may_change]


def assert_within_rights(caller: Caller, path: str, method: str, body, before: list) -> None:
    """A 2xx of a manage_own_api_key caller shows and touches only what that caller may."""
    if path in ("/_security/api_key", "/_security/_query/api_key") and method in ("GET", "POST") and (
        "api_keys" in body
    ):
        # A filter_path may have left only some fields of each key.
        assert {key["id"] for key in body["api_keys"] if "id" in key} <= caller.may_see, body
    elif method == "DELETE" and path == "/_security/api_key":
        touched = {*body["invalidated_api_keys"], *body["previously_invalidated_api_keys"]}
        assert touched <= caller.may_change, body
    elif path.endswith("/_rotate"):
        assert body["rotated_from"] in caller.may_change, body
    elif path == "/_security/api_key/_bulk_update":
        assert {*body["updated"], *body["noops"]} <= caller.may_change, body
    if method in ("POST", "PUT") and path == "/_security/api_key":
        assert ApiKey.objects.get(pk=body["id"]).owner == caller.owner
    # New keys aside, every key the caller may not change is as it was.
    known = {row["id"] for row in before}
    assert [row for row in keys_beyond(caller) if row["id"] in known] == before


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize(
    ("path", "method", "caller"), CASES, indirect=["caller"], ids=[f"{c}-{m} {p}" for p, m, c in CASES]
)
def test_generated_requests_get_documented_answers_within_the_callers_rights(
    path, method, mode, caller, keep_the_test_connection_open
):
    """Positive cases follow the document; negative ones break it on purpose, field by field."""
    operation = api_schema()[path][method]
    # GET / answers JSON only to a client that asks for it; a browser gets the home page.
    headers = {**caller.headers, "kbn-xsrf": "true", "Accept": "application/json"}
    expected = caller.expected_statuses(path)
    # Every example starts from here: each one's changes are rolled back.
    before = security_state()
    beyond = keys_beyond(caller) if caller.may_change is not None else None
    ran = []

    @settings(FUZZ, max_examples=caller.examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        def check():
            response = case.call(base_url="https://localhost", headers=headers, cookies=caller.cookies)
            ran.append(response.status_code)
            status = response.status_code
            assert status < 500, (case.as_curl_command(), response.text)
            assert status in expected or is_unrouted(status, response.json()), (
                status, case.as_curl_command(), response.text
            )
            if status == 408:
                assert path == CLUSTER_HEALTH and response.json()["timed_out"] is True, response.text
                assert security_state() == before, case.as_curl_command()
                return
            if status >= 400:
                assert is_error_body(path, status, response.json()), response.text
                assert security_state() == before, case.as_curl_command()
                return
            # filter_path trims the body to what the client named, so the full schema cannot hold.
            if "filter_path" not in (case.query or {}):
                assert_documented_success(path, method, response)
            if beyond is not None:
                body = response.json() if response.content else {}
                assert_within_rights(caller, path, method, body, beyond)

        in_savepoint(check)

    try:
        send()
    except Unsatisfiable:
        # The document constrains nothing here that a negative case could break.
        assert mode is schemathesis.GenerationMode.NEGATIVE and not ran
    print(f"{method} {path} ({mode.value}, {caller.name}): {len(ran)} cases, statuses {sorted(set(ran))}")


# ---------------------------------------------------------------------------------------------
# The Authorization header


def api_key_header_values():
    """Anything a client could put after ``ApiKey``: text, bytes as Latin-1, and near-misses of a
    real credential (base64 of arbitrary ``id:secret`` pairs)."""
    text = st.text(max_size=300)
    latin1 = st.binary(max_size=300).map(lambda raw: raw.decode("latin-1"))
    pairs = st.tuples(st.text(max_size=40), st.text(max_size=40)).map(
        lambda pair: base64.b64encode(f"{pair[0]}:{pair[1]}".encode("utf-8", "surrogatepass")).decode()
    )
    return st.one_of(text, latin1, pairs)


@FUZZ_MORE
@given(scheme=st.sampled_from(["ApiKey", "apikey", "APIKEY"]), value=api_key_header_values())
def test_any_api_key_header_is_refused_cleanly(client, db, scheme, value):
    before = security_state()
    response = client.get(
        "/_security/api_key", secure=True, headers={"Authorization": f"{scheme} {value}"}
    )
    assert response.status_code in (400, 401, 429), response.content
    assert is_error_body("/_security/api_key", response.status_code, response.json())
    assert security_state() == before


@FUZZ_MORE
@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER"]),
    value=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda raw: raw.decode("latin-1"))),
)
def test_any_bearer_header_is_refused_cleanly(client, db, scheme, value):
    before = security_state()
    headers = {"Authorization": f"{scheme} {value}"}
    response = client.get("/_security/_authenticate", secure=True, headers=headers)
    assert response.status_code in (400, 401, 429), response.content
    assert is_error_body("/_security/_authenticate", response.status_code, response.json())
    assert security_state() == before


# ---------------------------------------------------------------------------------------------
# The create request's fields

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
DURATIONS = st.one_of(
    st.from_regex(r"-?[0-9]{0,25}(d|h|m|s|ms|micros|nanos|y|)", fullmatch=True), st.text(max_size=20), JSON
)
NAMES = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", " x", "x ", "_hidden", "a" * 256, "a" * 257, "ключ", "\u0000", "\ud800"]),
    JSON,
)
CLUSTER_PRIVILEGES = st.sampled_from(["all", "monitor", "manage_own_api_key", "nope"])
ROLE_DESCRIPTORS = st.one_of(
    JSON,
    st.dictionaries(
        st.text(max_size=12),
        st.fixed_dictionaries(
            {},
            optional={
                "cluster": st.lists(CLUSTER_PRIVILEGES | st.text()),
                "indices": st.lists(
                    st.fixed_dictionaries(
                        {"names": st.lists(st.text(max_size=8)) | JSON},
                        optional={"privileges": st.lists(st.sampled_from(["read", "write", "bogus"])) | JSON},
                    ),
                    max_size=3,
                ),
                "run_as": JSON,
            },
        ),
        max_size=3,
    ),
)
METADATA_KEYS = st.sampled_from(["_private", "team", "", "\u00e9"])
METADATA = st.one_of(JSON, st.dictionaries(METADATA_KEYS, JSON, max_size=3))


@FUZZ_MORE
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "name": NAMES,
            "expiration": DURATIONS,
            "role_descriptors": ROLE_DESCRIPTORS,
            "metadata": METADATA,
        },
    )
)
def test_any_create_request_is_answered_without_a_server_error(client, superuser_credential, body):
    def check():
        before = security_state()
        response = client.post(
            "/_security/api_key", body, content_type="application/json", secure=True,
            headers={"Authorization": f"ApiKey {superuser_credential}"},
        )
        assert response.status_code < 500, (body, response.content)
        if response.status_code == 200:
            assert ApiKey.objects.filter(pk=response.json()["id"], name=body["name"]).exists()
        else:
            body_shape = response.json()
            assert is_error_body("/_security/api_key", response.status_code, body_shape), response.content
            assert security_state() == before, body

    in_savepoint(check)


# ---------------------------------------------------------------------------------------------
# The bulk invalidation form

ODD_IDS = st.sampled_from(
    ["", " ", "\u0000", "\x00" * 20, "ключ" * 5, "a" * 10_000, "' OR 1=1 --", "%00", "\ud800", "*"]
)
# Around the form's limit on distinct ids and Django's on the number of fields in a request.
LONG_LIST_SIZES = [MAX_SELECTED_API_KEYS - 2, MAX_SELECTED_API_KEYS, MAX_SELECTED_API_KEYS + 1, 999, 1_001]
# Whitespace the form strips from an id before it looks the id up.
PADDING = st.sampled_from(["", " ", "\t", "  \n"])


def as_form_value(text: str) -> str:
    """What a browser can send: a lone surrogate is not encodable, so it arrives replaced."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclass
class Selection:
    """What one form submission asks for: arbitrary values, and known keys by name (repeated and
    padded as they may be), in any order."""

    others: list[str]
    keys: list[tuple[str, str, str]]  # (padding before, key name, padding after)
    positions: list[int]

    def values(self, key_ids: dict) -> list[str]:
        values = list(self.others)
        for (before, name, after), position in zip(self.keys, self.positions, strict=True):
            values.insert(min(position, len(values)), f"{before}{key_ids[name]}{after}")
        return [as_form_value(value) for value in values]


FORM_KEYS = ("own active", "own expired", "own invalidated", "namesake's", "admin's")


@st.composite
def selections(draw) -> Selection:
    if draw(st.booleans()):
        others = [f"{n:020d}" for n in range(draw(st.sampled_from(LONG_LIST_SIZES)))]
    else:
        others = draw(st.lists(st.text(max_size=30) | ODD_IDS, max_size=30))
    keys = draw(st.lists(st.tuples(PADDING, st.sampled_from(FORM_KEYS), PADDING), max_size=6))
    positions = draw(st.lists(st.integers(0, len(others)), min_size=len(keys), max_size=len(keys)))
    return Selection(others, keys, positions)


def expected_selection(values: list[str]) -> list[str] | None:
    """The ids the form accepts, by its documented rules (stripped, blanks dropped, duplicates
    merged; none with NUL; at least one, at most MAX_SELECTED_API_KEYS); None if it refuses them."""
    ids = list(dict.fromkeys(value.strip() for value in values if value.strip()))
    if not ids or any("\x00" in key_id for key_id in ids) or len(ids) > MAX_SELECTED_API_KEYS:
        return None
    return ids


def key_rows() -> dict:
    return {row["id"]: row for row in ApiKey.objects.values()}


@pytest.fixture
def form_world(users, make_user, make_api_key, file_realm, client_for):
    """The own-keys user's keys in every state, a key of a user of the same name in another realm,
    an administrator's key, and both users logged in."""
    own_keys = users["own_keys"]
    namesake = make_user("own_keys", "manage_own_api_key", realm=file_realm)
    keys = {
        "own active": make_api_key(own_keys, "own-active"),
        "own expired": make_api_key(own_keys, "own-expired", state="expired"),
        "own invalidated": make_api_key(own_keys, "own-invalidated", state="invalidated"),
        "namesake's": make_api_key(namesake, "namesake"),
        "admin's": make_api_key(users["api_key_admin"], "admins"),
    }
    return {
        "ids": {name: key.id for name, key in keys.items()},
        "own_keys": (client_for(own_keys), {"own active", "own expired", "own invalidated"}),
        # manage_api_key: any key of anyone.
        "api_key_admin": (client_for(users["api_key_admin"]), set(FORM_KEYS)),
    }


@FUZZ
@given(selection=selections(), caller=st.sampled_from(["own_keys", "api_key_admin"]))
def test_bulk_invalidation_form_invalidates_exactly_the_selected_keys_the_caller_may(
    form_world, selection, caller
):
    """A selected key the caller may invalidate is invalidated, and nothing else changes: every
    other key's every field, and the selected keys' but ``invalidated``."""
    browser, allowed = form_world[caller]
    key_ids = form_world["ids"]
    values = selection.values(key_ids)
    note(f"{caller} submits {len(values)} values: {values[:40]!r:.2000}")
    note(f"key ids: {key_ids}")

    def check():
        before, others_before = key_rows(), security_state()[1:]
        start = timezone.now()
        response = browser.post(
            "/app/management/security/api_keys/invalidate", {"id": values}, secure=True
        )
        after = key_rows()

        assert security_state()[1:] == others_before
        if len(values) > django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:
            assert response.status_code == 400, response.content[:300]
            assert after == before
            return
        assert response.status_code == 302, response.content[:300]
        accepted = expected_selection(values)
        chosen = {name for name in allowed if accepted and key_ids[name] in accepted}
        expected = {key_ids[name] for name in chosen if before[key_ids[name]]["invalidated"] is None}
        assert {key_id for key_id in after if after[key_id] != before[key_id]} == expected
        for key_id in expected:
            assert after[key_id]["invalidated"] >= start.replace(microsecond=0)
            assert {**after[key_id], "invalidated": None} == before[key_id]
        said = " ".join(str(message) for message in get_messages(response.wsgi_request))
        if expected:
            assert f"Invalidated {len(expected)} API key" in said, said

    in_savepoint(check)
