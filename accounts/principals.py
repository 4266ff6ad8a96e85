"""A principal is who a request acts as: a user, or a user acting through one of their API keys or
access tokens. A token acts with its user's roles of the moment."""

from dataclasses import dataclass, field
from functools import cached_property

from accounts.privileges import PrivilegeSet, privileges_of


@dataclass(eq=False)
class Principal:
    user: "accounts.models.User"  # noqa: F821
    api_key: "apikeys.models.ApiKey | None" = None  # noqa: F821
    token: "tokens.models.Token | None" = None  # noqa: F821
    realm_name: str = field(init=False)

    def __post_init__(self):
        self.realm_name = self.user.realm.name

    @cached_property
    def role_descriptors(self) -> dict:
        """The descriptors a key created by this principal is limited by (SPEC §2)."""
        if self.api_key is not None:
            return self.api_key.limited_by
        return self.user.role_descriptors()

    @cached_property
    def privileges(self) -> PrivilegeSet:
        """What this principal may do: the user's roles, or the key's descriptors ∩ limited_by."""
        if self.api_key is not None:
            return privileges_of(self.api_key.role_descriptors, limited_by=self.api_key.limited_by)
        return privileges_of(self.role_descriptors)

    def has_cluster_privilege(self, name: str) -> bool:
        return self.privileges.has_cluster(name)

    def owns(self, api_key) -> bool:
        """Own keys are those of the same user in the same realm (one user row per realm)."""
        return api_key.owner_id == self.user.pk


def principal_of_session(request) -> Principal:
    """The logged-in user of a page request, as the privilege rules see them: made once per request
    and user, so that the page and its menu read the user's roles once."""
    principal = getattr(request, "_principal", None)
    if principal is None or principal.user is not request.user:
        principal = request._principal = Principal(request.user)
    return principal
