"""The effective privileges preview of the create page (SPEC §2): a key may do only what both its
role descriptors and its owner's roles allow, so whatever the descriptors ask for beyond the
owner's privileges has no effect. This names those parts before the key is created."""

from dataclasses import dataclass, field

from accounts.privileges import PrivilegeSet


@dataclass
class NoEffect:
    """The requested privileges the owner does not hold: cluster privileges, and per index name or
    pattern the index privileges. Empty when every requested privilege takes effect."""

    cluster: list[str] = field(default_factory=list)
    indices: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.cluster or self.indices)


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


def privileges_without_effect(role_descriptors: dict, owner: PrivilegeSet) -> NoEffect:
    """What ``role_descriptors`` (validated, as ``validate_role_descriptors`` returns them) ask for
    that ``owner`` lacks. A requested pattern is checked as an index name, so it takes effect where
    one of the owner's patterns covers it (``logs-*`` covers ``logs-app-*``)."""
    beyond = NoEffect()
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
