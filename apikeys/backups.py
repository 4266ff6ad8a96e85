"""Backups of the SQLite database while the server runs, and their restore (``manage.py backup``,
``manage.py restore``); on PostgreSQL, the ``pg_dump`` command to run instead.

A backup is SQLite's online backup API in one step: one read transaction, so a consistent snapshot
of the last commit before it started, while the server's workers go on writing to the WAL. It is
written to a temporary file beside its target and renamed, so a target is never half-written.
A restore checks the file, refuses while a server runs (``config.server_lock``), replaces the
database with the database's WAL and shared-memory files, keeps the replaced one beside it, and
moves the credential epoch on so that nothing remembered before it is trusted again.
"""

import fcntl
import os
import secrets
import shlex
import sqlite3
import struct
import tempfile
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from config.server_lock import NoServer, ServerRunning

BUSY_TIMEOUT = 30  # seconds a backup waits for a checkpoint or a writer, as the server does
# Tables that every Keyward database has: a file without them is somebody else's database.
KEYWARD_TABLES = ("django_migrations", "accounts_user", "apikeys_apikey")
EPOCH_TABLE = "apikeys_credentialepoch"
# SQLite's unix VFS: every connection to a WAL database holds a shared lock on this byte of the
# -shm file for as long as it is open (UNIX_SHM_DMS, after the 8 WAL locks at offset 120).
SHM_DMS_BYTE = 128
FLOCK = struct.Struct("hhqqi")  # struct flock on Linux: type, whence, start, length, pid


class BackupError(Exception):
    """A backup or restore that cannot be done, with the one line that says why."""


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    keys: int
    active: int


@dataclass(frozen=True)
class Restored:
    written: Written
    previous: Path | None  # the replaced database, kept beside it
    revived: list[str]  # keys active again that the replaced database had invalidated
    pending: list[str]  # migrations this code has that the backup lacks
    notes: list[str] = field(default_factory=list)


def sqlite_database(using: str = "default") -> Path | None:
    """The SQLite file of the configured database; None on another database."""
    if connections[using].vendor != "sqlite":
        return None
    return Path(settings.DATABASES[using]["NAME"]).absolute()


def pg_dump_command(target: str, using: str = "default") -> str:
    """The ``pg_dump`` command that dumps the configured PostgreSQL database to ``target``, without
    its password, which pg_dump reads from PGPASSWORD or ~/.pgpass."""
    return shlex.join(["pg_dump", "--format=custom", f"--file={target}", *_pg_connection(using)])


def pg_restore_command(source: str, using: str = "default") -> str:
    """The ``pg_restore`` command that replaces the configured database's contents with a dump."""
    return shlex.join(["pg_restore", "--clean", "--if-exists", *_pg_connection(using), source])


def _pg_connection(using: str) -> list[str]:
    database = settings.DATABASES[using]
    given = {"host": database.get("HOST"), "port": database.get("PORT"), "username": database.get("USER")}
    return [f"--{name}={value}" for name, value in given.items() if value] + [f"--dbname={database['NAME']}"]


def backup(database: Path, target: Path, force: bool = False) -> Written:
    """Copy the live database to ``target``, a self-contained file (no WAL beside it)."""
    target = target.absolute()
    if not database.is_file():
        raise BackupError(f"there is no database at {database}: nothing to back up")
    if target.is_dir():
        raise BackupError(f"{target} is a directory: name the file to write")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory")
    if target in _database_files(database) or _same_file(target, database):
        raise BackupError(f"{target} is the database itself")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: --force replaces it")
    with _temporary_beside(target, "backup") as temporary:
        try:
            with closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT)) as source, \
                    closing(sqlite3.connect(temporary)) as copy:
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
                keys, active = _key_counts(copy)
        except sqlite3.Error as error:
            raise BackupError(f"could not back up {database}: {error}") from None
        _sync(temporary)
        os.replace(temporary, target)
    _sync(target.parent)
    return Written(target, target.stat().st_size, keys, active)


def restore(source: Path, database: Path, data_dir: Path) -> Restored:
    """Replace ``database`` with the backup at ``source``, unless a server runs on ``data_dir``."""
    source = source.absolute()
    if not source.exists():
        raise BackupError(f"{source} does not exist")
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    if source in _database_files(database) or _same_file(source, database):
        raise BackupError(f"{source} is the database itself")
    if not database.parent.is_dir():
        raise BackupError(f"{database.parent}, the database's directory, does not exist")
    connections.close_all()  # this process must not hold the file it replaces
    try:
        with NoServer(data_dir):
            holder = _process_holding(database)
            if holder is not None:
                raise BackupError(f"process {holder} has {database} open: stop it first")
            return _replace(source, database)
    except ServerRunning as running:
        raise BackupError(
            f"a Keyward server is running on this data directory (it holds {running}): stop it first"
        ) from None


def _replace(source: Path, database: Path) -> Restored:
    with _temporary_beside(database, "restore") as temporary:
        try:
            with closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as backup_file, \
                    closing(sqlite3.connect(temporary)) as copy:
                backup_file.backup(copy)
                pending = _check(copy, source)
                epoch = secrets.randbits(62)
                _move_epoch_on(copy, epoch)
                copy.execute("PRAGMA journal_mode=WAL")
                keys, active = _key_counts(copy)
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise BackupError(f"{source} is not a SQLite database") from None
            raise BackupError(f"could not restore {source}: {error}") from None
        _sync(temporary)
        previous = _set_aside(database)
        os.replace(temporary, database)
    _sync(database.parent)
    revived = _revived_keys(database, previous) if previous is not None else []
    notes = _forget_what_was_remembered(epoch)
    written = Written(database, database.stat().st_size, keys, active)
    return Restored(written, previous, revived, pending, notes)


def _check(copy: sqlite3.Connection, source: Path) -> list[str]:
    """Refuse a damaged file, another application's database or a newer Keyward's; returns the
    migrations that ``migrate`` must still apply."""
    problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{source} fails SQLite's integrity check: {problems[0]}")
    tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if missing := [table for table in KEYWARD_TABLES if table not in tables]:
        raise BackupError(f"{source} is not a Keyward database (no table {', '.join(missing)})")
    applied = set(copy.execute("SELECT app, name FROM django_migrations"))
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    labels = {app for app, _ in known}
    if unknown := sorted(f"{app}.{name}" for app, name in applied - known if app in labels):
        raise BackupError(
            f"{source} was made by a newer Keyward: its migrations {', '.join(unknown)} are unknown here"
        )
    return sorted(f"{app}.{name}" for app, name in known - applied)


def _move_epoch_on(copy: sqlite3.Connection, epoch: int) -> None:
    """A random credential epoch: a process that remembered keys under a value of the replaced
    database must never see that value again with other contents (``apikeys.key_cache``)."""
    if copy.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (EPOCH_TABLE,)).fetchone():
        copy.execute(f"INSERT OR REPLACE INTO {EPOCH_TABLE} (id, value) VALUES (1, ?)", (epoch,))  # noqa: S608
        copy.commit()


def _key_counts(copy: sqlite3.Connection) -> tuple[int, int]:
    """API keys in the file, and those not invalidated (expiry aside)."""
    try:
        return copy.execute(
            "SELECT count(*), count(*) FILTER (WHERE invalidated IS NULL) FROM apikeys_apikey"
        ).fetchone()
    except sqlite3.OperationalError:  # not migrated: no key table
        return 0, 0


def _set_aside(database: Path) -> Path | None:
    """Keep the database being replaced under another name, its WAL folded in first (a file of its
    own, as a backup is), and remove its WAL and shared memory: SQLite would replay a WAL left
    beside another file into it."""
    if not database.exists():
        return None
    try:
        with closing(sqlite3.connect(database, timeout=BUSY_TIMEOUT)) as previous:
            previous.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error:
        pass  # unreadable: kept as it is, its WAL beside it
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = database.with_name(f"{database.name}.before-restore-{stamp}")
    os.link(database, aside)
    wal = Path(f"{database}-wal")
    if wal.exists() and wal.stat().st_size:
        os.link(wal, f"{aside}-wal")
    for path in _database_files(database)[1:]:
        path.unlink(missing_ok=True)
    return aside


def _revived_keys(database: Path, previous: Path) -> list[str]:
    """Keys that work in the restored database but were invalidated in the replaced one, after the
    backup was taken."""
    try:
        with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as restored:
            restored.execute("ATTACH DATABASE ? AS previous", (f"{previous.as_uri()}?mode=ro",))
            rows = restored.execute(
                "SELECT kept.id FROM apikeys_apikey AS kept"
                " JOIN previous.apikeys_apikey AS replaced ON replaced.id = kept.id"
                " WHERE kept.invalidated IS NULL AND replaced.invalidated IS NOT NULL ORDER BY kept.id"
            ).fetchall()
    except sqlite3.Error:
        return []  # the replaced database was not Keyward's or not readable: nothing to compare
    return [row[0] for row in rows]


def _forget_what_was_remembered(epoch: int) -> list[str]:
    """Move this host's copy of the epoch on, and forget the cached overviews and verifications;
    returns what could not be done."""
    from apikeys.charts import forget_overviews
    from apikeys.hashers import SharedCacheUnavailable, clear_verification_cache
    from apikeys.key_cache import host_epoch

    notes = []
    host_epoch.publish(epoch)
    try:
        clear_verification_cache()
    except SharedCacheUnavailable as error:
        notes.append(f"the shared cache could not be cleared ({error}): clear it before starting the server")
    forget_overviews()
    connections.close_all()
    return notes


def _process_holding(database: Path) -> int | None:
    """The id of a process that has the database open, read from SQLite's lock on its -shm file;
    catches what the server lock cannot, such as a server started with another data directory."""
    try:
        descriptor = os.open(f"{database}-shm", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        query = FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, SHM_DMS_BYTE, 1, 0)
        kind, *_, pid = FLOCK.unpack(fcntl.fcntl(descriptor, fcntl.F_GETLK, query))
    finally:
        os.close(descriptor)
    return None if kind == fcntl.F_UNLCK else pid


def _database_files(database: Path) -> list[Path]:
    return [database, Path(f"{database}-wal"), Path(f"{database}-shm")]


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False


@contextmanager
def _temporary_beside(path: Path, what: str):
    """A new empty file in ``path``'s directory, removed on the way out unless renamed meanwhile."""
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{what}-")
    except OSError as error:
        raise BackupError(f"cannot write in {path.parent}: {error.strerror}") from None
    os.close(descriptor)
    try:
        yield Path(name)
    finally:
        for each in _database_files(Path(name)):
            each.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    """Flush a file or a directory's entries to disk: a rename is durable once its directory is."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
