"""Access and refresh token strings: a public 20-character id and a 40-character secret, side by side.

The id finds the row; the secret is checked against its SHA-256 digest in constant time. A plain
digest is enough: each secret holds 240 random bits, so there is nothing to guess or to stretch.
"""

import hashlib
import hmac
import json
import secrets
import string

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SCHEME = "Bearer"
ID_LENGTH = 20
SECRET_LENGTH = 40
TOKEN_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
NONCE_BYTES = 12
SEALING_CONTEXT = b"keyward token refresh grace"


def new_token_id() -> str:
    return secrets.token_urlsafe(15)


def new_token_secret() -> str:
    return secrets.token_urlsafe(30)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    return bool(stored_digest) and hmac.compare_digest(digest(secret), stored_digest)


def split_token(value) -> tuple[str, str] | None:
    """``(id, secret)`` of a token string, or None for anything that cannot be one."""
    if not isinstance(value, str) or len(value) != ID_LENGTH + SECRET_LENGTH:
        return None
    if not set(value) <= TOKEN_ALPHABET:
        return None
    return value[:ID_LENGTH], value[ID_LENGTH:]


def bearer_token(header) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header ("" when it holds none), or None
    when the header uses another scheme. The scheme is matched case-insensitively, in ASCII only."""
    if not isinstance(header, str):
        return None
    scheme, _, rest = header.strip().partition(" ")
    if not scheme.isascii() or scheme.lower() != SCHEME.lower():
        return None
    return rest.strip()


def _sealing_key(refresh_secret: str, token_id: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=token_id.encode("ascii"), info=SEALING_CONTEXT)
    return AESGCM(hkdf.derive(refresh_secret.encode("ascii")))


def seal(refresh_secret: str, token_id: str, payload: dict) -> bytes:
    """``payload`` encrypted and authenticated under a key only the refresh token itself yields."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _sealing_key(refresh_secret, token_id).encrypt(nonce, json.dumps(payload).encode(), None)
    return nonce + sealed


def unseal(refresh_secret: str, token_id: str, sealed: bytes) -> dict | None:
    try:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        plain = _sealing_key(refresh_secret, token_id).decrypt(nonce, ciphertext, None)
    except InvalidTag:
        return None
    return json.loads(plain)
