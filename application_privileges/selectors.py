"""Who may read and change application privileges, and the reads that go with them: the one place
these rules live.

As in Elasticsearch: ``manage_security`` writes them and ``read_security`` reads them; so does a
role's ``global: {application: {manage: {applications: [...]}}}`` privilege, for the applications it
names (a request naming no application, such as getting them all, needs ``*`` there). A granted
action pattern covering the action (``cluster:admin/xpack/security/privilege/*``) grants it too.
Clearing the cache and listing the built-in privileges are not about applications: the global
privilege does not grant them. For an API key, the key and its ``limited_by`` must both allow.
"""

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from accounts.patterns import NamePatterns, is_regex_pattern
from accounts.principals import Principal
from accounts.privileges import Definitions
from application_privileges.models import ApplicationPrivilege

PUT_ACTION = "cluster:admin/xpack/security/privilege/put"
GET_ACTION = "cluster:admin/xpack/security/privilege/get"
DELETE_ACTION = "cluster:admin/xpack/security/privilege/delete"
CLEAR_CACHE_ACTION = "cluster:admin/xpack/security/privilege/cache/clear"
GET_BUILTIN_ACTION = "cluster:admin/xpack/security/privilege/builtin/get"


def can_put_privileges(principal: Principal, applications: list[str]) -> bool:
    return principal.privileges.allows_privileges_action(PUT_ACTION, "manage_security", applications)


def can_get_privileges(principal: Principal, application: str | None) -> bool:
    """``application`` None: every application's privileges."""
    applications = [] if application is None else [application]
    return principal.privileges.allows_privileges_action(GET_ACTION, "read_security", applications)


def can_delete_privileges(principal: Principal, application: str) -> bool:
    return principal.privileges.allows_privileges_action(DELETE_ACTION, "manage_security", [application])


def can_define_privileges(principal: Principal) -> bool:
    """Whether the principal may define privileges of any application it names (the page's create
    form): as for a put request naming no application."""
    return can_put_privileges(principal, [])


def can_clear_privileges_cache(principal: Principal) -> bool:
    return principal.privileges.allows_privileges_action(CLEAR_CACHE_ACTION, "manage_security", None)


def can_get_builtin_privileges(principal: Principal) -> bool:
    return principal.privileges.allows_privileges_action(GET_BUILTIN_ACTION, "read_security", None)


def application_privileges(application: str | None = None, names: list[str] | None = None) -> QuerySet:
    """Stored privileges: all, those of an application (a name, or a pattern with a trailing ``*``),
    or those of it named."""
    rows = ApplicationPrivilege.objects.all()
    if application and application.endswith("*"):
        rows = rows.filter(application__startswith=application.removesuffix("*"))
    elif application:
        rows = rows.filter(application=application)
    return rows.filter(name__in=names) if names else rows


def _prefix(pattern: str) -> str | None:
    """What every name ``pattern`` matches starts with, if it is a literal or a trailing-``*`` pattern."""
    if is_regex_pattern(pattern) or "?" in pattern or "*" in pattern.removesuffix("*"):
        return None
    return pattern.removesuffix("*")


def definitions_for(applications: Iterable[str]) -> Definitions:
    """The stored privileges of the applications named or matched by ``applications`` (names or
    patterns), in the shape the privilege engine resolves grants with; read once per request."""
    applications = set(applications)
    rows = ApplicationPrivilege.objects.none()
    if applications:
        prefixes = [_prefix(pattern) for pattern in applications]
        rows = ApplicationPrivilege.objects.all()
        if None not in prefixes:
            starts = [("application__startswith", prefix) for prefix in prefixes]
            rows = rows.filter(Q.create(starts, connector=Q.OR))
    matcher = NamePatterns(applications)
    definitions: dict[str, dict[str, list[str]]] = {}
    for application, name, actions in rows.values_list("application", "name", "actions"):
        if matcher.matches(application):
            definitions.setdefault(application, {})[name] = actions
    return definitions
