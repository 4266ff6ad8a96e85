"""The HTTP benchmark: real gunicorns with the production configuration, loaded by wrk from 127.0.0.1.

1. Authentication overhead, inside Keyward's project: requests per second of A (a minimal DRF
   view, no authentication), A0 (the same as a plain Django view), B (``GET
   /_security/_authenticate`` with an ``ApiKey``) and C (A behind djangorestframework-api-key, with
   100,000 of its keys), all mounted in Keyward's project (``bench/settings.py``).
2. Whole product against whole product: B, and F (``GET /_security/_forward_auth`` with the same
   header, when the server answers it with 200), against the peer project (``bench/peer/``): a
   ``startproject`` Django project whose P is a DRF view behind djangorestframework-api-key's
   ``HasAPIKey`` with 100,000 keys in its own database, and P0 its unprotected plain Django view.
   The peer is served by a second gunicorn with the same command line and configuration file, but
   for its WSGI module and settings. Then B with the ``pbkdf2_sha256`` hashing setting, with and
   without its verification cache.
3. Creation: keys per second through ``POST /_security/api_key`` with 1 and with 8 connections,
   checked against the keys the database holds afterwards.
4. Purge: ``manage.py purge_api_keys`` of keys past retention, and the p99 latency of B under a
   steady load while it runs, beside the same load without it.
5. Memory: the resident memory of each Keyward worker after each part.

Every load figure is the median of ``runs`` short wrk runs (3 of 3 s in the reduced profile, 5 of
10 s in the full one), each after its own warm-up once per server: a slow spell of a shared machine
or an unlucky spread of connections moves one run, not the figure. The endpoints of the first two
parts, whose ratios are the goals, are measured in rounds, each endpoint once per round, so that
what happens to the machine meanwhile falls on all of them alike. The latencies are those of the
median run. The purge runs once, being one event; the load beside it is a median as the others.
Each run also says how the two workers shared it (the least busy one's CPU time over the busiest's);
the lowest share over an endpoint's runs is a figure of its own, so that a run served by one worker
shows. The workers share new connections by configuration (``config/gunicorn.conf.py``: a listening
socket per worker), not by anything done here.

The database and data directory come from the environment (``DATABASE_URL``, ``KEYWARD_DATA_DIR``);
``migrate`` has been run with ``bench.settings``. The peer's database (a SQLite file under the data
directory, or the PostgreSQL database named as Keyward's with ``_peer`` after it) is created if
missing, migrated and seeded here. Run it as ``python -m bench.http --profile reduced|full --out FILE``.
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import BASE_DIR, PYTHON, Figure, database_label, manage, parse_args, write_figures
from bench.peer.database import database_url as peer_database_url
from bench.server import HOST, PEER, Server, running_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402  (after the settings module is chosen)

django.setup()

from django.conf import settings  # noqa: E402
from rest_framework_api_key.models import APIKey  # noqa: E402

from accounts.models import User  # noqa: E402
from apikeys.models import ApiKey  # noqa: E402
from apikeys.services import purge_api_keys  # noqa: E402
from bench.peer import keys as peer_keys  # noqa: E402


@dataclass(frozen=True)
class Profile:
    keys: int  # Keyward keys in the table during the authentication runs
    seconds: int  # each measured wrk run
    runs: int  # measured runs of each figure, which is their median
    warmup: int  # the wrk run before an endpoint's first measured one, not counted
    purge_keys: int  # keys past retention that the purge deletes


PROFILES = {
    "reduced": Profile(keys=100_000, seconds=3, runs=3, warmup=2, purge_keys=100_000),
    "full": Profile(keys=1_000_000, seconds=10, runs=5, warmup=5, purge_keys=1_000_000),
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
# The server's own background purge would delete the seeded keys past retention during the
# authentication runs: off here, the purge is measured through the management command only.
SERVER_ENV = {"KEYWARD_API_KEY_PURGE_ON_REQUEST": "false"}
PBKDF2_ENV = {"KEYWARD_API_KEY_HASH_ALGORITHM": "pbkdf2_sha256"}
# The switch of the in-process cache of verified slow hashes (apikeys.hashers.verification_cache).
VERIFICATION_CACHE_SETTING = "API_KEY_VERIFICATION_CACHE"
VERIFICATION_CACHE_ENV = "KEYWARD_API_KEY_VERIFICATION_CACHE"

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
    """The djangorestframework-api-key table of Keyward's database (C) filled to ``PEER_KEYS``, one
    of them new; returns that key's secret."""
    if APIKey.objects.count() < PEER_KEYS - 1:
        step(f"filling C's table to {PEER_KEYS:,} keys")
    return peer_keys.fill(PEER_KEYS, PEER_KEY_NAME)


def peer_manage(*args) -> str:
    """``python -m bench.peer.manage`` with the benchmark's environment; returns its output."""
    command = [PYTHON, "-m", "bench.peer.manage", *map(str, args)]
    return subprocess.run(command, cwd=BASE_DIR, check=True, capture_output=True, text=True).stdout


def ensure_peer_database() -> None:
    """The peer's PostgreSQL database, created when missing; a SQLite file creates itself."""
    url = peer_database_url(os.environ.get("DATABASE_URL", ""))
    if not url.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare_peer() -> str:
    """The peer project migrated and its table filled to ``PEER_KEYS`` through its own commands;
    returns the secret of a new key of it."""
    step(f"the peer project: migrate, and fill its table to {PEER_KEYS:,} keys")
    ensure_peer_database()
    peer_manage("migrate", "--no-input", "-v0")
    return peer_manage("seed_peer_keys", "--keys", PEER_KEYS).strip()


# ---------------------------------------------------------------------------------------------
# Measuring

AUTHENTICATE = "/_security/_authenticate"
FORWARD_AUTH = "/_security/_forward_auth"


@dataclass(frozen=True)
class Running:
    """A wrk run under way, and the workers' CPU times when it started."""

    process: subprocess.Popen
    command: list
    cpu_before: dict[int, float]


def start(server: Server, command: list) -> Running:
    before = server.worker_cpu_seconds()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return Running(process, command, before)


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
    }
    return parse_wrk(stdout), detail


def run_measured(server: Server, command: list) -> tuple[Load, dict]:
    return finish(server, start(server, command))


def worker_balance(before: dict[int, float], after: dict[int, float]) -> float:
    """The least busy worker's CPU time over the busiest's, between two readings."""
    used = [after.get(pid, cpu) - cpu for pid, cpu in before.items()]
    return min(used) / (max(used) or 1)


def check_answers(label: str, load: Load, server: Server) -> None:
    """A figure of refused requests would measure the refusal: any answer but a 2xx stops the run."""
    if load.errors["status"]:
        raise RuntimeError(f"{label}: {load.errors['status']} answers were not 2xx; see {server.log_path}")


def median_run(runs: list[tuple[Load, dict]]) -> tuple[Load, dict]:
    """The run of median rate (the lower of the middle two when there are an even number)."""
    return sorted(runs, key=lambda run: run[0].rate)[(len(runs) - 1) // 2]


def answers(server: Server, path: str, headers: dict) -> int:
    """The status of one GET, over HTTPS without checking the self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(HOST, server.port, context=context, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@dataclass(frozen=True)
class Endpoint:
    """One loaded URL: ``label`` starts with its letter, e.g. "B: ApiKey GET /_security/_authenticate"."""

    label: str
    server: Server
    path: str
    headers: tuple = ()

    @property
    def letter(self) -> str:
        return self.label.split(":")[0]


class Bench:
    """The figures of one run of the benchmark, with the context every figure carries."""

    def __init__(self, profile_name: str, profile: Profile, log_dir: Path):
        self.profile = profile
        self.log_dir = log_dir
        self.context = {"database": database_label(), "profile": profile_name}
        self.figures: list[Figure] = []

    def add(self, benchmark: str, name: str, value: float, unit: str, goal: str = "", met=None, **detail):
        self.figures.append(Figure(benchmark, name, value, unit, goal, met, {**self.context, **detail}))

    def compare(self, benchmark: str, endpoints: list[Endpoint]) -> dict[str, float]:
        """Each endpoint warmed up, then ``runs`` rounds of one measured run of each; reports each
        endpoint's median run and returns ``{letter: median rate}``."""
        for endpoint in endpoints:
            step(f"warm-up: {endpoint.label}")
            run_wrk(self.command(endpoint, self.profile.warmup))
        runs = {endpoint: [] for endpoint in endpoints}
        for number in range(1, self.profile.runs + 1):
            step(f"round {number} of {self.profile.runs}: {', '.join(e.letter for e in endpoints)}")
            for endpoint in endpoints:
                load, balance = run_measured(endpoint.server, self.command(endpoint, self.profile.seconds))
                check_answers(endpoint.label, load, endpoint.server)
                runs[endpoint].append((load, balance))
        return {each.letter: self.report(benchmark, each.label, runs[each]) for each in endpoints}

    def command(self, endpoint: Endpoint, seconds: float) -> list:
        url = endpoint.server.url + endpoint.path
        return wrk_command(url, "get.lua", seconds, CONNECTIONS, endpoint.headers)

    def report(self, benchmark: str, label: str, runs: list[tuple[Load, dict]]) -> float:
        """The median run's rate and latencies, the rate of every run, and the lowest worker share."""
        load, balance = median_run(runs)
        rates = [round(run.rate, 1) for run, _ in runs]
        self.add(benchmark, label, round(load.rate, 1), "req/s", runs=rates, **load.detail(), **balance)
        self.latencies(benchmark, label, load)
        self.balance(benchmark, label, [share for _, share in runs])
        return load.rate

    def balance(self, benchmark: str, label: str, shares: list[dict]) -> None:
        """The lowest share of the workers over the runs: a run served by one worker shows as 0."""
        per_run = [share["worker_balance"] for share in shares]
        # Named by the letter alone where there is one, so that the summary table shows it whole.
        self.add(benchmark, f"worker balance, {label.split(':')[0]}", min(per_run), "ratio", runs=per_run)

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

    def ratio(self, benchmark: str, rates: dict[str, float], top: str, bottom: str, goal: float | None):
        ratio = rates[top] / rates[bottom]
        self.add(benchmark, f"{top}/{bottom}", round(ratio, 3), "ratio", f">= {goal}" if goal else "",
                 ratio >= goal if goal else None)


def measure_authentication(bench: Bench, server: Server, peer: Server, encoded: str, keys: dict) -> None:
    """A, A0, B and C in Keyward's project, P and P0 in the peer project, and F when Keyward serves
    it, in rounds; then the ratios."""
    keyward_key = (authorization("ApiKey", encoded),)
    c_key, p_key = (authorization("Api-Key", keys["C"]),), (authorization("Api-Key", keys["P"]),)
    endpoints = [
        Endpoint("A: minimal DRF view, no authentication", server, "/bench/A"),
        Endpoint("A0: minimal plain Django view", server, "/bench/A0"),
        Endpoint("B: ApiKey GET /_security/_authenticate", server, AUTHENTICATE, keyward_key),
        Endpoint("C: A with djangorestframework-api-key", server, "/bench/C", c_key),
        Endpoint("P: peer project, DRF view with HasAPIKey", peer, "/P", p_key),
        Endpoint("P0: peer project, plain Django view", peer, "/P0"),
    ]
    status = answers(server, FORWARD_AUTH, {"Authorization": f"ApiKey {encoded}"})
    if status == 200:
        forward = Endpoint("F: ApiKey GET /_security/_forward_auth", server, FORWARD_AUTH, keyward_key)
        endpoints.append(forward)
    else:
        step(f"not measured: F, for GET {FORWARD_AUTH} with a valid key answered {status}, not 200")
    rates = bench.compare("auth", endpoints)
    bench.memory(server, "authentication")
    ratios = [("B", "A", 0.75), ("B", "C", 2.0), ("C", "A", None), ("B", "P", 2.0), ("B", "P0", 0.9),
              ("P", "P0", None)]
    if "F" in rates:
        ratios += [("F", "P", 2.0), ("F", "P0", 0.9)]
    for top, bottom, goal in ratios:
        bench.ratio("auth", rates, top, bottom, goal)


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
            headers = (authorization("ApiKey", encoded),)
            bench.compare("auth", [Endpoint(f"B ({variant})", server, AUTHENTICATE, headers)])
            bench.memory(server, f"B ({variant})")


def measure_creation(bench: Bench, server: Server, encoded: str) -> None:
    """Keys per second through the REST API with 1 and 8 connections, the median of ``runs`` runs,
    checked against the database.

    The server is warm from the authentication runs, so there is no warm-up: every key created
    is counted."""
    url, run = server.url + "/_security/api_key", secrets.token_hex(4)
    headers = [authorization("ApiKey", encoded)]
    for connections in (1, CONNECTIONS):
        label = f"{connections} connection{'s' if connections > 1 else ''}"
        runs, stored, refused, unanswered = [], 0, 0, 0
        for number in range(1, bench.profile.runs + 1):
            step(f"creation, {label}, run {number} of {bench.profile.runs}")
            # Names start with the run, the connections and the run's number: each run's keys apart.
            prefix = f"bench-create-{run}-{connections}-{number}"
            command = wrk_command(url, "create.lua", bench.profile.seconds, connections, headers, [prefix])
            load, balance = run_measured(server, command)
            runs.append((load, balance))
            stored += ApiKey.objects.filter(name__startswith=f"{prefix}-").count()
            refused += load.failed + load.socket_errors()
            # wrk stops with requests sent and not yet answered, whose keys may exist.
            unanswered += load.sent - load.ok - load.failed
        load, balance = median_run(runs)
        ok = sum(each.ok for each, _ in runs)
        rate = load.ok / load.seconds
        goal, met = "", None
        if connections == CONNECTIONS:
            goal = f">= {CREATE_GOAL} on {CREATE_GOAL_DATABASE}"
            met = rate >= CREATE_GOAL if database_label() == CREATE_GOAL_DATABASE else None
        rates = [round(each.ok / each.seconds, 1) for each, _ in runs]
        bench.add("create", f"keys/s, {label}", round(rate, 1), "keys/s", goal, met, runs=rates,
                  ok=ok, stored=stored, **load.detail(), **balance)
        if connections > 1:  # one connection is served by one worker: no share to tell
            bench.balance("create", f"create, {label}", [each for _, each in runs])
        bench.add("create", f"non-200 answers, {label}", refused, "answers", "== 0", refused == 0)
        bench.add("create", f"keys stored without a 200 answer, {label}", stored - ok, "keys",
                  f"0 to {unanswered} (unanswered)", 0 <= stored - ok <= unanswered)
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
    beside the same load without it (the median of ``runs`` runs).

    The load during the purge starts with the purge command and ends when it exits, so it also
    covers the command's own start, about a second."""
    scale = seed_past_retention(bench.profile.purge_keys)
    url, headers = server.url + AUTHENTICATE, [authorization("ApiKey", encoded)]
    steady = {"pause_ms": PURGE_LOAD_PAUSE_MS}

    def paced(seconds: float) -> list:
        return wrk_command(url, "paced.lua", seconds, CONNECTIONS, headers, [PURGE_LOAD_PAUSE_MS])

    label = "B steady load without purge"
    runs = []
    for number in range(1, bench.profile.runs + 1):
        step(f"{label}, run {number} of {bench.profile.runs}")
        runs.append(run_measured(server, paced(bench.profile.seconds)))
        check_answers(label, runs[-1][0], server)
    load, balance = median_run(runs)
    rates = [round(each.rate, 1) for each, _ in runs]
    bench.add("purge", label, round(load.rate, 1), "req/s", runs=rates, **steady, **load.detail(), **balance)
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
    running = start(server, command)
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
    bench.context["runs"] = f"median of {profile.runs} runs of {profile.seconds} s"
    ensure_bench_user()
    keys = {"C": ensure_peer_keys(), "P": prepare_peer()}
    # The purge comes last: it shrinks the table every other run needs at the profile's size.
    with running_server(bench.log_dir, SERVER_ENV) as server:
        encoded = create_keyward_key("b")
        with running_server(bench.log_dir / "peer", app=PEER) as peer:
            measure_authentication(bench, server, peer, encoded, keys)
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
