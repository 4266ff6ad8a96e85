"""``GET /_metrics``: the metrics in Prometheus' text format, for the scraper on this host by
default (``METRICS_ACCESS``, ``metrics.access``).

Not in the OpenAPI document, which describes the Elasticsearch-compatible API: this is the
operator's endpoint, in Prometheus' format, and the README describes it.
"""

import logging

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rest_framework.renderers import JSONRenderer

from apikeys import selectors
from apikeys.charts import cached_overview
from metrics.access import check_metrics_access
from metrics.registry import scrape_registry
from restapi.views import SecurityAPIView

log = logging.getLogger(__name__)


class ApiKeysByStatus(Collector):
    """``keyward_api_keys{status}``: the API Keys page's overview of every key, from the same cache
    (``API_KEY_OVERVIEW_MAX_AGE``), so that a scrape counts the keys at most once per that age.
    Left out when that age is 0, where the page counts on every view."""

    def describe(self):
        return []

    def collect(self):
        try:
            overview = cached_overview(selectors.keys_of_scope(selectors.ALL_KEYS), selectors.ALL_KEYS)
        except Exception:
            # The counters are worth a scrape when the database or the cache is down.
            log.exception("could not read the API key overview for the metrics")
            return
        if overview is None:
            return
        gauge = GaugeMetricFamily(
            "keyward_api_keys",
            "API keys by status: active, expiring (within API_KEY_EXPIRY_WARNING), expired, invalidated; "
            "as the API Keys page's overview, up to API_KEY_OVERVIEW_MAX_AGE old.",
            labels=["status"],
        )
        for state in overview.states:
            gauge.add_metric([state.state], state.count)
        yield gauge


API_KEYS_BY_STATUS = ApiKeysByStatus()


@extend_schema(exclude=True)
class MetricsView(SecurityAPIView):
    """Authenticates as every endpoint does, but only when the access rules need a principal; its
    refusals are Elasticsearch's errors, its answer Prometheus' text."""

    permission_classes = []

    def perform_authentication(self, request):
        """Lazily, in ``check_metrics_access``: a scrape from this host, or with the metrics token
        (a ``Bearer`` credential that is no access token), is no authentication attempt."""

    def perform_content_negotiation(self, request, force=False):
        """Errors are JSON whatever the scraper accepts (it asks for text); the answer is text."""
        return JSONRenderer(), JSONRenderer.media_type

    def get(self, request):
        check_metrics_access(request)
        text = generate_latest(scrape_registry(API_KEYS_BY_STATUS))
        return HttpResponse(text, content_type=CONTENT_TYPE_LATEST)


metrics = MetricsView.as_view()
