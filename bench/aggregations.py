"""Time of the query API key API's aggregations as the table grows: each aggregation Kibana's API
keys page sends, each aggregation type, and Kibana's whole request through the view.

``python -m bench.aggregations --profile reduced|full --out FILE [--keys N] [--only TEXT ...]``. The
table is grown with ``manage.py seed_api_keys`` in a subprocess (as bench/pages.py does), to 100,000
keys in the reduced profile and 1,000,000 in the full one, or to ``--keys``; a table already that
large is used as it is (``--only`` runs the named aggregations alone). Each aggregation is computed
by ``apikeys.aggregations.aggregate`` over every key, as an administrator's request does, warmed up
once and then repeated; p50 and p95 are reported with the SQL statements of one run. The whole
Kibana request goes through Django's test client (middleware, authentication, view and JSON),
without a network or TLS in the way.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench.common import Figure, database_label, manage, write_figures
from bench.pages import client_for, grow_to, setup_django

SCALES = {"reduced": 100_000, "full": 1_000_000}
REPETITIONS = {"reduced": 11, "full": 21}
CASE_BUDGET_SECONDS = 30
GOAL_MS = 200
ACTIVE = {"match": {"invalidated": False}}
EVERY_KEY = {"match_all": {}}

# (name, query, aggregation): Kibana's four, as its API keys page sends them, then one of each type.
CASES = [
    ("kibana: usernames (terms)", ACTIVE, {"terms": {"field": "username"}}),
    ("kibana: types (terms)", ACTIVE, {"terms": {"field": "type"}}),
    ("kibana: expired (filter)", ACTIVE, {"filter": {"range": {"expiration": {"lte": "now"}}}}),
    ("kibana: managed (filters)", ACTIVE, {"filters": {"filters": {
        "metadataBased": {"term": {"metadata.managed": True}},
        "namePrefixBased": {"prefix": {"name": {"value": "Alerting: "}}},
    }}}),
    ("terms: name", EVERY_KEY, {"terms": {"field": "name"}}),
    ("terms: realm_name", EVERY_KEY, {"terms": {"field": "realm_name"}}),
    ("terms: invalidated", EVERY_KEY, {"terms": {"field": "invalidated"}}),
    ("range: creation", EVERY_KEY, {"range": {"field": "creation", "ranges": [
        {"to": 1_700_000_000_000}, {"from": 1_700_000_000_000, "to": 1_750_000_000_000},
        {"from": 1_750_000_000_000},
    ]}}),
    ("date_range: expiration", EVERY_KEY, {"date_range": {"field": "expiration", "ranges": [
        {"to": "now-30d"}, {"from": "now-30d", "to": "now"}, {"from": "now", "to": "now+30d"},
        {"from": "now+30d"},
    ]}}),
    ("missing: expiration", EVERY_KEY, {"missing": {"field": "expiration"}}),
    ("cardinality: username", EVERY_KEY, {"cardinality": {"field": "username"}}),
    ("value_count: expiration", EVERY_KEY, {"value_count": {"field": "expiration"}}),
    ("composite: username, type", EVERY_KEY, {"composite": {"sources": [
        {"username": {"terms": {"field": "username"}}}, {"type": {"terms": {"field": "type"}}},
    ]}}),
    ("filter: realm_name", EVERY_KEY, {"filter": {"term": {"realm_name": "default_file"}}}),
    ("filters: status", EVERY_KEY, {"filters": {"filters": {
        "invalidated": {"term": {"invalidated": True}},
        "expired": {"range": {"expiration": {"lte": "now"}}},
    }, "other_bucket_key": "active"}}),
    ("terms + sub-aggregation", ACTIVE, {"terms": {"field": "realm_name"}, "aggs": {
        "expired": {"filter": {"range": {"expiration": {"lte": "now"}}}},
    }}),
]
KIBANA_FILTER_PATH = (
    "total,aggregations.usernames.buckets.key,aggregations.types.buckets.key,"
    "aggregations.expired.doc_count,aggregations.managed.buckets.metadataBased.doc_count,"
    "aggregations.managed.buckets.namePrefixBased.doc_count"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("reduced", "full"), default="reduced")
    parser.add_argument("--out", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--keys", type=int, default=None, help="grow the table to this many keys instead")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the aggregations whose name holds TEXT (repeatable); 'kibana' for "
                             "Kibana's whole request")
    return parser.parse_args()


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def repeat(run, repetitions: int) -> tuple[list[float], list[str]]:
    """Milliseconds of each run after one warm-up, and the SQL statements of the last."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run()
    samples, started = [], time.perf_counter()
    while len(samples) < repetitions and (not samples or time.perf_counter() - started < CASE_BUDGET_SECONDS):
        with CaptureQueriesContext(connection) as captured:
            begun = time.perf_counter()
            run()
            samples.append(round((time.perf_counter() - begun) * 1000, 2))
            statements = [query["sql"] for query in captured]
    return samples, statements


def figure(name: str, samples: list[float], statements: list[str], keys: int, answer) -> Figure:
    p50, p95 = statistics.median(samples), percentile(samples, 0.95)
    detail = {
        "keys": keys,
        "database": database_label(),
        # The machine may be shared: a high load explains a slow figure better than the code does.
        "load_average": round(os.getloadavg()[0], 2),
        "p50_ms": round(p50, 2),
        "p95_ms": p95,
        "samples_ms": samples,
        "queries": len(statements),
        "sql": statements,
        "answer": answer,
    }
    return Figure("aggregations", name, round(p50, 2), "ms", f"< {GOAL_MS}", p50 < GOAL_MS, detail)


def report(item: Figure) -> None:
    detail = item.detail
    print(
        f"{detail['keys']:>9,} {item.name:<30} p50 {detail['p50_ms']:8.1f} ms  "
        f"p95 {detail['p95_ms']:8.1f} ms  {detail['queries']:>2} queries  {len(detail['samples_ms'])} runs"
        f"{'' if item.met else '  OVER GOAL'}",
        flush=True,
    )


def admin_user():
    """The ``elastic`` superuser, created by ``bootstrap`` when the database has none yet."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    if not users.filter(username="elastic").exists():
        manage("bootstrap", env={"ELASTIC_PASSWORD": "bench-" + os.urandom(9).hex()}, capture=True)
    return users.get(username="elastic", realm__name="default_native")


def main() -> None:
    args = parse_args()
    setup_django()
    from apikeys.aggregations import aggregate
    from apikeys.models import ApiKey
    from apikeys.query import parse_api_key_query

    grow_to(args.keys or SCALES[args.profile])
    keys = ApiKey.objects.all()
    count = keys.count()
    repetitions = REPETITIONS[args.profile]
    load = os.getloadavg()[0]
    print(f"{count:,} keys on {database_label()}; load average {load:.1f} on {os.cpu_count()} CPUs")
    figures = []
    for name, query, body in CASES:
        if args.only and not any(text in name for text in args.only):
            continue
        parsed = parse_api_key_query({"size": 0, "query": query, "aggs": {"agg": body}})
        # The view knows this from counting the query's total, which it does in any case.
        parsed_total = keys.filter(parsed.where).count()
        answer = {}

        def run(parsed=parsed, answer=answer, parsed_total=parsed_total):
            answer.update(aggregate(keys, parsed.where, parsed.aggregations, total=parsed_total))

        samples, statements = repeat(run, repetitions)
        figures.append(figure(name, samples, statements, count, json.loads(json.dumps(answer, default=str))))
        report(figures[-1])

    if args.only and not any(text in "kibana: whole request (view)" for text in args.only):
        write_figures(args.out, figures)
        return
    client = client_for(admin_user())
    request = {"size": 0, "query": ACTIVE, "aggs": {
        "usernames": CASES[0][2], "types": CASES[1][2], "expired": CASES[2][2], "managed": CASES[3][2],
    }}
    responses = []

    def kibana():
        response = client.post(
            "/_security/_query/api_key?filter_path=" + KIBANA_FILTER_PATH, json.dumps(request),
            content_type="application/json", secure=True,
        )
        if response.status_code != 200:
            raise SystemExit(f"Kibana's request: status {response.status_code}: {response.content[:300]}")
        responses.append(response.json())

    samples, statements = repeat(kibana, repetitions)
    figures.append(figure("kibana: whole request (view)", samples, statements, count, responses[-1]))
    report(figures[-1])
    write_figures(args.out, figures)


if __name__ == "__main__":
    main()
