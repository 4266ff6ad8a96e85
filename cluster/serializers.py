"""The OpenAPI shapes of the probes and of Elasticsearch's cluster health and root info answers."""

from rest_framework import serializers


class CheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(["ok", "failed"])
    time_ms = serializers.FloatField(help_text="How long the check took, or was waited for.")
    reason = serializers.CharField(required=False, help_text="Why the check failed.")


class ProbeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(["ok", "unavailable"])
    checks = serializers.DictField(
        child=CheckSerializer(), help_text="By name: `process`; or `database`, `migrations`, `cache`."
    )


class ClusterHealthSerializer(serializers.Serializer):
    cluster_name = serializers.CharField()
    status = serializers.ChoiceField(["green", "yellow", "red"])
    timed_out = serializers.BooleanField()
    number_of_nodes = serializers.IntegerField()
    number_of_data_nodes = serializers.IntegerField()
    active_primary_shards = serializers.IntegerField()
    active_shards = serializers.IntegerField()
    relocating_shards = serializers.IntegerField()
    initializing_shards = serializers.IntegerField()
    unassigned_shards = serializers.IntegerField()
    unassigned_primary_shards = serializers.IntegerField()
    delayed_unassigned_shards = serializers.IntegerField()
    number_of_pending_tasks = serializers.IntegerField()
    number_of_in_flight_fetch = serializers.IntegerField()
    task_max_waiting_in_queue_millis = serializers.IntegerField()
    active_shards_percent_as_number = serializers.FloatField()
    indices = serializers.DictField(required=False, help_text="Empty, with `level=indices` or `shards`.")


class VersionSerializer(serializers.Serializer):
    number = serializers.CharField(help_text="Keyward's version.")


class ClusterInfoSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The answering host's name.")
    cluster_name = serializers.CharField()
    cluster_uuid = serializers.CharField(help_text="The installation's, the same on every host.")
    version = VersionSerializer()
    tagline = serializers.CharField()
