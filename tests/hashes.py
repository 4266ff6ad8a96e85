"""Password hashes as Elasticsearch writes them, for the file realm's users file and `password_hash`."""

import base64
import hashlib
import os

import bcrypt


def bcrypt_hash(password, prefix="$2b$", rounds=4):
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return prefix + hashed[4:]


def es_pbkdf2_hash(password, cost=1000, stretch=False, key_bytes=32):
    """A hash as Elasticsearch's Hasher writes it: {PBKDF2}cost$base64(salt)$base64(PBKDF2WithHmacSHA512)."""
    salt = os.urandom(32)
    secret = hashlib.sha512(password.encode()).hexdigest() if stretch else password
    key = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, cost, dklen=key_bytes)
    prefix = "{PBKDF2_STRETCH}" if stretch else "{PBKDF2}"
    return f"{prefix}{cost}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
