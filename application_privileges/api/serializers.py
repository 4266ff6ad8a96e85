"""The JSON shapes of the application privilege endpoints, for the OpenAPI document: the checks, with
Elasticsearch's strictness and messages, are ``application_privileges.services``'."""

from rest_framework import serializers

from accounts.api.serializers import ByNameSerializer, CreatedSerializer, FoundSerializer


def _names(**kwargs):
    return serializers.ListField(child=serializers.CharField(), **kwargs)


class PrivilegeDefinitionSerializer(serializers.Serializer):
    application = serializers.CharField(required=False, help_text="If given, the application filed under.")
    name = serializers.CharField(required=False, help_text="If given, the name it is filed under.")
    actions = _names(help_text="Action patterns, each with a `/`, `*` or `:`, e.g. `data:read/*`.")
    metadata = serializers.DictField(required=False, help_text="Keys must not start with `_`.")


class PrivilegeSerializer(serializers.Serializer):
    application = serializers.CharField()
    name = serializers.CharField()
    actions = _names()
    metadata = serializers.DictField()


def by_application(item: type[serializers.Serializer], name: str) -> type[ByNameSerializer]:
    """``{application: {privilege name: item}}``, for the OpenAPI document."""
    by_name = type(f"{name}ByName", (ByNameSerializer,), {"item_serializer": item, "key": "name"})
    members = {"item_serializer": by_name, "key": "application"}
    return type(f"{name}ByApplication", (ByNameSerializer,), members)


PUT_REQUEST = by_application(PrivilegeDefinitionSerializer, "PrivilegeDefinitions")
PUT_RESPONSE = by_application(CreatedSerializer, "PrivilegesCreated")
GET_RESPONSE = by_application(PrivilegeSerializer, "Privileges")
DELETE_RESPONSE = by_application(FoundSerializer, "PrivilegesFound")


class BuiltinPrivilegesSerializer(serializers.Serializer):
    cluster = _names(help_text="Cluster privilege names.")
    index = _names(help_text="Index privilege names.")
    remote_cluster = _names(help_text="Remote cluster privilege names.")


class ApplicationGrantSerializer(serializers.Serializer):
    application = serializers.CharField()
    privileges = _names()
    resources = _names()


class UserPrivilegesSerializer(serializers.Serializer):
    cluster = _names()
    global_ = serializers.ListField(
        child=serializers.DictField(), help_text="`{application: {manage: {applications: [...]}}}` each."
    )
    indices = serializers.ListField(child=serializers.DictField())
    applications = ApplicationGrantSerializer(many=True)
    run_as = _names()
    remote_indices = serializers.ListField(child=serializers.DictField(), required=False)
    remote_cluster = serializers.ListField(child=serializers.DictField(), required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["global"] = fields.pop("global_")
        return fields
