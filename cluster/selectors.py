"""The installation's identity, read once per process: it never changes."""

import functools

from cluster.models import Installation, new_cluster_uuid


@functools.cache
def cluster_uuid() -> str:
    """The UUID every host of this installation answers with. The migration creates it; should the row
    be missing, the first host to ask creates it, and any other asking at once reads that one."""
    installation, _ = Installation.objects.get_or_create(pk=1, defaults={"cluster_uuid": new_cluster_uuid()})
    return installation.cluster_uuid
