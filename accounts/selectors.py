"""Who may read and change users and roles (SPEC §2, §4), and the reads that go with them.

The one place these rules live: the REST API, the Kibana role API, the UI and the commands all
ask these functions. Reading users and roles takes ``read_security``; changing them takes
``manage_security`` (which implies ``read_security``), and so does reading the audit log. Checks
go through ``Principal.has_cluster_privilege``, so a request made with an API key gets the key's
descriptors intersected with its ``limited_by`` snapshot: a read-only key of a superuser can read,
not write.
"""

from django.db.models import QuerySet

from accounts.exceptions import RequestValidationFailed, ValidationError
from accounts.models import Role, User
from accounts.principals import Principal
from accounts.privileges import application_name_problem, validate_role_descriptor
from accounts.services import NATIVE_REALM, RESERVED_USERNAMES

HAS_PRIVILEGES_INDEX_FIELDS = frozenset({"names", "privileges", "allow_restricted_indices"})


def can_read_security(principal: Principal) -> bool:
    return principal.has_cluster_privilege("read_security")


def can_manage_security(principal: Principal) -> bool:
    return principal.has_cluster_privilege("manage_security")


def can_view_audit_log(principal: Principal) -> bool:
    """The audit log is for security administrators only, as in Elasticsearch: ``read_security``
    alone does not open it, since it tells who tried which username and when."""
    return can_manage_security(principal)


# Elasticsearch's actions behind GET / and GET /_cluster/health, both under cluster:monitor/*.
MONITOR_MAIN_ACTION = "cluster:monitor/main"
MONITOR_HEALTH_ACTION = "cluster:monitor/health"


def can_monitor(principal: Principal, action: str) -> bool:
    """Read-only monitoring (cluster health, the root info, Keyward's metrics), one of Elasticsearch's
    ``cluster:monitor/*`` actions: ``monitor`` (which ``manage`` and ``all`` imply), or a role naming
    the action itself."""
    return principal.has_cluster_privilege("monitor") or principal.has_cluster_privilege(action)


def can_run_as(principal: Principal, username: str) -> bool:
    """Whether the principal's roles name ``username`` in ``run_as``, as Elasticsearch checks a
    request made on another user's behalf."""
    return principal.privileges.can_run_as(username)


def can_change_password(principal: Principal, username: str) -> bool:
    """A native user may change their own password, though not through an API key (as in
    Elasticsearch); anyone else's takes ``manage_security``."""
    own = (
        principal.api_key is None
        and principal.realm_name == NATIVE_REALM
        and principal.user.username == username
    )
    return own or can_manage_security(principal)


def native_users(usernames: list[str] | None = None) -> QuerySet[User]:
    """Users of the native realm, all or those named: the users API manages no other realm."""
    users = User.objects.filter(realm__name=NATIVE_REALM).prefetch_related("roles").order_by("username")
    return users if usernames is None else users.filter(username__in=usernames)


def roles(names: list[str] | None = None) -> QuerySet[Role]:
    """Every role, the built-in ones included, or those named."""
    rows = Role.objects.order_by("name")
    return rows if names is None else rows.filter(name__in=names)


def queryable_users() -> QuerySet[User]:
    """The users the query user API searches: native ones, without the reserved ``elastic``, as
    Elasticsearch's query leaves out its built-in users."""
    return native_users().exclude(username__in=RESERVED_USERNAMES)


def queryable_roles() -> QuerySet[Role]:
    """The roles the query role API searches: those stored, not the built-in ones, as
    Elasticsearch's query reads its security index only."""
    return Role.objects.filter(built_in=False)


def has_privileges(
    principal: Principal, cluster=None, index=None, application=None, definitions_for=None
) -> dict:
    """Elasticsearch's has-privileges answer about the principal's effective privileges (for an API
    key: its descriptors ∩ ``limited_by``). Unknown privilege names are refused. Application
    privileges are resolved through the stored ones ``definitions_for`` loads (called once, with the
    applications concerned)."""
    requested = privileges_check(principal.user.username, cluster, index, application)
    return held_privileges(principal, requested, definitions_for)


def privileges_check(name: str, cluster=None, index=None, application=None) -> dict:
    """A has-privileges request read with Elasticsearch's rules and messages (``name`` is whose
    check it is, for those messages): the privileges asked for, normalised as a role descriptor's,
    for ``held_privileges``. Unknown privilege names are refused."""
    for entry in index if isinstance(index, list) else []:
        if isinstance(entry, dict):
            unexpected = sorted(set(entry) - HAS_PRIVILEGES_INDEX_FIELDS)
            if unexpected:
                raise ValidationError(
                    f"failed to parse privileges check [{name}]. "
                    f"unexpected field [{','.join(unexpected)}]"
                )
    # Requested applications are names, never patterns: checked before the entries' other rules.
    entries = application if isinstance(application, list) else []
    named = [entry.get("application") for entry in entries if isinstance(entry, dict)]
    problems = [application_name_problem(app, allow_wildcard=False) for app in named if isinstance(app, str)]
    if any(problems):
        raise RequestValidationFailed(*filter(None, problems))
    requested = validate_role_descriptor(
        name,
        {
            "cluster": [] if cluster is None else cluster,
            "indices": [] if index is None else index,
            "applications": [] if application is None else application,
        },
    )
    if not (requested["cluster"] or requested["indices"] or requested["applications"]):
        raise RequestValidationFailed("must specify at least one privilege")
    return requested


def held_privileges(principal: Principal, requested: dict, definitions_for=None) -> dict:
    """Which of the ``requested`` privileges (from ``privileges_check``) the principal holds, in the
    has-privileges answer's shape: the one evaluation that ``_has_privileges`` and forward
    authentication share."""
    held = principal.privileges
    cluster_answer = {name: held.has_cluster(name) for name in requested["cluster"]}
    index_answer: dict[str, dict[str, bool]] = {}
    for entry in requested["indices"]:
        for name in entry["names"]:
            answer = index_answer.setdefault(name, {})
            answer.update({privilege: held.has_index(name, privilege) for privilege in entry["privileges"]})
    application_answer: dict[str, dict[str, dict[str, bool]]] = {}
    if requested["applications"]:
        concerned = {entry["application"] for entry in requested["applications"]} | held.application_names()
        granted = held.applications(definitions_for(concerned) if definitions_for else {})
        for entry in requested["applications"]:
            resources = application_answer.setdefault(entry["application"], {})
            for resource in entry["resources"]:
                resources.setdefault(resource, {}).update({
                    privilege: granted.grants_privilege(entry["application"], privilege, resource)
                    for privilege in entry["privileges"]
                })
    answers = [
        *cluster_answer.values(),
        *(granted for privileges in index_answer.values() for granted in privileges.values()),
        *(
            granted
            for resources in application_answer.values()
            for privileges in resources.values()
            for granted in privileges.values()
        ),
    ]
    return {
        "username": principal.user.username,
        "has_all_requested": all(answers),
        "cluster": cluster_answer,
        "index": index_answer,
        "application": application_answer,
    }
