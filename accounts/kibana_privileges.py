"""Kibana privileges (``kibana: [{base, feature, spaces}]`` in Kibana's role API) and the
application privileges of ``kibana-.kibana`` they stand for in a role, both ways, as Kibana maps
them: ``*`` is every space, ``space:<id>`` one space; in a space the base privileges are
``space_all`` and ``space_read``; a feature privilege is ``feature_<feature>.<privilege>``."""

import re

from accounts.exceptions import ValidationError

APPLICATION = "kibana-.kibana"
EVERY_APPLICATION = "*"  # the superuser's wildcard: Kibana neither shows it nor calls it unknown
EVERY_SPACE = "*"
SPACE_PREFIX = "space:"
BASE_PRIVILEGES = ("all", "read")
NAME = re.compile(r"[a-zA-Z0-9_-]+")
SPACE_ID = re.compile(r"[a-z0-9_-]+")


class NotKibanaShaped(Exception):
    """A role's Kibana application privileges that Kibana's shape cannot express."""


def _entry_to_kibana(entry: dict) -> dict:
    resources = entry["resources"]
    if resources == [EVERY_SPACE]:
        spaces, base_prefix = [EVERY_SPACE], ""
    elif resources and all(resource.startswith(SPACE_PREFIX) for resource in resources):
        spaces, base_prefix = [resource[len(SPACE_PREFIX):] for resource in resources], "space_"
    else:
        raise NotKibanaShaped(f"resources {resources}")
    base, feature, reserved = [], {}, []
    for privilege in entry["privileges"]:
        if privilege.startswith("feature_") and "." in privilege:
            feature_id, _, name = privilege.removeprefix("feature_").partition(".")
            feature.setdefault(feature_id, []).append(name)
        elif privilege.removeprefix(base_prefix) in BASE_PRIVILEGES and privilege.startswith(base_prefix):
            base.append(privilege.removeprefix(base_prefix))
        elif privilege.startswith("reserved_") and not base_prefix:
            reserved.append(privilege.removeprefix("reserved_"))
        else:
            raise NotKibanaShaped(f"privilege {privilege}")
    shown = {"base": base, "feature": feature, "spaces": spaces}
    return shown | ({"_reserved": reserved} if reserved else {})


def to_kibana(applications: list[dict]) -> dict:
    """``{kibana, _transform_error, _unrecognized_applications}`` of Kibana's GET role."""
    try:
        kibana = [_entry_to_kibana(entry) for entry in applications if entry["application"] == APPLICATION]
        failed = []
    except NotKibanaShaped:
        kibana, failed = [], ["kibana"]
    unrecognized = [
        entry["application"] for entry in applications
        if entry["application"] not in (APPLICATION, EVERY_APPLICATION)
    ]
    return {"kibana": kibana, "_transform_error": failed, "_unrecognized_applications": unrecognized}


def _refuse(where: str, message: str) -> ValidationError:
    return ValidationError(f"[request body.kibana.{where}]: {message}")


def _names(where: str, value, pattern: re.Pattern) -> list[str]:
    if not isinstance(value, list):
        raise _refuse(where, "expected value of type [array]")
    for position, name in enumerate(value):
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise _refuse(f"{where}.{position}", f"expected a name matching {pattern.pattern}")
    return value


def _entry_from_kibana(position: int, entry) -> dict:
    if not isinstance(entry, dict):
        raise _refuse(f"{position}", "expected a plain object value")
    unknown = sorted(set(entry) - {"base", "feature", "spaces"})
    if unknown:
        raise _refuse(f"{position}.{unknown[0]}", "definition for this key is missing")
    spaces = entry.get("spaces", [EVERY_SPACE])
    if spaces != [EVERY_SPACE]:
        _names(f"{position}.spaces", spaces, SPACE_ID)
        if not spaces:
            raise _refuse(f"{position}.spaces", "must name at least one space, or [*] for every space")
    base = _names(f"{position}.base", entry.get("base", []), NAME)
    for index, name in enumerate(base):
        if name not in BASE_PRIVILEGES:
            known = ", ".join(BASE_PRIVILEGES)
            reason = f"unknown base privilege [{name}], must be one of [{known}]"
            raise _refuse(f"{position}.base.{index}", reason)
    feature = entry.get("feature", {})
    if not isinstance(feature, dict):
        raise _refuse(f"{position}.feature", "expected a plain object value")
    for feature_id, names in feature.items():
        if not NAME.fullmatch(feature_id):
            raise _refuse(f"{position}.feature", f"feature id [{feature_id}] must match {NAME.pattern}")
        _names(f"{position}.feature.{feature_id}", names, NAME)
    features = [f"feature_{feature_id}.{name}" for feature_id, names in feature.items() for name in names]
    if base and features:
        raise _refuse(f"{position}", "base and feature privileges cannot be granted in the same entry")
    if not base and not features:
        raise _refuse(f"{position}", "at least one base or feature privilege is required")
    if spaces == [EVERY_SPACE]:
        return {"application": APPLICATION, "privileges": base + features, "resources": [EVERY_SPACE]}
    return {
        "application": APPLICATION,
        "privileges": [f"space_{name}" for name in base] + features,
        "resources": [SPACE_PREFIX + space for space in spaces],
    }


def from_kibana(kibana: list, kept: list[dict]) -> list[dict]:
    """A Kibana PUT's ``kibana`` list as application privileges, followed by the role's privileges
    of other applications (``kept``), which a Kibana PUT leaves as they were."""
    own = [_entry_from_kibana(position, entry) for position, entry in enumerate(kibana)]
    return own + [entry for entry in kept if entry["application"] != APPLICATION]
