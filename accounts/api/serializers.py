"""The JSON shapes of the users, roles and has-privileges endpoints, in Elasticsearch's and Kibana's
field names.

Response serializers render with ``to_representation``; request serializers describe bodies for
the OpenAPI document only: the checks, with Elasticsearch's strictness and messages, are
``accounts.services``' and ``accounts.selectors``'.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import build_object_type
from rest_framework import serializers

from accounts.services import is_reserved_user


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
    roles = _names()
    full_name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    enabled = serializers.BooleanField()

    def to_representation(self, user):
        return {
            "username": user.username,
            "roles": sorted(role.name for role in user.roles.all()),
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

    password = serializers.CharField(
        required=False, help_text="Required to create a user; leave it out to keep the current one."
    )
    password_hash = serializers.CharField(required=False, help_text="Refused: send `password`.")
    roles = _names(help_text="Names of existing roles.")
    full_name = serializers.CharField(required=False, allow_null=True)
    email = serializers.CharField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, help_text="Keys must not start with `_`.")
    enabled = serializers.BooleanField(required=False, default=True)


class ChangePasswordSerializer(serializers.Serializer):
    password = serializers.CharField()
    password_hash = serializers.CharField(required=False, help_text="Refused: send `password`.")


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


class KibanaRoleSerializer(serializers.Serializer):
    """A role in Kibana's shape (GET /api/security/role)."""

    name = serializers.CharField()
    description = serializers.CharField(required=False, help_text="Present when the role has one.")
    metadata = serializers.DictField()
    transient_metadata = serializers.DictField()
    elasticsearch = KibanaElasticsearchSerializer()
    kibana = serializers.ListField(child=serializers.DictField(), help_text="Always empty here.")
    _transform_error = _names()
    _unrecognized_applications = _names()

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
            "kibana": [],
            "_transform_error": [],
            "_unrecognized_applications": [],
        }


class KibanaPutRoleSerializer(serializers.Serializer):
    """The body of Kibana's PUT role."""

    metadata = serializers.DictField(required=False, help_text="Keys must not start with `_`.")
    elasticsearch = KibanaElasticsearchSerializer()
    kibana = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="Kibana privileges: only an empty list."
    )
