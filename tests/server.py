"""A real gunicorn serving Keyward over HTTPS, started the way `make run` starts it.

Each server gets its own data directory (certificate, secret key, cache) and its own database:
a fresh SQLite file, or a freshly created PostgreSQL database when the suite runs on PostgreSQL.
``start_keyward_server`` starts one with a different environment, e.g. more workers.
"""

import atexit
import base64
import functools
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlunsplit

import psycopg
import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30
STOP_TIMEOUT = 10
COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int
    password: str
    data_dir: Path
    database_url: str
    sqlite_path: Path | None
    env: dict
    master_pid: int

    def manage(self, *args: str) -> str:
        """Run a management command against this server's database; returns its output."""
        return _manage(self.env, *args)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def certfile(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's self-signed certificate."""
        return ssl.create_default_context(cafile=self.certfile)

    def connection(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl_context(), timeout=timeout)

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's children, read from /proc."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The command name may hold spaces and parentheses: the parent pid follows the last ")".
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.master_pid:
                children.append(int(stat.parent.name))
        return children

    def request(self, client, method: str, path: str, authorization: str, body=None) -> tuple[int, object]:
        """Send one JSON request on ``client`` (a keep-alive connection); returns (status, parsed body)."""
        headers = {"Authorization": authorization, "Content-Type": "application/json"}
        client.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = client.getresponse()
        return response.status, json.loads(response.read())

    def elastic_api_key(self, name: str) -> str:
        """An ``ApiKey`` header for a new key of ``elastic``: one cheap hash per request, not a password's."""
        basic = base64.b64encode(f"elastic:{self.password}".encode()).decode()
        client = self.connection()
        try:
            status, body = self.request(
                client, "POST", "/_security/api_key", f"Basic {basic}", {"name": name}
            )
        finally:
            client.close()
        assert status == 200, body
        return f"ApiKey {body['encoded']}"

    def query(self, sql: str, *params):
        """Rows straight from the server's database: what was committed, not what was answered.
        Placeholders are written ``%s``."""
        if self.sqlite_path is not None:
            uri = f"file:{self.sqlite_path}?mode=ro"
            with closing(sqlite3.connect(uri, uri=True, timeout=30)) as database:
                return database.execute(sql.replace("%s", "?"), params).fetchall()
        with psycopg.connect(self.database_url) as database:
            return database.execute(sql, params).fetchall()


def missing_service(message: str):
    """Skip a test whose service is missing here, but fail it in CI, which installs every service."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


REDIS_URL = os.environ.get("KEYWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_cache():
    """Environment for a server whose cache is the Redis at KEYWARD_TEST_REDIS_URL, under a key prefix
    of its own; its keys are deleted afterwards."""
    with redis_key_prefix() as (prefix, _client):
        yield {"REDIS_URL": REDIS_URL, "KEYWARD_CACHE_KEY_PREFIX": prefix}


@contextmanager
def redis_key_prefix():
    """(a cache key prefix of its own, a client) in the Redis at KEYWARD_TEST_REDIS_URL; the prefix's
    keys are deleted afterwards. Skips without Redis, and fails in CI."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        missing_service(f"no Redis at {REDIS_URL} ({error}); .ci/run installs and starts one")
    prefix = f"keyward-test-{secrets.token_hex(6)}"
    try:
        yield prefix, client
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


@pytest.fixture(scope="module", name="keyward_server")
def keyward_server_fixture(tmp_path_factory):
    """A running Keyward server: yields a RunningServer, stops it and drops its database afterwards."""
    with start_keyward_server(tmp_path_factory) as server:
        yield server


@contextmanager
def start_keyward_server(tmp_path_factory, bootstrap: bool = True, shared_database=None, **overrides: str):
    """Start a server as the ``keyward_server`` fixture does, with ``overrides`` added to its environment
    (e.g. ``WEB_CONCURRENCY="4"``); yields a RunningServer, then stops it and drops its database.
    ``bootstrap=False`` starts it on a database as it is, for a ``DATABASE_URL`` that cannot be used.

    ``shared_database``, a (DATABASE_URL, SQLite path or None) pair that ``_own_database`` yields, is
    used instead of a database of its own, and kept: servers sharing it are hosts of one installation,
    and ``ELASTIC_PASSWORD`` among the ``overrides`` tells each the password the first one set."""
    data_dir = tmp_path_factory.mktemp("keyward-server")
    database = _own_database(data_dir) if shared_database is None else nullcontext(shared_database)
    with database as (database_url, sqlite_path):
        host, port = "127.0.0.1", _free_port()
        password = overrides.get("ELASTIC_PASSWORD") or secrets.token_urlsafe(16)
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("KEYWARD_TLS_")}
        env = {
            **inherited,
            "KEYWARD_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "PORT": str(port),
            "KEYWARD_BIND": host,
            "WEB_CONCURRENCY": "2",
            "ELASTIC_PASSWORD": password,
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
        if bootstrap:
            _manage(env, "bootstrap")
        log_path = data_dir / "gunicorn.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
                cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = RunningServer(
            host=host, port=port, password=password, data_dir=data_dir, database_url=database_url,
            sqlite_path=sqlite_path, env=env, master_pid=process.pid,
        )
        try:
            _wait_until_serving(server, process, log_path)
            yield server
        finally:
            _stop(process)


@contextmanager
def _own_database(data_dir: Path):
    """Yield (DATABASE_URL, SQLite path or None) for a migrated database that only this server uses:
    a copy of this test process's migrated template (``_migrated_template``)."""
    template = _migrated_template()
    if connection.vendor != "postgresql":
        path = data_dir / "keyward.sqlite3"
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        yield f"sqlite:///{path}", path
        return
    name = f"keyward_server_{secrets.token_hex(6)}"
    _postgres_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _postgres_url(name), None
    finally:
        _postgres_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@functools.cache
def _migrated_template() -> str:
    """A database migrated once per test process (a SQLite file's path, or a PostgreSQL database's
    name), which every server's database is copied from: a migration run costs a Python start and
    every migration, seconds per server, where a copy costs milliseconds. Migrations read no
    server setting, so one template serves every server's environment."""
    directory = Path(tempfile.mkdtemp(prefix="keyward-template-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    env = {**os.environ, "KEYWARD_DATA_DIR": str(directory)}
    if connection.vendor != "postgresql":
        path = directory / "keyward.sqlite3"
        _manage({**env, "DATABASE_URL": f"sqlite:///{path}"}, "migrate", "--no-input")
        return str(path)
    name = f"keyward_template_{secrets.token_hex(6)}"
    _postgres_execute(f'CREATE DATABASE "{name}"')
    atexit.register(_postgres_execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _manage({**env, "DATABASE_URL": _postgres_url(name)}, "migrate", "--no-input")
    return name


def _postgres_execute(statement: str) -> None:
    """Run a statement outside any transaction, as CREATE/DROP DATABASE require."""
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None, port=settings["PORT"] or None, user=settings["USER"] or None,
        password=settings["PASSWORD"] or None, dbname="postgres", autocommit=True, connect_timeout=10,
    ) as admin:
        admin.execute(statement)


def _postgres_url(name: str) -> str:
    """The suite's own PostgreSQL server and credentials, with another database name."""
    settings = connection.settings_dict
    credentials = quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    netloc = f"{credentials}@{settings['HOST'] or ''}" if credentials else settings["HOST"] or ""
    if settings["PORT"]:
        netloc += f":{settings['PORT']}"
    return urlunsplit(("postgres", netloc, f"/{name}", "", ""))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )
    if result.returncode != 0:
        command = " ".join(args)
        pytest.fail(f"manage.py {command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _wait_until_serving(server: RunningServer, process: subprocess.Popen, log_path: Path) -> None:
    """Wait for a worker to answer over HTTPS: the port alone opens before any worker has booted."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            client = server.connection(timeout=5)
            client.request("GET", "/")
            client.getresponse().read()
            client.close()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer within {START_TIMEOUT} s:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
