"""The official `elasticsearch` Python client, unmodified, against the real HTTPS server (SPEC §4).

The client checks the product header on its first successful answer and sends Elasticsearch's
compatible-with media types on every request; no compatibility flag is set here, so each call
that succeeds shows the server speaks the wire format the client expects.
"""

import time

import pytest
from elasticsearch import (
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
)

from tests.hashes import bcrypt_hash, es_pbkdf2_hash

pytestmark = pytest.mark.server

DAY_MS = 24 * 3600 * 1000
READ_ONLY_LOGS = {
    "logs-reader": {"cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}
}


def connect(server, **credentials) -> Elasticsearch:
    return Elasticsearch(server.base_url, ca_certs=str(server.certfile), **credentials)


@pytest.fixture(scope="module")
def elastic(keyward_server):
    """The `elastic` superuser, over HTTP Basic, as the client's own docs show."""
    client = connect(keyward_server, basic_auth=("elastic", keyward_server.password))
    yield client
    client.close()


@pytest.fixture(scope="module")
def admin(keyward_server, elastic):
    """The `elastic` superuser through one of its API keys: a cheap hash per request, not a password's."""
    created = elastic.security.create_api_key(name="client-admin")
    client = connect(keyward_server, api_key=created["encoded"])
    yield client
    client.close()


OWN_KEYS_PASSWORD = "own-keys-password-1"


@pytest.fixture(scope="module")
def own_keys_user(keyward_server, admin):
    """A native user whose only privilege is manage_own_api_key, over HTTP Basic."""
    admin.security.put_role(name="own-keys", cluster=["manage_own_api_key"])
    admin.security.put_user(username="kim", password=OWN_KEYS_PASSWORD, roles=["own-keys"], full_name="Kim")
    client = connect(keyward_server, basic_auth=("kim", OWN_KEYS_PASSWORD))
    yield client
    client.close()


def test_responses_carry_the_product_header_and_the_compatible_media_type(elastic):
    response = elastic.security.authenticate()

    assert response.meta.status == 200
    assert response.meta.headers["X-Elastic-Product"] == "Elasticsearch"
    # The client asked for application/vnd.elasticsearch+json; compatible-with=9 and got it.
    assert response.meta.headers["Content-Type"].startswith("application/vnd.elasticsearch+json")


def test_basic_auth_authenticates_the_elastic_superuser(elastic):
    me = elastic.security.authenticate()

    assert me["username"] == "elastic"
    assert "superuser" in me["roles"]
    assert me["authentication_type"] == "realm"
    assert me["authentication_realm"]["name"] == "default_native"
    assert "api_key" not in me


def test_created_key_authenticates_in_both_of_the_clients_api_key_forms(keyward_server, elastic):
    before = time.time() * 1000
    created = elastic.security.create_api_key(
        name="client-ingest",
        expiration="1d",
        role_descriptors=READ_ONLY_LOGS,
        metadata={"application": "ingest", "environment": {"tier": "production"}},
    )

    assert set(created) >= {"id", "name", "api_key", "encoded", "expiration"}
    assert created["name"] == "client-ingest"
    assert before + DAY_MS - 60_000 <= created["expiration"] <= time.time() * 1000 + DAY_MS + 60_000
    for credentials in (created["encoded"], (created["id"], created["api_key"])):
        with connect(keyward_server, api_key=credentials) as client:
            me = client.security.authenticate()
        assert me["username"] == "elastic"
        assert me["authentication_type"] == "api_key"
        assert me["api_key"] == {"id": created["id"], "name": "client-ingest"}


def test_get_api_key_filters_by_id_name_owner_realm_and_state(elastic, admin):
    first = elastic.security.create_api_key(name="client-get-one", metadata={"n": 1})
    second = elastic.security.create_api_key(name="client-get-two", role_descriptors=READ_ONLY_LOGS)
    gone = elastic.security.create_api_key(name="client-get-gone")
    admin.security.invalidate_api_key(ids=[gone["id"]])

    by_id = admin.security.get_api_key(id=first["id"])["api_keys"]
    by_wildcard = admin.security.get_api_key(name="client-get-*")["api_keys"]
    active = admin.security.get_api_key(name="client-get-*", active_only=True)["api_keys"]
    by_owner = admin.security.get_api_key(username="elastic", realm_name="default_native")["api_keys"]
    mine = admin.security.get_api_key(owner=True, name="client-get-*")["api_keys"]
    with_limited_by = admin.security.get_api_key(id=second["id"], with_limited_by=True)["api_keys"]

    assert [key["id"] for key in by_id] == [first["id"]]
    key = by_id[0]
    assert key["name"] == "client-get-one" and key["type"] == "rest"
    assert key["username"] == "elastic" and key["realm"] == "default_native" and key["realm_type"] == "native"
    assert key["invalidated"] is False and key["metadata"] == {"n": 1}
    assert isinstance(key["creation"], int) and "api_key" not in key
    assert {key["name"] for key in by_wildcard} == {"client-get-one", "client-get-two", "client-get-gone"}
    assert {key["name"] for key in active} == {"client-get-one", "client-get-two"}
    assert {first["id"], second["id"], gone["id"]} <= {key["id"] for key in by_owner}
    assert {key["name"] for key in mine} == {"client-get-one", "client-get-two", "client-get-gone"}
    descriptor = with_limited_by[0]["role_descriptors"]["logs-reader"]
    assert descriptor["cluster"] == ["monitor"]
    index = descriptor["indices"][0]
    assert (index["names"], index["privileges"]) == (["logs-*"], ["read"])
    assert "superuser" in with_limited_by[0]["limited_by"][0]


def test_query_api_keys_sorts_and_pages_with_search_after(elastic, admin):
    names = [f"client-query-{n}" for n in range(5)]
    for name in names:
        elastic.security.create_api_key(name=name, metadata={"batch": "query"})
    query = {
        "bool": {"filter": [{"prefix": {"name": "client-query-"}}, {"term": {"metadata.batch": "query"}}]}
    }

    first = admin.security.query_api_keys(query=query, sort=[{"name": {"order": "desc"}}], size=2)
    second = admin.security.query_api_keys(
        query=query, sort=[{"name": {"order": "desc"}}], size=2, search_after=first["api_keys"][-1]["_sort"]
    )
    everything = admin.security.query_api_keys(query={"wildcard": {"name": "client-query-*"}}, size=100)

    assert (first["total"], first["count"]) == (5, 2)
    assert [key["name"] for key in first["api_keys"]] == ["client-query-4", "client-query-3"]
    assert [key["name"] for key in second["api_keys"]] == ["client-query-2", "client-query-1"]
    assert second["count"] == 2
    assert first["api_keys"][0]["_sort"] == ["client-query-4"]
    assert {key["name"] for key in everything["api_keys"]} == set(names)


def test_query_api_keys_aggregates_with_typed_keys_as_the_client_sends_them(elastic, admin):
    for name, team in (("client-aggs-a", "red"), ("client-aggs-b", "red"), ("client-aggs-c", "blue")):
        elastic.security.create_api_key(name=name, expiration="1d", metadata={"team": team})
    query = {"prefix": {"name": "client-aggs-"}}

    plain = admin.security.query_api_keys(
        query=query, size=0,
        aggs={"teams": {"terms": {"field": "metadata.team"}, "aggs": {"owners": {"cardinality": {
            "field": "username"}}}}, "expiring": {"date_range": {"field": "expiration", "ranges": [
                {"from": "now", "to": "now+2d"}]}}},
    )
    typed = admin.security.query_api_keys(
        query=query, size=0, typed_keys=True, aggregations={"teams": {"terms": {"field": "metadata.team"}}},
    )

    assert (plain["total"], plain["count"], plain["api_keys"]) == (3, 0, [])
    teams = plain["aggregations"]["teams"]["buckets"]
    assert [(team["key"], team["doc_count"], team["owners"]["value"]) for team in teams] == [
        ("red", 2, 1), ("blue", 1, 1)
    ]
    assert plain["aggregations"]["expiring"]["buckets"][0]["doc_count"] == 3
    assert [team["key"] for team in typed["aggregations"]["sterms#teams"]["buckets"]] == ["red", "blue"]


def test_query_api_keys_takes_a_simple_query_string(elastic, admin):
    elastic.security.create_api_key(name="client-sqs-alpha", metadata={"owner-team": "platform"})
    elastic.security.create_api_key(name="client-sqs-beta", metadata={"owner-team": "search"})

    by_name = admin.security.query_api_keys(
        query={"simple_query_string": {"query": "client-sqs-* -client-sqs-beta", "fields": ["name"],
                                       "default_operator": "and"}}
    )
    anywhere = admin.security.query_api_keys(query={"simple_query_string": {"query": "platform"}})

    assert [key["name"] for key in by_name["api_keys"]] == ["client-sqs-alpha"]
    assert [key["name"] for key in anywhere["api_keys"]] == ["client-sqs-alpha"]


def test_query_api_keys_refuses_an_aggregation_elasticsearch_refuses(admin):
    with pytest.raises(BadRequestError) as refused:
        admin.security.query_api_keys(aggs={"age": {"avg": {"field": "creation"}}})

    assert refused.value.meta.status == 400
    assert refused.value.body["error"]["reason"] == "Unsupported API Keys agg [age] of type [avg]"


def test_invalidated_key_is_refused_on_its_very_next_request(keyward_server, elastic, admin):
    created = elastic.security.create_api_key(name="client-invalidate")
    with connect(keyward_server, api_key=created["encoded"]) as client:
        assert client.security.authenticate()["api_key"]["id"] == created["id"]

        result = admin.security.invalidate_api_key(ids=[created["id"]])

        with pytest.raises(AuthenticationException) as refused:
            client.security.authenticate()
    assert result["invalidated_api_keys"] == [created["id"]]
    assert result["previously_invalidated_api_keys"] == []
    assert result["error_count"] == 0
    assert refused.value.meta.status == 401
    assert refused.value.body["error"]["type"] == "security_exception"
    again = admin.security.invalidate_api_key(ids=[created["id"]])
    assert again["previously_invalidated_api_keys"] == [created["id"]]


def test_has_privileges_evaluates_the_key_intersected_with_its_owner(keyward_server, elastic, admin):
    created = elastic.security.create_api_key(name="client-privileges", role_descriptors=READ_ONLY_LOGS)

    with connect(keyward_server, api_key=created["encoded"]) as client:
        answer = client.security.has_privileges(
            cluster=["monitor", "manage_security"],
            index=[{"names": ["logs-2026"], "privileges": ["read", "write"]}],
        )
    as_elastic = admin.security.has_privileges(cluster=["manage_security"])

    assert answer["has_all_requested"] is False
    assert answer["cluster"] == {"monitor": True, "manage_security": False}
    assert answer["index"] == {"logs-2026": {"read": True, "write": False}}
    assert answer["username"] == "elastic"
    assert as_elastic["has_all_requested"] is True


def test_roles_are_created_read_and_deleted(admin):
    created = admin.security.put_role(
        name="client-role",
        cluster=["monitor", "manage_own_api_key"],
        indices=[{"names": ["metrics-*"], "privileges": ["read", "view_index_metadata"]}],
        metadata={"owner": "ops"},
    )
    updated = admin.security.put_role(name="client-role", cluster=["monitor"])
    fetched = admin.security.get_role(name="client-role")
    every_role = admin.security.get_role()
    deleted = admin.security.delete_role(name="client-role")

    assert created["role"] == {"created": True}
    assert updated["role"] == {"created": False}
    assert fetched["client-role"]["cluster"] == ["monitor"]
    assert {"superuser", "client-role"} <= set(every_role)
    assert deleted == {"found": True}
    with pytest.raises(NotFoundError):
        admin.security.get_role(name="client-role")


def test_users_are_created_read_and_deleted(admin):
    created = admin.security.put_user(
        username="client-user",
        password="client-user-password",
        roles=["superuser"],
        full_name="Client User",
        email="client@example.com",
        metadata={"team": "ops"},
    )
    fetched = admin.security.get_user(username="client-user")
    every_user = admin.security.get_user()
    deleted = admin.security.delete_user(username="client-user")

    assert created == {"created": True}
    user = fetched["client-user"]
    assert (user["full_name"], user["email"]) == ("Client User", "client@example.com")
    assert user["roles"] == ["superuser"] and user["metadata"] == {"team": "ops"} and user["enabled"] is True
    assert "password" not in user
    assert {"elastic", "client-user"} <= set(every_user)
    assert deleted == {"found": True}
    with pytest.raises(NotFoundError):
        admin.security.get_user(username="client-user")


def test_manage_own_api_key_user_neither_sees_nor_invalidates_someone_elses_key(
    keyward_server, elastic, own_keys_user
):
    others = elastic.security.create_api_key(name="client-not-kims")
    kims = own_keys_user.security.create_api_key(name="client-kims")

    listed = own_keys_user.security.get_api_key()["api_keys"]
    with pytest.raises(NotFoundError) as hidden:
        own_keys_user.security.get_api_key(id=others["id"])
    with pytest.raises(AuthorizationException):
        own_keys_user.security.get_api_key(username="elastic", realm_name="default_native")
    queried = own_keys_user.security.query_api_keys(size=100)["api_keys"]
    result = own_keys_user.security.invalidate_api_key(ids=[others["id"], kims["id"]])

    assert {key["username"] for key in listed} == {"kim"}
    assert "client-kims" in {key["name"] for key in listed}
    assert hidden.value.body == {"api_keys": []}
    assert {key["username"] for key in queried} == {"kim"}
    assert result["invalidated_api_keys"] == [kims["id"]]
    assert result["error_count"] == 1
    assert others["id"] in str(result["error_details"])
    with connect(keyward_server, api_key=others["encoded"]) as client:
        assert client.security.authenticate()["api_key"]["id"] == others["id"]


def test_a_key_with_manage_own_api_key_acts_on_itself_only(keyward_server, own_keys_user):
    sibling = own_keys_user.security.create_api_key(name="kim-sibling")
    session = own_keys_user.security.create_api_key(name="kim-session")

    with connect(keyward_server, api_key=session["encoded"]) as key:
        itself = key.security.get_api_key(id=session["id"])["api_keys"]
        queried = key.security.query_api_keys(size=100)["api_keys"]
        for refused in (
            key.security.get_api_key,
            lambda: key.security.get_api_key(owner=True),
            lambda: key.security.get_api_key(id=sibling["id"]),
            lambda: key.security.invalidate_api_key(ids=[sibling["id"]]),
        ):
            with pytest.raises(AuthorizationException) as denied:
                refused()
            assert f"API key id [{session['id']}] of user [kim]" in denied.value.body["error"]["reason"]
        with pytest.raises(BadRequestError) as derived:
            key.security.create_api_key(name="kim-child")
        child = key.security.create_api_key(name="kim-child", role_descriptors={"none": {}})
        invalidated = key.security.invalidate_api_key(ids=[session["id"]])

    assert [item["name"] for item in itself] == ["kim-session"]
    assert [item["name"] for item in queried] == ["kim-session"]
    assert "requires an explicit role descriptor that is empty" in derived.value.body["error"]["reason"]
    assert invalidated["invalidated_api_keys"] == [session["id"]]
    with connect(keyward_server, api_key=child["encoded"]) as client:
        answer = client.security.has_privileges(cluster=["manage_own_api_key", "monitor"])
        assert answer["has_all_requested"] is False
        assert answer["cluster"] == {"manage_own_api_key": False, "monitor": False}
    assert own_keys_user.security.get_api_key(id=sibling["id"])["api_keys"][0]["invalidated"] is False


def test_grant_api_key_makes_a_key_for_a_user_who_proves_themselves(keyward_server, admin, own_keys_user):
    granted = admin.security.grant_api_key(
        grant_type="password", username="kim", password=OWN_KEYS_PASSWORD,
        api_key={"name": "granted-for-kim", "expiration": "1d"}, refresh="wait_for",
    )

    assert granted.meta.headers["Cache-Control"] == "no-store"
    assert {"id", "name", "api_key", "encoded", "expiration"} <= set(granted)
    with connect(keyward_server, api_key=granted["encoded"]) as as_kim:
        me = as_kim.security.authenticate()
    assert (me["username"], me["api_key"]["id"]) == ("kim", granted["id"])
    with pytest.raises(AuthenticationException) as refused:
        admin.security.grant_api_key(
            grant_type="password", username="kim", password="not " + OWN_KEYS_PASSWORD,
            api_key={"name": "not-granted"},
        )
    assert refused.value.body["error"]["reason"] == (
        "unable to authenticate user [kim] for action [cluster:admin/xpack/security/api_key/grant]"
    )
    with pytest.raises(AuthorizationException):
        own_keys_user.security.grant_api_key(
            grant_type="password", username="kim", password=OWN_KEYS_PASSWORD, api_key={"name": "self"}
        )


def test_clear_api_key_cache_answers_every_node_cleared(admin):
    key_id = admin.security.create_api_key(name="to-forget", role_descriptors={"none": {}})["id"]

    for ids in ("*", [key_id, "AAAAAAAAAAAAAAAAAAAA"]):
        cleared = admin.security.clear_api_key_cache(ids=ids)

        assert cleared["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
        assert cleared["cluster_name"] and len(cleared["nodes"]) == 1
def test_update_api_key_changes_what_the_key_may_do_on_its_very_next_request(
    keyward_server, elastic, admin, own_keys_user
):
    created = elastic.security.create_api_key(name="client-update", role_descriptors=READ_ONLY_LOGS)
    writer = {"logs-writer": {"indices": [{"names": ["logs-*"], "privileges": ["write"]}]}}
    asked = {"index": [{"names": ["logs-2026"], "privileges": ["write"]}]}

    with connect(keyward_server, api_key=created["encoded"]) as key:
        before = key.security.has_privileges(**asked)["has_all_requested"]
        updated = elastic.security.update_api_key(
            id=created["id"], role_descriptors=writer, metadata={"owner": "ops"}, expiration="2d"
        )
        after = key.security.has_privileges(**asked)["has_all_requested"]
        # Without manage_own_api_key the key is denied before Elasticsearch's rule is even asked.
        with pytest.raises(AuthorizationException):
            key.security.update_api_key(id=created["id"], metadata={"by": "itself"})
    unchanged = elastic.security.update_api_key(id=created["id"])
    with pytest.raises(BadRequestError) as through_a_key:
        admin.security.update_api_key(id=created["id"], metadata={"by": "admin key"})
    with pytest.raises(NotFoundError) as not_kims:
        own_keys_user.security.update_api_key(id=created["id"], metadata={"by": "kim"})

    assert (before, updated.body, after) == (False, {"updated": True}, True)
    assert unchanged.body == {"updated": False}
    [shown] = admin.security.get_api_key(id=created["id"])["api_keys"]
    assert (shown["name"], shown["metadata"], list(shown["role_descriptors"])) == (
        "client-update", {"owner": "ops"}, ["logs-writer"]
    )
    assert abs(shown["expiration"] - time.time() * 1000 - 2 * DAY_MS) < 60_000
    assert "only the owner user can update an API key" in through_a_key.value.body["error"]["reason"]
    assert not_kims.value.body["error"]["type"] == "resource_not_found_exception"


def test_bulk_update_api_keys_reports_updated_keys_noops_and_errors(elastic, admin):
    one = elastic.security.create_api_key(name="client-bulk-one")
    two = elastic.security.create_api_key(name="client-bulk-two")
    gone = elastic.security.create_api_key(name="client-bulk-gone")
    admin.security.invalidate_api_key(ids=[gone["id"]])
    ids = [one["id"], two["id"], gone["id"]]

    first = elastic.security.bulk_update_api_keys(ids=ids, metadata={"batch": 1})
    second = elastic.security.bulk_update_api_keys(ids=ids[:2], metadata={"batch": 1})

    assert (first["updated"], first["noops"]) == (ids[:2], [])
    assert first["errors"]["count"] == 1
    assert first["errors"]["details"][gone["id"]]["type"] == "illegal_argument_exception"
    assert second.body == {"updated": [], "noops": ids[:2]}
    keys = admin.security.get_api_key(name="client-bulk-*")["api_keys"]
    metadata = {key["id"]: key["metadata"] for key in keys}
    assert metadata == {one["id"]: {"batch": 1}, two["id"]: {"batch": 1}, gone["id"]: {}}


def test_query_role_finds_stored_roles_by_application_sorted_and_paged(elastic, admin):
    for number in (1, 2, 3):
        admin.security.put_role(
            name=f"client-qr-{number}",
            description=f"Query role number {number}",
            applications=[{"application": f"qrapp{number}9", "privileges": ["read"], "resources": ["*"]}],
            metadata={"batch": "query-role"},
        )
    body = {"query": {"bool": {"filter": [{"wildcard": {"applications.application": "qrapp*9"}}]}}}
    first = admin.security.query_role(**body, sort=[{"name": "desc"}], size=2)
    assert (first["total"], first["count"]) == (3, 2)
    assert [role["name"] for role in first["roles"]] == ["client-qr-3", "client-qr-2"]
    assert first["roles"][0]["applications"][0]["application"] == "qrapp39"
    after = first["roles"][-1]["_sort"]
    rest = admin.security.query_role(**body, sort=[{"name": "desc"}], search_after=after)
    assert [role["name"] for role in rest["roles"]] == ["client-qr-1"]
    worded = elastic.security.query_role(
        query={"match": {"description": {"query": "NUMBER 2", "operator": "and"}}}, from_=0
    )
    assert [role["name"] for role in worded["roles"]] == ["client-qr-2"]
    with pytest.raises(BadRequestError) as refused:
        admin.security.query_role(query={"term": {"cluster": "all"}})
    reason = refused.value.body["error"]["reason"]
    assert reason == "Field [cluster] is not allowed for querying or aggregation"


def test_query_user_finds_native_users_by_role_and_leaves_out_elastic(elastic, admin):
    admin.security.put_role(name="client-qu-role", cluster=["monitor"])
    for name in ("client-qu-a", "client-qu-b"):
        admin.security.put_user(username=name, password="query-user-pw-1", roles=["client-qu-role"],
                                full_name=f"Query {name[-1].upper()}")
    found = admin.security.query_user(
        query={"wildcard": {"roles": "client-qu-*"}}, sort=[{"username": {"order": "desc"}}], from_=1, size=1,
        with_profile_uid=True,
    )
    assert (found["total"], found["count"]) == (2, 1)
    assert found["users"][0]["username"] == "client-qu-a"
    assert found["users"][0]["roles"] == ["client-qu-role"]
    assert found["users"][0]["_sort"] == ["client-qu-a"]
    assert admin.security.query_user(query={"term": {"username": "elastic"}})["total"] == 0
    with pytest.raises(BadRequestError) as refused:
        elastic.security.query_user(sort=["full_name"])
    assert refused.value.body["error"]["reason"] == "sorting is not supported for field [full_name]"


def test_a_role_named_before_it_exists_takes_effect_once_put(keyward_server, admin):
    admin.security.put_user(
        username="client-late", password="client-late-password", roles=["client-late-role"]
    )
    late = connect(keyward_server, basic_auth=("client-late", "client-late-password"))
    try:
        shown = admin.security.get_user(username="client-late")["client-late"]["roles"]
        me = late.security.authenticate()
        with pytest.raises(AuthorizationException):
            late.security.get_role()

        admin.security.put_role(name="client-late-role", cluster=["read_security"])

        assert "client-late-role" in late.security.get_role()
    finally:
        late.close()
        admin.security.delete_user(username="client-late")
        admin.security.delete_role(name="client-late-role")
    assert shown == me["roles"] == ["client-late-role"]


def test_a_user_put_with_a_password_hash_authenticates_with_basic(keyward_server, admin):
    password_hash = bcrypt_hash("client-hashed-password")
    created = admin.security.put_user(username="client-hashed", password_hash=password_hash, roles=[])
    hashed = connect(keyward_server, basic_auth=("client-hashed", "client-hashed-password"))
    try:
        me = hashed.security.authenticate()
        with pytest.raises(BadRequestError) as both:
            admin.security.change_password(
                username="client-hashed", password="client-other-password", password_hash=password_hash
            )
        changed = admin.security.change_password(
            username="client-hashed", password_hash=es_pbkdf2_hash("client-other-password", stretch=True)
        )
        with pytest.raises(AuthenticationException):
            hashed.security.authenticate()
    finally:
        hashed.close()
        admin.security.delete_user(username="client-hashed")
    assert created == {"created": True} and me["username"] == "client-hashed"
    assert both.value.body["error"]["reason"] == "Validation Failed: 1: password_hash has already been set;"
    assert changed.body == {}
    assert password_hash not in str(admin.security.get_user().body)


def test_get_user_takes_a_list_of_names_and_answers_those_that_exist(admin):
    admin.security.put_user(username="client-one", password="client-one-password", roles=[])
    try:
        found = admin.security.get_user(username=["client-one", "elastic", "client-nobody"])
        with pytest.raises(NotFoundError) as none:
            admin.security.get_user(username=["client-nobody", "client-nobody-either"])
    finally:
        admin.security.delete_user(username="client-one")
    assert set(found) == {"client-one", "elastic"}
    assert none.value.body == {}


def test_put_user_accepts_its_own_username_in_the_body_and_refuses_another(admin):
    body = {"username": "client-named", "password": "client-named-password", "roles": []}
    try:
        created = admin.security.put_user(username="client-named", body=body)
        with pytest.raises(BadRequestError) as other:
            admin.security.put_user(username="client-named", body={**body, "username": "client-renamed"})
    finally:
        admin.security.delete_user(username="client-named")
    assert created == {"created": True}
    assert other.value.body["error"]["reason"] == (
        "[username] in source does not match the username provided [client-named]"
    )
CLIENT_APP = {"clientapp": {"read": {"actions": ["data:read/*"]}, "write": {"actions": ["data:write/*"]}}}
READ_CLIENT_APP = {"application": "clientapp", "privileges": ["read"], "resources": ["*"]}


def test_application_privileges_are_put_read_checked_and_deleted_through_the_client(
    keyward_server, elastic, admin
):
    put = admin.security.put_privileges(privileges=CLIENT_APP)
    assert put.body == {"clientapp": {"read": {"created": True}, "write": {"created": True}}}
    assert admin.security.get_privileges(application="clientapp", name="read")["clientapp"]["read"] == {
        "application": "clientapp", "name": "read", "actions": ["data:read/*"], "metadata": {},
    }
    assert sorted(admin.security.get_privileges(application="clientapp")["clientapp"]) == ["read", "write"]
    assert "clientapp" in admin.security.get_privileges()
    assert admin.security.clear_cached_privileges(application="clientapp")["_nodes"]["failed"] == 0
    builtin = admin.security.get_builtin_privileges()
    assert "manage_security" in builtin["cluster"] and "read" in builtin["index"]

    reader = elastic.security.create_api_key(
        name="clientapp-reader", role_descriptors={"reader": {"applications": [READ_CLIENT_APP]}}
    )
    with connect(keyward_server, api_key=reader["encoded"]) as key:
        asked = {**READ_CLIENT_APP, "privileges": ["read", "write"], "resources": ["doc/1"]}
        answer = key.security.has_privileges(application=[asked])
        assert answer["application"] == {"clientapp": {"doc/1": {"read": True, "write": False}}}
        with pytest.raises(BadRequestError):
            key.security.get_user_privileges()
        with pytest.raises(AuthorizationException):
            key.security.delete_privileges(application="clientapp", name="read")

    mine = admin.security.get_user_privileges()
    assert {"cluster", "global", "indices", "applications", "run_as"} <= set(mine.body)
    deleted = admin.security.delete_privileges(application="clientapp", name="read,write")
    assert deleted.body == {"clientapp": {"read": {"found": True}, "write": {"found": True}}}
    with pytest.raises(NotFoundError):
        admin.security.get_privileges(application="clientapp")
# ---------------------------------------------------------------------------------------------
# Access tokens: get_token, bearer_auth=, refresh, invalidate_token, grant with an access token

TOKEN_USER_PASSWORD = "token-user-password-1"


@pytest.fixture(scope="module")
def token_user(admin):
    """A user who may read the logs, and nothing about security."""
    admin.security.put_role(name="logs-reader", cluster=["monitor"],
                            indices=[{"names": ["logs-*"], "privileges": ["read"]}])
    admin.security.put_user(username="tess", password=TOKEN_USER_PASSWORD, roles=["logs-reader"])
    return "tess"


def tokens_of(client, username):
    return client.security.get_token(grant_type="password", username=username, password=TOKEN_USER_PASSWORD)


def test_a_token_from_get_token_authenticates_the_client_as_its_user(
    keyward_server, elastic, token_user
):
    minted = tokens_of(elastic, token_user)

    assert minted["type"] == "Bearer" and minted["expires_in"] == 1200
    assert minted["authentication"]["username"] == token_user
    with connect(keyward_server, bearer_auth=minted["access_token"]) as tess:
        me = tess.security.authenticate()
        assert (me["username"], me["authentication_type"]) == (token_user, "token")
        assert tess.security.has_privileges(index=[{"names": ["logs-1"], "privileges": ["read"]}])[
            "has_all_requested"
        ]


def test_an_invalidated_token_fails_on_the_very_next_request_to_any_worker(
    keyward_server, elastic, token_user
):
    minted = tokens_of(elastic, token_user)
    with connect(keyward_server, bearer_auth=minted["access_token"]) as tess:
        # Every worker has served the token (each request goes to whichever worker accepts it).
        for _ in range(8):
            tess.security.authenticate()

        invalidated = elastic.security.invalidate_token(token=minted["access_token"])

        assert (invalidated["invalidated_tokens"], invalidated["previously_invalidated_tokens"]) == (1, 0)
        for _ in range(8):
            with pytest.raises(AuthenticationException) as refused:
                tess.security.authenticate()
            assert refused.value.body["error"]["reason"] == "token expired"


def test_a_refresh_token_refreshes_once_and_again_within_the_grace_window(
    keyward_server, elastic, token_user
):
    minted = tokens_of(elastic, token_user)

    refreshed = elastic.security.get_token(grant_type="refresh_token", refresh_token=minted["refresh_token"])
    again = elastic.security.get_token(grant_type="refresh_token", refresh_token=minted["refresh_token"])

    assert refreshed["access_token"] != minted["access_token"]
    assert again["access_token"] == refreshed["access_token"]
    assert again["refresh_token"] == refreshed["refresh_token"]
    with connect(keyward_server, bearer_auth=refreshed["access_token"]) as tess:
        assert tess.security.authenticate()["username"] == token_user
    elastic.security.invalidate_token(refresh_token=minted["refresh_token"])
    with pytest.raises(BadRequestError) as refused:
        elastic.security.get_token(grant_type="refresh_token", refresh_token=minted["refresh_token"])
    assert refused.value.body == {"error": "invalid_grant", "error_description": "token has been invalidated"}


def test_client_credentials_and_invalidation_by_username(
    keyward_server, elastic, token_user
):
    own = elastic.security.get_token(grant_type="client_credentials")
    tess = tokens_of(elastic, token_user)

    assert "refresh_token" not in own
    invalidated = elastic.security.invalidate_token(username=token_user)

    assert invalidated["invalidated_tokens"] >= 1 and invalidated["error_count"] == 0
    with connect(keyward_server, bearer_auth=tess["access_token"]) as client:
        with pytest.raises(AuthenticationException):
            client.security.authenticate()
    with connect(keyward_server, bearer_auth=own["access_token"]) as client:
        assert client.security.authenticate()["username"] == "elastic"


def test_grant_api_key_with_an_access_token_makes_the_key_for_the_tokens_user(
    keyward_server, elastic, token_user
):
    minted = tokens_of(elastic, token_user)

    granted = elastic.security.grant_api_key(
        grant_type="access_token", access_token=minted["access_token"], api_key={"name": "granted-by-token"}
    )

    with connect(keyward_server, api_key=granted["encoded"]) as key:
        me = key.security.authenticate()
    assert (me["username"], me["api_key"]["name"]) == (token_user, "granted-by-token")


def test_get_token_without_manage_token_is_forbidden(own_keys_user):
    with pytest.raises(AuthorizationException) as refused:
        own_keys_user.security.get_token(grant_type="client_credentials")

    assert "[manage_token,manage_security,all]" in refused.value.body["error"]["reason"]
