"""The privilege engine (SPEC §1, §2): Elasticsearch's privilege names, what they imply, role
descriptor validation, and the effective privileges of a user or of an API key.

Pure Python, no database. Implications are data: ``privilege -> privileges it directly implies``,
closed transitively once at import. An implication is listed only where Elasticsearch's action
patterns for the implied privilege are a subset of the implying one's; where that could not be
checked it is left out, so a check can fail where Elasticsearch would pass, never the reverse.
Index name and action patterns are compiled and matched by ``accounts.patterns``.
"""

import copy
import json
import re
from collections.abc import Iterable, Mapping

from accounts.exceptions import RequestValidationFailed, ValidationError
from accounts.patterns import NamePatterns, PatternError, covers, is_regex_pattern, is_total, validate_pattern

CLUSTER_PRIVILEGES = frozenset("""
    all cancel_task create_snapshot cross_cluster_replication cross_cluster_search delegate_pki
    grant_api_key manage manage_api_key manage_autoscaling manage_behavioral_analytics manage_ccr
    manage_connector manage_data_frame_transforms manage_data_stream_global_retention manage_enrich
    manage_ilm manage_index_templates manage_inference manage_ingest_pipelines manage_logstash_pipelines
    manage_ml manage_oidc manage_own_api_key manage_pipeline manage_rollup manage_saml
    manage_search_application manage_search_query_rules manage_search_synonyms manage_security
    manage_service_account manage_slm manage_token manage_transform manage_user_profile manage_watcher
    monitor monitor_connector monitor_data_frame_transforms monitor_data_stream_global_retention
    monitor_enrich monitor_inference monitor_ml monitor_rollup monitor_snapshot monitor_stats
    monitor_text_structure monitor_transform monitor_watcher none post_behavioral_analytics_event read_ccr
    read_connector_secrets read_fleet_secrets read_ilm read_pipeline read_security read_slm
    transport_client write_connector_secrets write_fleet_secrets
""".split())

INDEX_PRIVILEGES = frozenset("""
    all auto_configure create create_doc create_index cross_cluster_replication
    cross_cluster_replication_internal delete delete_index index maintenance manage
    manage_data_stream_lifecycle manage_follow_index manage_ilm manage_leader_index monitor none read
    read_cross_cluster view_index_metadata write
""".split())

# Privilege names may also be raw action patterns, as in Elasticsearch.
CLUSTER_ACTION_PREFIXES = ("cluster:", "indices:admin/template/", "indices:admin/index_template/")
INDEX_ACTION_PREFIXES = ("indices:", "internal:transport/proxy/indices:")

_CLUSTER_IMPLIES = {
    "all": CLUSTER_PRIVILEGES - {"all"},
    # Elasticsearch's manage is every cluster action except security ones (cluster:admin/xpack/security/*).
    # Privileges touching security actions, cross-cluster access or secrets are not listed.
    "manage": set("""
        monitor cancel_task create_snapshot manage_autoscaling manage_behavioral_analytics manage_connector
        manage_data_stream_global_retention manage_enrich manage_ilm manage_index_templates manage_inference
        manage_ingest_pipelines manage_logstash_pipelines manage_ml manage_rollup manage_search_application
        manage_search_query_rules manage_search_synonyms manage_slm manage_transform manage_watcher
    """.split()),
    # cluster:monitor/*; monitor_enrich, monitor_snapshot and monitor_connector reach outside it.
    "monitor": set("""
        monitor_data_frame_transforms monitor_data_stream_global_retention monitor_inference monitor_ml
        monitor_rollup monitor_text_structure monitor_transform monitor_watcher transport_client
    """.split()),
    # cluster:admin/xpack/security/* except delegate_pki's action, which Elasticsearch leaves out of
    # it; manage_saml also covers a cluster:monitor action.
    "manage_security": {
        "manage_api_key", "read_security", "manage_oidc", "manage_service_account", "manage_token",
        "manage_user_profile",
    },
    "manage_api_key": {"manage_own_api_key", "grant_api_key"},
    "manage_behavioral_analytics": {"post_behavioral_analytics_event"},
    "manage_ccr": {"read_ccr"},
    "manage_connector": {"monitor_connector"},
    "manage_data_stream_global_retention": {"monitor_data_stream_global_retention"},
    "manage_enrich": {"monitor_enrich"},
    "manage_ilm": {"read_ilm"},
    "manage_inference": {"monitor_inference"},
    "manage_ml": {"monitor_ml"},
    "manage_rollup": {"monitor_rollup"},
    "manage_slm": {"read_slm"},
    "manage_watcher": {"monitor_watcher"},
    "create_snapshot": {"monitor_snapshot"},
    # Pairs with identical action patterns: each implies the other.
    "manage_ingest_pipelines": {"manage_pipeline", "read_pipeline"},
    "manage_pipeline": {"manage_ingest_pipelines"},
    "manage_transform": {"manage_data_frame_transforms", "monitor_transform"},
    "manage_data_frame_transforms": {"manage_transform"},
    "monitor_transform": {"monitor_data_frame_transforms"},
    "monitor_data_frame_transforms": {"monitor_transform"},
}

_INDEX_IMPLIES = {
    "all": INDEX_PRIVILEGES - {"all"},
    # indices:monitor/* and indices:admin/*, plus field capabilities.
    "manage": {
        "monitor", "view_index_metadata", "create_index", "delete_index", "auto_configure", "maintenance",
        "manage_ilm", "manage_data_stream_lifecycle", "manage_follow_index", "manage_leader_index",
    },
    "write": {"index", "create", "create_doc", "delete"},
    "index": {"create", "create_doc"},
    "create": {"create_doc"},
    # read does not imply read_cross_cluster: those are proxied actions, outside indices:data/read/*.
}


def _closure(direct: dict, names: Iterable[str]) -> dict[str, frozenset]:
    """``{name: name and everything it implies}``, following implications transitively."""
    closed = {}
    for name in names:
        seen, pending = {name}, [name]
        while pending:
            for implied in direct.get(pending.pop(), ()):
                if implied not in seen:
                    seen.add(implied)
                    pending.append(implied)
        closed[name] = frozenset(seen)
    return closed


# {privilege: itself and every privilege it implies}
CLUSTER_IMPLIED = _closure(_CLUSTER_IMPLIES, CLUSTER_PRIVILEGES)
INDEX_IMPLIED = _closure(_INDEX_IMPLIES, INDEX_PRIVILEGES)


# ---------------------------------------------------------------------------------------------
# Validation

ROLE_DESCRIPTOR_FIELDS = frozenset({
    "cluster", "indices", "index", "applications", "run_as", "metadata", "transient_metadata", "global",
    "remote_indices", "remote_cluster", "restriction", "description",
})
INDEX_ENTRY_FIELDS = frozenset({"names", "privileges", "field_security", "query", "allow_restricted_indices"})
REMOTE_INDEX_ENTRY_FIELDS = INDEX_ENTRY_FIELDS | {"clusters"}
APPLICATION_FIELDS = frozenset({"application", "privileges", "resources"})
REMOTE_CLUSTER_FIELDS = frozenset({"privileges", "clusters"})
REMOTE_CLUSTER_PRIVILEGES = frozenset({"monitor_enrich", "monitor_stats"})
MAX_DESCRIPTION_LENGTH = 1000


def _is_cluster_action(name: str) -> bool:
    return name.startswith(CLUSTER_ACTION_PREFIXES)


def _is_index_action(name: str) -> bool:
    return name.startswith(INDEX_ACTION_PREFIXES)


def _type_name(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _strings(where: str, field: str, value, allow_single=False, allow_empty=True) -> list[str]:
    """A list of non-empty strings (or, where Elasticsearch allows it, a single string)."""
    if allow_single and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        expected = "a string or an array of strings" if allow_single else "an array of strings"
        raise ValidationError(
            f"{where}. expected field [{field}] value to be {expected}, but found [{_type_name(value)}]"
        )
    if any(not item for item in value):
        raise ValidationError(f"{where}. [{field}] must not contain empty strings")
    if not allow_empty and not value:
        raise ValidationError(f"{where}. [{field}] must not be empty")
    return list(value)


def _object(where: str, field: str, value) -> dict:
    if not isinstance(value, dict):
        raise ValidationError(
            f"{where}. expected field [{field}] value to be an object, but found [{_type_name(value)}]"
        )
    return value


def _unexpected_fields(where: str, value: dict, allowed: frozenset) -> None:
    unexpected = sorted(str(key) for key in value if key not in allowed)
    if unexpected:
        raise ValidationError(f"{where}. unexpected field [{','.join(unexpected)}]")


def _unknown_privileges(kind: str, unknown: list[str], catalog: frozenset, actions: str) -> ValidationError:
    """Elasticsearch's wording, naming every unknown privilege."""
    noun = "privilege" if len(unknown) == 1 else "privileges"
    return ValidationError(
        f"unknown {kind} {noun} [{','.join(unknown)}]. a privilege must be either one of the predefined "
        f"{kind} privilege names [{','.join(sorted(catalog))}] "
        f"or a pattern over one of the available {actions}"
    )


def _cluster_privileges(where: str, value) -> list[str]:
    names = _strings(where, "cluster", value)
    unknown = [name for name in names if not (name.lower() in CLUSTER_PRIVILEGES or _is_cluster_action(name))]
    if unknown:
        raise _unknown_privileges("cluster", unknown, CLUSTER_PRIVILEGES, "cluster actions")
    return names


def _index_privileges(where: str, value) -> list[str]:
    names = _strings(where, "privileges", value)
    if not names:
        raise ValidationError(f"{where}. indices privileges must define at least one privilege")
    unknown = [name for name in names if not (name.lower() in INDEX_PRIVILEGES or _is_index_action(name))]
    if unknown:
        raise _unknown_privileges("index", unknown, INDEX_PRIVILEGES, "index actions")
    return names


def _index_names(where: str, value) -> list[str]:
    names = _strings(where, "names", value, allow_single=True)
    if not names:
        raise ValidationError(
            f"{where}. indices privileges must refer to at least one index name or index name pattern"
        )
    for name in names:
        try:
            validate_pattern(name)
        except PatternError as error:
            raise ValidationError(f"{where}. invalid index name pattern [{name}]: {error.reason}") from None
    return names


def _index_entry(role: str, entry, fields: frozenset, list_name: str) -> dict:
    where = f"failed to parse {list_name} privileges for role [{role}]"
    entry = _object(where, list_name, entry)
    _unexpected_fields(where, entry, fields)
    for required in [field for field in ("names", "privileges", "clusters") if field in fields]:
        if required not in entry:
            raise ValidationError(f"{where}. missing required [{required}] field")
    normalised = {
        "names": _index_names(where, entry["names"]),
        "privileges": _index_privileges(where, entry["privileges"]),
        "allow_restricted_indices": entry.get("allow_restricted_indices", False),
    }
    if not isinstance(normalised["allow_restricted_indices"], bool):
        raise ValidationError(f"{where}. expected field [allow_restricted_indices] value to be a boolean")
    if "clusters" in fields:
        normalised["clusters"] = _strings(
            where, "clusters", entry["clusters"], allow_single=True, allow_empty=False
        )
    if "field_security" in entry:
        field_security = _object(where, "field_security", entry["field_security"])
        _unexpected_fields(f"{where}. in [field_security]", field_security, frozenset({"grant", "except"}))
        normalised["field_security"] = {
            key: _strings(where, f"field_security.{key}", field_security[key]) for key in field_security
        }
    if "query" in entry:
        if not isinstance(entry["query"], str | dict):
            raise ValidationError(f"{where}. expected field [query] value to be a string or an object")
        normalised["query"] = copy.deepcopy(entry["query"])
    return normalised


def _application_entry(role: str, entry) -> dict:
    where = f"failed to parse application privileges for role [{role}]"
    entry = _object(where, "applications", entry)
    _unexpected_fields(where, entry, APPLICATION_FIELDS)
    for required in sorted(APPLICATION_FIELDS):
        if required not in entry:
            raise ValidationError(f"{where}. missing required [{required}] field")
    if not isinstance(entry["application"], str) or not entry["application"]:
        raise ValidationError(f"{where}. expected field [application] value to be a non-empty string")
    return {
        "application": entry["application"],
        "privileges": _strings(where, "privileges", entry["privileges"], allow_empty=False),
        "resources": _strings(where, "resources", entry["resources"], allow_empty=False),
    }


APPLICATION_PREFIX = re.compile(r"[a-z][A-Za-z0-9]*")
# Characters Elasticsearch forbids in file names, hence in an application name's suffix, in the
# order its messages list them.
INVALID_SUFFIX_CHARACTERS = ' "*\\<|,>/?'
PRIVILEGE_OR_ACTION = re.compile(r"[!-~]*")  # printable ASCII, no whitespace


def application_name_problem(application: str, *, allow_wildcard: bool) -> str | None:
    """Why Elasticsearch refuses an application name, or None: a prefix of at least three ASCII
    letters and digits starting lowercase, then optionally ``-`` or ``_`` and a file-name-safe
    suffix; roles (``allow_wildcard``) may also name ``*`` or a trailing-``*`` pattern."""
    if not application:
        return "Application names cannot be blank"
    asterisk = application.find("*")
    if asterisk != -1:
        if not allow_wildcard:
            return f"Application names may not contain '*' (found '{application}')"
        if application == "*":
            return None
        if asterisk != len(application) - 1:
            return f"Application name patterns only support trailing wildcards (found '{application}')"
    if any(character.isspace() for character in application):
        return f"Application names may not contain whitespace (found '{application}')"
    prefix, *suffix = re.split("[_-]", application, maxsplit=1)
    prefix = prefix.removesuffix("*")
    if not APPLICATION_PREFIX.fullmatch(prefix):
        pattern = f"^{APPLICATION_PREFIX.pattern}$"
        return f"An application name prefix must match the pattern {pattern} (found '{prefix}')"
    if len(prefix) < 3 and asterisk == -1:
        return f"An application name prefix must be at least 3 characters long (found '{prefix}')"
    if suffix:
        rest = suffix[0].removesuffix("*") if allow_wildcard else suffix[0]
        if any(character in INVALID_SUFFIX_CHARACTERS for character in rest):
            return (
                f"An application name suffix may not contain any of the characters "
                f"'{INVALID_SUFFIX_CHARACTERS}' (found '{rest}')"
            )
    return None


def privilege_or_action_problem(name: str) -> str | None:
    """Why Elasticsearch refuses an application privilege name or action pattern, or None."""
    if PRIVILEGE_OR_ACTION.fullmatch(name):
        return None
    return f"Application privilege names and actions must match the pattern ^\\p{{Graph}}*$ (found '{name}')"


def _refuse_bad_application_names(entries: list[dict]) -> None:
    """Elasticsearch's request validation of application privileges: every problem, numbered."""
    problems = []
    for entry in entries:
        problems.append(application_name_problem(entry["application"], allow_wildcard=True))
        problems.extend(privilege_or_action_problem(name) for name in entry["privileges"])
    problems = [problem for problem in problems if problem]
    if problems:
        raise RequestValidationFailed(*problems)


def _remote_cluster_entry(role: str, entry) -> dict:
    where = f"failed to parse remote_cluster for role [{role}]"
    entry = _object(where, "remote_cluster", entry)
    _unexpected_fields(where, entry, REMOTE_CLUSTER_FIELDS)
    for required in sorted(REMOTE_CLUSTER_FIELDS):
        if required not in entry:
            raise ValidationError(f"{where}. missing required [{required}] field")
    privileges = _strings(where, "privileges", entry["privileges"], allow_empty=False)
    unknown = [name for name in privileges if name not in REMOTE_CLUSTER_PRIVILEGES]
    if unknown:
        raise ValidationError(
            f"{where}. unknown remote_cluster privilege [{','.join(unknown)}]. "
            f"valid privileges are [{','.join(sorted(REMOTE_CLUSTER_PRIVILEGES))}]"
        )
    clusters = _strings(where, "clusters", entry["clusters"], allow_empty=False)
    return {"privileges": privileges, "clusters": clusters}


# Elasticsearch's configurable (global) privileges: each category and the one privilege it offers.
GLOBAL_PRIVILEGES = {"application": "manage", "profile": "write"}


def _global_privileges(where: str, value) -> dict:
    """``global``: ``{application: {manage: {applications: [...]}}}`` and the profile equivalent."""
    value = _object(where, "global", value)
    for category, privileges in value.items():
        if category not in GLOBAL_PRIVILEGES:
            raise ValidationError(
                f"failed to parse privilege. expected one of [{','.join(GLOBAL_PRIVILEGES)}] "
                f"but found [{category}] instead"
            )
        expected = GLOBAL_PRIVILEGES[category]
        for name, privilege in _object(where, f"global.{category}", privileges).items():
            if name != expected:
                raise ValidationError(
                    f"failed to parse privilege. expected field name [{expected}] but found [{name}] instead"
                )
            privilege = _object(where, f"global.{category}.{name}", privilege)
            _unexpected_fields(where, privilege, frozenset({"applications"}))
            if "applications" not in privilege:
                raise ValidationError(f"{where}. missing required [applications] field")
            _strings(where, f"global.{category}.{name}.applications", privilege["applications"])
    return copy.deepcopy(value)


def _list_of(where: str, field: str, value, parse) -> list:
    if not isinstance(value, list):
        raise ValidationError(
            f"{where}. expected field [{field}] value to be an array, but found [{_type_name(value)}]"
        )
    return [parse(item) for item in value]


# Compiling one regular expression may take some milliseconds: this many in one request bounds what
# a single body can cost, at no cost to real roles, which hold a few.
MAX_REGEX_PATTERNS = 100


def _indices_field(descriptor: dict) -> str:
    """Which of ``indices`` and its alias ``index`` a descriptor's index privileges are read from:
    as in Elasticsearch, the one given last in the body when both are."""
    given = [field for field in descriptor if field in ("indices", "index")]
    return given[-1] if given else "indices"


def _regex_pattern_count(descriptor) -> int:
    """How many ``/regex/`` index name patterns a (not yet validated) descriptor holds."""
    count = 0
    for field in ("indices", "index", "remote_indices"):
        entries = descriptor.get(field) if isinstance(descriptor, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            names = _as_list(entry.get("names")) if isinstance(entry, dict) else []
            count += sum(1 for name in names if is_regex_pattern(name))
    return count


def limit_regex_patterns(descriptors: Iterable) -> None:
    """Refuse a request whose descriptors hold more regular expressions than one request may compile."""
    if sum(_regex_pattern_count(descriptor) for descriptor in descriptors) > MAX_REGEX_PATTERNS:
        raise ValidationError(
            f"at most [{MAX_REGEX_PATTERNS}] regular expression index name patterns may be given at once"
        )


def validate_role_descriptor(name, descriptor) -> dict:
    """One role descriptor, validated; returns a normalised copy (e.g. ``names`` always a list, and
    index privileges given under Elasticsearch's alias ``index`` kept as ``indices``)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("role names must be non-empty strings")
    limit_regex_patterns([descriptor])
    where = f"failed to parse role [{name}]"
    descriptor = _object(where, name, descriptor)
    _unexpected_fields(where, descriptor, ROLE_DESCRIPTOR_FIELDS)
    metadata = _object(where, "metadata", descriptor.get("metadata", {}))
    reserved = sorted(str(key) for key in metadata if str(key).startswith("_"))
    if reserved:
        raise ValidationError(f"{where}. metadata keys may not start with [_]: [{','.join(reserved)}]")
    normalised = {
        "cluster": _cluster_privileges(where, descriptor.get("cluster", [])),
        "indices": _list_of(
            where, "indices", descriptor.get(_indices_field(descriptor), []),
            lambda entry: _index_entry(name, entry, INDEX_ENTRY_FIELDS, "indices"),
        ),
        "run_as": _strings(where, "run_as", descriptor.get("run_as", [])),
        "metadata": copy.deepcopy(metadata),
    }
    if "applications" in descriptor:
        normalised["applications"] = _list_of(
            where, "applications", descriptor["applications"], lambda entry: _application_entry(name, entry)
        )
        _refuse_bad_application_names(normalised["applications"])
    if "remote_indices" in descriptor:
        normalised["remote_indices"] = _list_of(
            where, "remote_indices", descriptor["remote_indices"],
            lambda entry: _index_entry(name, entry, REMOTE_INDEX_ENTRY_FIELDS, "remote_indices"),
        )
    if "remote_cluster" in descriptor:
        normalised["remote_cluster"] = _list_of(
            where, "remote_cluster", descriptor["remote_cluster"],
            lambda entry: _remote_cluster_entry(name, entry),
        )
    for field in ("transient_metadata", "restriction"):
        if field in descriptor:
            normalised[field] = copy.deepcopy(_object(where, field, descriptor[field]))
    if "global" in descriptor:
        normalised["global"] = _global_privileges(where, descriptor["global"])
    if "restriction" in normalised:
        _unexpected_fields(f"{where}. in [restriction]", normalised["restriction"], frozenset({"workflows"}))
        normalised["restriction"]["workflows"] = _strings(
            where, "restriction.workflows", normalised["restriction"].get("workflows"), allow_empty=False
        )
    if "description" in descriptor:
        if not isinstance(descriptor["description"], str):
            raise ValidationError(f"{where}. expected field [description] value to be a string")
        if len(descriptor["description"]) > MAX_DESCRIPTION_LENGTH:
            raise ValidationError(f"Role description must be less than {MAX_DESCRIPTION_LENGTH} characters.")
        normalised["description"] = descriptor["description"]
    return normalised


def validate_role_descriptors(value) -> dict:
    """An API key's ``role_descriptors`` (``{role name: descriptor}``), validated and normalised."""
    if not isinstance(value, dict):
        raise ValidationError(f"[role_descriptors] must be an object, but found [{_type_name(value)}]")
    limit_regex_patterns(value.values())
    return {name: validate_role_descriptor(name, descriptor) for name, descriptor in value.items()}


# ---------------------------------------------------------------------------------------------
# Application privileges: names of stored privileges and their actions

_PRIVILEGE_NAME = re.compile(r"[a-z][a-zA-Z0-9_.-]*")
ACTION_MARKERS = ("/", "*", ":")


def is_privilege_name(name: str) -> bool:
    """A name that refers to a stored privilege; anything else asked for or granted is an action."""
    return _PRIVILEGE_NAME.fullmatch(name) is not None


def privilege_name_problem(name: str) -> str | None:
    if is_privilege_name(name):
        return None
    return f"Application privilege names must match the pattern ^[a-z][a-zA-Z0-9_.-]*$ (found '{name}')"


def action_problems(action: str) -> list[str]:
    """Why a stored privilege may not hold ``action``: it must look like an action, not a name."""
    problems = []
    if not any(marker in action for marker in ACTION_MARKERS):
        problems.append(f"action [{action}] must contain one of [ '/' , '*' , ':' ]")
    problem = privilege_or_action_problem(action)
    return problems + [problem] if problem else problems


# Stored application privileges, as the caller loads them: {application: {privilege name: actions}}.
Definitions = Mapping[str, Mapping[str, Iterable[str]]]


def _resolve_actions(names: Iterable[str], defined: Mapping[str, Iterable[str]]) -> frozenset:
    """A privilege name stands for its stored actions (none if it is not stored); anything else
    given as a privilege is an action pattern itself."""
    actions = set()
    for name in names:
        if is_privilege_name(name):
            actions.update(defined.get(name, ()))
        else:
            actions.add(name)
    return frozenset(actions)


# ---------------------------------------------------------------------------------------------
# Effective privileges


def _as_list(value) -> list:
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


class _IndexGrant:
    """One ``indices`` entry: which index names it covers and which index privileges it grants."""

    __slots__ = ("actions", "names", "privileges")

    def __init__(self, entry: dict):
        names = [name.lower() for name in _as_list(entry.get("privileges"))]
        self.names = NamePatterns(_as_list(entry.get("names")))
        self.privileges = frozenset().union(*(INDEX_IMPLIED.get(name, ()) for name in names))
        actions = [name for name in names if _is_index_action(name)]
        if "all" in self.privileges:
            actions.extend(f"{prefix}*" for prefix in INDEX_ACTION_PREFIXES)
        self.actions = NamePatterns(actions)

    def grants(self, index_name: str, privilege: str) -> bool:
        if not self.names.matches(index_name):
            return False
        if privilege in self.privileges:
            return True
        return _is_index_action(privilege) and self.actions.matches(privilege)


class PrivilegeSet:
    """What a set of role descriptors grants, with implications applied, built once per principal.

    Names are the named privileges of the catalogs; a raw action name (``cluster:...``,
    ``indices:...``) is granted by ``all`` or by a granted action pattern matching it.
    """

    def __init__(self, descriptors: dict):
        descriptors = descriptors if isinstance(descriptors, dict) else {}
        roles = [role for role in descriptors.values() if isinstance(role, dict)]
        cluster = {name.lower() for role in roles for name in _as_list(role.get("cluster"))}
        self._cluster = frozenset().union(*(CLUSTER_IMPLIED.get(name, ()) for name in cluster))
        actions = [name for name in cluster if _is_cluster_action(name)]
        if "all" in self._cluster:
            actions.extend(f"{prefix}*" for prefix in CLUSTER_ACTION_PREFIXES)
        self._cluster_actions = NamePatterns(actions)
        self._indices = [
            _IndexGrant(entry)
            for role in roles
            for entry in (role.get("indices") if isinstance(role.get("indices"), list) else [])
            if isinstance(entry, dict)
        ]
        self._run_as = NamePatterns([name for role in roles for name in _as_list(role.get("run_as"))])
        self._application_entries = _application_entries(roles)
        # Per global manage privilege: its application patterns, and whether they include "*".
        self._managed = [(NamePatterns(names), "*" in names) for names in _managed_applications(roles)]

    def has_cluster(self, name: str) -> bool:
        name = name.lower()
        if name in self._cluster:
            return True
        return _is_cluster_action(name) and self._cluster_actions.matches(name)

    def has_index(self, index_name: str, privilege: str) -> bool:
        privilege = privilege.lower()
        return any(grant.grants(index_name, privilege) for grant in self._indices)

    def can_run_as(self, username: str) -> bool:
        """Whether a ``run_as`` entry (a name, a wildcard or a ``/regex/`` pattern) names the user."""
        return self._run_as.matches(username)

    def application_names(self) -> set[str]:
        """The applications (names or patterns) these descriptors grant privileges on."""
        return {application for application, _, _ in self._application_entries}

    def applications(self, definitions: Definitions) -> "ApplicationPermission":
        """The application grants, resolved through the stored privileges in ``definitions``."""
        return ApplicationPermission(self._application_entries, definitions)

    def allows_privileges_action(self, action: str, implied_by: str, applications: list[str] | None) -> bool:
        """Whether an application privileges action (``cluster:admin/xpack/security/privilege/...``)
        is allowed: by the named privilege, by a granted action pattern, or, for a request about
        ``applications`` (None: a request that is not about applications), by a ``global``
        application manage privilege naming every one of them (``*`` if none is named)."""
        if self.has_cluster(implied_by) or self.has_cluster(action):
            return True
        if applications is None:
            return False
        return any(
            every if not applications else all(patterns.matches(name) for name in applications)
            for patterns, every in self._managed
        )

    def cluster_privileges(self) -> list[str]:
        """The named cluster privileges held, leaving out those implied by another held one (for display)."""
        held = [name for name in CLUSTER_PRIVILEGES if self.has_cluster(name)]
        return sorted(name for name in held if not any(_strictly_implies(other, name) for other in held))


def _application_entries(roles: list[dict]) -> list[tuple[str, tuple, tuple]]:
    """``(application, privileges, resources)`` of every ``applications`` entry, those of the same
    application and the same resources merged into one, as Elasticsearch merges roles."""
    merged: dict[tuple, tuple[str, dict, tuple]] = {}
    for role in roles:
        entries = role.get("applications")
        for entry in entries if isinstance(entries, list) else []:
            application = entry.get("application") if isinstance(entry, dict) else None
            if not isinstance(application, str):
                continue
            resources = tuple(dict.fromkeys(_as_list(entry.get("resources"))))
            _, names, _ = merged.setdefault((application, frozenset(resources)), (application, {}, resources))
            names.update(dict.fromkeys(_as_list(entry.get("privileges"))))
    return [(application, tuple(names), resources) for application, names, resources in merged.values()]


def _managed_applications(roles: list[dict]) -> list[list[str]]:
    """The application patterns of each ``global: {application: {manage: {applications}}}``."""
    managed = []
    for role in roles:
        scope = role.get("global")
        for key in ("application", "manage", "applications"):
            scope = scope.get(key) if isinstance(scope, dict) else None
        if isinstance(scope, list):
            managed.append(_as_list(scope))
    return managed


def _strictly_implies(granted: str, requested: str) -> bool:
    """``granted`` implies ``requested`` and is not merely another name for it."""
    return requested in CLUSTER_IMPLIED[granted] and granted not in CLUSTER_IMPLIED[requested]


class LimitedPrivilegeSet(PrivilegeSet):
    """An API key's privileges: a check passes only if both the key's descriptors and its
    ``limited_by`` snapshot allow it, so a key never exceeds what its owner had (SPEC §2)."""

    def __init__(self, assigned: PrivilegeSet, limited_by: PrivilegeSet):
        self.assigned = assigned
        self.limited_by = limited_by

    def has_cluster(self, name: str) -> bool:
        return self.assigned.has_cluster(name) and self.limited_by.has_cluster(name)

    def has_index(self, index_name: str, privilege: str) -> bool:
        return (
            self.assigned.has_index(index_name, privilege)
            and self.limited_by.has_index(index_name, privilege)
        )

    def can_run_as(self, username: str) -> bool:
        return self.assigned.can_run_as(username) and self.limited_by.can_run_as(username)

    def application_names(self) -> set[str]:
        return self.assigned.application_names() | self.limited_by.application_names()

    def applications(self, definitions: Definitions) -> "LimitedApplicationPermission":
        return LimitedApplicationPermission(
            self.assigned.applications(definitions), self.limited_by.applications(definitions)
        )

    def allows_privileges_action(self, action: str, implied_by: str, applications: list[str] | None) -> bool:
        return all(
            privileges.allows_privileges_action(action, implied_by, applications)
            for privileges in (self.assigned, self.limited_by)
        )


class _ApplicationGrant:
    """One resolved grant: an application (a name, or a pattern no stored application matched),
    the privilege names granted together, the actions they stand for, and resource patterns."""

    __slots__ = ("actions", "application", "names", "resources")

    def __init__(self, application: str, names: tuple, actions: frozenset):
        self.application, self.names, self.actions = application, names, actions
        self.resources: list[str] = []

    @property
    def key(self) -> tuple:
        return self.application, frozenset(self.names), self.actions

    def covers_privilege(self, application: str, names: frozenset, actions: frozenset) -> bool:
        """Elasticsearch's rule: the same privilege; or, for an application this grant names, a grant
        of every action (``*``), or a non-empty set of actions covering the non-empty requested set."""
        if (self.application, frozenset(self.names), self.actions) == (application, names, actions):
            return True
        if not NamePatterns([self.application]).matches(application):
            return False
        if any(is_total(action) for action in self.actions):
            return True
        return bool(self.actions and actions) and all(covers(self.actions, action) for action in actions)


class ApplicationPermission:
    """What a set of role descriptors grants on applications, once their privilege names are
    resolved through the stored definitions.

    As Elasticsearch builds it: entries of the same application and resources are merged (their
    privileges together), a wildcard application stands for each stored application it matches, and
    entries that resolve to the same privilege pool their resources. A privilege is held on a
    resource when one entry covers both.
    """

    def __init__(self, entries: list[tuple[str, tuple, tuple]], definitions: Definitions):
        self.definitions = definitions
        grants: dict[tuple, _ApplicationGrant] = {}
        for application, names, resources in entries:
            for grant in self._resolve(application, names):
                grant = grants.setdefault(grant.key, grant)
                grant.resources.extend(resource for resource in resources if resource not in grant.resources)
        self.grants = list(grants.values())

    def _resolve(self, application: str, names: tuple) -> list[_ApplicationGrant]:
        stored = [application]
        if "*" in application:
            matcher = NamePatterns([application])
            stored = [name for name in self.definitions if matcher.matches(name)] or stored
        return [
            _ApplicationGrant(name, names, _resolve_actions(names, self.definitions.get(name, {})))
            for name in stored
        ]

    def grants_privilege(self, application: str, privilege: str, resource: str) -> bool:
        """``privilege`` (a stored privilege's name or an action pattern) on ``resource`` (a name or
        a pattern, which must be covered whole) of ``application`` (a name)."""
        actions = _resolve_actions([privilege], self.definitions.get(application, {}))
        return any(
            grant.covers_privilege(application, frozenset([privilege]), actions)
            and covers(grant.resources, resource)
            for grant in self.grants
        )

    def entries(self) -> list[dict]:
        """The grants as role descriptors' ``applications`` entries, each with every resource where
        its privileges are held (through it or a broader grant), as Elasticsearch reports them."""
        return [
            {
                "application": grant.application,
                "privileges": list(grant.names),
                "resources": list(dict.fromkeys(
                    resource
                    for other in self.grants
                    if other.covers_privilege(grant.application, frozenset(grant.names), grant.actions)
                    for resource in other.resources
                )),
            }
            for grant in self.grants
            if grant.resources
        ]


class LimitedApplicationPermission:
    """An API key's application privileges: held only where both its descriptors and its
    ``limited_by`` snapshot hold them."""

    def __init__(self, assigned: ApplicationPermission, limited_by: ApplicationPermission):
        self.assigned, self.limited_by = assigned, limited_by

    def grants_privilege(self, application: str, privilege: str, resource: str) -> bool:
        return all(
            permission.grants_privilege(application, privilege, resource)
            for permission in (self.assigned, self.limited_by)
        )


def privileges_of(role_descriptors: dict, limited_by: dict | None = None) -> PrivilegeSet:
    """Effective privileges: the descriptors alone, or for an API key its descriptors ∩ ``limited_by``;
    empty descriptors mean ``limited_by`` alone (SPEC §2)."""
    if limited_by is None:
        return PrivilegeSet(role_descriptors)
    if not role_descriptors:
        return PrivilegeSet(limited_by)
    return LimitedPrivilegeSet(PrivilegeSet(role_descriptors), PrivilegeSet(limited_by))


# ---------------------------------------------------------------------------------------------
# What role descriptors grant, as Elasticsearch's get user privileges API reports it


def describe_privileges(descriptors: dict, definitions: Definitions) -> dict:
    """The privileges of a user's role descriptors, merged across roles as Elasticsearch merges them:
    index entries of the same names (and restricted-indices flag) pooled, application grants resolved
    through the stored privileges ``definitions``."""
    descriptors = descriptors if isinstance(descriptors, dict) else {}
    roles = [role for role in descriptors.values() if isinstance(role, dict)]
    granted = [name for role in roles for name in _as_list(role.get("cluster"))]
    cluster = {name if _is_cluster_action(name) else name.lower() for name in granted}
    managed = list(dict.fromkeys(tuple(names) for names in _managed_applications(roles)))
    answer = {
        "cluster": sorted(cluster),
        "global": [{"application": {"manage": {"applications": list(names)}}} for names in managed],
        "indices": _merged_indices(roles, "indices"),
        "applications": PrivilegeSet(descriptors).applications(definitions).entries(),
        "run_as": sorted({name for role in roles for name in _as_list(role.get("run_as"))}),
    }
    remote_indices = _merged_indices(roles, "remote_indices")
    if remote_indices:
        answer["remote_indices"] = remote_indices
    remote_cluster = [entry for role in roles for entry in _entries(role, "remote_cluster")]
    if remote_cluster:
        answer["remote_cluster"] = remote_cluster
    return answer


def _entries(role: dict, field: str) -> list[dict]:
    entries = role.get(field)
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


# What an index entry may restrict within the indices it names.
RESTRICTIONS = ("field_security", "query")


def _merged_indices(roles: list[dict], field: str) -> list[dict]:
    """Index entries pooled by their names: privileges joined, each field security and query kept
    (a query as JSON text). An entry of the pool without either lifts that restriction for all."""
    groups: dict[tuple, dict] = {}
    for role in roles:
        for entry in _entries(role, field):
            names = list(dict.fromkeys(_as_list(entry.get("names"))))
            restricted = entry.get("allow_restricted_indices") is True
            clusters = tuple(_as_list(entry.get("clusters")))
            group = groups.setdefault(
                (frozenset(names), restricted, frozenset(clusters)),
                {"names": names, "privileges": set(), "clusters": clusters}
                | {key: [] for key in RESTRICTIONS},
            )
            group["privileges"].update(name.lower() for name in _as_list(entry.get("privileges")))
            for key in RESTRICTIONS:
                value = entry.get(key)
                if key == "query" and isinstance(value, dict):
                    value = json.dumps(value, separators=(",", ":"))
                if not value:
                    group[key] = None
                elif group[key] is not None and value not in group[key]:
                    group[key].append(value)
    merged = []
    for (_, restricted, _), group in groups.items():
        entry = {"names": group["names"], "privileges": sorted(group["privileges"])}
        entry.update({key: group[key] for key in RESTRICTIONS if group[key]})
        entry["allow_restricted_indices"] = restricted
        if field == "remote_indices":
            entry["clusters"] = list(group["clusters"])
        merged.append(entry)
    return merged
