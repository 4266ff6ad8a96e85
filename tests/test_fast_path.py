"""The authentication hot path (``restapi.fast_path``): ``GET /_security/_authenticate`` with a good
key is answered before DRF, with the very bytes and headers the view gives; every other request
reaches the view and is answered as before."""

import base64

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import AuditEvent
from apikeys.api.views import AuthenticateView

FAST_PATH = "restapi.fast_path.AuthenticationFastPathMiddleware"
URL = "/_security/_authenticate"
VENDOR = "application/vnd.elasticsearch+json"


def header(key) -> str:
    return "ApiKey " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()


@pytest.fixture
def key(make_user, make_api_key):
    owner = make_user("fast_owner", "manage_own_api_key")
    owner.full_name, owner.email, owner.metadata = "Fast Owner", "fast@example.com", {"team": "ünïcode"}
    owner.save()
    return make_api_key(owner, "fast-key", metadata={"purpose": "hot path"})


@pytest.fixture
def views_reached(monkeypatch):
    """How many requests reached the view's DRF dispatch."""
    reached = []
    dispatch = AuthenticateView.dispatch

    def counting(self, request, *args, **kwargs):
        reached.append(request.path)
        return dispatch(self, request, *args, **kwargs)

    monkeypatch.setattr(AuthenticateView, "dispatch", counting)
    return reached


def answer(client, method="get", path=URL, **extra):
    response = getattr(client, method)(path, **extra)
    return response.status_code, dict(response.headers), response.content


def without_fast_path(settings):
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != FAST_PATH]


def test_the_fast_path_sits_after_the_middleware_every_response_needs():
    position = settings.MIDDLEWARE.index(FAST_PATH)
    assert settings.MIDDLEWARE[:position] == [
        "metrics.middleware.RequestMetricsMiddleware",
        "config.proxies.TrustedProxyMiddleware",
        "django.middleware.security.SecurityMiddleware",
        # Answers the health probes only, and passes anything else straight on.
        "cluster.middleware.HealthProbeMiddleware",
        "apikeys.middleware.ApiKeyPurgeMiddleware",
        "django.middleware.csp.ContentSecurityPolicyMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", f"{VENDOR}; compatible-with=9", f"{VENDOR};compatible-with=8"],
)
def test_a_good_key_is_answered_without_the_view_and_exactly_as_the_view_answers(
    key, accept, views_reached, settings
):
    extra = {"HTTP_AUTHORIZATION": header(key)} | ({"HTTP_ACCEPT": accept} if accept else {})
    fast = answer(Client(), secure=True, **extra)
    assert views_reached == []
    assert fast[0] == 200

    without_fast_path(settings)
    assert answer(Client(), secure=True, **extra) == fast
    assert views_reached == [URL]


def test_the_answer_follows_a_change_to_the_key_or_its_owner(key, views_reached):
    client = Client()
    before = client.get(URL, secure=True, HTTP_AUTHORIZATION=header(key)).json()
    key.owner.full_name = "Renamed Owner"
    key.owner.save()
    after = client.get(URL, secure=True, HTTP_AUTHORIZATION=header(key)).json()
    assert (before["full_name"], after["full_name"]) == ("Fast Owner", "Renamed Owner")
    assert views_reached == []


@pytest.mark.parametrize(
    "case",
    [
        {"path": URL + "?pretty"},
        {"path": URL + "?filter_path=username"},
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": f"{VENDOR}; compatible-with=nine"},
        {"method": "head"},
        {"method": "post"},
        {"secure": False},
        {"wrong_secret": True},
        {"basic": True},
    ],
    ids=lambda case: ",".join(f"{name}={value}" for name, value in case.items()),
)
def test_every_other_request_reaches_the_view_and_gets_its_answer(
    key, case, views_reached, settings, make_user
):
    case = dict(case)
    if case.pop("wrong_secret", False):
        key.secret = key.secret[:-1] + ("A" if key.secret[-1] != "A" else "B")
    authorization = header(key)
    if case.pop("basic", False):
        make_user("fast_basic", "manage_own_api_key", password="fast-basic-password")
        authorization = "Basic " + base64.b64encode(b"fast_basic:fast-basic-password").decode()
    extra = {"secure": case.pop("secure", True), "HTTP_AUTHORIZATION": authorization, **case}
    audited = AuditEvent.objects.count()
    fast = answer(Client(), **extra)
    assert len(views_reached) == 1
    audit_rows = AuditEvent.objects.count() - audited

    without_fast_path(settings)
    assert answer(Client(), **extra) == fast
    # A refused key leaves its audit row once, from the view, as before.
    assert AuditEvent.objects.count() - audited == 2 * audit_rows


# ---------------------------------------------------------------------------------------------
# Forward authentication

FORWARD = "/_security/_forward_auth"


@pytest.fixture
def forward_views_reached(monkeypatch):
    from apikeys.api.forward_auth import ForwardAuthView

    reached = []
    dispatch = ForwardAuthView.dispatch

    def counting(self, request, *args, **kwargs):
        reached.append(request.get_full_path())
        return dispatch(self, request, *args, **kwargs)

    monkeypatch.setattr(ForwardAuthView, "dispatch", counting)
    return reached


@pytest.fixture
def reader_key(make_user, make_api_key):
    logs = [{"names": ["logs-*"], "privileges": ["read"]}]
    owner = make_user("forward_owner", "monitor", "manage_own_api_key", indices=logs)
    return make_api_key(owner, "forward-kéy")


@pytest.mark.parametrize("method", ["get", "head", "post", "delete"])
@pytest.mark.parametrize("query", ["", "?cluster=monitor", "?index=logs-2026:read&cluster=monitor"])
def test_forward_auth_with_a_good_key_is_answered_without_the_view_and_as_it_answers(
    reader_key, method, query, forward_views_reached, settings
):
    extra = {"HTTP_AUTHORIZATION": header(reader_key)}
    fast = answer(Client(), method, FORWARD + query, secure=True, **extra)
    assert forward_views_reached == []
    assert fast[0] == 200 and fast[1]["X-Keyward-Api-Key-Name"] == "forward-k%C3%A9y"

    without_fast_path(settings)
    assert answer(Client(), method, FORWARD + query, secure=True, **extra) == fast
    assert len(forward_views_reached) == 1


@pytest.mark.parametrize(
    "query",
    ["?cluster=manage_security", "?index=secrets:read", "?cluster=no_such_privilege", "?index=nocolon", "?x"],
)
def test_forward_auth_that_refuses_or_explains_reaches_the_view(
    reader_key, query, forward_views_reached, settings
):
    extra = {"HTTP_AUTHORIZATION": header(reader_key)}
    fast = answer(Client(), "get", FORWARD + query, secure=True, **extra)
    assert fast[0] in (400, 403)
    assert len(forward_views_reached) == 1

    without_fast_path(settings)
    assert answer(Client(), "get", FORWARD + query, secure=True, **extra) == fast
