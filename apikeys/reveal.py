"""A new key's secret, held for the one page view that shows it (SPEC §6).

The create and rotate forms redirect to that page, so reload and Back never post them again. In
between, the secret is sealed with AES-GCM under a fresh random key that only the browser gets, in
a cookie; the shared cache keeps the ciphertext alone, for a few minutes, under a name derived
from that key. The page takes the ciphertext out, and only the request whose delete succeeded
opens it: of two views at once, one shows the secret and the other that it was shown.
"""

import base64
import binascii
import hashlib
import json
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.cache import cache

# "__Secure-": browsers accept the cookie only with the Secure flag, and Django clears it with it.
COOKIE = "__Secure-keyward-reveal"
HELD_SECONDS = 300
NONCE_BYTES = 12


def _cache_key(sealing_key: bytes) -> str:
    return "apikeys:reveal:" + hashlib.sha256(sealing_key).hexdigest()


def _bound_to(key_id: str, user_id: int) -> bytes:
    """Authenticated with the ciphertext: it opens only on that key's page, for that user."""
    return json.dumps([key_id, user_id]).encode()


def hold(key_id: str, user_id: int, shown: dict) -> str:
    """Seal ``shown`` (the secret and what goes with it) into the cache; returns the cookie value,
    the only way to open it."""
    sealing_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(sealing_key).encrypt(nonce, json.dumps(shown).encode(), _bound_to(key_id, user_id))
    cache.set(_cache_key(sealing_key), nonce + sealed, HELD_SECONDS)
    return base64.urlsafe_b64encode(sealing_key).decode("ascii")


def take(key_id: str, user_id: int, cookie: str | None) -> dict | None:
    """What ``hold`` sealed, once: None when the cookie is missing or wrong, the entry expired, or
    another request took it first."""
    try:
        sealing_key = base64.urlsafe_b64decode((cookie or "").encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        return None
    if len(sealing_key) != 32:
        return None
    name = _cache_key(sealing_key)
    sealed = cache.get(name)
    if not isinstance(sealed, bytes) or not cache.delete(name):
        return None
    try:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        plain = AESGCM(sealing_key).decrypt(nonce, ciphertext, _bound_to(key_id, user_id))
    except InvalidTag:
        return None
    return json.loads(plain)
