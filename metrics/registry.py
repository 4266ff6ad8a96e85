"""What Keyward counts, in Prometheus' terms, and the registry a scrape reads.

Under gunicorn every worker counts into files of ``PROMETHEUS_MULTIPROC_DIR``, which
config/gunicorn.conf.py sets under the data directory before any worker starts, and a scrape sums
the files of every worker, whichever worker serves it (prometheus_client's multiprocess mode).
Anywhere else (``manage.py runserver``, the tests) one process is the whole server and counts in
its own memory: a directory would have to be made and cleaned up for nothing more. A command run
from cron (``purge_api_keys``) is a process of its own, whose counts end with it.

This module imports nothing of Keyward's, so that every app may count.
"""

import functools
import os

from django.db import transaction
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector

# prometheus_client chooses where values live from this variable when it is first imported.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# In multiprocess mode the metrics are in files, not in a registry: a scrape reads the files.
_registry = None if MULTIPROCESS else CollectorRegistry()
if not MULTIPROCESS:
    # The files hold no creation times: one process answers as the files would.
    disable_created_metrics()

# From a tenth of a millisecond (a remembered key) to a second (a slow password hash under load).
AUTHENTICATION_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)
PURGE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "keyward_http_requests",
    "HTTP requests answered, by URL route (the pattern, never the path) and status code.",
    ["route", "status"],
    registry=_registry,
)
AUTHENTICATIONS = Counter(
    "keyward_authentications",
    "Authentications by credential (api_key, token, password) and outcome.",
    ["credential", "outcome"],
    registry=_registry,
)
AUTHENTICATION_DURATION = Histogram(
    "keyward_authentication_duration_seconds",
    "Time to authenticate a credential, by credential; throttled attempts are not timed.",
    ["credential"],
    buckets=AUTHENTICATION_BUCKETS,
    registry=_registry,
)
THROTTLE_REJECTIONS = Counter(
    "keyward_throttle_rejections",
    "Authentication attempts refused with 429 by the abuse limits, by bucket.",
    ["bucket"],
    registry=_registry,
)
API_KEYS_CREATED = Counter(
    "keyward_api_keys_created", "API keys created (create, grant, rotate).", registry=_registry
)
API_KEYS_INVALIDATED = Counter(
    "keyward_api_keys_invalidated", "API keys invalidated (invalidate, rotate).", registry=_registry
)
API_KEYS_PURGED = Counter(
    "keyward_api_keys_purged", "Invalidated and expired API keys deleted past retention.", registry=_registry
)
API_KEY_PURGE_DURATION = Histogram(
    "keyward_api_key_purge_duration_seconds",
    "Time taken by each retention purge of API keys.",
    buckets=PURGE_BUCKETS,
    registry=_registry,
)

# The credential types, as the abuse limits' buckets name what they count.
CREDENTIAL_OF_BUCKET = {
    "api_key": "api_key", "token": "token", "password": "password", "username": "password",
}


@functools.cache
def _labelled(metric, *values):
    """A metric's child for these label values, made once: ``labels()`` takes a lock every time.
    Every label here has a bounded set of values."""
    return metric.labels(*values)


def count_request(route: str, status: int) -> None:
    _labelled(HTTP_REQUESTS, route, status).inc()


def authenticated(credential: str, outcome: str, seconds: float) -> None:
    """One authentication decided, and how long it took."""
    _labelled(AUTHENTICATIONS, credential, outcome).inc()
    _labelled(AUTHENTICATION_DURATION, credential).observe(seconds)


def throttled(bucket: str) -> None:
    """An attempt refused by the abuse limit of ``bucket`` before or instead of its own outcome."""
    _labelled(THROTTLE_REJECTIONS, bucket).inc()
    _labelled(AUTHENTICATIONS, CREDENTIAL_OF_BUCKET[bucket], "throttled").inc()


def count_on_commit(counter, amount: int = 1) -> None:
    """Count once the transaction commits: a write rolled back never happened."""
    transaction.on_commit(functools.partial(counter.inc, amount))


def scrape_registry(*collectors) -> CollectorRegistry:
    """What a scrape reads: every worker's files in multiprocess mode, else this process's metrics;
    and the ``collectors`` that compute their values when scraped."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        registry.register(_registry)
    for collector in collectors:
        registry.register(collector)
    return registry
