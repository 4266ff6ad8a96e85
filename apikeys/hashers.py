"""Hashing of API key secrets, after ``django.contrib.auth.hashers`` (SPEC §3).

A stored hash names its algorithm: ``algorithm$params$salt$digest``. New keys are hashed with the
algorithm named by ``API_KEY_HASH_ALGORITHM``; a stored hash is always checked with the algorithm
it names, so keys created under an earlier setting keep working.
"""

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections import OrderedDict

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("keyward.apikeys.hashing")

DEFAULT_ALGORITHM = "salted_sha256"
DEFAULT_PBKDF2_ITERATIONS = 100_000
# A corrupted stored hash must not keep a worker busy for minutes.
MAX_PBKDF2_ITERATIONS = 10_000_000


class ApiKeyHasher:
    """What every algorithm shares: a random salt and the four-part stored string."""

    algorithm = ""
    # A slow algorithm's successful verifications are remembered in the VerificationCache.
    slow = False

    def salt(self) -> str:
        """128 random bits, URL-safe, so the salt never contains the ``$`` separator."""
        return secrets.token_urlsafe(16)

    def encode(self, secret: str, salt: str) -> str:
        raise NotImplementedError

    def verify(self, secret: str, encoded: str) -> bool:
        raise NotImplementedError

    def _check_salt(self, salt: str):
        if not salt or "$" in salt:
            raise ValueError("salt must be provided and cannot contain $.")

    def _decode(self, encoded: str) -> tuple[str, str, str] | None:
        """``(params, salt, digest)`` of a string this hasher wrote, or None if it is malformed."""
        if not encoded.isascii():  # every hash written here is ASCII, as compare_digest on str needs
            return None
        parts = encoded.split("$", 3)
        if len(parts) != 4 or parts[0] != self.algorithm or not parts[2] or not parts[3]:
            return None
        return parts[1], parts[2], parts[3]


class SaltedSHA256Hasher(ApiKeyHasher):
    """One SHA-256: enough for a 128-bit random secret, which no one can guess or brute-force."""

    algorithm = "salted_sha256"

    def encode(self, secret: str, salt: str) -> str:
        self._check_salt(salt)
        digest = hashlib.sha256((salt + secret).encode()).hexdigest()
        return f"{self.algorithm}$${salt}${digest}"

    def verify(self, secret: str, encoded: str) -> bool:
        decoded = self._decode(encoded)
        if decoded is None or decoded[0]:
            return False
        return hmac.compare_digest(self.encode(secret, decoded[1]), encoded)


class PBKDF2SHA256Hasher(ApiKeyHasher):
    """PBKDF2-HMAC-SHA256, for deployments whose policy requires a slow hash."""

    algorithm = "pbkdf2_sha256"
    slow = True

    @property
    def iterations(self) -> int:
        iterations = getattr(settings, "API_KEY_PBKDF2_ITERATIONS", DEFAULT_PBKDF2_ITERATIONS)
        if not isinstance(iterations, int) or not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
            raise ImproperlyConfigured(
                "API_KEY_PBKDF2_ITERATIONS must be an integer from 1 to "
                f"{MAX_PBKDF2_ITERATIONS}, got [{iterations}]"
            )
        return iterations

    def encode(self, secret: str, salt: str, iterations: int | None = None) -> str:
        self._check_salt(salt)
        iterations = iterations or self.iterations
        digest = base64.b64encode(self._pbkdf2(secret, salt, iterations)).decode("ascii")
        return f"{self.algorithm}${iterations}${salt}${digest}"

    def verify(self, secret: str, encoded: str) -> bool:
        decoded = self._decode(encoded)
        iterations = _parse_iterations(decoded[0]) if decoded else None
        if iterations is None:
            return False
        return hmac.compare_digest(self.encode(secret, decoded[1], iterations), encoded)

    def _pbkdf2(self, secret: str, salt: str, iterations: int) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), iterations)


def _parse_iterations(params: str) -> int | None:
    """The iteration count of a stored hash: canonical digits within bounds, else None."""
    if not params.isdigit() or params.startswith("0"):
        return None
    if len(params) > len(str(MAX_PBKDF2_ITERATIONS)) or int(params) > MAX_PBKDF2_ITERATIONS:
        return None
    return int(params)


class VerificationCache:
    """Remembers which secret verified against a slow hash, so PBKDF2 runs once per key per process.

    Only the hashing is skipped: callers still check invalidation and expiry in the database on every request.
    Secrets are held as HMACs under a per-process random key, never in plain text. Each entry
    counts only under the verification epoch it was stored in (``verification_epoch``).
    """

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def contains(self, encoded: str, secret: str, epoch: str = "") -> bool:
        with self._lock:
            remembered = self._entries.get(encoded)
        if remembered is None or not hmac.compare_digest(remembered[1], epoch):
            return False
        return hmac.compare_digest(remembered[0], self._fingerprint(secret))

    def remember(self, encoded: str, secret: str, epoch: str = ""):
        fingerprint = self._fingerprint(secret)
        with self._lock:
            self._entries[encoded] = (fingerprint, epoch)
            self._entries.move_to_end(encoded)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _fingerprint(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()


HASHERS = {hasher.algorithm: hasher for hasher in (SaltedSHA256Hasher(), PBKDF2SHA256Hasher())}
verification_cache = VerificationCache()

# The verification epoch: one random token in the shared cache that every worker of every host
# reads. A remembered verification counts only while the token it was stored under is current;
# clearing the cache writes a new one. A token the cache lost is replaced by a new random one, so
# an eviction only ever makes workers hash again, never revives an entry.
EPOCH_KEY = "keyward:apikeys:verification-epoch"


class SharedCacheUnavailable(Exception):
    """The shared cache could not be read or written."""


def verification_epoch() -> str:
    """The current epoch, created if the shared cache has none; raises SharedCacheUnavailable."""
    try:
        epoch = cache.get(EPOCH_KEY)
        if epoch is None:
            cache.add(EPOCH_KEY, secrets.token_urlsafe(16), timeout=None)
            epoch = cache.get(EPOCH_KEY)
    except Exception as error:  # any backend's connection or storage error
        raise SharedCacheUnavailable(str(error)) from error
    if not isinstance(epoch, str):
        raise SharedCacheUnavailable("the verification epoch could not be read back")
    return epoch


def clear_verification_cache() -> None:
    """Forget every remembered verification on every worker that shares the cache: the next
    request with any key hashes its secret again. Raises SharedCacheUnavailable."""
    verification_cache.clear()
    try:
        cache.set(EPOCH_KEY, secrets.token_urlsafe(16), timeout=None)
    except Exception as error:
        raise SharedCacheUnavailable(str(error)) from error


def configured_hasher() -> ApiKeyHasher:
    """The hasher for new keys, named by the ``API_KEY_HASH_ALGORITHM`` setting."""
    algorithm = getattr(settings, "API_KEY_HASH_ALGORITHM", DEFAULT_ALGORITHM)
    try:
        return HASHERS[algorithm]
    except (KeyError, TypeError):
        raise ImproperlyConfigured(
            f"API_KEY_HASH_ALGORITHM names an unknown algorithm [{algorithm}]; "
            f"expected one of [{', '.join(HASHERS)}]"
        ) from None


def make_api_key_hash(secret: str) -> str:
    """Hash a new key's secret with the configured algorithm and a fresh salt, for storage."""
    hasher = configured_hasher()
    return hasher.encode(secret, hasher.salt())


def verify_api_key_hash(secret: str, encoded: str, api_key_id: str = "") -> bool:
    """Whether ``secret`` matches the stored hash; a malformed or unknown stored hash never does.

    A slow hash's verification may come from the verification cache, under the current epoch only;
    that costs one shared-cache read, on the slow path alone. If the shared cache cannot be read,
    the hash is computed: the cache can only ever save work, never decide."""
    if not isinstance(secret, str) or not isinstance(encoded, str):
        return False
    hasher = HASHERS.get(encoded.partition("$")[0])
    if hasher is None:
        return False
    epoch = None
    if hasher.slow and getattr(settings, "API_KEY_VERIFICATION_CACHE", True):
        try:
            epoch = verification_epoch()
        except SharedCacheUnavailable as error:
            logger.warning("verification cache bypassed, the shared cache is unavailable: %s", error)
    if epoch is not None and verification_cache.contains(encoded, secret, epoch):
        return True
    verified = hasher.verify(secret, encoded)
    if hasher.slow:
        logger.debug("api key [%s] secret verified against its stored hash", api_key_id)
    if verified and epoch is not None:
        verification_cache.remember(encoded, secret, epoch)
    return verified
