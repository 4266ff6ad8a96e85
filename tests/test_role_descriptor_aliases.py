"""Role descriptors everywhere accept Elasticsearch's ``index`` alias of ``indices`` and a
``description`` (SPEC §1, §4): create and get API key, PUT and GET role, the Kibana role API and the
role pages. The alias is kept as ``indices``; when both are given, the later one in the body counts,
as Elasticsearch's parser reads them."""

import base64
import json

import pytest

from accounts.models import Role
from accounts.privileges import validate_role_descriptor
from apikeys.models import ApiKey

pytestmark = pytest.mark.django_db

READ_LOGS = [{"names": ["logs-*"], "privileges": ["read"]}]
WRITE_METRICS = [{"names": ["metrics-*"], "privileges": ["write"]}]
ROLES_PAGE = "/app/management/security/roles"
PASSWORD = "alias-password-5521"
# The superuser over HTTP Basic: a key it created itself would be a derived key.
ELASTIC = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()


@pytest.fixture
def elastic(make_user):
    return make_user("elastic", roles=["superuser"], password=PASSWORD)


@pytest.fixture
def elastic_basic(elastic):
    return ELASTIC


def call(client, authorization, method, path, body=None, **headers):
    return client.generic(
        method, path, data=json.dumps(body) if body is not None else "", content_type="application/json",
        secure=True, headers={"Authorization": authorization, **headers},
    )


def test_the_validator_keeps_index_as_indices():
    descriptor = validate_role_descriptor("reader", {"index": READ_LOGS})

    assert descriptor["indices"] == [{**READ_LOGS[0], "allow_restricted_indices": False}]
    assert "index" not in descriptor


@pytest.mark.parametrize(
    ("body", "kept"),
    [({"indices": READ_LOGS, "index": WRITE_METRICS}, "metrics-*"),
     ({"index": WRITE_METRICS, "indices": READ_LOGS}, "logs-*")],
    ids=["index given last", "indices given last"],
)
def test_when_both_are_given_the_later_one_counts(body, kept):
    descriptor = validate_role_descriptor("both", body)

    assert [entry["names"] for entry in descriptor["indices"]] == [[kept]]


def test_index_entries_are_validated_like_indices_entries():
    with pytest.raises(Exception, match="missing required \\[privileges\\] field"):
        validate_role_descriptor("broken", {"index": [{"names": ["logs-*"]}]})


def test_a_description_longer_than_elasticsearchs_limit_is_refused():
    with pytest.raises(Exception, match="Role description must be less than 1000 characters."):
        validate_role_descriptor("long", {"description": "x" * 1001})


def test_create_api_key_accepts_index_and_description_and_get_shows_indices(client, elastic_basic):
    created = call(client, elastic_basic, "POST", "/_security/api_key", {
        "name": "aliased", "role_descriptors": {"reader": {"index": READ_LOGS, "description": "reads logs"}},
    })
    assert created.status_code == 200, created.content

    shown = call(client, elastic_basic, "GET", f"/_security/api_key?id={created.json()['id']}").json()
    reader = shown["api_keys"][0]["role_descriptors"]["reader"]
    assert reader["indices"][0]["names"] == ["logs-*"]
    assert reader["description"] == "reads logs"
    assert "index" not in reader


def test_put_role_accepts_index_and_description_and_get_role_shows_them(client, elastic_basic):
    put = call(client, elastic_basic, "PUT", "/_security/role/log_reader", {
        "index": READ_LOGS, "description": "Reads the logs",
    })
    assert put.status_code == 200, put.content

    role = call(client, elastic_basic, "GET", "/_security/role/log_reader").json()["log_reader"]
    assert role["indices"] == [{**READ_LOGS[0], "allow_restricted_indices": False}]
    assert role["description"] == "Reads the logs"
    assert "index" not in role


def test_a_role_without_a_description_shows_none(client, elastic_basic):
    call(client, elastic_basic, "PUT", "/_security/role/plain", {"cluster": ["monitor"]})

    assert "description" not in call(client, elastic_basic, "GET", "/_security/role/plain").json()["plain"]


def test_a_roles_description_travels_into_the_limited_by_of_its_holders_keys(make_user, make_api_key):
    holder = make_user("holder")
    role = Role.objects.create(name="described", cluster=["manage_own_api_key"], description="Watches")
    holder.roles.add(role)

    key = make_api_key(holder, "holders-key")

    assert ApiKey.objects.get(pk=key.id).limited_by["described"]["description"] == "Watches"


def test_kibana_role_api_stores_and_shows_the_description(client, elastic_basic):
    put = call(client, elastic_basic, "PUT", "/api/security/role/kibana_reader", {
        "description": "From Kibana", "elasticsearch": {"cluster": ["monitor"], "indices": [], "run_as": []},
        "kibana": [],
    }, **{"kbn-xsrf": "true"})
    assert put.status_code == 204, put.content

    role = call(client, elastic_basic, "GET", "/api/security/role/kibana_reader").json()
    assert role["description"] == "From Kibana"


def test_the_role_pages_edit_and_show_the_description(client, elastic):
    client.force_login(elastic)
    form = {
        "name": "paged", "description": "Made on the page", "cluster": ["monitor"], "other_cluster": "",
        "run_as": "", "metadata": "", "indices-TOTAL_FORMS": "0", "indices-INITIAL_FORMS": "0",
        "indices-MIN_NUM_FORMS": "0", "indices-MAX_NUM_FORMS": "100",
        "applications-TOTAL_FORMS": "0", "applications-INITIAL_FORMS": "0",
        "applications-MIN_NUM_FORMS": "0", "applications-MAX_NUM_FORMS": "100",
    }

    saved = client.post(f"{ROLES_PAGE}/create", form, secure=True)

    assert saved.status_code == 302, saved.content
    assert Role.objects.get(name="paged").description == "Made on the page"
    details = client.get(f"{ROLES_PAGE}/paged", secure=True).content.decode()
    assert 'id="role-description">Made on the page<' in details
    edit = client.get(f"{ROLES_PAGE}/paged/edit", secure=True).content.decode()
    assert 'value="Made on the page"' in edit
