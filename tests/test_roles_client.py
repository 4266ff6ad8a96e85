"""Bulk roles, the roles cache and application privileges in roles through the official
`elasticsearch` client's own methods against a real HTTPS server (SPEC §4); and a role change seen
by the very next request on another gunicorn worker, which is what clearing the roles cache
promises in Elasticsearch."""

import base64

import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch

from tests.server import start_keyward_server
from tests.test_throttling import connections_on_two_workers

pytestmark = pytest.mark.server

INVOICES = {"application": "invoices", "privileges": ["approve", "data:read/*"], "resources": ["invoice/*"]}
READER_PASSWORD = "roles-client-reader-1"


def connect(server, **credentials) -> Elasticsearch:
    return Elasticsearch(server.base_url, ca_certs=str(server.certfile), **credentials)


@pytest.fixture(scope="module")
def admin(keyward_server):
    client = connect(keyward_server, basic_auth=("elastic", keyward_server.password))
    created = client.security.create_api_key(name="roles-client-admin")
    client.close()
    client = connect(keyward_server, api_key=created["encoded"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def reader(keyward_server, admin):
    admin.security.put_role(name="roles-client-reader", cluster=["read_security"])
    admin.security.put_user(username="rita", password=READER_PASSWORD, roles=["roles-client-reader"])
    client = connect(keyward_server, basic_auth=("rita", READER_PASSWORD))
    yield client
    client.close()


def test_put_role_stores_application_privileges_and_get_role_shows_them(admin):
    admin.security.put_role(name="approver", applications=[INVOICES], description="Approves invoices")

    role = admin.security.get_role(name="approver")["approver"]

    assert role["applications"] == [INVOICES]
    assert role["description"] == "Approves invoices"


def test_bulk_put_role_reports_created_updated_noop_and_errors(admin):
    admin.security.put_role(name="bulk-kept", cluster=["monitor"])
    admin.security.put_role(name="bulk-changed", cluster=["monitor"])

    answer = admin.security.bulk_put_role(roles={
        "bulk-new": {"applications": [INVOICES]},
        "bulk-changed": {"cluster": ["manage"]},
        "bulk-kept": {"cluster": ["monitor"]},
        "bulk-bad": {"cluster": ["manage_securty"]},
    }, refresh="wait_for")

    assert answer.meta.status == 200
    assert answer["created"] == ["bulk-new"]
    assert (answer["updated"], answer["noop"]) == (["bulk-changed"], ["bulk-kept"])
    assert answer["errors"]["count"] == 1
    assert answer["errors"]["details"]["bulk-bad"]["type"] == "illegal_argument_exception"
    assert admin.security.get_role(name="bulk-new")["bulk-new"]["applications"] == [INVOICES]


def test_bulk_delete_role_reports_deleted_missing_and_refused_roles(admin):
    admin.security.bulk_put_role(roles={"gone-1": {"cluster": ["monitor"]}, "gone-2": {}})

    answer = admin.security.bulk_delete_role(names=["gone-1", "gone-2", "never", "superuser"])

    assert answer["deleted"] == ["gone-1", "gone-2"]
    assert answer["not_found"] == ["never"]
    reason = answer["errors"]["details"]["superuser"]["reason"]
    assert reason == "role [superuser] is reserved and cannot be deleted"


def test_clear_cached_roles_answers_in_the_nodes_shape(admin):
    answer = admin.security.clear_cached_roles(name="approver,bulk-new")

    assert answer["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    assert len(answer["nodes"]) == 1 and answer["cluster_name"]


def test_read_security_may_neither_bulk_write_roles_nor_clear_their_cache(reader):
    calls = [
        lambda: reader.security.bulk_put_role(roles={"nope": {"cluster": ["all"]}}),
        lambda: reader.security.bulk_delete_role(names=["approver"]),
        lambda: reader.security.clear_cached_roles(name="*"),
    ]
    for call in calls:
        with pytest.raises(AuthorizationException) as refused:
            call()
        assert refused.value.meta.status == 403
        assert refused.value.body["error"]["type"] == "security_exception"


def test_a_bad_application_name_is_the_clients_bad_request(admin):
    with pytest.raises(BadRequestError) as refused:
        admin.security.put_role(name="bad-app", applications=[{**INVOICES, "application": "in*voices"}])

    assert refused.value.body["error"]["type"] == "action_request_validation_exception"
    assert "only support trailing wildcards" in refused.value.body["error"]["reason"]


def test_a_role_change_is_seen_by_the_next_request_on_another_worker(tmp_path_factory):
    """Nothing derived from roles outlives a request: no worker needs telling that a role changed,
    before or after the roles cache is cleared."""
    with start_keyward_server(tmp_path_factory, WEB_CONCURRENCY="2") as server:
        admin_key = server.elastic_api_key("cross-worker-admin")
        (_, watcher_side), (_, admin_side) = connections_on_two_workers(server)
        rita = "Basic " + base64.b64encode(f"rita:{READER_PASSWORD}".encode()).decode()

        def as_admin(method, path, body=None) -> int:
            return server.request(admin_side, method, path, admin_key, body)[0]

        def rita_reads_roles() -> int:
            return server.request(watcher_side, "GET", "/_security/role/watcher", rita)[0]

        assert as_admin("PUT", "/_security/role/watcher", {"cluster": []}) == 200
        rita_user = {"password": READER_PASSWORD, "roles": ["watcher"]}
        assert as_admin("PUT", "/_security/user/rita", rita_user) == 200
        assert rita_reads_roles() == 403
        assert as_admin("PUT", "/_security/role/watcher", {"cluster": ["read_security"]}) == 200
        assert rita_reads_roles() == 200
        assert as_admin("POST", "/_security/role", {"roles": {"watcher": {"cluster": []}}}) == 200
        assert rita_reads_roles() == 403
        assert as_admin("POST", "/_security/role/watcher/_clear_cache") == 200
        assert rita_reads_roles() == 403
        watcher_side.close()
        admin_side.close()
