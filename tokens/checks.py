"""Startup checks: a token lifetime outside Elasticsearch's bounds stops ``migrate`` and ``check``
with the operator's error, instead of failing the first token request."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.compatibility)
def token_lifetime_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from tokens.services import token_lifetime

    try:
        token_lifetime()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), hint="Set KEYWARD_TOKEN_LIFETIME to e.g. 20m.", id="tokens.E001")]
    return []
