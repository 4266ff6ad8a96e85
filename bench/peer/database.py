"""Where the peer keeps its data, from the benchmark's own environment.

Kept apart from the settings so that ``bench/run.py`` can name the database without loading them.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SUFFIX = "_peer"


def data_dir() -> Path:
    """``peer/`` in the benchmark's data directory: the SQLite file and the secret key."""
    return Path(os.environ.get("KEYWARD_DATA_DIR") or BASE_DIR / "var").resolve() / "peer"


def database_url(keyward_url: str) -> str:
    """The peer's database beside Keyward's: the same PostgreSQL server with ``_peer`` after the
    database name, or a SQLite file in the peer's data directory when Keyward's is SQLite."""
    if not keyward_url.startswith("postgres"):
        return f"sqlite:///{data_dir() / 'db.sqlite3'}"
    parts = urlsplit(keyward_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + SUFFIX))
