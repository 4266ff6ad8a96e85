"""Whether this process can serve: the checks behind ``/_health/ready`` and ``/_cluster/health``.

The database and the cache are each asked from a thread of their own, and waited for
``CHECK_TIMEOUT`` at most: one that hangs (a dropped packet, a stopped server) makes the probe fail
in time instead of holding it, and a probe that comes while a check still hangs waits on that same
check rather than starting another, so a hanging dependency never costs more than one thread.
The database thread opens a connection of its own per check and closes it: the check proves that a
new connection can be made, as every worker needs, and leaves nothing open between probes.
"""

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

log = logging.getLogger("keyward.health")

CHECK_TIMEOUT = 1.0
DATABASE, MIGRATIONS, CACHE = "database", "migrations", "cache"
# Elasticsearch's colours: red when nothing can be served, yellow when serving with a fault.
GREEN, YELLOW, RED = "green", "yellow", "red"
STATUS_ORDER = (RED, YELLOW, GREEN)
# The cache only speeds things up and shares throttling counts; the database holds everything.
FAILING_MAKES_RED = frozenset({DATABASE, MIGRATIONS})


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``reason`` says why it failed, and is empty when it passed."""

    name: str
    reason: str
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.reason

    def as_dict(self) -> dict:
        answer = {"status": "ok" if self.ok else "failed", "time_ms": round(self.seconds * 1000, 3)}
        if not self.ok:
            answer["reason"] = self.reason
        return answer


class _Run:
    """One run of a check thread's checks: their reasons as each finishes, and when all are done."""

    def __init__(self):
        self.started = time.monotonic()
        self.reasons: dict[str, str] = {}
        self.finished_at: dict[str, float] = {}
        self.done = threading.Event()

    def record(self, name: str, reason: str) -> None:
        self.finished_at[name] = time.monotonic()
        self.reasons[name] = reason


class _CheckThread:
    """A daemon thread that runs ``checks`` (a function filling a ``_Run``) when asked; one per process."""

    def __init__(self, name: str, names: tuple[str, ...], checks):
        self.name, self.names, self.checks = name, names, checks
        self.lock = threading.Lock()
        self.current: _Run | None = None
        self.wanted = threading.Condition(self.lock)
        self.thread: threading.Thread | None = None
        self.pid = None

    def begin(self) -> _Run:
        """The run under way, or a new one: probes that come while a check runs share it."""
        with self.lock:
            if self.current is None or self.current.done.is_set():
                self.current = _Run()
                self._start()
                self.wanted.notify()
            return self.current

    def outcome(self, run: _Run, deadline: float) -> list[Check]:
        """Each check's outcome, waiting until ``deadline`` at most; a check still running has failed."""
        run.done.wait(max(0.0, deadline - time.monotonic()))
        now = time.monotonic()
        return [
            Check(name, run.reasons[name], run.finished_at[name] - run.started)
            if name in run.reasons
            else Check(name, f"no answer within {CHECK_TIMEOUT:g} s", now - run.started)
            for name in self.names
        ]

    def _start(self) -> None:
        # A forked worker inherits the object but not the thread.
        if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._loop, name=f"keyward-health-{self.name}", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        while True:
            with self.lock:
                while self.current is None or self.current.done.is_set():
                    self.wanted.wait()
                run = self.current
            try:
                self.checks(run)
            except Exception:
                log.exception("the %s check failed unexpectedly", self.name)
                for name in self.names:
                    if name not in run.reasons:
                        run.record(name, "the check failed unexpectedly")
            finally:
                run.done.set()


# A process whose migrations were all applied stays so: the graph is walked until then only.
_migrations_applied = False
# The checks failing in this process, so that a failure is logged when it starts, not every probe.
_failing: set[str] = set()


def _database_checks(run: _Run) -> None:
    try:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as error:
            run.record(DATABASE, _failed(DATABASE, error, "database unreachable"))
            run.record(MIGRATIONS, "not checked: the database is unreachable")
            return
        run.record(DATABASE, _passed(DATABASE))
        run.record(MIGRATIONS, _migrations_reason())
    finally:
        connection.close()


def _migrations_reason() -> str:
    global _migrations_applied
    if _migrations_applied:
        return ""
    try:
        executor = MigrationExecutor(connection)
        unapplied = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except Exception as error:
        return _failed(MIGRATIONS, error, "migrations could not be read")
    _migrations_applied = unapplied == 0
    if unapplied:
        return _failed(MIGRATIONS, None, f"{unapplied} migrations not applied: run manage.py migrate")
    return _passed(MIGRATIONS)


# Each process writes a key of its own, so that probes on several hosts never read each other's.
_CACHE_KEY = f"keyward:health:{socket.gethostname()}:{os.getpid()}"


def _cache_checks(run: _Run) -> None:
    value = secrets.token_hex(8)
    try:
        cache.set(_CACHE_KEY, value, timeout=60)
        stored = cache.get(_CACHE_KEY)
    except Exception as error:
        run.record(CACHE, _failed(CACHE, error, "cache unreachable"))
        return
    if stored != value:
        run.record(CACHE, _failed(CACHE, None, "the cache did not return the value just stored"))
    else:
        run.record(CACHE, _passed(CACHE))


def _failed(name: str, error: Exception | None, reason: str) -> str:
    """The reason a probe shows, naming the error's type only; the detail (host names, ports) goes to
    the log, once when the check starts failing: the probes answer anyone, every few seconds."""
    if error is not None:
        reason = f"{reason} ({type(error).__name__})"
    if name not in _failing:
        _failing.add(name)
        log.warning("health check %s failing: %s%s", name, reason, f": {error}" if error is not None else "")
    return reason


def _passed(name: str) -> str:
    if name in _failing:
        _failing.discard(name)
        log.warning("health check %s passing again", name)
    return ""


_database_thread = _CheckThread(DATABASE, (DATABASE, MIGRATIONS), _database_checks)
_cache_thread = _CheckThread(CACHE, (CACHE,), _cache_checks)


def readiness() -> list[Check]:
    """The database (reachable, migrations applied) and the cache (a key set and read back), checked
    side by side within ``CHECK_TIMEOUT``."""
    deadline = time.monotonic() + CHECK_TIMEOUT
    runs = [(thread, thread.begin()) for thread in (_database_thread, _cache_thread)]
    return [check for thread, run in runs for check in thread.outcome(run, deadline)]


def is_ready(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)


def cluster_status(checks: list[Check]) -> str:
    """Elasticsearch's colour for these checks."""
    failed = {check.name for check in checks if not check.ok}
    if failed & FAILING_MAKES_RED:
        return RED
    return YELLOW if failed else GREEN


def at_least(status: str, wanted: str) -> bool:
    """``status`` is ``wanted`` or better: green is better than yellow, yellow than red."""
    return STATUS_ORDER.index(status) >= STATUS_ORDER.index(wanted)
