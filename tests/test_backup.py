"""``manage.py backup`` and ``restore``, run as an operator runs them, in processes of their own.

A real gunicorn (tests/server.py) serves clients that create keys through the REST API while the
backup runs; the backup is restored into a fresh data directory and served by a new server, on
which every key answered before the backup started authenticates. A restore is refused while a
server runs on the data directory, or while any process has the database open; bad input ends in
one clear line, never a traceback.
"""

import base64
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection

from tests.server import BASE_DIR, COMMAND_TIMEOUT, _migrated_template, start_keyward_server

pytestmark = pytest.mark.server

WRITERS = 4
KEYS_BEFORE = 10
# Keys the writers must have made before the backup starts, and after it ends: load on both sides.
LOAD_BEFORE = 20
LOAD_AFTER = 20
CREATE = "/_security/api_key"


def new_key(name: str) -> dict:
    """A key made with an API key must ask for no privileges (Elasticsearch's derived keys)."""
    return {"name": name, "role_descriptors": {"none": {}}}


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    """``manage.py`` as a person runs it; the caller reads its status and output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr


def sqlite_env(data_dir: Path) -> dict:
    """The environment of an installation on SQLite whose everything is in ``data_dir``."""
    return {
        **os.environ,
        "KEYWARD_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'keyward.sqlite3'}",
    }


def migrated(data_dir: Path) -> dict:
    """The environment of an installation on SQLite in ``data_dir``, its database migrated: a copy
    of the suite's migrated template, as the test servers get."""
    with closing(sqlite3.connect(_migrated_template())) as template, \
            closing(sqlite3.connect(data_dir / "keyward.sqlite3")) as database:
        template.backup(database)
        database.execute("PRAGMA journal_mode=WAL")
    return sqlite_env(data_dir)


def require_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("backup and restore of a SQLite database; this run's servers use PostgreSQL")


def authenticates(server, encoded: str) -> int:
    client = server.connection()
    try:
        status, _ = server.request(client, "GET", "/_security/_authenticate", f"ApiKey {encoded}")
    finally:
        client.close()
    return status


class Writers:
    """Clients creating keys back to back, each on its keep-alive connection; every key is kept
    with when its request was sent and when its answer came."""

    def __init__(self, server, authorization: str):
        self.server, self.authorization = server, authorization
        self.created: list[tuple[float, float, str, str]] = []  # sent, answered, id, encoded
        self.failures: list[object] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.write, args=(number,)) for number in range(WRITERS)]

    def write(self, number: int) -> None:
        client = self.server.connection()
        try:
            for count in range(100_000):
                if self.stop.is_set():
                    return
                sent = time.monotonic()
                body = new_key(f"load-{number}-{count}")
                status, body = self.server.request(client, "POST", CREATE, self.authorization, body)
                if status != 200:
                    self.failures.append(body)
                    return
                self.created.append((sent, time.monotonic(), body["id"], body["encoded"]))
        except Exception as error:
            self.failures.append(error)
        finally:
            client.close()

    def wait_for(self, count: int, after: float = 0.0) -> None:
        deadline = time.monotonic() + 60
        while sum(sent > after for sent, *_ in self.created) < count and not self.failures:
            assert time.monotonic() < deadline, "the writers made too few keys"
            time.sleep(0.05)


def test_backup_under_write_load_restores_every_key_created_before_it(tmp_path_factory, tmp_path):
    require_sqlite()
    backup_path = tmp_path / "keyward-backup.sqlite3"
    with start_keyward_server(tmp_path_factory) as server:
        admin = server.elastic_api_key("backup-load")
        before = []
        client = server.connection()
        for number in range(KEYS_BEFORE):
            status, body = server.request(client, "POST", CREATE, admin, new_key(f"before-{number}"))
            assert status == 200, body
            before.append((body["id"], body["encoded"]))
        client.close()

        writers = Writers(server, admin)
        for thread in writers.threads:
            thread.start()
        try:
            writers.wait_for(LOAD_BEFORE)
            started = time.monotonic()
            backed_up = manage(server.env, "backup", str(backup_path))
            finished = time.monotonic()
            writers.wait_for(LOAD_AFTER, after=finished)
        finally:
            writers.stop.set()
            for thread in writers.threads:
                thread.join(30)
        assert not writers.failures, writers.failures
        assert backed_up.returncode == 0, backed_up.stderr
        answered_before = before + [(key_id, encoded) for _, answered, key_id, encoded in writers.created
                                    if answered < started]
        sent_after = [(key_id, encoded) for sent, _, key_id, encoded in writers.created if sent > finished]

        # The file alone: whole, every key answered before it started, none asked for after it
        # ended, and each key with the audit event its transaction wrote beside it.
        with closing(sqlite3.connect(backup_path)) as backup:
            assert backup.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert backup.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            ids = {row[0] for row in backup.execute("SELECT id FROM apikeys_apikey")}
            unaudited = backup.execute(
                "SELECT count(*) FROM apikeys_apikey AS k WHERE NOT EXISTS (SELECT 1 FROM accounts_auditevent"
                " AS e, json_each(e.api_key_ids) AS j WHERE e.action = 'api_key_created' AND j.value = k.id)"
            ).fetchone()[0]
        assert {key_id for key_id, _ in answered_before} <= ids
        assert not {key_id for key_id, _ in sent_after} & ids
        assert unaudited == 0
        assert f"{len(ids):,} API keys" in backed_up.stdout
        assert f"to {backup_path}: {backup_path.stat().st_size:,} bytes" in backed_up.stdout

        # Not while the server runs: the database is left as it is.
        keys_now = server.query("SELECT count(*) FROM apikeys_apikey")
        refused(manage(server.env, "restore", str(backup_path)), "a Keyward server is running on this data")
        assert server.query("SELECT count(*) FROM apikeys_apikey") == keys_now
        assert not list(server.data_dir.glob("keyward.sqlite3.before-restore-*"))

        # Invalidated after the backup: a restore over this database brings it back, and says so.
        invalidated = before[0][0]
        client = server.connection()
        status, body = server.request(client, "DELETE", "/_security/api_key", admin, {"ids": [invalidated]})
        client.close()
        assert status == 200 and body["invalidated_api_keys"] == [invalidated], body

    # Into a fresh data directory, then served by a new server.
    with closing(sqlite3.connect(backup_path)) as backup:
        epoch_in_backup = backup.execute("SELECT value FROM apikeys_credentialepoch").fetchone()
    fresh = tmp_path / "restored"
    fresh.mkdir()
    restored = manage(sqlite_env(fresh), "restore", str(backup_path))
    assert restored.returncode == 0, restored.stderr
    assert f"into {fresh / 'keyward.sqlite3'}: " in restored.stdout
    assert "kept as" not in restored.stdout  # there was nothing to replace
    with closing(sqlite3.connect(fresh / "keyward.sqlite3")) as database:
        assert database.execute("SELECT value FROM apikeys_credentialepoch").fetchone() != epoch_in_backup
    with start_keyward_server(tmp_path_factory, DATABASE_URL=sqlite_env(fresh)["DATABASE_URL"]) as again:
        refused_keys = [key_id for key_id, encoded in answered_before if authenticates(again, encoded) != 200]
        assert refused_keys == []
        assert [authenticates(again, encoded) for _, encoded in sent_after[:5]] == [401] * len(sent_after[:5])

    # Over the stopped server's own database: the replaced one is kept, and the key invalidated
    # since the backup, which works again, is named.
    over = manage(server.env, "restore", str(backup_path))
    assert over.returncode == 0, over.stderr
    kept = list(server.data_dir.glob("keyward.sqlite3.before-restore-*"))
    assert len(kept) == 1 and f"kept as {kept[0]}" in over.stdout
    assert f"invalidate_api_keys --id={invalidated}\n" in over.stderr
    assert not Path(f"{server.sqlite_path}-wal").exists()


def test_restore_is_refused_while_another_process_has_the_database_open(tmp_path):
    require_sqlite()
    env = migrated(tmp_path)
    backup_path = tmp_path / "backup.sqlite3"
    assert manage(env, "backup", str(backup_path)).returncode == 0
    with closing(sqlite3.connect(tmp_path / "keyward.sqlite3")) as holder:
        holder.execute("SELECT count(*) FROM apikeys_apikey").fetchone()
        refused(manage(env, "restore", str(backup_path)), f"process {os.getpid()} has ")
    assert manage(env, "restore", str(backup_path)).returncode == 0


def test_bad_paths_and_files_are_refused_with_one_line(tmp_path):
    require_sqlite()
    env = sqlite_env(tmp_path)
    refused(manage(env, "backup", str(tmp_path / "b.sqlite3")), "there is no database at")
    migrated(tmp_path)

    refused(manage(env, "restore", str(tmp_path / "missing.sqlite3")), "missing.sqlite3 does not exist")
    refused(manage(env, "restore", str(tmp_path)), "is not a file")
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 200)
    refused(manage(env, "restore", str(text)), "notes.txt is not a SQLite database")
    other = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(other)) as database:
        database.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    refused(manage(env, "restore", str(other)), "is not a Keyward database (no table django_migrations")
    refused(manage(env, "restore", str(tmp_path / "keyward.sqlite3")), "is the database itself")

    newer = tmp_path / "newer.sqlite3"
    assert manage(env, "backup", str(newer)).returncode == 0
    with closing(sqlite3.connect(newer)) as database:
        database.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('apikeys', '9999_x', 0)")
        database.commit()
    refused(manage(env, "restore", str(newer)), "made by a newer Keyward: its migrations apikeys.9999_x are")

    refused(manage(env, "backup", str(tmp_path / "nowhere" / "b.sqlite3")), "nowhere is not a directory")
    refused(manage(env, "backup", str(tmp_path)), "is a directory: name the file to write")
    refused(manage(env, "backup", str(tmp_path / "keyward.sqlite3-wal")), "is the database itself")
    refused(manage(env, "backup", str(text)), "notes.txt exists: --force replaces it")
    assert text.read_text().startswith("not a database")
    assert manage(env, "backup", "--force", str(text)).returncode == 0
    with closing(sqlite3.connect(text)) as database:
        assert database.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_on_postgresql_backup_prints_pg_dump_without_the_password_and_restore_refuses(tmp_path):
    password = base64.b32encode(os.urandom(10)).decode()
    env = {
        **os.environ,
        "KEYWARD_DATA_DIR": str(tmp_path),
        # Nothing listens there, and nothing may connect: the command only prints.
        "DATABASE_URL": f"postgres://keeper:{password}@127.0.0.1:1/keys_prod",
    }
    printed = manage(env, "backup", "/backups/keys.dump")
    assert printed.returncode == 0, printed.stderr
    assert "Keyward runs nothing on PostgreSQL" in printed.stdout
    assert (
        "pg_dump --format=custom --file=/backups/keys.dump --host=127.0.0.1 --port=1 --username=keeper "
        "--dbname=keys_prod" in printed.stdout
    )
    assert "pg_restore --clean --if-exists" in printed.stdout
    assert password not in printed.stdout + printed.stderr

    refusal = manage(env, "restore", "/backups/keys.dump")
    refused(refusal, "restore replaces a SQLite database only")
    assert "pg_restore --clean --if-exists --host=127.0.0.1 --port=1 --username=keeper" in refusal.stderr
    assert password not in refusal.stdout + refusal.stderr
