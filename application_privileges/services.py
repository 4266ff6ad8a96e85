"""Writes of application privileges, with Elasticsearch's rules and messages: put (create or
replace several at once) and delete. Each is checked against ``selectors``, done in one
transaction and audited."""

from django.db import transaction

from accounts import audit
from accounts.exceptions import RequestValidationFailed, ValidationError
from accounts.principals import Principal
from accounts.privileges import action_problems, application_name_problem, privilege_name_problem
from apikeys.selectors import unauthorized
from application_privileges import selectors
from application_privileges.models import MAX_NAME_LENGTH, ApplicationPrivilege
from restapi.query.dsl import ContentParseError

PRIVILEGE_FIELDS = frozenset({"application", "name", "actions", "metadata"})
# Elasticsearch's name for a privilege document, in its parser's messages.
DOCUMENT = "application-privilege"


def _strings(field: str, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ContentParseError(f"[{DOCUMENT}] failed to parse field [{field}]")
    return list(dict.fromkeys(value))


def _parse_privilege(application: str, name: str, body) -> dict:
    """One privilege of the body; ``application`` and ``name`` in it, if given, must be those it is
    filed under."""
    _object(application, body)
    unknown = sorted(set(body) - PRIVILEGE_FIELDS)
    if unknown:
        raise ContentParseError(f"[{DOCUMENT}] unknown field [{unknown[0]}]")
    for field, expected in (("application", application), ("name", name)):
        given = body.get(field, expected)
        if not isinstance(given, str):
            raise ContentParseError(f"[{DOCUMENT}] failed to parse field [{field}]")
        if given != expected:
            raise ValidationError(
                f"privilege {field} [{given}] in source does not match the provided {field} [{expected}]"
            )
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ContentParseError(f"[{DOCUMENT}] failed to parse field [metadata]")
    return {
        "application": application, "name": name, "actions": _strings("actions", body.get("actions", [])),
        "metadata": metadata,
    }


def _object(application: str, value) -> dict:
    if not isinstance(value, dict):
        kind = "START_ARRAY" if isinstance(value, list) else "VALUE"
        raise ValidationError(
            f"expected the value for {application} to be an object, but found {kind} instead"
        )
    return value


class PrivilegeValidationFailed(RequestValidationFailed):
    """The request validation failure of a put privileges request; ``problems`` keeps the field of
    each (``None`` for the request as a whole), so a form can show each beside its field."""

    def __init__(self, problems: list[tuple[str | None, str]]):
        super().__init__(*(message for _, message in problems))
        self.problems = problems


def _privilege_problems(privilege: dict) -> list[tuple[str, str]]:
    """Every problem of one privilege, with the field it is about."""
    application, name, metadata = privilege["application"], privilege["name"], privilege["metadata"]
    problems = [
        (field, problem)
        for field, problem in (
            ("application", application_name_problem(application, allow_wildcard=False)),
            ("name", privilege_name_problem(name)),
        )
        if problem
    ]
    problems += [
        (field, f"{field} [{value[:20]}...] is longer than {MAX_NAME_LENGTH} characters")
        for field, value in (("application", application), ("name", name))
        if len(value) > MAX_NAME_LENGTH
    ]
    if not privilege["actions"]:
        problems.append(("actions", "Application privileges must have at least one action"))
    problems += [
        ("actions", problem) for action in privilege["actions"] for problem in action_problems(action)
    ]
    if any(str(key).startswith("_") for key in metadata):
        problem = f"metadata keys may not start with [_] (in privilege {application} {name})"
        problems.append(("metadata", problem))
    return problems


def parse_privileges(body) -> list[dict]:
    """``{application: {name: {actions, metadata}}}``, validated as Elasticsearch validates a put
    privileges request: every problem found is reported at once."""
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    privileges = []
    for application, named in body.items():
        named = _object(application, named)
        privileges += [_parse_privilege(application, name, privilege) for name, privilege in named.items()]
    problems = [] if privileges else [(None, "At least one application privilege must be provided")]
    for privilege in privileges:
        problems += _privilege_problems(privilege)
    if problems:
        raise PrivilegeValidationFailed(problems)
    return privileges


def put_privileges(principal: Principal, body) -> dict:
    """Create or replace the privileges of ``body``; ``{application: {name: {created}}}``."""
    privileges = parse_privileges(body)
    applications = sorted({privilege["application"] for privilege in privileges})
    if not selectors.can_put_privileges(principal, applications):
        raise unauthorized(principal, selectors.PUT_ACTION)
    answer: dict[str, dict[str, dict]] = {}
    with transaction.atomic():
        for privilege in privileges:
            _, created = ApplicationPrivilege.objects.update_or_create(
                application=privilege["application"], name=privilege["name"],
                defaults={"actions": privilege["actions"], "metadata": privilege["metadata"]},
            )
            answer.setdefault(privilege["application"], {})[privilege["name"]] = {"created": created}
        audit.record(
            audit.APPLICATION_PRIVILEGES_CHANGED, principal=principal, target=",".join(applications),
            privileges={application: sorted(names) for application, names in answer.items()},
        )
    return answer


def delete_privileges(principal: Principal, application: str, names: list[str]) -> dict:
    """Delete the privileges of ``application`` named; ``{application: {name: {found}}}``."""
    problems = [] if application else ["application name is missing"]
    if not any(names):
        problems.append("privileges are missing")
    if problems:
        raise RequestValidationFailed(*problems)
    if not selectors.can_delete_privileges(principal, application):
        raise unauthorized(principal, selectors.DELETE_ACTION)
    with transaction.atomic():
        # One delete per name: what each removed is what this request found, whatever runs beside it.
        rows = ApplicationPrivilege.objects.filter(application=application)
        found = {name for name in set(names) if rows.filter(name=name).delete()[0]}
        if found:
            audit.record(
                audit.APPLICATION_PRIVILEGES_DELETED, principal=principal, target=application,
                privileges={application: sorted(found)},
            )
    return {application: {name: {"found": name in found} for name in names}}
