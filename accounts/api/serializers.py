"""The JSON shapes of the users, roles and has-privileges endpoints, in Elasticsearch's and Kibana's
field names.

Response serializers render with ``to_representation``; request serializers describe bodies for
the OpenAPI document only: the checks, with Elasticsearch's strictness and messages, are
``accounts.services``' and ``accounts.selectors``'.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import build_object_type
from rest_framework import serializers

from accounts.kibana_privileges import to_kibana
from accounts.services import is_reserved_user
from restapi.serializers import ErrorCauseSerializer


def _names(**kwargs):
    return serializers.ListField(child=serializers.CharField(), **kwargs)


class IndicesPrivilegesSerializer(serializers.Serializer):
    names = _names(help_text="Index names or patterns (`*` wildcards, or a `/regex/`).")
    privileges = _names(help_text="Index privileges, e.g. `read`, `write`, `all`.")
    allow_restricted_indices = serializers.BooleanField(required=False)
    field_security = serializers.DictField(
        child=_names(), required=False, help_text="`grant` and `except` field lists."
    )
    query = serializers.JSONField(required=False, help_text="A document-level security query.")


def indices_entry(entry: dict) -> dict:
    """An ``indices`` entry as Elasticsearch returns it: ``allow_restricted_indices`` always present."""
    return {**entry, "allow_restricted_indices": entry.get("allow_restricted_indices", False)}


class ApplicationPrivilegesSerializer(serializers.Serializer):
    application = serializers.CharField(help_text="An application name, or a pattern with a trailing `*`.")
    privileges = _names(help_text="Application privilege names or action patterns.")
    resources = _names(help_text="Resources of the application, `*` wildcards allowed.")


class RoleDescriptorSerializer(serializers.Serializer):
    """The body of PUT role: an Elasticsearch role descriptor."""

    cluster = _names(required=False, help_text="Cluster privileges, e.g. `manage_own_api_key`.")
    indices = IndicesPrivilegesSerializer(many=True, required=False)
    applications = ApplicationPrivilegesSerializer(many=True, required=False)
    run_as = _names(required=False)
    metadata = serializers.DictField(required=False, help_text="Keys must not start with `_`.")
    transient_metadata = serializers.DictField(required=False, help_text="Accepted and ignored.")
    description = serializers.CharField(
        required=False, help_text="What the role is for; at most 1000 characters."
    )


class RoleSerializer(serializers.Serializer):
    """A role as Elasticsearch's GET role returns it."""

    cluster = _names()
    indices = IndicesPrivilegesSerializer(many=True)
    applications = ApplicationPrivilegesSerializer(many=True)
    run_as = _names()
    metadata = serializers.DictField(help_text="Built-in roles carry `_reserved: true`.")
    transient_metadata = serializers.DictField()
    description = serializers.CharField(required=False, help_text="Present when the role has one.")

    def to_representation(self, role):
        shown = {
            "cluster": list(role.cluster),
            "indices": [indices_entry(entry) for entry in role.indices],
            "applications": list(role.applications),
            "run_as": list(role.run_as),
            "metadata": role.metadata,
            "transient_metadata": {"enabled": True},
        }
        return shown | ({"description": role.description} if role.description else {})


class BulkPutRolesRequestSerializer(serializers.Serializer):
    roles = serializers.DictField(child=RoleDescriptorSerializer(), help_text="Descriptors by role name.")


class BulkDeleteRolesRequestSerializer(serializers.Serializer):
    names = _names(help_text="Names of the roles to delete.")


class BulkErrorsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    details = serializers.DictField(child=ErrorCauseSerializer(), help_text="Why each was refused, by name.")


def _bulk_names(what: str):
    return _names(required=False, help_text=f"Roles {what}; left out when there are none.")


class BulkPutRolesResponseSerializer(serializers.Serializer):
    created = _bulk_names("created")
    updated = _bulk_names("changed")
    noop = _bulk_names("already exactly as given")
    errors = BulkErrorsSerializer(required=False, help_text="Left out when no role was refused.")


class BulkDeleteRolesResponseSerializer(serializers.Serializer):
    deleted = _bulk_names("deleted")
    not_found = _bulk_names("that did not exist")
    errors = BulkErrorsSerializer(required=False, help_text="Left out when no role was refused.")


def bulk_answer(outcomes: dict[str, list[str]], refused: dict) -> dict:
    """Elasticsearch's bulk roles answer: only the non-empty lists, then the refusals if any."""
    answer = {outcome: names for outcome, names in outcomes.items() if names}
    if refused:
        details = {name: {"type": error.type, "reason": error.reason} for name, error in refused.items()}
        answer["errors"] = {"count": len(refused), "details": details}
    return answer


class CreatedSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False when an existing one was replaced.")


class PutRoleResponseSerializer(serializers.Serializer):
    role = CreatedSerializer()


class FoundSerializer(serializers.Serializer):
    found = serializers.BooleanField()


class EmptySerializer(serializers.Serializer):
    """``{}``: Elasticsearch's answer to a write with nothing to report."""


class UserSerializer(serializers.Serializer):
    """A native user as Elasticsearch's GET user returns it; the password never leaves."""

    username = serializers.CharField()
    roles = _names(help_text="The roles defined, then the names assigned that no role has (yet).")
    full_name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    enabled = serializers.BooleanField()

    def to_representation(self, user):
        return {
            "username": user.username,
            "roles": user.role_names(),
            "full_name": user.full_name or None,
            "email": user.email or None,
            # As Elasticsearch marks its reserved users.
            "metadata": {**user.metadata, "_reserved": True} if is_reserved_user(user) else user.metadata,
            "enabled": user.enabled,
        }


class ByNameSerializer(serializers.Serializer):
    """Objects keyed by name, as Elasticsearch's GET users and GET roles answer."""

    item_serializer: type[serializers.Serializer]
    key: str

    def to_representation(self, instances):
        item = self.item_serializer()
        return {getattr(instance, self.key): item.to_representation(instance) for instance in instances}


class UsersByNameSerializer(ByNameSerializer):
    item_serializer = UserSerializer
    key = "username"


class RolesByNameSerializer(ByNameSerializer):
    item_serializer = RoleSerializer
    key = "name"


class ByNameSchema(OpenApiSerializerExtension):
    """In the OpenAPI document: an object whose members, named freely, are all of the item's shape."""

    target_class = ByNameSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        item = auto_schema.resolve_serializer(self.target.item_serializer, direction)
        return build_object_type(additionalProperties=item.ref)


class PutUserSerializer(serializers.Serializer):
    """The body of PUT user."""

    username = serializers.CharField(required=False, help_text="If given, the path's username.")
    password = serializers.CharField(
        required=False, help_text="Required to create a user; leave it out to keep the current one."
    )
    password_hash = serializers.CharField(
        required=False,
        help_text=(
            "Instead of `password`: a bcrypt (`$2a$`, `$2b$`, `$2y$`) or PBKDF2 (`{PBKDF2}`, "
            "`{PBKDF2_STRETCH}`) hash in Elasticsearch's formats, at one of its costs."
        ),
    )
    roles = _names(
        help_text="Role names (or one comma-separated string of them); a name no role has grants nothing "
        "until such a role exists."
    )
    full_name = serializers.CharField(required=False, allow_null=True)
    email = serializers.CharField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, help_text="Keys must not start with `_`.")
    enabled = serializers.BooleanField(required=False, default=True)


class IndexCheckSerializer(serializers.Serializer):
    names = _names()
    privileges = _names()
    allow_restricted_indices = serializers.BooleanField(required=False)


class ApplicationCheckSerializer(serializers.Serializer):
    application = serializers.CharField()
    privileges = _names()
    resources = _names()


class HasPrivilegesRequestSerializer(serializers.Serializer):
    cluster = _names(required=False)
    index = IndexCheckSerializer(many=True, required=False)
    application = ApplicationCheckSerializer(many=True, required=False)


def _granted():
    return serializers.DictField(child=serializers.BooleanField(), help_text="`{privilege: held}`")


class HasPrivilegesResponseSerializer(serializers.Serializer):
    username = serializers.CharField()
    has_all_requested = serializers.BooleanField()
    cluster = _granted()
    index = serializers.DictField(child=_granted(), help_text="`{index name: {privilege: held}}`")
    application = serializers.DictField(
        child=serializers.DictField(child=_granted()),
        help_text="`{application: {resource: {privilege: held}}}`",
    )


class KibanaElasticsearchSerializer(serializers.Serializer):
    cluster = _names(required=False)
    indices = IndicesPrivilegesSerializer(many=True, required=False)
    run_as = _names(required=False)


def _without_defaults(entry: dict) -> dict:
    """``allow_restricted_indices`` only when true, so that a role read back equals the one put."""
    return {key: value for key, value in entry.items() if (key, value) != ("allow_restricted_indices", False)}


class KibanaPrivilegesSerializer(serializers.Serializer):
    base = _names(help_text="`all` or `read`; not with `feature`.")
    feature = serializers.DictField(child=_names(), help_text="`{feature id: [privilege]}`.")
    spaces = _names(help_text="Space ids, or `[\"*\"]` for every space (the default).")


class KibanaRoleSerializer(serializers.Serializer):
    """A role in Kibana's shape (GET /api/security/role)."""

    name = serializers.CharField()
    description = serializers.CharField(required=False, help_text="Present when the role has one.")
    metadata = serializers.DictField()
    transient_metadata = serializers.DictField()
    elasticsearch = KibanaElasticsearchSerializer()
    kibana = KibanaPrivilegesSerializer(many=True, help_text="The role's `kibana-.kibana` privileges.")
    _transform_error = _names(help_text="`[\"kibana\"]` when those cannot be shown as Kibana privileges.")
    _unrecognized_applications = _names(help_text="Other applications the role has privileges of.")

    def to_representation(self, role):
        return {
            "name": role.name,
            **({"description": role.description} if role.description else {}),
            "metadata": role.metadata,
            "transient_metadata": {"enabled": True},
            "elasticsearch": {
                "cluster": list(role.cluster),
                "indices": [_without_defaults(entry) for entry in role.indices],
                "run_as": list(role.run_as),
            },
            **to_kibana(role.applications),
        }


class KibanaPutRoleSerializer(serializers.Serializer):
    """The body of Kibana's PUT role."""

    metadata = serializers.DictField(required=False, help_text="Keys must not start with `_`.")
    elasticsearch = KibanaElasticsearchSerializer()
    kibana = KibanaPrivilegesSerializer(many=True, required=False)


def query_request_serializer(name: str, rows: str, fields: str) -> type[serializers.Serializer]:
    """The body of a roles or users query request, for the OpenAPI document. Built with type()
    because one field is called "from", a Python keyword."""
    return type(name, (serializers.Serializer,), {
        "query": serializers.JSONField(
            required=False,
            help_text="Query DSL: match_all, bool, term, terms, prefix, wildcard, range, exists, ids, "
            f"match, simple_query_string; fields {fields}. Default: match_all.",
        ),
        "from": serializers.IntegerField(
            required=False, min_value=0, help_text=f"Offset of the first {rows}."
        ),
        "size": serializers.IntegerField(
            required=False, min_value=0, help_text="Per page, default 10; from + size ≤ 10000."
        ),
        "sort": serializers.JSONField(
            required=False,
            help_text='A field, {"field": "asc|desc"}, {"field": {"order": ..., "missing": ...}}, or a '
            "list; a field of many values sorts by its least value ascending, its greatest descending.",
        ),
        "search_after": serializers.ListField(
            child=serializers.JSONField(), required=False,
            help_text=f"The `_sort` values of the last {rows} seen.",
        ),
    })


QueryRolesRequestSerializer = query_request_serializer(
    "QueryRolesRequestSerializer", "role",
    "name, description (match finds its words), applications.application, applications.resources, "
    "applications.privileges, metadata (any of its values) and metadata.*",
)
QueryUsersRequestSerializer = query_request_serializer(
    "QueryUsersRequestSerializer", "user",
    "username, roles, full_name and email (match finds their words; not sortable), enabled",
)


class SortedSerializer(serializers.Serializer):
    _sort = serializers.ListField(
        child=serializers.JSONField(), required=False, help_text="Its sort values, when sorted."
    )


class QueriedRoleSerializer(RoleSerializer, SortedSerializer):
    name = serializers.CharField()


class QueriedUserSerializer(UserSerializer, SortedSerializer):
    pass


class QueryRolesResponseSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Every role the query matches.")
    count = serializers.IntegerField(help_text="Roles in this response.")
    roles = QueriedRoleSerializer(many=True)


class QueryUsersResponseSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Every user the query matches.")
    count = serializers.IntegerField(help_text="Users in this response.")
    users = QueriedUserSerializer(many=True)
