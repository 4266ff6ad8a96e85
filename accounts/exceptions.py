"""Domain errors of the security model.

Each error carries the Elasticsearch error ``type`` and HTTP ``status`` it is reported with, so
that the REST API, the web UI and the commands describe the same failure the same way. How an
error is rendered on the wire is not decided here.
"""

# The base errors live with the wire format, beneath every app, so that the query engine can raise
# them; the security model's own errors build on them here.
from restapi.errors import RequestValidationFailed as RequestValidationFailed
from restapi.errors import SecurityError as SecurityError
from restapi.errors import ValidationError as ValidationError


class AuthenticationFailed(SecurityError):
    """Credentials were missing or wrong. ``detail`` is for the audit log, never for the client."""

    type = "security_exception"
    status = 401

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.detail = detail or reason


class PermissionDenied(SecurityError):
    """The caller is known but lacks the privilege for this action."""

    type = "security_exception"
    status = 403


class NotFound(SecurityError):
    type = "resource_not_found_exception"
    status = 404


class Conflict(SecurityError):
    """The write collides with existing state, e.g. an active key with the same name."""

    type = "version_conflict_engine_exception"
    status = 409


class FeatureNotEnabled(SecurityError):
    """The API key service is off for this request: it did not arrive over HTTPS."""

    type = "feature_not_enabled_exception"
    status = 400


class TokenRequestRefused(SecurityError):
    """A refused request of the token endpoint, which answers in OAuth 2.0's shape (RFC 6749 §5.2):
    ``error`` is its code (``invalid_request``, ``unsupported_grant_type``, ``invalid_grant``) and the
    reason its ``error_description``. ``detail`` is for the audit log."""

    type = "invalid_grant"
    status = 400

    def __init__(self, error: str, reason: str, detail: str = ""):
        super().__init__(reason)
        self.type = error
        self.detail = detail or reason


class TooManyRequests(SecurityError):
    """Too many failed authentication attempts from this client or for this username.

    Elasticsearch reports an overloaded node as a 429 ``es_rejected_execution_exception``; this
    is an authentication refusal instead, so it keeps the ``security_exception`` type of the 401
    it replaces. ``retry_after`` is in seconds, for the ``Retry-After`` header.
    """

    type = "security_exception"
    status = 429

    def __init__(self, reason: str, retry_after: int):
        super().__init__(reason)
        self.retry_after = retry_after
