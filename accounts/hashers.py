"""Elasticsearch's password hash formats: bcrypt (``$2a$``, ``$2b$``, ``$2y$``) and PBKDF2
(``{PBKDF2}``, ``{PBKDF2_STRETCH}``).

The file realm reads them from its users file; the users API takes them as ``password_hash``, and
the native realm then verifies them through ``ElasticsearchPasswordHasher``, a Django hasher.
"""

import base64
import hashlib
import hmac
import re

import bcrypt
from django.contrib.auth.hashers import BasePasswordHasher


class UnsupportedPasswordHash(ValueError):
    """A hash this service cannot verify: an unknown algorithm or a damaged string."""


BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
BCRYPT_MAX_PASSWORD_BYTES = 72
PBKDF2_PREFIX = "{PBKDF2}"
PBKDF2_STRETCH_PREFIX = "{PBKDF2_STRETCH}"
PBKDF2_MIN_SALT_BYTES = 8

# The costs Elasticsearch's password hashing algorithms take (bcrypt4..bcrypt14, pbkdf2_1000...),
# the default cost of each being named without it. Bounded, so no hash can make a login take minutes.
BCRYPT_COSTS = range(4, 15)
BCRYPT_DEFAULT_COST = 10
PBKDF2_ITERATIONS = (1000, 10000, 50000, 100000, 500000, 1000000)
PBKDF2_DEFAULT_ITERATIONS = 10000
PASSWORD_HASH_ALGORITHMS = [
    "bcrypt",
    *(f"bcrypt{cost}" for cost in BCRYPT_COSTS),
    *(
        name
        for base in ("pbkdf2", "pbkdf2_stretch")
        for name in (base, *(f"{base}_{iterations}" for iterations in PBKDF2_ITERATIONS))
    ),
]


def verify_bcrypt(password: str, stored: str) -> bool:
    """bcrypt as Elasticsearch writes it; ``$2y$`` is the same algorithm under PHP's name."""
    if not BCRYPT_HASH.fullmatch(stored):
        raise UnsupportedPasswordHash("malformed bcrypt hash")
    if stored.startswith("$2y$"):
        stored = "$2b$" + stored[4:]
    # bcrypt only ever reads the first 72 bytes; the Java implementation truncates silently too.
    secret = password.encode()[:BCRYPT_MAX_PASSWORD_BYTES]
    try:
        return bcrypt.checkpw(secret, stored.encode())
    except ValueError:
        return False


def _pbkdf2_parts(stored: str, prefix: str) -> tuple[int, bytes, str, int]:
    """(iterations, salt, base64 hash, key bytes) of ``{PBKDF2}cost$salt$hash``.

    The key length follows from the stored hash's length, rounded down to 16 bytes, as
    Elasticsearch's Hasher does.
    """
    parts = stored[len(prefix):].split("$")
    if len(parts) != 3 or not re.fullmatch(r"[0-9]+", parts[0]) or int(parts[0]) <= 0:
        raise UnsupportedPasswordHash("malformed PBKDF2 hash")
    cost, salt_b64, hash_b64 = int(parts[0]), parts[1], parts[2]
    try:
        salt = base64.b64decode(salt_b64 + "=" * (-len(salt_b64) % 4), validate=True)
    except ValueError as error:
        raise UnsupportedPasswordHash("malformed PBKDF2 salt") from error
    key_bytes = len(hash_b64) * 3 // 64 * 16
    if len(salt) < PBKDF2_MIN_SALT_BYTES or key_bytes <= 0:
        raise UnsupportedPasswordHash("PBKDF2 salt or key too short")
    return cost, salt, hash_b64, key_bytes


def verify_pbkdf2(password: str, stored: str, stretch: bool) -> bool:
    """Elasticsearch's ``{PBKDF2}cost$salt$hash``: PBKDF2WithHmacSHA512, standard base64.
    ``{PBKDF2_STRETCH}`` first replaces the password with the lower-case hex of its SHA-512."""
    prefix = PBKDF2_STRETCH_PREFIX if stretch else PBKDF2_PREFIX
    cost, salt, hash_b64, key_bytes = _pbkdf2_parts(stored, prefix)
    secret = hashlib.sha512(password.encode()).hexdigest() if stretch else password
    derived = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, cost, dklen=key_bytes)
    return hmac.compare_digest(base64.b64encode(derived), hash_b64.encode())


def verify_elasticsearch_hash(password: str, stored: str) -> bool:
    """Check a password against a hash in Elasticsearch's formats; raises UnsupportedPasswordHash
    for any other."""
    if stored.startswith(BCRYPT_PREFIXES):
        return verify_bcrypt(password, stored)
    if stored.startswith(PBKDF2_STRETCH_PREFIX):
        return verify_pbkdf2(password, stored, stretch=True)
    if stored.startswith(PBKDF2_PREFIX):
        return verify_pbkdf2(password, stored, stretch=False)
    raise UnsupportedPasswordHash("unsupported hash algorithm")


def password_hash_algorithm(stored: str) -> str:
    """The name Elasticsearch gives the algorithm of a well-formed password hash (``bcrypt``,
    ``pbkdf2_stretch_1000``...); raises UnsupportedPasswordHash with its reason for any other."""
    not_a_hash = UnsupportedPasswordHash(
        "The provided password hash is not a hash or it could not be resolved to a supported hash "
        f"algorithm. The supported password hash algorithms are [{', '.join(PASSWORD_HASH_ALGORITHMS)}]"
    )
    if stored.startswith(BCRYPT_PREFIXES):
        match = BCRYPT_HASH.fullmatch(stored)
        if match is None:
            raise not_a_hash
        cost = int(match[1])
        name = "bcrypt" if cost == BCRYPT_DEFAULT_COST else f"bcrypt{cost}"
    elif stored.startswith((PBKDF2_STRETCH_PREFIX, PBKDF2_PREFIX)):
        prefix = PBKDF2_STRETCH_PREFIX if stored.startswith(PBKDF2_STRETCH_PREFIX) else PBKDF2_PREFIX
        if not re.match(r"[0-9]+\$", stored[len(prefix):]):
            raise UnsupportedPasswordHash(
                "The number of iterations could not be determined from the provided PBKDF2 hash."
            )
        try:
            iterations = _pbkdf2_parts(stored, prefix)[0]
        except UnsupportedPasswordHash:
            raise not_a_hash from None
        base = "pbkdf2_stretch" if prefix == PBKDF2_STRETCH_PREFIX else "pbkdf2"
        name = base if iterations == PBKDF2_DEFAULT_ITERATIONS else f"{base}_{iterations}"
    else:
        raise not_a_hash
    if name not in PASSWORD_HASH_ALGORITHMS:
        raise UnsupportedPasswordHash(f"unknown hash function [{name}]")
    return name


class ElasticsearchPasswordHasher(BasePasswordHasher):
    """Verifies a native user's password against a hash given in Elasticsearch's formats
    (``password_hash``), stored as ``elasticsearch$<hash>``. It never hashes a new password: Django
    re-hashes with the preferred hasher at the first successful check, as for any older hasher."""

    algorithm = "elasticsearch"

    @classmethod
    def stored(cls, password_hash: str) -> str:
        """The password field's value for a hash ``password_hash_algorithm`` accepted."""
        return f"{cls.algorithm}${password_hash}"

    def verify(self, password, encoded):
        _, _, password_hash = encoded.partition("$")
        try:
            return verify_elasticsearch_hash(password, password_hash)
        except UnsupportedPasswordHash:
            return False
