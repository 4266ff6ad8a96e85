import base64
import uuid

from django.db import models


def new_cluster_uuid() -> str:
    """A random UUID written as Elasticsearch writes its cluster UUID: 22 characters of URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Installation(models.Model):
    """This installation, in one row that every host sharing the database reads: its cluster UUID
    says which installation a host belongs to, whichever host answers."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    cluster_uuid = models.CharField(max_length=22, unique=True, default=new_cluster_uuid, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="installation_single_row")]

    def __str__(self):
        return self.cluster_uuid
