"""Who may mint, refresh and invalidate access tokens, and the reads that go with them: the one place
these rules live. As in Elasticsearch, all three take ``manage_token``, which ``manage_security``
implies; whoever holds it may invalidate anyone's tokens."""

from django.db.models import QuerySet

from accounts.exceptions import PermissionDenied
from accounts.principals import Principal
from apikeys import selectors as api_key_selectors
from tokens.models import Token

CREATE_ACTION = "cluster:admin/xpack/security/token/create"
REFRESH_ACTION = "cluster:admin/xpack/security/token/refresh"
INVALIDATE_ACTION = "cluster:admin/xpack/security/token/invalidate"
GRANTED_BY = "manage_token,manage_security,all"


def can_manage_tokens(principal: Principal) -> bool:
    return principal.has_cluster_privilege("manage_token")


def unauthorized(principal: Principal, action: str) -> PermissionDenied:
    """Elasticsearch's denial, naming who asked and the privileges that would have granted it."""
    denial = api_key_selectors.unauthorized(principal, action)
    granted_by = f"this action is granted by the cluster privileges [{GRANTED_BY}]"
    return PermissionDenied(f"{denial.reason}, {granted_by}")


def active_tokens(user=None) -> QuerySet[Token]:
    """Pairs of which a part still works, everyone's or one user's."""
    tokens = Token.objects.active()
    return tokens if user is None else tokens.filter(user=user)
