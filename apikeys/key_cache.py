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
  three-table join it saves.

What may depend on time (expiry) is checked on every request, never remembered. The secret is
never kept: only an HMAC of the secret that verified, under a key random to this process. The
design and its failure modes are in docs/security.md.
"""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, connections
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
    epoch: int
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

    def get(self, key_id: str, epoch: int) -> CachedKey | None:
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


def cached_api_key(key_id: str) -> CachedKey | None:
    """The key with its owner and realm, remembered or read; None when no key has this id."""
    max_keys = settings.API_KEY_CACHE_MAX_KEYS
    epoch = current_epoch() if max_keys else 0
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
