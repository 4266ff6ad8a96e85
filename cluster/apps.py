from django.apps import AppConfig


class ClusterConfig(AppConfig):
    """The installation as Elasticsearch's clients see a cluster: its identity (``GET /``) and its
    health (``/_health``, ``/_health/ready``, ``/_cluster/health``)."""

    name = "cluster"
    verbose_name = "Cluster"
    default_auto_field = "django.db.models.BigAutoField"
