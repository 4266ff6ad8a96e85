"""The Elasticsearch shapes of API keys on the wire (SPEC §4).

``api_key_info`` is the one place a key becomes Elasticsearch's JSON; the get and query endpoints
and any other JSON view of a key use it. The serializer classes describe request and response
bodies for the OpenAPI document; requests are validated by the views with Elasticsearch's own
rules and messages, not by these classes.
"""

from rest_framework import serializers

from apikeys.models import ApiKey
from restapi.query.dsl import epoch_millis
from restapi.serializers import ErrorCauseSerializer


def role_descriptors(descriptors: dict) -> dict:
    """``{role name: descriptor}`` in Elasticsearch's full form: every field present, defaults
    filled in, as the get role and get API key APIs show descriptors."""
    return {name: _full_descriptor(descriptor) for name, descriptor in descriptors.items()}


def _full_descriptor(descriptor: dict) -> dict:
    full = {
        "cluster": descriptor.get("cluster", []),
        "indices": [
            {**entry, "allow_restricted_indices": entry.get("allow_restricted_indices", False)}
            for entry in descriptor.get("indices", [])
        ],
        "applications": descriptor.get("applications", []),
        "run_as": descriptor.get("run_as", []),
        "metadata": descriptor.get("metadata", {}),
        "transient_metadata": descriptor.get("transient_metadata", {"enabled": True}),
    }
    return full | {field: value for field, value in descriptor.items() if field not in full}


def api_key_info(key: ApiKey, *, with_limited_by: bool = False, sort_values: list | None = None) -> dict:
    """A key as Elasticsearch's get and query API key APIs show it, in Elasticsearch's field order."""
    info = {"id": key.id, "name": key.name, "type": key.type, "creation": epoch_millis(key.created)}
    if key.expiration is not None:
        info["expiration"] = epoch_millis(key.expiration)
    info["invalidated"] = key.invalidated is not None
    if key.invalidated is not None:
        info["invalidation"] = epoch_millis(key.invalidated)
    info.update(
        username=key.owner.username,
        realm=key.realm_name,
        realm_type=key.realm_type,
        metadata=key.metadata,
        role_descriptors=role_descriptors(key.role_descriptors),
    )
    if with_limited_by:
        # A list of role descriptor sets, each {role name: descriptor}; a key has exactly one.
        info["limited_by"] = [role_descriptors(key.limited_by)]
    if sort_values is not None:
        info["_sort"] = sort_values
    return info


# ---------------------------------------------------------------------------------------------
# OpenAPI shapes

EPOCH_MILLIS = "Time in milliseconds since the epoch."


class CreateApiKeyRequestSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="1–256 characters; no surrounding whitespace; no leading `_`.")
    expiration = serializers.CharField(
        required=False, help_text="Time to live, e.g. `30d`, `12h`; units d, h, m, s, ms, micros, nanos."
    )
    role_descriptors = serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Role descriptors by role name; empty means the owner's privileges.",
    )
    metadata = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Keys must not start with `_`."
    )


class CreateApiKeyResponseSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    api_key = serializers.CharField(help_text="The secret; shown in this response only.")
    encoded = serializers.CharField(help_text="base64(id:api_key), for `Authorization: ApiKey ...`.")
    expiration = serializers.IntegerField(required=False, help_text=EPOCH_MILLIS + " Absent: never.")


class ApiKeyInfoSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField(help_text="Always `rest`.")
    creation = serializers.IntegerField(help_text=EPOCH_MILLIS)
    expiration = serializers.IntegerField(required=False, help_text=EPOCH_MILLIS + " Absent: never.")
    invalidated = serializers.BooleanField()
    invalidation = serializers.IntegerField(required=False, help_text=EPOCH_MILLIS + " Only if invalidated.")
    username = serializers.CharField(help_text="The owner.")
    realm = serializers.CharField(help_text="The owner's realm.")
    realm_type = serializers.CharField()
    metadata = serializers.DictField(child=serializers.JSONField())
    role_descriptors = serializers.DictField(child=serializers.JSONField())
    limited_by = serializers.ListField(
        child=serializers.DictField(child=serializers.JSONField()), required=False,
        help_text="The owner's role descriptors when the key was created; only with `with_limited_by`.",
    )


class QueriedApiKeySerializer(ApiKeyInfoSerializer):
    _sort = serializers.ListField(
        child=serializers.JSONField(), required=False, help_text="The key's sort values, when sorted."
    )


class GetApiKeysResponseSerializer(serializers.Serializer):
    api_keys = ApiKeyInfoSerializer(many=True)


# Built with type() because one field is called "from", a Python keyword.
QueryApiKeysRequestSerializer = type("QueryApiKeysRequestSerializer", (serializers.Serializer,), {
    "query": serializers.JSONField(
        required=False,
        help_text="Query DSL: match_all, bool, term, terms, prefix, wildcard, range, exists, ids, match, "
        "simple_query_string; fields name, type, creation, expiration, invalidated, invalidation, "
        "username, realm_name, metadata (any of its values) and metadata.* (and the id through the ids "
        "query). simple_query_string searches every field by default (`fields` may name fields or `*` "
        "patterns; names that are no field of API keys are left out). Default: match_all.",
    ),
    "from": serializers.IntegerField(required=False, min_value=0, help_text="Offset of the first key."),
    "size": serializers.IntegerField(
        required=False, min_value=0, help_text="Keys per page, default 10; from + size ≤ 10000."
    ),
    "sort": serializers.JSONField(
        required=False,
        help_text='A field, {"field": "asc|desc"}, {"field": {"order": ..., "missing": ...}}, or a list; '
        "`_doc` is index order.",
    ),
    "search_after": serializers.ListField(
        child=serializers.JSONField(), required=False, help_text="The `_sort` values of the last key seen."
    ),
    "aggs": serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Aggregations by name, counted over every matching key: terms, composite (terms "
        "sources), range and date_range (on creation, expiration, invalidation), missing, filter, "
        "filters, global, cardinality and value_count, over the query's fields (not metadata itself); "
        "bucket aggregations may hold `aggs` of their own. Other types, scripts and pipelines are "
        "refused as Elasticsearch refuses them for API keys.",
    ),
    "aggregations": serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Another name for `aggs`; not both."
    ),
})


class QueryApiKeysResponseSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Every key the query matches.")
    count = serializers.IntegerField(help_text="Keys in this response.")
    api_keys = QueriedApiKeySerializer(many=True)
    aggregations = serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Only when the request has `aggs`: each aggregation's result by its name (`type#name` "
        'with `typed_keys`), in Elasticsearch\'s shape, e.g. `{"buckets": [{"key": "elastic", '
        '"doc_count": 3}], "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0}` for terms, '
        '`{"doc_count": 2}` for filter and missing, `{"value": 5}` for cardinality and value_count.',
    )


class InvalidateApiKeysRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.CharField(), required=False)
    id = serializers.CharField(required=False, help_text="Deprecated: a single id.")
    name = serializers.CharField(required=False, help_text="A name; `*` is a wildcard.")
    realm_name = serializers.CharField(required=False)
    username = serializers.CharField(required=False)
    owner = serializers.BooleanField(required=False, help_text="Only the caller's own keys.")


class InvalidateApiKeysResponseSerializer(serializers.Serializer):
    invalidated_api_keys = serializers.ListField(child=serializers.CharField())
    previously_invalidated_api_keys = serializers.ListField(child=serializers.CharField())
    error_count = serializers.IntegerField()
    error_details = ErrorCauseSerializer(many=True, required=False)


class UpdateApiKeyRequestSerializer(serializers.Serializer):
    role_descriptors = serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Replaces the key's role descriptors; `{}` removes its own restriction. Absent: kept.",
    )
    metadata = serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Replaces the key's metadata; keys must not start with `_`. Absent: kept.",
    )
    expiration = serializers.CharField(
        required=False,
        help_text="A new lifetime counted from now, e.g. `30d`, within the maximum lifetime policy. "
        "Absent: the expiration is kept.",
    )


class UpdateApiKeyResponseSerializer(serializers.Serializer):
    updated = serializers.BooleanField(help_text="False when nothing changed: a no-op writes nothing.")


class BulkUpdateApiKeysRequestSerializer(UpdateApiKeyRequestSerializer):
    ids = serializers.ListField(child=serializers.CharField(), help_text="The keys to update; not empty.")


class BulkUpdateErrorsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    details = serializers.DictField(child=ErrorCauseSerializer(), help_text="The error of each key, by id.")


class BulkUpdateApiKeysResponseSerializer(serializers.Serializer):
    updated = serializers.ListField(child=serializers.CharField())
    noops = serializers.ListField(child=serializers.CharField(), help_text="Keys that were already so.")
    errors = BulkUpdateErrorsSerializer(required=False, help_text="Present only when a key had an error.")


class RealmRefSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()


class ApiKeyRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class AuthenticateResponseSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    full_name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(child=serializers.JSONField())
    enabled = serializers.BooleanField()
    authentication_realm = RealmRefSerializer()
    lookup_realm = RealmRefSerializer()
    authentication_type = serializers.ChoiceField(
        choices=["realm", "api_key", "token"], help_text="`token` for a request made with an access token."
    )
    api_key = ApiKeyRefSerializer(required=False, help_text="Present when authenticated with an API key.")


class GrantApiKeyRequestSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(
        choices=["password", "access_token"],
        help_text="`password` (username and password) or `access_token` (from the get token API).",
    )
    username = serializers.CharField(required=False, help_text="The user to prove, for `password`.")
    password = serializers.CharField(required=False, help_text="That user's password, for `password`.")
    access_token = serializers.CharField(required=False, help_text="The user's token, for `access_token`.")
    run_as = serializers.CharField(
        required=False, help_text="A user the proven one may run as (role `run_as`): the key is theirs."
    )
    api_key = CreateApiKeyRequestSerializer(help_text="The key, as the create API key body.")
