"""Server time of the API Keys page as the table grows to 10,000, 100,000 and 1,000,000 keys.

``python -m bench.pages --profile reduced|full --out FILE [--keys N] [--only TEXT ...]``: ``--keys``
measures at that one size instead of the profile's, ``--only`` the cases whose name holds TEXT.
The table is grown with
``manage.py seed_api_keys`` in a subprocess, so seeding is never timed; each page is then requested
through Django's test client in this process, which times the whole server side (middleware, view,
queries, template) without a network or TLS in the way. The reduced profile stops at 100,000 keys.

Every case is warmed up once, then repeated; the median and the maximum are reported, with the SQL
statements of one request. Every answer must be a 200 with rows of keys, so that a broken page
cannot look fast. What the page caches between writes to keys is kept warm, as it is between writes, except
in the "nothing cached" case, which clears the cache before every request: that is the first page
after any key was created or invalidated. The figures are rewritten after each scale, so a long
full run keeps what it measured.
"""

import math
import os
import re
import statistics
import time
from dataclasses import dataclass

from bench.common import Figure, argument_parser, database_label, manage, write_figures

SCALES = {"reduced": (10_000, 100_000), "full": (10_000, 100_000, 1_000_000)}
USERS = 10_000
REPETITIONS = {"reduced": 7, "full": 11}
# A case stops repeating once it has spent this long, so one slow page cannot stall the run.
CASE_BUDGET_SECONDS = {"reduced": 10, "full": 30}
GOAL_MS = 100
# The page has no cursor: page N is an OFFSET of (N - 1) * per_page rows, so depth has a cost.
DEEPEST_PAGE = 10_000
COMMON_WORD = "filebeat"
SORTS = {
    "name": "name",
    "owner": "owner",
    "realm": "realm",
    "created": "created",
    "expiration": "expiration",
    "last_used": "last used",
    "status": "status",
}
ROW = re.compile(rb"<tr\b[^>]*\bdata-id=")


def setup_django() -> None:
    """Django for this process, with the server's own retention purge switched off: it would start
    in a background thread on the first request, delete most seeded expired and invalidated keys
    (they ended up to a year ago) and compete for the CPU while pages are being timed."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["KEYWARD_API_KEY_PURGE_ON_REQUEST"] = "false"
    import django

    django.setup()


@dataclass(frozen=True)
class Case:
    """One request to the page: as the administrator or as the seeded owner, with these parameters."""

    name: str
    params: dict
    as_owner: bool = False
    clear_cache: bool = False


@dataclass
class Targets:
    """What the cases at one scale ask for, read from the seeded data (never timed)."""

    keys: int
    owner: object  # the seeded user whose keys are filtered on, and who views their own page
    unique_fragment: str  # part of one key's name that no other key's name contains
    visible_keys: int  # not invalidated: what the page lists without a status filter
    last_page: int
    deep_page: int
    per_page: int


def grow_to(scale: int) -> None:
    """Add seeded keys until the table holds ``scale``; a larger table is left as it is."""
    from django.db import connections

    from apikeys.models import ApiKey

    missing = scale - ApiKey.objects.count()
    connections.close_all()
    if missing <= 0:
        return
    started = time.monotonic()
    result = manage(
        "seed_api_keys", "--keys", missing, "--users", USERS, "--seed", scale, "--verbosity", 0, capture=True
    )
    print(f"seeded {missing:,} keys in {time.monotonic() - started:.1f} s: {result.stdout.strip()}")
    analyze()


def analyze() -> None:
    """PostgreSQL's autovacuum visits a table after a bulk insert (PostgreSQL 13 and later), some
    time later: it refreshes the planner's statistics and the visibility map, without which an
    index-only scan still reads the table. Doing it now keeps the figures from depending on that
    race. SQLite gathers statistics only when asked (ANALYZE, PRAGMA optimize) and Keyward never
    asks, so its planner is left as deployed."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) apikeys_apikey")


def first_owner_with_visible_keys():
    """The first seeded user (``user-00000``, ``user-00001``, …) with a key the page shows by
    default (not invalidated): the same user at every scale, since seeding only adds keys."""
    from apikeys.management.commands.seed_api_keys import USERNAME
    from apikeys.models import ApiKey

    for index in range(USERS):
        key = (
            ApiKey.objects.filter(owner__username=USERNAME.format(index), invalidated__isnull=True)
            .select_related("owner")
            .first()
        )
        if key is not None:
            return key
    raise SystemExit("no seeded user has a visible key: was seed_api_keys run?")


def targets() -> Targets:
    """The owner, a unique name fragment and the deepest page that exists (at most 10,000)."""
    from apikeys.models import ApiKey
    from apikeys.views import DEFAULT_PER_PAGE

    key = first_owner_with_visible_keys()
    # Seeded names are purpose-environment-run-serial; the run and serial are unique together.
    fragment = "-".join(key.name.rsplit("-", 2)[-2:])
    visible = ApiKey.objects.filter(invalidated__isnull=True).count()
    last_page = max(1, math.ceil(visible / DEFAULT_PER_PAGE))
    return Targets(
        keys=ApiKey.objects.count(),
        owner=key.owner,
        unique_fragment=fragment,
        visible_keys=visible,
        last_page=last_page,
        deep_page=min(DEEPEST_PAGE, last_page),
        per_page=DEFAULT_PER_PAGE,
    )


def cases(target: Targets) -> list[Case]:
    """The views of the page the goal is held to: the first page (also with nothing cached), an
    owner, a realm, a name matching one key and one matching many, each status, unused keys, two
    searches in the search box's syntax, every sortable column both ways, the deepest page up to
    10,000, and a ``manage_own_api_key`` user's own keys."""
    return [
        Case("admin first page", {}),
        Case("admin first page, nothing cached", {}, clear_cache=True),
        Case("owner filter", {"owner": target.owner.username}),
        Case("realm filter", {"realm": target.owner.realm.name}),
        Case("name search: unique", {"q": target.unique_fragment}),
        Case(f"name search: {COMMON_WORD}", {"q": COMMON_WORD}),
        Case("status: active", {"status": "active"}),
        Case("status: expired", {"status": "expired"}),
        Case("status: invalidated", {"status": "invalidated"}),
        Case("status: all", {"status": "all"}),
        Case("status: expiring", {"status": "expiring"}),
        Case("unused for 90 days", {"unused": "90"}),
        Case("search: owner and status", {"q": f"owner:{target.owner.username.upper()} -status:expired"}),
        Case("search: name OR type", {"q": f"name:{COMMON_WORD}* OR type:cross_cluster"}),
        *(
            Case(f"sort: {label} {direction}", {"sort": f"{sign}{column}"})
            for column, label in SORTS.items()
            for sign, direction in (("", "ascending"), ("-", "descending"))
        ),
        Case("deep page", {"page": target.deep_page}),
        Case("own keys (manage_own_api_key)", {}, as_owner=True),
    ]


def new_client():
    """A test client sending a Host the settings allow (not the test runner's ``testserver``)."""
    from django.conf import settings
    from django.test import Client

    first = settings.ALLOWED_HOSTS[0] if settings.ALLOWED_HOSTS else "127.0.0.1"
    return Client(SERVER_NAME="127.0.0.1" if first == "*" else first.lstrip("."))


def client_for(user):
    """A test client logged in as ``user``."""
    client = new_client()
    client.force_login(user)
    return client


def timed_get(client, url: str, params: dict) -> tuple[float, list[str], int]:
    """Milliseconds, SQL statements and rows of one request, which must be a 200 with at least one
    row of keys. Recording the statements costs microseconds against a page's milliseconds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url, params, secure=True)
        elapsed = (time.perf_counter() - started) * 1000
        # Read now: the captured queries are a slice of a log the next request clears.
        queries = [query["sql"] for query in captured]
    rows = len(ROW.findall(response.content))
    if response.status_code != 200 or not rows:
        raise SystemExit(f"{url} {params}: status {response.status_code}, {rows} rows; the page is broken")
    return elapsed, queries, rows


def measure(client, url: str, case: Case, repetitions: int, budget: float) -> dict:
    """Warm up once, then time up to ``repetitions`` requests, or fewer once ``budget`` seconds
    have gone by."""
    from django.core.cache import cache

    if case.clear_cache:
        cache.clear()
    timed_get(client, url, case.params)
    samples = []
    started = time.perf_counter()
    while len(samples) < repetitions and (not samples or time.perf_counter() - started < budget):
        if case.clear_cache:
            cache.clear()
        elapsed, queries, rows = timed_get(client, url, case.params)
        samples.append(round(elapsed, 2))
    return {"queries": len(queries), "rows": rows, "samples_ms": samples, "sql": queries}


def figure(case: Case, result: dict, target: Targets, scale: int) -> Figure:
    samples = result["samples_ms"]
    median = statistics.median(samples)
    detail = {
        "scale": scale,
        "database": database_label(),
        "keys": target.keys,
        # The machine is shared: a high load explains a slow figure better than the code does.
        "load_average": round(os.getloadavg()[0], 2),
        "params": case.params,
        "user": target.owner.username if case.as_owner else "elastic",
        "median_ms": round(median, 2),
        "max_ms": max(samples),
        **result,
    }
    if case.name == "deep page":
        detail.update(
            page=target.deep_page,
            per_page=target.per_page,
            visible_keys=target.visible_keys,
            last_page=target.last_page,
        )
    return Figure("pages", case.name, round(median, 2), "ms", f"< {GOAL_MS}", median < GOAL_MS, detail)


def report(item: Figure) -> None:
    detail = item.detail
    note = f" (page {detail['page']:,} of {detail['last_page']:,})" if "page" in detail else ""
    print(
        f"{detail['scale']:>9,} {item.name:<32} median {item.value:8.1f} ms  max {detail['max_ms']:8.1f} ms  "
        f"{detail['queries']:>2} queries  {detail['rows']:>2} rows  {len(detail['samples_ms'])} runs"
        f"{'' if item.met else '  OVER GOAL'}{note}"
    )


def measure_scale(scale: int, profile: str, only: list[str]) -> list[Figure]:
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    target = targets()
    print(
        f"{target.keys:,} keys, {target.visible_keys:,} not invalidated; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    url = reverse("api_keys")
    admin = client_for(get_user_model().objects.get(username="elastic", realm__name="default_native"))
    owner = client_for(target.owner)
    figures = []
    for case in cases(target):
        if only and not any(text in case.name for text in only):
            continue
        client = owner if case.as_owner else admin
        result = measure(client, url, case, REPETITIONS[profile], CASE_BUDGET_SECONDS[profile])
        figures.append(figure(case, result, target, scale))
        report(figures[-1])
    return figures


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=None, help="measure at this many keys only")
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT", help="only the cases whose name holds TEXT"
    )
    args = parser.parse_args()
    setup_django()
    figures = []
    print(f"API Keys page on {database_label()}, {args.profile} profile")
    for scale in [args.keys] if args.keys else SCALES[args.profile]:
        grow_to(scale)
        figures += measure_scale(scale, args.profile, args.only)
        write_figures(args.out, figures)


if __name__ == "__main__":
    main()
