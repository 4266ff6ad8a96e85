"""Bad input never breaks the service (SPEC §7): generated requests get an error in the right shape
and status, never a 500, and a refused request changes nothing.

Schemathesis walks every operation of the OpenAPI document that ``/api/schema/`` serves and sends
what it generates from it (valid and invalid), in process, to the WSGI application over HTTPS as a
superuser's API key. Hypothesis then aims at the inputs the document cannot describe: the
``Authorization`` header itself, the create request's fields, and the bulk invalidation form.
Each example runs in a savepoint that is rolled back, so every example starts from the same state.
"""

import base64
import functools

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from accounts.models import Role, User
from apikeys.api.schema import HTTP_METHODS, generated_schema
from apikeys.credentials import encode_credential
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 25
# Fixed seeds: CI runs the same cases every time; raise the counts locally to search further.
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
    suppress_health_check=list(HealthCheck),
)
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


def state() -> tuple:
    """What a refused request must leave as it was."""
    return (
        ApiKey.objects.count(),
        ApiKey.objects.filter(invalidated__isnull=True).count(),
        User.objects.count(),
        User.objects.filter(enabled=True).count(),
        Role.objects.count(),
    )


# Elasticsearch answers a lookup of something absent with 404 and one of these, not an error.
NOT_FOUND_ANSWERS = ({}, {"found": False}, {"api_keys": []})


def is_error_body(path: str, status: int, body) -> bool:
    """Elasticsearch's error body, or Kibana's on ``/api/...``; a 405 is Elasticsearch's short form."""
    if not isinstance(body, dict):
        return False
    if status == 404 and body in NOT_FOUND_ANSWERS and not path.startswith("/api/"):
        return True
    if path.startswith("/api/"):
        return body.get("statusCode") == status and {"error", "message"} <= set(body)
    if body.get("status") != status:
        return False
    error = body.get("error")
    if status == 405:
        return isinstance(error, str)
    return isinstance(error, dict) and {"root_cause", "type", "reason"} <= set(error)


def in_savepoint(check):
    """Run one example and undo whatever it changed."""
    with transaction.atomic():
        check()
        transaction.set_rollback(True)


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
def superuser_credential(users, make_api_key, make_user, make_role):
    make_user("target", "manage_own_api_key")
    make_role("target_role", cluster=["monitor"])
    key = make_api_key(users["superuser"], "fuzz-session")
    make_api_key(users["own_keys"], "someone-elses")
    return encode_credential(key.id, key.secret)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_generated_requests_get_no_server_error_and_refusals_change_nothing(
    path, method, mode, superuser_credential, keep_the_test_connection_open
):
    """Positive cases follow the document; negative ones break it on purpose, field by field."""
    operation = api_schema()[path][method]
    headers = {"Authorization": f"ApiKey {superuser_credential}", "kbn-xsrf": "true"}
    ran = []

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        def check():
            before = state()
            response = case.call(base_url="https://localhost", headers=headers)
            ran.append(response.status_code)
            assert response.status_code < 500, (case.as_curl_command(), response.text)
            if response.status_code >= 400:
                assert is_error_body(path, response.status_code, response.json()), response.text
                assert state() == before, case.as_curl_command()

        in_savepoint(check)

    try:
        send()
    except Unsatisfiable:
        # The document constrains nothing here that a negative case could break.
        assert mode is schemathesis.GenerationMode.NEGATIVE and not ran
    print(f"{method} {path} ({mode.value}): {len(ran)} cases, statuses {sorted(set(ran))}")


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
    before = state()
    response = client.get(
        "/_security/api_key", secure=True, headers={"Authorization": f"{scheme} {value}"}
    )
    assert response.status_code in (400, 401, 429), response.content
    assert is_error_body("/_security/api_key", response.status_code, response.json())
    assert state() == before


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
        before = state()
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
            assert state() == before, body

    in_savepoint(check)


# ---------------------------------------------------------------------------------------------
# The bulk invalidation form

ODD_IDS = st.sampled_from(
    ["", "\u0000", "\x00" * 20, "ключ" * 5, "a" * 10_000, "' OR 1=1 --", "%00", "\ud800"]
)
ID_LISTS = st.one_of(
    st.lists(st.text(max_size=30) | ODD_IDS, max_size=30),
    st.integers(min_value=1_000, max_value=5_000).map(lambda size: [f"{n:020d}" for n in range(size)]),
)


def as_form_value(text: str) -> str:
    """What a browser can send: a lone surrogate is not encodable, so it arrives replaced."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@FUZZ
@given(ids=ID_LISTS, include_own=st.booleans(), include_others=st.booleans())
def test_any_bulk_invalidation_form_is_answered_without_a_server_error(
    client_for, users, make_api_key, ids, include_own, include_others
):
    def check():
        own = make_api_key(users["own_keys"], "own")
        others = make_api_key(users["api_key_admin"], "others")
        submitted = [*ids, *([own.id] if include_own else []), *([others.id] if include_others else [])]
        active_before = set(ApiKey.objects.filter(invalidated__isnull=True).values_list("id", flat=True))
        browser = client_for(users["own_keys"])

        response = browser.post(
            "/app/management/security/api_keys/invalidate",
            {"id": [as_form_value(value) for value in submitted]},
            secure=True,
        )

        assert response.status_code in (302, 400), response.content[:500]
        active_after = set(ApiKey.objects.filter(invalidated__isnull=True).values_list("id", flat=True))
        # Only the user's own key, and only if it was asked for, can have been invalidated.
        assert active_before - active_after <= ({own.id} if include_own else set())

    in_savepoint(check)
