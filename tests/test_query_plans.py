"""The hot paths keep their plans: each list query walks an index in display order and stops after
one page, the purge reads due keys from its index, and authentication reads one row.

At a million keys a wrong index costs seconds (docs/benchmarks.md): SQLite's planner has no
statistics about how many keys are invalidated, and once took the ``invalidated`` index for
``invalidated IS NULL`` and sorted every listed key for each page. Its plans depend on the schema
and the query alone, so a small table shows the plan a large one gets. PostgreSQL plans by
statistics, which a test table cannot stand for: there the benchmarks are the check.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apikeys.credentials import encode_credential
from apikeys.models import ApiKey
from tests.test_ui_api_keys import LIST

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL plans by statistics; bench/ measures it at scale"
)
# How the query that picks a page's keys begins: the ids alone, in the table's order; the rows
# and their owners follow by primary key (apikeys.tables.RowsByIds).
PAGE_QUERY = 'SELECT "apikeys_apikey"."id" AS "pk" FROM "apikeys_apikey"'
ROWS_QUERY = 'SELECT "apikeys_apikey"."id", "apikeys_apikey"."name"'


def plan(sql: str, params=()) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(row[-1] for row in cursor.fetchall())


def page_query_plans(client, params: dict) -> list[str]:
    """The plans of the queries that read the page's keys: one, or one per index range an order
    is read as (apikeys.tables.ApiKeyTable.parts) until the page is full."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST, params, secure=True).status_code == 200
    pages = [query["sql"] for query in queries.captured_queries if query["sql"].startswith(PAGE_QUERY)]
    assert pages
    return [plan(page) for page in pages]


def page_query_plan(client, params: dict) -> str:
    (shown,) = page_query_plans(client, params)
    return shown


@pytest.fixture
def admin_client(users, make_api_key, client_for):
    for number in range(25):
        make_api_key(users["own_keys"], f"key-{number}")
    return client_for(users["superuser"])


def walks(index: str, shown: str) -> bool:
    return f"USING INDEX {index} " in f"{shown} " or f"USING COVERING INDEX {index} " in f"{shown} "


@sqlite_only
@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({}, "apikey_listed"),
        ({"page": "2", "per_page": "10"}, "apikey_listed"),
        ({"q": "key"}, "apikey_listed"),
        ({"status": "expired"}, "apikey_listed"),
        ({"status": "active"}, "apikey_listed"),
        ({"unused": "30"}, "apikey_listed"),
        ({"sort": "expiration"}, "apikey_listed_expiration"),
        ({"sort": "-expiration"}, "apikey_listed_expiration"),
        ({"sort": "status"}, "apikey_listed_expiration"),
        ({"sort": "-status"}, "apikey_listed_expiration"),
        ({"sort": "last_used"}, "apikey_listed_last_used"),
        ({"sort": "-last_used"}, "apikey_listed_last_used"),
        ({"status": "invalidated"}, "apikey_created"),
        ({"status": "all"}, "apikey_created"),
        ({"owner": "own_keys"}, "apikey_owner_created"),
    ],
)
def test_each_list_query_walks_its_index_in_display_order(admin_client, params, index):
    for shown in page_query_plans(admin_client, params):
        assert walks(index, shown), shown
        assert "TEMP B-TREE" not in shown, shown


@sqlite_only
@pytest.mark.parametrize("status", ["all", "invalidated"])
def test_the_status_order_reads_invalidated_keys_from_their_expiration_index(admin_client, status):
    for shown in page_query_plans(admin_client, {"status": status, "sort": "-status"}):
        indexes = ("apikey_listed_expiration", "apikey_invalidated_expiration")
        assert any(walks(index, shown) for index in indexes), shown
        assert "TEMP B-TREE" not in shown, shown


@sqlite_only
def test_the_realm_filter_walks_the_realm_index_sorting_only_keys_created_together(admin_client):
    """The index ends its order at created, without the id that breaks ties: SQLite sorts each
    run of equal times, and stops after a page."""
    shown = page_query_plan(admin_client, {"realm": "default_native"})
    assert walks("apikey_realm_created", shown), shown
    assert "TEMP B-TREE FOR ORDER BY" not in shown, shown


@sqlite_only
@pytest.mark.parametrize("sort", ["owner", "-owner"])
def test_the_owner_order_walks_owners_by_username_then_each_owners_keys(admin_client, sort):
    """Only one owner's keys at a time are put in order (those sharing a lowercased username)."""
    shown = page_query_plan(admin_client, {"sort": sort})
    assert shown.startswith("SEARCH accounts_user USING INDEX user_username_lower"), shown
    assert walks("apikey_owner_created", shown), shown
    assert "TEMP B-TREE FOR ORDER BY" not in shown, shown


@sqlite_only
@pytest.mark.parametrize("params", [{"page": "3", "per_page": "10"}, {"q": "no-such-name"}])
def test_a_deep_page_and_a_name_search_read_the_index_alone(admin_client, params):
    """Rows skipped by OFFSET, and rows whose name does not match, are never read from the table."""
    shown = page_query_plan(admin_client, params)
    assert "USING COVERING INDEX apikey_listed " in f"{shown} ", shown


def test_a_page_reads_only_its_own_rows_after_the_ids(admin_client, users):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(LIST, {"page": "2", "per_page": "10"}, secure=True)
    rows = [query["sql"] for query in queries.captured_queries if query["sql"].startswith(ROWS_QUERY)]
    assert len(rows) == 1 and " OFFSET " not in rows[0] and "LIMIT" not in rows[0]
    assert response.content.count(b"<tr data-id=") == 10


@sqlite_only
@pytest.mark.parametrize("params", [{"realm": "default_native"}, {"owner": "own_keys"}, {"sort": "status"}])
def test_the_rows_of_a_page_are_read_by_primary_key_alone(admin_client, params):
    """Not also by the listing's conditions, which SQLite's planner may answer from their index
    instead, reading every key of the realm or of the owner."""
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(LIST, params, secure=True).status_code == 200
    (rows,) = [query["sql"] for query in queries.captured_queries if query["sql"].startswith(ROWS_QUERY)]
    assert plan(rows) == "SEARCH apikeys_apikey USING INDEX sqlite_autoindex_apikeys_apikey_1 (id=?)"


@sqlite_only
def test_purge_reads_due_keys_from_its_index(users, make_api_key):
    make_api_key(users["own_keys"], "due", state="invalidated")
    due = ApiKey.objects.past_retention(timezone.now() + timedelta(days=30))
    sql, params = due.values_list("pk", flat=True)[:1000].query.sql_with_params()
    shown = plan(sql, params)
    assert "USING INDEX apikey_stops_working" in shown or "USING COVERING INDEX apikey_stops_working" in shown
    assert "TEMP B-TREE" not in shown, shown
    assert list(due.values_list("name", flat=True)) == ["due"]


def test_authenticating_with_a_key_reads_one_row(client, users, make_api_key):
    """The key, its owner and the owner's realm in one query; last_used is written at most once a
    minute (tests/test_last_used.py), so a busy key costs one read per request."""
    key = make_api_key(users["own_keys"], "busy")
    authorization = {"HTTP_AUTHORIZATION": f"ApiKey {encode_credential(key.id, key.secret)}"}
    assert client.get("/_security/_authenticate", secure=True, **authorization).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/_security/_authenticate", secure=True, **authorization)
    assert response.status_code == 200
    assert len(queries) == 1, [query["sql"] for query in queries.captured_queries]
