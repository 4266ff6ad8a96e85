"""The OpenAPI shape of Elasticsearch's error body, which every endpoint may answer."""

from rest_framework import serializers


class ErrorCauseSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="Elasticsearch's error type, e.g. illegal_argument_exception.")
    reason = serializers.CharField()


class ElasticsearchErrorDetailSerializer(ErrorCauseSerializer):
    root_cause = ErrorCauseSerializer(many=True)


class ElasticsearchErrorSerializer(serializers.Serializer):
    error = ElasticsearchErrorDetailSerializer()
    status = serializers.IntegerField()
