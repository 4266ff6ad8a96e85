"""Invalidating and updating 100, 1,000 and 10,000 API keys in one call: time and SQL queries.

``python -m bench.bulk --profile reduced|full --out FILE``. Each call works on fresh active keys of
one seeded user, bulk-inserted beforehand (never timed), and goes either straight to the service,
``apikeys.services.invalidate_api_keys(principal, ids=[...])``, or through the REST API,
``DELETE /_security/api_key`` with ``{"ids": [...]}`` sent by Django's test client with the
``elastic`` superuser's own API key. Goals: under a second, and the same number of queries
whatever the number of keys. Afterwards exactly the requested keys must be invalidated and no
other key touched; the keys made here are then deleted, so the table is left as it was found.

Bulk update (``apikeys.services.update_api_keys``, new metadata for fresh keys of their owner, as a
user) is measured the same way through the service; it has no goal, and takes one locking SELECT
and one UPDATE per 1,000 keys.
"""

import json
import logging
import os
import secrets
import statistics
import time
from dataclasses import dataclass

from bench.common import Figure, database_label, manage, parse_args, write_figures
from bench.pages import new_client, setup_django

SIZES = (100, 1_000, 10_000)
REPETITIONS = {"reduced": 3, "full": 5}
GOAL_MS = 1000
OWNER = "user-00001"
API_PATH = "/_security/api_key"
NAME_PREFIX = "bench-bulk"


class QueryCounter:
    """Counts the SQL statements sent through a connection, without recording them: cheap enough
    to stay on while the call is timed."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@dataclass
class Run:
    """Who acts, on whose keys, and the names that mark the keys made here."""

    admin: object  # the elastic superuser
    owner: object  # the seeded user whose fresh keys are invalidated
    authorization: str  # "ApiKey ..." of a key of the superuser, for the REST API
    prefix: str  # every key made by this run is named prefix-...
    client: object  # a test client, for the REST API


def quiet_audit_log() -> None:
    """Each invalidation logs its audit event with every id (some 250 KB for 10,000 keys); the line
    is still built and written, to the null device rather than over the figures."""
    for handler in logging.getLogger("keyward.audit").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))


def seeded_owner():
    """The seeded user whose keys are invalidated; ``seed_api_keys`` creates it when missing."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.select_related("realm")
    if not users.filter(username=OWNER).exists():
        manage("seed_api_keys", "--keys", 0, "--users", 2, capture=True)
    return users.get(username=OWNER)


def prepare() -> Run:
    """The superuser, an API key of theirs for the REST API (so that no password is needed), and
    the seeded owner."""
    from django.contrib.auth import get_user_model

    from accounts.principals import Principal
    from apikeys.services import create_api_key

    users = get_user_model().objects.select_related("realm")
    admin = users.get(username="elastic", realm__name="default_native")
    prefix = f"{NAME_PREFIX}-{secrets.token_hex(4)}"
    created = create_api_key(Principal(admin), name=f"{prefix}-admin")
    return Run(admin, seeded_owner(), f"ApiKey {created.encoded}", prefix, new_client())


def fresh_keys(run: Run, count: int) -> list[str]:
    """``count`` new active keys of the owner, stored as ``seed_api_keys`` stores them."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Role
    from apikeys.credentials import generate_api_key_id, generate_api_key_secret
    from apikeys.hashers import make_api_key_hash
    from apikeys.management.commands.seed_api_keys import OWNER_ROLE
    from apikeys.models import ApiKey

    limited_by = {OWNER_ROLE: Role.objects.get(name=OWNER_ROLE).descriptor()}
    now = timezone.now()
    batch = secrets.token_hex(3)
    keys = [
        ApiKey(
            id=generate_api_key_id(),
            name=f"{run.prefix}-{batch}-{number:05d}",
            hash=make_api_key_hash(generate_api_key_secret()),
            owner=run.owner,
            realm_name=run.owner.realm.name,
            realm_type=run.owner.realm.type,
            created=now,
            limited_by=limited_by,
        )
        for number in range(count)
    ]
    with transaction.atomic():
        ApiKey.objects.bulk_create(keys, batch_size=1000)
    return [key.id for key in keys]


def invalidated_count() -> int:
    from apikeys.models import ApiKey

    return ApiKey.objects.filter(invalidated__isnull=False).count()


def through_service(run: Run, ids: list[str]) -> list[str]:
    from accounts.principals import Principal
    from apikeys.services import invalidate_api_keys

    result = invalidate_api_keys(Principal(run.admin), ids=ids)
    if result.errors or result.previously_invalidated:
        already = len(result.previously_invalidated)
        raise SystemExit(f"service: {len(result.errors)} errors, {already} already invalidated")
    return result.invalidated


def through_api(run: Run, ids: list[str]) -> list[str]:
    response = run.client.delete(
        API_PATH,
        json.dumps({"ids": ids}),
        content_type="application/json",
        secure=True,
        headers={"authorization": run.authorization},
    )
    body = response.json()
    if response.status_code != 200 or body.get("error_count"):
        raise SystemExit(f"{API_PATH}: status {response.status_code}, {str(body)[:300]}")
    return body["invalidated_api_keys"]


PATHS = {"service": through_service, f"DELETE {API_PATH}": through_api}


def timed(call, run: Run, ids: list[str]) -> tuple[float, int]:
    """Milliseconds and SQL statements of one call, checked to have invalidated exactly ``ids``."""
    from django.db import connection

    from apikeys.models import ApiKey

    before = invalidated_count()
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        invalidated = call(run, ids)
        elapsed = (time.perf_counter() - started) * 1000
    if sorted(invalidated) != sorted(ids):
        raise SystemExit(f"asked for {len(ids)} keys, {len(invalidated)} reported invalidated")
    done = ApiKey.objects.filter(id__in=ids, invalidated__isnull=False).count()
    if done != len(ids) or invalidated_count() - before != len(ids):
        raise SystemExit(f"{len(ids)} keys asked for, {done} of them invalidated, or other keys changed")
    return elapsed, counter.count


def measure(run: Run, path: str, repetitions: int, scale: int) -> list[Figure]:
    """One warm-up call on a few keys, then each size ``repetitions`` times on fresh keys."""
    call = PATHS[path]
    call(run, fresh_keys(run, 10))
    figures, query_counts = [], []
    for size in SIZES:
        samples = [timed(call, run, fresh_keys(run, size)) for _ in range(repetitions)]
        median = statistics.median(ms for ms, _ in samples)
        queries = max(count for _, count in samples)
        query_counts.append(queries)
        detail = {
            "keys": size,
            "path": path,
            "scale": scale,
            "database": database_label(),
            "samples_ms": [round(ms, 2) for ms, _ in samples],
            "queries": queries,
        }
        name = f"invalidate {size:,} keys: {path}"
        figures.append(Figure("bulk", name, round(median, 2), "ms", f"< {GOAL_MS}", median < GOAL_MS, detail))
        constant = queries == query_counts[0]
        figures.append(Figure("bulk", f"queries to {name}", queries, "queries", "constant", constant, detail))
        print(f"{name:<50} {median:9.1f} ms  {queries:>3} queries{'' if median < GOAL_MS else '  OVER GOAL'}")
    return figures


def measure_update(run: Run, repetitions: int, scale: int) -> list[Figure]:
    """Bulk update through the service: each size ``repetitions`` times on fresh keys, checked to
    have set the new metadata on exactly those keys."""
    from django.db import connection

    from accounts.principals import Principal
    from apikeys.models import ApiKey
    from apikeys.services import update_api_keys

    figures = []
    for size in SIZES:
        samples = []
        for repetition in range(repetitions):
            ids = fresh_keys(run, size)
            metadata = {"bench": f"{size}-{repetition}"}
            counter = QueryCounter()
            with connection.execute_wrapper(counter):
                started = time.perf_counter()
                result = update_api_keys(Principal(run.owner), ids, metadata=metadata)
                elapsed = (time.perf_counter() - started) * 1000
            changed = ApiKey.objects.filter(id__among=ids, metadata=metadata).count()
            if result.updated != ids or changed != size:
                raise SystemExit(f"{size} keys to update: {len(result.updated)} reported, {changed} changed")
            samples.append((elapsed, counter.count))
        median = statistics.median(ms for ms, _ in samples)
        queries = max(count for _, count in samples)
        detail = {
            "keys": size, "path": "service", "scale": scale, "database": database_label(),
            "samples_ms": [round(ms, 2) for ms, _ in samples], "queries": queries,
        }
        name = f"update {size:,} keys: service"
        figures.append(Figure("bulk", name, round(median, 2), "ms", "", None, detail))
        figures.append(Figure("bulk", f"queries to {name}", queries, "queries", "", None, detail))
        print(f"{name:<50} {median:9.1f} ms  {queries:>3} queries")
    return figures


def clean_up(run: Run) -> None:
    """Delete every key this run made, the superuser's included."""
    from apikeys.models import ApiKey

    ApiKey.objects.filter(name__startswith=f"{run.prefix}-").delete()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    setup_django()
    quiet_audit_log()
    from apikeys.models import ApiKey

    run = prepare()
    scale = ApiKey.objects.count()
    print(f"Bulk invalidation on {database_label()}, {args.profile} profile, {scale:,} keys in the table")
    figures = []
    try:
        for path in PATHS:
            figures += measure(run, path, REPETITIONS[args.profile], scale)
        figures += measure_update(run, REPETITIONS[args.profile], scale)
    finally:
        clean_up(run)
    write_figures(args.out, figures)


if __name__ == "__main__":
    main()
