"""Roles hold application privileges (SPEC §1, §4): ``applications: [{application, privileges,
resources}]`` is validated with Elasticsearch's rules for application names (a trailing ``*`` is
allowed in a role) and privilege names, stored, shown by GET role, and carried into the
``limited_by`` snapshot of the holder's API keys."""

import base64
import json

import pytest

from accounts.exceptions import RequestValidationFailed
from accounts.models import Role
from accounts.privileges import application_name_problem, validate_role_descriptor, validate_role_descriptors
from apikeys.models import ApiKey
from tests.snapshots import security_state

pytestmark = pytest.mark.django_db

PASSWORD = "applications-password-7731"
ELASTIC = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
KIBANA_READ = {"application": "kibana-.kibana", "privileges": ["read"], "resources": ["*"]}
MYAPP = {"application": "myapp", "privileges": ["admin", "data:read/*"], "resources": ["invoice/*", "report"]}


@pytest.fixture
def elastic(make_user):
    return make_user("elastic", roles=["superuser"], password=PASSWORD)


def call(client, method, path, body=None):
    return client.generic(
        method, path, data=json.dumps(body) if body is not None else "", content_type="application/json",
        secure=True, headers={"Authorization": ELASTIC},
    )


@pytest.mark.parametrize(
    "application", ["myapp", "kibana-.kibana", "app_1.2", "myapp*", "my*", "*", "myapp-*", "abcDEF9"]
)
def test_a_role_may_name_an_application_or_a_trailing_wildcard_pattern(application):
    assert application_name_problem(application, allow_wildcard=True) is None


@pytest.mark.parametrize(
    ("application", "problem"),
    [
        ("", "Application names cannot be blank"),
        ("my*app", "Application name patterns only support trailing wildcards (found 'my*app')"),
        ("my app", "Application names may not contain whitespace (found 'my app')"),
        ("MyApp", "An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found 'MyApp')"),
        ("1app", "An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ (found '1app')"),
        ("ab", "An application name prefix must be at least 3 characters long (found 'ab')"),
        ("ab-cd", "An application name prefix must be at least 3 characters long (found 'ab')"),
        ("app-a/b", "An application name suffix may not contain any of the characters"),
        ("app_a?b", "(found 'a?b')"),
    ],
)
def test_bad_application_names_are_refused_with_elasticsearchs_reason(application, problem):
    assert problem in application_name_problem(application, allow_wildcard=True)


def test_wildcards_are_refused_where_an_exact_application_name_is_needed():
    assert application_name_problem("myapp*", allow_wildcard=False) == (
        "Application names may not contain '*' (found 'myapp*')"
    )


def test_every_bad_name_of_a_descriptor_is_reported_numbered():
    descriptor = {"applications": [
        {"application": "ab", "privileges": ["read"], "resources": ["*"]},
        {"application": "myapp", "privileges": ["read data"], "resources": ["*"]},
    ]}

    with pytest.raises(RequestValidationFailed) as refused:
        validate_role_descriptor("bad", descriptor)

    assert refused.value.reason == (
        "Validation Failed: 1: An application name prefix must be at least 3 characters long (found 'ab');"
        "2: Application privilege names and actions must match the pattern ^\\p{Graph}*$ (found 'read data');"
    )


def test_api_key_role_descriptors_are_held_to_the_same_rules():
    with pytest.raises(RequestValidationFailed, match="only support trailing wildcards"):
        validate_role_descriptors({"r": {"applications": [{**MYAPP, "application": "my*app"}]}})


def test_put_role_stores_applications_and_get_role_shows_them(client, elastic):
    put = call(client, "PUT", "/_security/role/app_user", {"applications": [KIBANA_READ, MYAPP]})
    assert put.status_code == 200, put.content

    assert Role.objects.get(name="app_user").applications == [KIBANA_READ, MYAPP]
    shown = call(client, "GET", "/_security/role/app_user").json()["app_user"]
    assert shown["applications"] == [KIBANA_READ, MYAPP]
    assert list(shown) == [
        "cluster", "indices", "applications", "run_as", "metadata", "transient_metadata",
    ]


def test_replacing_a_role_without_applications_clears_them(client, elastic):
    call(client, "PUT", "/_security/role/app_user", {"applications": [MYAPP]})

    call(client, "PUT", "/_security/role/app_user", {"cluster": ["monitor"]})

    assert call(client, "GET", "/_security/role/app_user").json()["app_user"]["applications"] == []


def test_applications_travel_with_description_and_the_index_alias(client, elastic):
    body = {
        "index": [{"names": ["logs-*"], "privileges": ["read"]}], "applications": [MYAPP],
        "description": "Reads logs and invoices",
    }
    call(client, "PUT", "/_security/role/mixed", body)

    shown = call(client, "GET", "/_security/role/mixed").json()["mixed"]

    assert shown["applications"] == [MYAPP]
    assert shown["indices"][0]["names"] == ["logs-*"]
    assert shown["description"] == "Reads logs and invoices"


def test_a_bad_application_name_is_a_400_that_changes_nothing(client, elastic):
    call(client, "PUT", "/_security/role/app_user", {"applications": [MYAPP]})
    before = security_state()

    response = call(client, "PUT", "/_security/role/app_user", {
        "applications": [{"application": "Bad", "privileges": ["read"], "resources": ["*"]}],
    })

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "action_request_validation_exception"
    assert response.json()["error"]["reason"] == (
        "Validation Failed: 1: An application name prefix must match the pattern ^[a-z][A-Za-z0-9]*$ "
        "(found 'Bad');"
    )
    assert security_state() == before


def test_the_superuser_role_holds_every_application_privilege(client, elastic):
    shown = call(client, "GET", "/_security/role/superuser").json()["superuser"]

    assert shown["applications"] == [{"application": "*", "privileges": ["*"], "resources": ["*"]}]


def test_a_roles_applications_travel_into_the_limited_by_of_its_holders_keys(make_user, make_api_key):
    holder = make_user("holder")
    role = Role.objects.create(name="invoicing", cluster=["manage_own_api_key"], applications=[MYAPP])
    holder.roles.add(role)

    key = make_api_key(holder, "holders-key")

    assert ApiKey.objects.get(pk=key.id).limited_by["invoicing"]["applications"] == [MYAPP]


def test_get_api_key_shows_the_applications_of_limited_by(client, elastic):
    body = {"cluster": ["manage_own_api_key"], "applications": [MYAPP]}
    call(client, "PUT", "/_security/role/app_user", body)
    elastic.roles.add(Role.objects.get(name="app_user"))
    created = call(client, "POST", "/_security/api_key", {"name": "with-apps"}).json()

    shown = call(client, "GET", f"/_security/api_key?id={created['id']}&with_limited_by=true").json()

    assert shown["api_keys"][0]["limited_by"][0]["app_user"]["applications"] == [MYAPP]
