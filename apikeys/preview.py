"""The effective privileges preview of the create page (SPEC §2): a key may do only what both its
role descriptors and its owner's roles allow, so whatever the descriptors ask for beyond the
owner's privileges has no effect. This names those parts before the key is created."""

from dataclasses import dataclass, field

from accounts.privileges import Definitions, PrivilegeSet


@dataclass
class NoEffect:
    """The requested privileges the owner does not hold: cluster privileges, per index name or
    pattern the index privileges, and per application and resource the application privileges.
    Empty when every requested privilege takes effect."""

    cluster: list[str] = field(default_factory=list)
    indices: dict[str, list[str]] = field(default_factory=dict)
    applications: list[dict] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cluster or self.indices or self.applications)


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def requested_applications(role_descriptors: dict) -> list[dict]:
    """The application privileges the descriptors ask for, each entry once, in order."""
    entries: list[dict] = []
    for descriptor in role_descriptors.values():
        for entry in descriptor.get("applications", []):
            _add(entries, entry)
    return entries


def _application_privileges_beyond(entries: list[dict], owner: PrivilegeSet, definitions: Definitions):
    """``{application, resource, privileges}`` the owner lacks, for the entries that name one
    application; an entry over an application pattern is left out, since no single answer fits
    every application it may match."""
    granted = owner.applications(definitions)
    beyond: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        if "*" in entry["application"]:
            continue
        for resource in entry["resources"]:
            for privilege in entry["privileges"]:
                if not granted.grants_privilege(entry["application"], privilege, resource):
                    _add(beyond.setdefault((entry["application"], resource), []), privilege)
    return [
        {"application": application, "resource": resource, "privileges": privileges}
        for (application, resource), privileges in beyond.items()
    ]


def privileges_without_effect(
    role_descriptors: dict, owner: PrivilegeSet, definitions: Definitions | None = None
) -> NoEffect:
    """What ``role_descriptors`` (validated, as ``validate_role_descriptors`` returns them) ask for
    that ``owner`` lacks. A requested pattern is checked as an index name, so it takes effect where
    one of the owner's patterns covers it (``logs-*`` covers ``logs-app-*``). Application privilege
    names resolve through ``definitions``, the stored privileges of the applications concerned."""
    beyond = NoEffect(
        applications=_application_privileges_beyond(
            requested_applications(role_descriptors), owner, definitions or {}
        )
    )
    for descriptor in role_descriptors.values():
        for privilege in descriptor["cluster"]:
            if not owner.has_cluster(privilege):
                _add(beyond.cluster, privilege)
        for entry in descriptor["indices"]:
            for name in entry["names"]:
                for privilege in entry["privileges"]:
                    if not owner.has_index(name, privilege):
                        _add(beyond.indices.setdefault(name, []), privilege)
    return beyond
