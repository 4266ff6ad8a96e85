"""API keys remembered between requests, each use checked against the credential epoch.

Reading a key with its owner and realm is the one query of every key-authenticated request
(``apikeys.key_lookup``); turning its row into model instances costs more than the query. A worker
process keeps the keys it has read, and trusts one only while the credential epoch it was read
under is still current (``apikeys.models.CredentialEpoch``). Database triggers change the epoch in
the same transaction as any write that could change a key's answer, so that:

- the epoch is read before the key, so a key read while a write was under way carries the older
  epoch, and the next request reads it again;
- a write is visible to the very next request on every worker and every host once it commits,
  because every request reads the epoch afresh: on SQLite from the database file's shared memory,
  a few microseconds in process; on PostgreSQL as one prepared single-row read in place of the
  three-table join it saves (``API_KEY_CACHE_SCOPE = "cluster"``).

On PostgreSQL with ``API_KEY_CACHE_SCOPE = "host"``, a request reads a generation number in memory
shared by every process of this host instead (``HostEpoch``): each process that writes to the
watched tables moves it on once its transaction commits, after reading the database's epoch. Writes
from elsewhere (another host, SQL typed by hand) are caught by each process reading the database's
epoch at least once a second.

What may depend on time (expiry) is checked on every request, never remembered. The secret is
never kept: only an HMAC of the secret that verified, under a key random to this process. The
design and its failure modes are in docs/security.md.
"""

import fcntl
import hashlib
import hmac
import mmap
import os
import secrets
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Model
from django.db.models.base import ModelState

from accounts.principals import Principal
from apikeys.hashers import HASHERS, verify_api_key_hash
from apikeys.key_lookup import api_key_with_owner
from apikeys.models import ApiKey, CredentialEpoch

EPOCH_SQL = f"SELECT value FROM {CredentialEpoch._meta.db_table} WHERE id = 1"  # noqa: S608
_process_key = secrets.token_bytes(32)


@dataclass(eq=False)
class CachedKey:
    """A key with its owner and realm, as read under ``epoch``; private to this module's callers,
    who copy the instances before handing them to code that might change them."""

    key: ApiKey
    epoch: tuple[str, int] | None
    # The HMAC of the secret that verified, when remembering it is allowed (hashers' settings).
    verified: bytes | None = None
    # Answers derived from the key alone, made once per entry by whoever needs them.
    derived: dict = field(default_factory=dict)

    def verifies(self, secret: str) -> bool:
        """Whether ``secret`` is this key's, from the remembered HMAC or else the stored hash."""
        fingerprint = hmac.new(_process_key, secret.encode(), hashlib.sha256).digest()
        if self.verified is not None and hmac.compare_digest(self.verified, fingerprint):
            return True
        if not verify_api_key_hash(secret, self.key.hash, api_key_id=self.key.id):
            return False
        if _may_remember(self.key.hash):
            self.verified = fingerprint
        return True

    def principal(self) -> Principal:
        """The principal of a request made with this key, on copies of the key, owner and realm."""
        owner = _clone(self.key.owner)
        owner.realm = _clone(self.key.owner.realm)
        key = _clone(self.key)
        key.owner = owner
        return Principal(owner, api_key=key)


def _clone(instance: Model) -> Model:
    """A loaded instance's field values in a new instance, related objects not carried over:
    what ``copy.copy`` gives, at a tenth of its cost."""
    clone = Model.__new__(type(instance))
    clone.__dict__ = {**instance.__dict__, "_state": ModelState()}
    clone._state.db, clone._state.adding = instance._state.db, False
    return clone


def _may_remember(encoded: str) -> bool:
    """A fast hash is computed as quickly as its HMAC; a slow one is remembered unless the
    verification cache is switched off, whose policy forbids keeping the result."""
    hasher = HASHERS.get(encoded.partition("$")[0])
    return hasher is not None and (not hasher.slow or settings.API_KEY_VERIFICATION_CACHE)


class KeyCache:
    """At most ``max_keys`` keys of this process, the oldest read forgotten first."""

    def __init__(self):
        self._entries: dict[str, CachedKey] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str, epoch: tuple[str, int]) -> CachedKey | None:
        entry = self._entries.get(key_id)
        return entry if entry is not None and entry.epoch == epoch else None

    def put(self, entry: CachedKey, max_keys: int) -> None:
        with self._lock:
            self._entries.pop(entry.key.id, None)
            while len(self._entries) >= max_keys:
                del self._entries[next(iter(self._entries))]
            self._entries[entry.key.id] = entry

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


key_cache = KeyCache()


def current_epoch(using: str = "default") -> int:
    """The credential epoch, read on the connection's own driver connection: Django's cursor
    would first run its per-request health check, a second round trip on PostgreSQL. A broken
    connection raises ``DatabaseError`` and is marked, so that Django replaces it."""
    connection = connections[using]
    connection.ensure_connection()
    with connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            row = connection.connection.execute(EPOCH_SQL, prepare=True).fetchone()
        else:
            row = connection.connection.execute(EPOCH_SQL).fetchone()
    if row is None:
        return _recreate_epoch(using)
    return row[0]


def _recreate_epoch(using: str) -> int:
    """The row again after a flush emptied the table, from a random value: an epoch seen before
    the flush must never come back and revive a key remembered under it."""
    epoch, _ = CredentialEpoch.objects.using(using).get_or_create(
        id=1, defaults={"value": secrets.randbits(62)}
    )
    return epoch.value


class HostEpoch:
    """A generation number in a file of the data directory that every process of this host maps
    into memory: reading it costs a fraction of a microsecond.

    The file holds the generation and the database epoch it was last moved on for. ``publish``
    moves the generation on whenever the database epoch it is given differs from the last one, under
    an exclusive lock on the file: a publisher that read an older epoch moves it on too, which only
    costs the workers a read of their keys, and never leaves a change unseen."""

    LAYOUT = struct.Struct("<Qq")

    def __init__(self, path: Path):
        self.path = path
        self._pid = None

    def _mapped(self) -> tuple[int, mmap.mmap]:
        """The file, opened and mapped once per process: a lock on a descriptor inherited through
        fork would be shared with the parent and exclude nothing."""
        if self._pid != os.getpid():
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(descriptor).st_size < self.LAYOUT.size:
                os.ftruncate(descriptor, self.LAYOUT.size)
            self._descriptor, self._map = descriptor, mmap.mmap(descriptor, self.LAYOUT.size)
            self._pid = os.getpid()
        return self._descriptor, self._map

    def generation(self) -> int:
        return self.LAYOUT.unpack_from(self._mapped()[1])[0]

    def publish(self, database_epoch: int) -> None:
        descriptor, mapped = self._mapped()
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            generation, published = self.LAYOUT.unpack_from(mapped)
            if published != database_epoch or generation == 0:
                self.LAYOUT.pack_into(mapped, 0, generation + 1, database_epoch)
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


host_epoch = HostEpoch(Path(settings.DATA_DIR) / "credential-epoch")
# Each process reads the database's epoch at least this often in the host scope.
HOST_RECHECK_SECONDS = 1.0
_next_recheck = 0.0


def host_scope(using: str = "default") -> bool:
    """Whether the host scope is chosen and means anything: on SQLite the database's epoch is
    already in shared memory."""
    return settings.API_KEY_CACHE_SCOPE == "host" and connections[using].vendor == "postgresql"


def cache_epoch(using: str = "default") -> tuple[str, int]:
    """What a remembered key is checked against, named by its scope so that a change of setting
    never matches a number of the other kind."""
    global _next_recheck
    # A transaction sees its own writes in the database before they reach the generation.
    if not host_scope(using) or connections[using].in_atomic_block:
        return "database", current_epoch(using)
    now = time.monotonic()
    if now >= _next_recheck:
        _next_recheck = now + HOST_RECHECK_SECONDS
        host_epoch.publish(current_epoch(using))
    return "host", host_epoch.generation()


# The statements that may change the epoch, as Django writes them: after one commits, this host's
# generation is moved on (when the epoch did move) before the request that made it is answered.
WATCHED_WRITES = tuple(
    f'{verb} "{table}"'
    for table in ("apikeys_apikey", "accounts_user", "accounts_realm", CredentialEpoch._meta.db_table)
    for verb in ("UPDATE", "DELETE FROM")
)


def publish_after_writes(execute, sql, params, many, context):
    """An execute wrapper of every PostgreSQL connection (``apikeys.apps``)."""
    result = execute(sql, params, many, context)
    if isinstance(sql, str) and sql.startswith(WATCHED_WRITES):
        alias = context["connection"].alias
        if host_scope(alias):
            transaction.on_commit(lambda: host_epoch.publish(current_epoch(alias)), using=alias)
    return result


def cached_api_key(key_id: str) -> CachedKey | None:
    """The key with its owner and realm, remembered or read; None when no key has this id."""
    max_keys = settings.API_KEY_CACHE_MAX_KEYS
    epoch = cache_epoch() if max_keys else None
    entry = key_cache.get(key_id, epoch) if max_keys else None
    if entry is not None:
        return entry
    key = api_key_with_owner(key_id)
    if key is None:
        # Nothing is remembered of an id without a key: a guess costs what it always did.
        key_cache.forget(key_id)
        return None
    entry = CachedKey(key, epoch)
    # Inside a transaction the epoch and the row may be this transaction's own writes, which a
    # rollback would undo while the epoch's value came back with other writes: not remembered.
    if max_keys and not connection.in_atomic_block:
        key_cache.put(entry, max_keys)
    return entry
