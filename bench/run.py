"""Run every benchmark on SQLite and on PostgreSQL, then print one table of figures and goals.

    python -m bench.run --profile reduced    # make bench: a few minutes, up to 100,000 keys
    python -m bench.run --profile full       # docs/benchmarks.md: a million keys, about an hour

Each database starts empty in its own data directory (``var/bench/<database>``) or database
(``keyward_bench``, and ``keyward_bench_peer`` for the HTTP benchmark's peer project), is
migrated with ``bench.settings``, and then goes through the benchmark commands in turn, each one a
separate process: the page timings grow the table to the profile's size, the aggregations are
counted over it, the bulk invalidation leaves it as it found it, and the HTTP benchmarks run
against that table. Figures go to ``var/bench/results/<profile>-<database>.json``.
"""

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BASE_DIR, PYTHON, manage
from bench.peer.database import database_url as peer_database_url

BENCHMARKS = ("pages", "aggregations", "bulk", "http", "hotpath")
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/keyward_bench"
RESULTS = BASE_DIR / "var" / "bench" / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("reduced", "full"), default="reduced")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated (default both)")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--chart", type=Path, default=None, help="also draw the page timings to this SVG")
    return parser.parse_args()


def postgres_url() -> str:
    return os.environ.get("KEYWARD_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def fresh_postgres_database(url: str) -> bool:
    """Drop and create the benchmark database; False when no server answers."""
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    try:
        with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=3) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as error:
        print(f"PostgreSQL benchmarks skipped: no server at {url} ({error})".strip())
        return False
    return True


def prepare(database: str) -> dict | None:
    """The environment of one database's run, on an empty database; None if it cannot be had."""
    data_dir = BASE_DIR / "var" / "bench" / database
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    url = ""
    if database == "postgresql":
        url = postgres_url()
        if not (fresh_postgres_database(url) and fresh_postgres_database(peer_database_url(url))):
            return None
    env = {
        "DATABASE_URL": url,
        "KEYWARD_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "ELASTIC_PASSWORD": "bench-" + os.urandom(9).hex(),
        # Only the purge benchmark purges, when it means to.
        "KEYWARD_API_KEY_PURGE_ON_REQUEST": "false",
    }
    manage("migrate", "--no-input", "-v0", env=env)
    manage("bootstrap", env=env, capture=True)
    return env


def run_benchmark(name: str, profile: str, env: dict, out: Path) -> None:
    started = time.monotonic()
    print(f"\n== {name} ({profile}) on {env['DATABASE_URL'] and 'postgresql' or 'sqlite'}", flush=True)
    completed = subprocess.run(
        [PYTHON, "-m", f"bench.{name}", "--profile", profile, "--out", str(out)],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        check=False,
    )
    print(f"   {name} took {time.monotonic() - started:.0f} s", flush=True)
    if completed.returncode != 0:
        print(f"   {name} FAILED with exit status {completed.returncode}", flush=True)
        out.unlink(missing_ok=True)


def machine() -> dict:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    postgres = subprocess.run(
        ["psql", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    wrk = shutil.which("wrk")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql_client": postgres,
        "wrk": wrk or "not installed",
    }


def show(value: float, unit: str) -> str:
    if unit in ("ratio",):
        return f"{value:.2f}"
    if abs(value) >= 100 or unit in ("queries", "keys"):
        return f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}"


def print_table(results: dict[str, list[dict]]) -> int:
    """The figures of every database side by side; returns how many goals were missed."""
    missed = 0
    for database, figures in results.items():
        print(f"\n{'=' * 100}\n{database}\n{'=' * 100}")
        print(f"{'benchmark':<12} {'figure':<58} {'value':>16}  {'goal':<10} met")
        for figure in figures:
            met = {True: "yes", False: "NO", None: ""}[figure["met"]]
            scale = (figure.get("detail") or {}).get("scale")
            name = f"{scale:>9,} keys: {figure['name']}" if scale else figure["name"]
            missed += figure["met"] is False
            print(
                f"{figure['benchmark']:<12} {name[:58]:<58} "
                f"{show(figure['value'], figure['unit']):>16}  {figure['goal']:<10} {met}"
            )
    return missed


def main() -> None:
    args = parse_args()
    if not shutil.which("wrk") and "http" in args.only:
        sys.exit("wrk is needed for the HTTP benchmarks: apt-get install -y wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    about = machine()
    print("Machine: " + ", ".join(f"{key} {value}" for key, value in about.items()))
    results = {}
    for database in args.databases.split(","):
        env = prepare(database)
        if env is None:
            continue
        for name in args.only.split(","):
            run_benchmark(name, args.profile, env, RESULTS / f"{args.profile}-{database}-{name}.json")
        # The summary holds the latest figures of every benchmark, so one can be run again alone.
        figures = []
        for name in BENCHMARKS:
            path = RESULTS / f"{args.profile}-{database}-{name}.json"
            figures += json.loads(path.read_text()) if path.exists() else []
        results[database] = figures
        summary = {"profile": args.profile, "database": database, "machine": about, "figures": figures}
        (RESULTS / f"{args.profile}-{database}.json").write_text(json.dumps(summary, indent=2))
    missed = print_table(results)
    if args.chart:
        pages = [str(path) for path in sorted(RESULTS.glob(f"{args.profile}-*-pages.json"))]
        subprocess.run(
            [PYTHON, "-m", "bench.chart", *pages, "--out", str(args.chart)], cwd=BASE_DIR, check=True
        )
        print(f"\nChart: {args.chart}")
    print(f"\n{args.profile} profile: {time.monotonic() - started:.0f} s in all; {missed} goal(s) not met.")
    print(f"Figures: {RESULTS}/{args.profile}-<database>.json")


if __name__ == "__main__":
    main()
