"""OpenAPI shapes that several endpoints answer: Elasticsearch's error body, and its answer of an
action run on every node (clearing a cache)."""

from rest_framework import serializers


class ErrorCauseSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="Elasticsearch's error type, e.g. illegal_argument_exception.")
    reason = serializers.CharField()


class ElasticsearchErrorDetailSerializer(ErrorCauseSerializer):
    root_cause = ErrorCauseSerializer(many=True)


class ElasticsearchErrorSerializer(serializers.Serializer):
    error = ElasticsearchErrorDetailSerializer()
    status = serializers.IntegerField()


class NodesSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    failures = serializers.ListField(child=serializers.DictField(), required=False)


class NodeNameSerializer(serializers.Serializer):
    name = serializers.CharField()


class ClearCacheResponseSerializer(serializers.Serializer):
    _nodes = NodesSummarySerializer()
    cluster_name = serializers.CharField()
    nodes = serializers.DictField(child=NodeNameSerializer(), help_text="By node id.")
