"""gunicorn's logger, leaving the health probes that succeeded out of the access log.

A load balancer or Kubernetes asks every few seconds on every host: its lines would bury the
requests people read the log for. A failing probe is still logged, and
``KEYWARD_ACCESS_LOG_HEALTH=true`` logs every probe.
"""

import os

from gunicorn.glogging import Logger

PROBE_PATHS = frozenset({"/_health", "/_health/ready"})
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _log_probes() -> bool:
    value = os.environ.get("KEYWARD_ACCESS_LOG_HEALTH", "").lower()
    if value not in TRUE + FALSE:
        raise ValueError(f"KEYWARD_ACCESS_LOG_HEALTH must be true or false, got [{value}]")
    return value in TRUE


class ProbeQuietLogger(Logger):
    """gunicorn's ``logger_class``."""

    log_probes = _log_probes()

    def access(self, resp, req, environ, request_time):
        status = resp.status_code or 0
        if not self.log_probes and environ.get("PATH_INFO") in PROBE_PATHS and 200 <= status < 300:
            return
        super().access(resp, req, environ, request_time)
