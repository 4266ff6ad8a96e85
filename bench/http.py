"""The HTTP benchmark: a real gunicorn with the production configuration, loaded by wrk from 127.0.0.1.

1. Authentication overhead: requests per second of A (a minimal DRF view, no authentication), A0
   (the same as a plain Django view), B (``GET /_security/_authenticate`` with an ``ApiKey``) and
   C (A behind djangorestframework-api-key, with 100,000 of its keys); then B again with the
   ``pbkdf2_sha256`` hashing setting, with and without its verification cache.
2. Creation: keys per second through ``POST /_security/api_key`` with 1 and with 8 connections,
   checked against the keys the database holds afterwards.
3. Purge: ``manage.py purge_api_keys`` of keys past retention, and the p99 latency of B under a
   steady load while it runs, beside the same load without it.
4. Memory: the resident memory of each gunicorn worker after each run.

The database and data directory come from the environment (``DATABASE_URL``, ``KEYWARD_DATA_DIR``);
``migrate`` has been run with ``bench.settings``. Run it as
``python -m bench.http --profile reduced|full --out FILE``.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import BASE_DIR, Figure, database_label, manage, parse_args, write_figures
from bench.server import Server, running_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402  (after the settings module is chosen)

django.setup()

from django.conf import settings  # noqa: E402
from rest_framework_api_key.models import APIKey  # noqa: E402

from accounts.models import User  # noqa: E402
from apikeys.models import ApiKey  # noqa: E402
from apikeys.services import purge_api_keys  # noqa: E402


@dataclass(frozen=True)
class Profile:
    keys: int  # Keyward keys in the table during the authentication runs
    seconds: int  # each measured wrk run
    warmup: int  # the wrk run before each measured one, not counted
    purge_keys: int  # keys past retention that the purge deletes


PROFILES = {
    "reduced": Profile(keys=100_000, seconds=10, warmup=2, purge_keys=100_000),
    "full": Profile(keys=1_000_000, seconds=30, warmup=5, purge_keys=1_000_000),
}
PEER_KEYS = 100_000
THREADS, CONNECTIONS = 2, 8
# Far above any latency seen, so that a slow answer is measured rather than dropped as a timeout.
WRK_TIMEOUT = "30s"
WRK = "/usr/bin/wrk"
WRK_DIR = BASE_DIR / "bench" / "wrk"
RESULT_MARK = "BENCH_RESULT "

USER, ROLE = "bench-http", "bench_http_key_owner"
PEER_KEY_NAME = "bench-http-c"
PEER_FILLER_NAME = "bench-http-peer"
# The server's own background purge would delete the seeded keys past retention during the
# authentication runs: off here, the purge is measured through the management command only.
SERVER_ENV = {"KEYWARD_API_KEY_PURGE_ON_REQUEST": "false"}
PBKDF2_ENV = {"KEYWARD_API_KEY_HASH_ALGORITHM": "pbkdf2_sha256"}
# The switch of the in-process cache of verified slow hashes (apikeys.hashers.verification_cache).
VERIFICATION_CACHE_SETTING = "API_KEY_VERIFICATION_CACHE"
VERIFICATION_CACHE_ENV = "KEYWARD_API_KEY_VERIFICATION_CACHE"

MIN_WORKER_BALANCE, BALANCE_ATTEMPTS, BALANCE_PROBE_SECONDS = 0.7, 8, 1
CREATE_GOAL, CREATE_GOAL_DATABASE = 300, "postgresql"
P99_GOAL_MS = 50
# The purge is measured under a steady load, not a saturating one: each of the 8 connections pauses
# this long after every answer, which caps B at 200 req/s, about half of what it reaches here.
# Saturated, B's p99 is the queue in front of busy workers on 2 cores, with or without a purge;
# below saturation it shows what the purge itself adds.
PURGE_LOAD_PAUSE_MS = 40
RSS_GOAL_MB = 150


STARTED = time.monotonic()


def step(what: str) -> None:
    """Progress for a person watching: a full run takes minutes."""
    print(f"[{time.monotonic() - STARTED:5.0f} s] {what}", flush=True)


# ---------------------------------------------------------------------------------------------
# wrk


@dataclass(frozen=True)
class Load:
    """What one wrk run measured, read from the JSON line its Lua ``done()`` prints."""

    requests: int
    seconds: float
    errors: dict
    latency_us: dict
    sent: int | None = None
    ok: int | None = None
    failed: int | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def latency_ms(self, percentile: str) -> float:
        return self.latency_us[percentile] / 1000

    def socket_errors(self) -> int:
        return sum(self.errors[kind] for kind in ("connect", "read", "write", "timeout"))

    def detail(self) -> dict:
        return {
            "requests": self.requests, "seconds": round(self.seconds, 2), "errors": self.errors,
            "latency_ms": {name: round(value / 1000, 2) for name, value in self.latency_us.items()},
        }


def wrk_command(url: str, script: str, seconds: float, connections: int, headers=(), script_args=()) -> list:
    command = [WRK, f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", WRK_TIMEOUT, "-s", str(WRK_DIR / script)]
    for header in headers:
        command += ["-H", header]
    return [*command, url, *(["--", *map(str, script_args)] if script_args else [])]


def parse_wrk(stdout: str) -> Load:
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        raise RuntimeError(f"wrk printed no result:\n{stdout}")
    result = json.loads(lines[-1].removeprefix(RESULT_MARK))
    return Load(
        requests=result["requests"], seconds=result["duration_us"] / 1e6, errors=result["errors"],
        latency_us=result["latency_us"], sent=result.get("sent"), ok=result.get("ok"),
        failed=result.get("failed"),
    )


def run_wrk(command: list) -> Load:
    return parse_wrk(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def authorization(scheme: str, credential: str) -> str:
    return f"Authorization: {scheme} {credential}"


# ---------------------------------------------------------------------------------------------
# The data: Keyward's keys, the bench user, the peer's keys


def ensure_keyward_keys(wanted: int) -> int:
    """Seed the difference when the table holds fewer keys than the profile; returns the count."""
    held = ApiKey.objects.count()
    if held < wanted:
        step(f"seeding {wanted - held:,} keys: the table holds {held:,}, the profile wants {wanted:,}")
        manage("seed_api_keys", "--keys", wanted - held, capture=True)
    return ApiKey.objects.count()


def ensure_bench_user() -> None:
    """A native user whose role holds ``manage_own_api_key`` only, as a key-owning service would."""
    if User.objects.filter(username=USER, realm__name="default_native").exists():
        return
    manage("create_role", ROLE, "--cluster", "manage_own_api_key", capture=True)
    password = secrets.token_urlsafe(24)
    manage("create_user", USER, "--roles", ROLE, "--password-env", "BENCH_PASSWORD",
           env={"BENCH_PASSWORD": password}, capture=True)


def create_keyward_key(label: str, env: dict | None = None) -> str:
    """A new key of the bench user through ``manage.py create_api_key``; returns its ``encoded`` form.

    ``env`` carries the hashing setting the key is created under."""
    name = f"bench-http-{label}-{secrets.token_hex(4)}"
    result = manage("create_api_key", "--user", USER, "--name", name, env=env, capture=True)
    return json.loads(result.stdout)["encoded"]


def ensure_peer_keys() -> str:
    """The peer's table filled to ``PEER_KEYS``, one of them new; returns that key's secret.

    The filler rows get their id, prefix and hash from the peer's own ``assign_key`` (SHA-512 of a
    random key, looked up by its unique prefix), so that they are the rows the peer would write."""
    APIKey.objects.filter(name=PEER_KEY_NAME).delete()
    missing = PEER_KEYS - 1 - APIKey.objects.count()
    if missing > 0:
        step(f"adding {missing:,} keys to the peer's table")
        rows = [APIKey(name=PEER_FILLER_NAME) for _ in range(missing)]
        for row in rows:
            APIKey.objects.assign_key(row)
        APIKey.objects.bulk_create(rows, batch_size=1000)
    _, key = APIKey.objects.create_key(name=PEER_KEY_NAME)
    return key


# ---------------------------------------------------------------------------------------------
# Measuring

AUTHENTICATE = "/_security/_authenticate"


@dataclass(frozen=True)
class Running:
    """A wrk run under way, and the workers' CPU times when it started."""

    process: subprocess.Popen
    command: list
    cpu_before: dict[int, float]
    starts: int


def start_balanced(
    server: Server, label: str, command: Callable[[int], list], attempts: int = BALANCE_ATTEMPTS
) -> Running:
    """Start wrk so that both workers serve it, trying at most ``attempts`` times.

    wrk opens its connections at once, and the kernel hands each to whichever worker accepts
    first: on a busy machine one worker often takes all or most of them, which measures a server
    of one worker (seen here in about half the starts: A0 at 1,449 req/s with one worker idle,
    against 3,100 with both; B at 370 with one worker doing half the other's work, against 803).
    The connections stay where they landed, so the first second tells: when one worker has done
    less than ``MIN_WORKER_BALANCE`` of the other's work by then, wrk is stopped and started
    again; the last start is kept as it is. ``command(n)`` is wrk's command line for the n-th
    start."""
    for attempt in range(1, attempts + 1):
        before = server.worker_cpu_seconds()
        process = subprocess.Popen(
            command(attempt), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if attempt == attempts:
            return Running(process, command(attempt), before, attempt)
        time.sleep(BALANCE_PROBE_SECONDS)
        share = worker_balance(before, server.worker_cpu_seconds())
        if share >= MIN_WORKER_BALANCE:
            return Running(process, command(attempt), before, attempt)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        step(f"{label}: one worker did {share:.0%} of the other's work; wrk started again")


def finish(server: Server, running: Running, interrupt: bool = False) -> tuple[Load, dict]:
    """wrk's result once it ends, or at once with ``interrupt`` (SIGINT, on which wrk still prints
    its summary), and how the workers shared the run."""
    if interrupt:
        running.process.send_signal(signal.SIGINT)
    stdout, _ = running.process.communicate()
    if running.process.returncode:
        raise subprocess.CalledProcessError(running.process.returncode, running.command, stdout)
    after = server.worker_cpu_seconds()
    used = {pid: after.get(pid, cpu) - cpu for pid, cpu in running.cpu_before.items()}
    detail = {
        "worker_cpu_s": {str(pid): round(cpu, 2) for pid, cpu in used.items()},
        "worker_balance": round(worker_balance(running.cpu_before, after), 2),
        "wrk_starts": running.starts,
    }
    return parse_wrk(stdout), detail


def run_balanced(
    server: Server, label: str, command: Callable[[int], list], attempts: int = BALANCE_ATTEMPTS
) -> tuple[Load, dict]:
    return finish(server, start_balanced(server, label, command, attempts))


def worker_balance(before: dict[int, float], after: dict[int, float]) -> float:
    """The least busy worker's CPU time over the busiest's, between two readings."""
    used = [after.get(pid, cpu) - cpu for pid, cpu in before.items()]
    return min(used) / (max(used) or 1)


def check_answers(label: str, load: Load, server: Server) -> None:
    """A figure of refused requests would measure the refusal: any answer but a 2xx stops the run."""
    if load.errors["status"]:
        raise RuntimeError(f"{label}: {load.errors['status']} answers were not 2xx; see {server.log_path}")


class Bench:
    """The figures of one run of the benchmark, with the context every figure carries."""

    def __init__(self, profile_name: str, profile: Profile, log_dir: Path):
        self.profile = profile
        self.log_dir = log_dir
        self.context = {"database": database_label(), "profile": profile_name}
        self.figures: list[Figure] = []

    def add(self, benchmark: str, name: str, value: float, unit: str, goal: str = "", met=None, **detail):
        self.figures.append(Figure(benchmark, name, value, unit, goal, met, {**self.context, **detail}))

    def load(self, benchmark: str, server: Server, label: str, path: str, headers=()) -> Load:
        """Warm up, then one measured run at the fixed concurrency, reported with its latencies and
        the workers' memory afterwards."""
        step(label)
        url = server.url + path
        run_wrk(wrk_command(url, "get.lua", self.profile.warmup, CONNECTIONS, headers))
        command = wrk_command(url, "get.lua", self.profile.seconds, CONNECTIONS, headers)
        load, balance = run_balanced(server, label, lambda attempt: command)
        check_answers(label, load, server)
        self.add(benchmark, label, round(load.rate, 1), "req/s", **load.detail(), **balance)
        self.latencies(benchmark, label, load)
        self.memory(server, label)
        return load

    def latencies(self, benchmark: str, label: str, load: Load, p99_goal: float | None = None) -> None:
        self.add(benchmark, f"{label} p50", load.latency_ms("p50"), "ms")
        p99 = load.latency_ms("p99")
        goal, met = (f"< {p99_goal}", p99 < p99_goal) if p99_goal else ("", None)
        self.add(benchmark, f"{label} p99", p99, "ms", goal, met)

    def memory(self, server: Server, after: str) -> None:
        rss = server.worker_rss_mb()
        largest = max(rss.values())
        self.add("memory", f"worker RSS (max) after {after}", round(largest, 1), "MB", f"< {RSS_GOAL_MB}",
                 largest < RSS_GOAL_MB, workers_mb={str(pid): round(mb, 1) for pid, mb in rss.items()})


def measure_authentication(bench: Bench, server: Server, encoded: str, peer_key: str) -> None:
    """A, A0, B and C on one server, in that order, and their ratios."""
    rates = {
        label: bench.load("auth", server, label, path, headers).rate
        for label, path, headers in (
            ("A: minimal DRF view, no authentication", "/bench/A", ()),
            ("A0: minimal plain Django view", "/bench/A0", ()),
            ("B: ApiKey GET /_security/_authenticate", AUTHENTICATE, [authorization("ApiKey", encoded)]),
            ("C: A with djangorestframework-api-key", "/bench/C", [authorization("Api-Key", peer_key)]),
        )
    }
    rates = {label.split(":")[0]: rate for label, rate in rates.items()}
    for top, bottom, goal in (("B", "A", 0.75), ("B", "C", 2.0), ("C", "A", None)):
        ratio = rates[top] / rates[bottom]
        bench.add("auth", f"{top}/{bottom}", round(ratio, 3), "ratio", f">= {goal}" if goal else "",
                  ratio >= goal if goal else None)


def measure_pbkdf2(bench: Bench) -> None:
    """B with a key hashed by pbkdf2_sha256, each variant on a fresh server and with a key created
    under the variant's setting."""
    variants = {"pbkdf2_sha256, verification cache on": PBKDF2_ENV}
    if hasattr(settings, VERIFICATION_CACHE_SETTING):
        variants["pbkdf2_sha256, verification cache off"] = {**PBKDF2_ENV, VERIFICATION_CACHE_ENV: "false"}
    else:
        step(f"not measured: B with pbkdf2_sha256 without its verification cache, for Keyward has no "
             f"{VERIFICATION_CACHE_SETTING} setting to switch the cache off")
    for variant, env in variants.items():
        with running_server(bench.log_dir, {**SERVER_ENV, **env}) as server:
            encoded = create_keyward_key("pbkdf2", env)
            bench.load("auth", server, f"B ({variant})", AUTHENTICATE, [authorization("ApiKey", encoded)])


def measure_creation(bench: Bench, server: Server, encoded: str) -> None:
    """Keys per second through the REST API with 1 and 8 connections, checked against the database.

    The server is warm from the authentication runs, so there is no warm-up: every key created
    is counted."""
    url, run = server.url + "/_security/api_key", secrets.token_hex(4)
    headers = [authorization("ApiKey", encoded)]

    def command(connections: int, attempt: int) -> list:
        """Names start with the run, the connections and the wrk start: each start's keys apart."""
        prefix = f"bench-create-{run}-{connections}-{attempt}"
        return wrk_command(url, "create.lua", bench.profile.seconds, connections, headers, [prefix])

    for connections in (1, CONNECTIONS):
        label = f"{connections} connection{'s' if connections > 1 else ''}"
        step(f"creation, {label}")
        if connections == 1:  # served by one worker: no share to check
            load, balance = run_wrk(command(1, 1)), {"wrk_starts": 1}
        else:
            load, balance = run_balanced(server, label, partial(command, connections))
        prefix = f"bench-create-{run}-{connections}-{balance['wrk_starts']}"
        stored = ApiKey.objects.filter(name__startswith=f"{prefix}-").count()
        rate = load.ok / load.seconds
        goal, met = "", None
        if connections == CONNECTIONS:
            goal = f">= {CREATE_GOAL} on {CREATE_GOAL_DATABASE}"
            met = rate >= CREATE_GOAL if database_label() == CREATE_GOAL_DATABASE else None
        bench.add("create", f"keys/s, {label}", round(rate, 1), "keys/s", goal, met, ok=load.ok,
                  stored=stored, **load.detail(), **balance)
        refused = load.failed + load.socket_errors()
        bench.add("create", f"non-200 answers, {label}", refused, "answers", "== 0", refused == 0)
        # wrk stops with requests sent and not yet answered, whose keys may exist.
        unanswered = load.sent - load.ok - load.failed
        bench.add("create", f"keys stored without a 200 answer, {label}", stored - load.ok, "keys",
                  f"0 to {unanswered} (unanswered)", 0 <= stored - load.ok <= unanswered)
        bench.memory(server, f"create, {label}")


def seed_past_retention(wanted: int) -> dict:
    """Keys past retention up to ``wanted``: those already there count, only the rest is seeded."""
    due = purge_api_keys(dry_run=True).deleted
    seeded = max(0, wanted - due)
    if seeded:
        step(f"seeding {seeded:,} keys past retention ({due:,} already are)")
        manage("seed_api_keys", "--keys", seeded, "--active", 0, "--ended-before", "8d", capture=True)
    return {"seeded": seeded, "already_due": due}


def measure_purge(bench: Bench, server: Server, encoded: str) -> None:
    """``manage.py purge_api_keys`` of ``purge_keys`` keys past retention under a steady load of B,
    beside the same load without it.

    Below saturation both workers keep up even when one holds most connections, so these runs are
    not started again for balance; the detail still says how the workers shared them. The load
    during the purge starts with the purge command and ends when it exits, so it also covers the
    command's own start, about a second."""
    scale = seed_past_retention(bench.profile.purge_keys)
    url, headers = server.url + AUTHENTICATE, [authorization("ApiKey", encoded)]
    steady = {"pause_ms": PURGE_LOAD_PAUSE_MS}

    def paced(seconds: float) -> list:
        return wrk_command(url, "paced.lua", seconds, CONNECTIONS, headers, [PURGE_LOAD_PAUSE_MS])

    label = "B steady load without purge"
    step(label)
    load, balance = run_balanced(server, label, lambda attempt: paced(bench.profile.seconds), attempts=1)
    check_answers(label, load, server)
    bench.add("purge", label, round(load.rate, 1), "req/s", **steady, **load.detail(), **balance)
    bench.latencies("purge", label, load)
    bench.memory(server, label)

    label = "B steady load during purge"
    step(f"{label}: wrk and purge_api_keys")
    held = ApiKey.objects.count()
    # wrk is stopped when the purge ends: its day-long duration is never reached.
    load, balance, seconds = load_during(server, paced(24 * 3600),
                                         lambda: manage("purge_api_keys", capture=True))
    deleted = held - ApiKey.objects.count()
    check_answers(label, load, server)
    bench.add("purge", "purge_api_keys wall time", round(seconds, 2), "s", deleted=deleted,
              keys_per_second=round(deleted / seconds), **scale)
    bench.add("purge", "keys deleted", deleted, "keys", **scale)
    bench.add("purge", label, round(load.rate, 1), "req/s", **steady, **load.detail(), **balance)
    bench.latencies("purge", label, load, P99_GOAL_MS)
    bench.memory(server, "purge")


def load_during(server: Server, command: list, action: Callable[[], object]):
    """The load of ``command`` while ``action`` runs; wrk is stopped when the action ends. Returns
    the load, how the workers shared it, and the action's wall time."""
    running = start_balanced(server, "", lambda attempt: command, attempts=1)
    try:
        started = time.monotonic()
        action()
        seconds = time.monotonic() - started
    finally:
        load, balance = finish(server, running, interrupt=True)
    return load, balance, seconds


# ---------------------------------------------------------------------------------------------
# Report


def print_table(figures: list[Figure]) -> None:
    """A short table for a person; the JSON file has every detail."""
    width = max(len(figure.name) for figure in figures)
    print(f"\n{'figure':<{width}} {'value':>10}  {'unit':<7} {'goal':<18} met")
    for figure in figures:
        met = {True: "yes", False: "NO", None: ""}[figure.met]
        value = f"{figure.value:,.3f}" if figure.unit == "ratio" else f"{figure.value:,.1f}"
        print(f"{figure.name:<{width}} {value:>10}  {figure.unit:<7} {figure.goal:<18} {met}")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    profile = PROFILES[args.profile]
    bench = Bench(args.profile, profile, Path(settings.DATA_DIR) / "bench-http")
    # The servers' logs are those of the last run only: the access log alone grows by every request.
    shutil.rmtree(bench.log_dir, ignore_errors=True)
    bench.context["keys_in_table"] = ensure_keyward_keys(profile.keys)
    bench.context["peer_keys"] = PEER_KEYS
    bench.context["wrk"] = f"-t{THREADS} -c{CONNECTIONS}"
    ensure_bench_user()
    peer_key = ensure_peer_keys()
    # The purge comes last: it shrinks the table every other run needs at the profile's size.
    with running_server(bench.log_dir, SERVER_ENV) as server:
        encoded = create_keyward_key("b")
        measure_authentication(bench, server, encoded, peer_key)
        measure_creation(bench, server, encoded)
    measure_pbkdf2(bench)
    with running_server(bench.log_dir, SERVER_ENV) as server:
        measure_purge(bench, server, create_keyward_key("purge"))
    write_figures(args.out, bench.figures)
    print_table(bench.figures)
    seconds = time.monotonic() - STARTED
    print(f"\n{database_label()}, {args.profile} profile, {seconds:.0f} s; every figure in {args.out}")


if __name__ == "__main__":
    main()
