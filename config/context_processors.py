"""The menu of every page: an entry for each page the user's privileges open, asked of the same
selectors as the page itself, so the menu never offers a page that answers "permission denied"."""

from dataclasses import dataclass
from functools import cache

from django.urls import reverse

from accounts import selectors as security
from accounts.principals import Principal, principal_of_session
from apikeys import selectors as api_keys
from application_privileges import selectors as application_privileges
from tokens import selectors as tokens


@dataclass(frozen=True)
class MenuEntry:
    label: str
    url_name: str
    id: str
    anchor: str = ""

    @property
    def url(self) -> str:
        return reverse(self.url_name) + self.anchor


# Each entry with the rule of its page, in the menu's order.
SECURITY_ENTRIES = (
    (MenuEntry("API keys", "api_keys", "menu-api-keys"), api_keys.can_view_api_keys),
    (MenuEntry("Roles", "role-list", "menu-roles"), security.can_read_security),
    (
        MenuEntry("Application privileges", "application-privilege-list", "menu-application-privileges"),
        lambda principal: application_privileges.can_get_privileges(principal, None),
    ),
    (MenuEntry("Users", "user-list", "menu-users"), security.can_read_security),
    (MenuEntry("Access tokens", "token-list", "menu-tokens"), tokens.can_manage_tokens),
    (MenuEntry("Audit log", "audit-log", "menu-audit-log"), security.can_view_audit_log),
)
# The console only needs a login: the REST API applies the user's privileges to what it sends.
DEV_TOOLS_ENTRIES = (MenuEntry("Console", "console", "menu-console", "#/console"),)


def security_entries(principal: Principal) -> list[MenuEntry]:
    return [entry for entry, may_open in SECURITY_ENTRIES if may_open(principal)]


def menu(request) -> dict:
    """The menu's entries for the logged-in user; worked out only when a page draws the menu, once."""

    @cache
    def entries() -> dict:
        user = getattr(request, "user", None)  # absent when a request fails before the middleware
        if user is None or not user.is_authenticated:
            return {"security": [], "dev_tools": []}
        return {"security": security_entries(principal_of_session(request)), "dev_tools": DEV_TOOLS_ENTRIES}

    return {"menu": entries}
