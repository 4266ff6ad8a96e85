"""Elasticsearch's ``_nodes`` answer, which its clear-cache APIs give: here the host is the one
node, and a clear that could not reach every worker through the shared cache is its failure."""

import base64
import hashlib
import socket

from django.conf import settings


def node() -> tuple[str, str]:
    """(id, name) of this host as a node: its name, and a stable id of Elasticsearch's length."""
    name = socket.gethostname()
    digest = hashlib.sha256(name.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("="), name


def nodes_answer(failure: str | None = None) -> dict:
    """``{_nodes, cluster_name, nodes}``: this node succeeded, or failed for ``failure``."""
    node_id, node_name = node()
    if failure is None:
        summary, nodes = {"total": 1, "successful": 1, "failed": 0}, {node_id: {"name": node_name}}
    else:
        cause = {
            "type": "failed_node_exception",
            "reason": f"Failed node [{node_id}]",
            "node_id": node_id,
            "caused_by": {"type": "exception", "reason": failure},
        }
        summary, nodes = {"total": 1, "successful": 0, "failed": 1, "failures": [cause]}, {}
    return {"_nodes": summary, "cluster_name": settings.CLUSTER_NAME, "nodes": nodes}
