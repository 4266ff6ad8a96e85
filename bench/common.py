"""What the benchmarks share: where they run, the profiles, and how a figure is reported.

Every benchmark module is a command, ``python -m bench.<name> --profile reduced|full --out F``, run
by ``bench/run.py`` with the database and data directory in its environment
(``DATABASE_URL``, ``KEYWARD_DATA_DIR``, ``DJANGO_SETTINGS_MODULE=bench.settings``). It writes the
figures it measured to ``F`` as JSON, a list of ``Figure.as_dict()``.
"""

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Figure:
    """One measured number, and the goal it is held to when there is one."""

    benchmark: str  # e.g. "auth", "pages", "bulk", "purge", "create", "memory"
    name: str  # what was measured, e.g. "B: ApiKey /_security/_authenticate"
    value: float
    unit: str  # "req/s", "ms", "s", "keys/s", "MB", "ratio", "queries"
    goal: str = ""  # e.g. ">= 0.75", "< 100", shown as written
    met: bool | None = None  # None when there is no goal
    detail: dict | None = None  # anything else worth keeping (raw samples, scale, database)

    def as_dict(self) -> dict:
        return asdict(self)


def database_label() -> str:
    return "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"


def manage(*args, env=None, check=True, capture=False) -> subprocess.CompletedProcess:
    """``manage.py`` with the benchmark's environment (database, data directory, settings)."""
    return subprocess.run(
        [PYTHON, str(BASE_DIR / "manage.py"), *map(str, args)],
        cwd=BASE_DIR,
        env={**os.environ, **(env or {})},
        check=check,
        capture_output=capture,
        text=True,
    )


def argument_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes; a benchmark may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", choices=("reduced", "full"), default="reduced")
    parser.add_argument("--out", type=Path, required=True, help="where to write the figures (JSON)")
    return parser


def parse_args(description: str) -> argparse.Namespace:
    return argument_parser(description).parse_args()


def write_figures(path: Path, figures: list[Figure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([figure.as_dict() for figure in figures], indent=2))
