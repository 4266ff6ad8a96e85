"""Errors that carry the Elasticsearch error ``type`` and HTTP ``status`` they are reported with.

Beneath every app, so that code at the bottom of the import graph (the query engine) can raise them;
``accounts.exceptions`` builds the security model's errors on them and ``restapi.wire`` renders them.
"""


class SecurityError(Exception):
    """Base class: a request that cannot be carried out, with a reason a person can read."""

    type = "exception"
    status = 500

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ValidationError(SecurityError):
    """The request itself is wrong: a bad name, expiration, descriptor or parameter."""

    type = "illegal_argument_exception"
    status = 400


class RequestValidationFailed(ValidationError):
    """Elasticsearch's request validation: every problem found, numbered."""

    type = "action_request_validation_exception"

    def __init__(self, *problems: str):
        numbered = "".join(f"{number}: {problem};" for number, problem in enumerate(problems, 1))
        super().__init__(f"Validation Failed: {numbered}")
