"""API key credentials: the random id and secret, and the ``ApiKey`` Authorization header (SPEC §3).

A client sends ``Authorization: ApiKey <base64(id:api_key)>``. Every malformed header fails the
same way for the client; the precise fault is kept in ``AuthenticationFailed.detail`` for the
audit log.
"""

import base64
import binascii
import secrets
from typing import NoReturn

from accounts.exceptions import AuthenticationFailed

SCHEME = "ApiKey"
AUTHENTICATION_FAILED = "unable to authenticate with provided credentials"
# base64 of a 20-character id, a colon and a 22-character secret is 60 characters; this leaves
# room for other clients' formats while bounding the work done for a hostile header.
MAX_CREDENTIAL_LENGTH = 1024


def generate_api_key_id() -> str:
    """A 20-character URL-safe id: 120 random bits, so two keys never share one in practice."""
    return secrets.token_urlsafe(15)


def generate_api_key_secret() -> str:
    """The 22-character secret: 128 random bits as unpadded URL-safe base64, as Elasticsearch does."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")


def encode_credential(api_key_id: str, api_key: str) -> str:
    """The ``encoded`` form a client puts after ``ApiKey`` in the Authorization header."""
    return base64.b64encode(f"{api_key_id}:{api_key}".encode()).decode("ascii")


def is_api_key_header(value) -> bool:
    """Whether an Authorization header uses the ``ApiKey`` scheme, rather than Basic or Bearer."""
    return isinstance(value, str) and _is_api_key_scheme(value.split(maxsplit=1)[:1])


def parse_authorization_header(value: str) -> tuple[str, str]:
    """Return ``(id, api_key)`` from an ``ApiKey`` header, or raise ``AuthenticationFailed``."""
    if not isinstance(value, str):
        _fail("authorization header is missing or not text")
    parts = value.split()
    if not _is_api_key_scheme(parts[:1]):
        _fail("authorization header does not use the ApiKey scheme")
    if len(parts) != 2:
        _fail(f"ApiKey authorization header must hold exactly one credential, found {len(parts) - 1}")
    return _split_credential(_decode_credential(parts[1]))


def _is_api_key_scheme(first_word: list[str]) -> bool:
    # ASCII only: the Kelvin sign (U+212A) lowercases to "k" and must not spell the scheme.
    return bool(first_word) and first_word[0].isascii() and first_word[0].lower() == SCHEME.lower()


def _decode_credential(credential: str) -> str:
    """Strict base64 of UTF-8 text; anything looser would let two spellings name one key."""
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        _fail(f"ApiKey credential is longer than {MAX_CREDENTIAL_LENGTH} characters")
    if not credential.isascii():
        _fail("ApiKey credential contains characters outside base64")
    try:
        raw = base64.b64decode(credential, validate=True)
    except binascii.Error:
        _fail("ApiKey credential is not valid base64")
    if base64.b64encode(raw).decode("ascii") != credential:
        _fail("ApiKey credential is not canonical base64: extra padding or stray bits")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail("decoded ApiKey credential is not UTF-8 text")


def _split_credential(decoded: str) -> tuple[str, str]:
    """Split at the first colon; control characters never occur in a real id or secret."""
    api_key_id, colon, api_key = decoded.partition(":")
    if not colon:
        _fail("decoded ApiKey credential has no ':' between id and secret")
    if not api_key_id or not api_key:
        _fail("decoded ApiKey credential has an empty id or secret")
    if not decoded.isprintable():
        _fail("decoded ApiKey credential contains non-printable characters")
    return api_key_id, api_key


def _fail(detail: str) -> NoReturn:
    raise AuthenticationFailed(AUTHENTICATION_FAILED, detail=detail)
