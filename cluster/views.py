"""The health probes, Elasticsearch's cluster health and root info, and the content-negotiated ``/``.

The probes answer anyone, over HTTPS and plain HTTP alike, and never from a cache: a load balancer
or Kubernetes asks them every few seconds, usually by address and without credentials. The two
Elasticsearch endpoints are what its clients call (``client.info()``, ``client.cluster.health()``)
and take the ``monitor`` cluster privilege, as there.
"""

import re
import socket
import time

from django.conf import settings
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

import config
from accounts.exceptions import ValidationError
from accounts.selectors import MONITOR_HEALTH_ACTION, MONITOR_MAIN_ACTION, can_monitor
from apikeys.selectors import unauthorized
from apikeys.timeunits import parse_time_value
from apikeys.views import home
from cluster import health
from cluster.selectors import cluster_uuid
from cluster.serializers import ClusterHealthSerializer, ClusterInfoSerializer, ProbeSerializer
from restapi.authentication import principal_of
from restapi.filter_path import filter_response
from restapi.views import ERRORS, SecurityAPIView, flag, string_parameter, url_params
from restapi.wire import COMPATIBLE_MEDIA_TYPE

NEVER_CACHED = {"Cache-Control": "no-store"}
TAGLINE = "API keys, kept"


# ---------------------------------------------------------------------------------------------
# Probes


class AlwaysJSON(BaseContentNegotiation):
    """A probe answers JSON whatever its Accept header says: a balancer's check is not to fail on it."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ProbeView(APIView):
    authentication_classes = []
    permission_classes = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON

    def answer(self, checks: list[health.Check]) -> Response:
        ready = health.is_ready(checks)
        body = {
            "status": "ok" if ready else "unavailable",
            "checks": {check.name: check.as_dict() for check in checks},
        }
        return Response(body, status=200 if ready else 503, headers=NEVER_CACHED)


PROBE_RESPONSES = {
    200: OpenApiResponse(ProbeSerializer, description="Every check passed."),
    503: OpenApiResponse(ProbeSerializer, description="A check failed; each says why."),
}


class LivenessView(ProbeView):
    """``GET /_health``: the process answers. Touches neither the database nor the cache, so that a
    database outage never gets healthy processes restarted."""

    @extend_schema(
        operation_id="health_liveness",
        summary="Liveness probe",
        description="200 while the process answers; asks neither the database nor the cache. No "
        "authentication, plain HTTP too, never cached.",
        tags=["Cluster"],
        auth=[],
        responses={200: OpenApiResponse(ProbeSerializer, description="The process answers.")},
    )
    def get(self, request):
        started = time.monotonic()
        return self.answer([health.Check("process", "", time.monotonic() - started)])


class ReadinessView(ProbeView):
    """``GET /_health/ready``: the database answers within a second with every migration applied, and
    the cache stores and returns a value."""

    @extend_schema(
        operation_id="health_readiness",
        summary="Readiness probe",
        description="200 when the database answers within 1 s with every migration applied and the "
        "cache returns a value just stored; 503 naming the failed checks otherwise. No authentication, "
        "plain HTTP too, never cached.",
        tags=["Cluster"],
        auth=[],
        responses=PROBE_RESPONSES,
    )
    def get(self, request):
        return self.answer(health.readiness())


# ---------------------------------------------------------------------------------------------
# GET /_cluster/health

LEVELS = frozenset({"cluster", "indices", "shards"})
EVENT_PRIORITIES = frozenset({"immediate", "urgent", "high", "normal", "low", "languid"})
EXPAND_WILDCARDS = frozenset({"all", "open", "closed", "hidden", "none"})
HEALTH_PARAMS = frozenset({
    "wait_for_status", "timeout", "master_timeout", "local", "level", "wait_for_events",
    "wait_for_no_initializing_shards", "wait_for_no_relocating_shards", "wait_for_nodes",
    "wait_for_active_shards", "expand_wildcards", "filter_path",
})
DEFAULT_TIMEOUT = 30.0
# How often a waiting request checks again.
POLL_INTERVAL = 0.5
NODES_CONDITION = re.compile(r"(>=|<=|>|<|ge\(|le\(|gt\(|lt\()?([0-9]{1,9})\)?")
COMPARISONS = {
    "": int.__eq__, ">=": int.__ge__, "ge(": int.__ge__, "<=": int.__le__, "le(": int.__le__,
    ">": int.__gt__, "gt(": int.__gt__, "<": int.__lt__, "lt(": int.__lt__,
}
# One host answers: it is the one node, holding no shards.
NODES = 1


def _time_value(params: dict, name: str, default: float) -> float:
    """Seconds: an Elasticsearch time value, ``0`` too, or ``-1`` (no limit) for ``master_timeout``."""
    raw = params.get(name)
    if raw is None:
        return default
    if re.fullmatch(r"0+(d|h|ms|m|s|micros|nanos)?", raw):
        return 0.0
    if raw == "-1" and name == "master_timeout":
        return default
    return parse_time_value(raw, name).total_seconds()


def _choice(params: dict, name: str, choices: frozenset, default: str | None = None) -> str | None:
    value = params.get(name, default)
    if value is not None and value not in choices:
        raise ValidationError(
            f"invalid value [{value}] for parameter [{name}]: expected one of [{', '.join(sorted(choices))}]"
        )
    return value


def _nodes_condition(raw: str | None) -> bool:
    """Whether the host, one node, meets ``wait_for_nodes``: ``N``, ``>=N``, ``ge(N)`` and the like."""
    if raw is None:
        return True
    match = NODES_CONDITION.fullmatch(raw)
    if match is None or (match.group(1) or "").endswith("(") != raw.endswith(")"):
        raise ValidationError(
            f"cannot parse [wait_for_nodes] value [{raw}]: expected N, >=N, <=N, >N or <N, or ge(N), le(N), "
            "gt(N) or lt(N)"
        )
    return COMPARISONS[match.group(1) or ""](NODES, int(match.group(2)))


def _active_shards_condition(raw: str | None) -> bool:
    """Whether the host's shards, none, satisfy ``wait_for_active_shards``: all of them, or 0."""
    if raw is None or raw in ("all", "0"):
        return True
    if raw.isascii() and raw.isdigit():
        return int(raw) == 0
    raise ValidationError(f"cannot parse [wait_for_active_shards] value [{raw}]: expected a number or [all]")


def _wanted(params: dict) -> tuple[str | None, bool]:
    """(the ``wait_for_status``, whether the other conditions hold): those can only hold at once on a
    host that is one node without shards, or never, so only the status is worth waiting for."""
    status = _choice(params, "wait_for_status", frozenset(health.STATUS_ORDER))
    nodes = _nodes_condition(params.get("wait_for_nodes"))
    shards = _active_shards_condition(params.get("wait_for_active_shards"))
    for name in ("local", "wait_for_no_initializing_shards", "wait_for_no_relocating_shards"):
        flag(params, name)
    _choice(params, "level", LEVELS)
    _choice(params, "wait_for_events", EVENT_PRIORITIES)
    for value in params.get("expand_wildcards", "open").split(","):
        _choice({"expand_wildcards": value}, "expand_wildcards", EXPAND_WILDCARDS)
    _time_value(params, "master_timeout", DEFAULT_TIMEOUT)
    return status, nodes and shards


def cluster_health_body(status: str, timed_out: bool, level: str) -> dict:
    body = {
        "cluster_name": settings.CLUSTER_NAME,
        "status": status,
        "timed_out": timed_out,
        "number_of_nodes": NODES,
        "number_of_data_nodes": NODES,
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        # Elasticsearch's figure for a cluster without shards.
        "active_shards_percent_as_number": 100.0,
    }
    if level != "cluster":
        body["indices"] = {}
    return body


class ClusterHealthView(SecurityAPIView):
    """``GET /_cluster/health``: green when every readiness check passes, yellow when only the cache
    fails, red when the database does; with ``wait_for_status``, answered once the status is reached
    or ``timeout`` has passed (408, ``timed_out``), as Elasticsearch does."""

    @extend_schema(
        operation_id="cluster_health",
        summary="Cluster health",
        description="Elasticsearch's cluster health, from the readiness checks: `green` when the "
        "database and the cache answer, `yellow` when the cache does not, `red` when the database does "
        "not (or migrations are missing). Keyward holds no shards: the shard counts are 0. "
        "`wait_for_status` waits until the status is reached or `timeout` (30s) passes, then answers "
        "408 with `timed_out: true`; a condition one host cannot meet (`wait_for_nodes=2`) is answered so "
        "at once. Requires `monitor` (implied by `manage` and `all`).",
        tags=["Cluster"],
        parameters=[
            OpenApiParameter(
                "wait_for_status", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=list(health.STATUS_ORDER)
            ),
            string_parameter("timeout", "How long to wait for the status, e.g. `10s`; default 30s."),
            string_parameter("wait_for_nodes", "`N`, `>=N`, `<=N`, `>N`, `<N`: this host is one node."),
            string_parameter("wait_for_active_shards", "`0` or `all` hold at once; a host holds no shards."),
            OpenApiParameter("level", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=sorted(LEVELS)),
            string_parameter("filter_path", "Parts of the answer to keep."),
        ],
        responses={200: ClusterHealthSerializer, 408: ClusterHealthSerializer, **ERRORS},
    )
    def get(self, request):
        # Validated before authorized, as Elasticsearch does.
        params = url_params(request, HEALTH_PARAMS)
        wanted, holds = _wanted(params)
        timeout = _time_value(params, "timeout", DEFAULT_TIMEOUT)
        principal = principal_of(request)
        if not can_monitor(principal, MONITOR_HEALTH_ACTION):
            raise unauthorized(principal, MONITOR_HEALTH_ACTION)
        deadline = time.monotonic() + timeout
        while True:
            status = health.cluster_status(health.readiness())
            timed_out = not (holds and (wanted is None or health.at_least(status, wanted)))
            remaining = deadline - time.monotonic()
            if not timed_out or not holds or remaining <= 0:
                break
            time.sleep(min(POLL_INTERVAL, remaining))
        body = cluster_health_body(status, timed_out, params.get("level", "cluster"))
        return Response(
            filter_response(body, params.get("filter_path")), status=408 if timed_out else 200,
            headers=NEVER_CACHED,
        )


# ---------------------------------------------------------------------------------------------
# GET /

INFO_MEDIA_TYPES = frozenset({"application/json", COMPATIBLE_MEDIA_TYPE})
PAGE_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/*", "*/*"})


def wants_cluster_info(request) -> bool:
    """Whether the Accept header prefers JSON (or the Elasticsearch client's own media type, whatever
    its ``compatible-with``) to a page; no Accept header, or ``*/*``, gets the page."""
    for accepted in request.accepted_types:
        media_type = f"{accepted.main_type}/{accepted.sub_type}".lower()
        if media_type in INFO_MEDIA_TYPES:
            return True
        if media_type in PAGE_MEDIA_TYPES:
            return False
    return False


def cluster_info() -> dict:
    return {
        "name": socket.gethostname(),
        "cluster_name": settings.CLUSTER_NAME,
        "cluster_uuid": cluster_uuid(),
        "version": {"number": config.__version__},
        "tagline": TAGLINE,
    }


class RootView(SecurityAPIView):
    """``GET /``: the home page for a browser; Elasticsearch's root info for a client asking JSON."""

    def dispatch(self, request, *args, **kwargs):
        if wants_cluster_info(request):
            response = super().dispatch(request, *args, **kwargs)
        else:
            response = home(request)
        # One URL, two representations: a cache must not give the page to a client or the reverse.
        patch_vary_headers(response, ["Accept"])
        return response

    @extend_schema(
        operation_id="info",
        summary="Cluster info",
        description="Elasticsearch's root info, for a request whose Accept header prefers "
        "`application/json` (or `application/vnd.elasticsearch+json`, as the official clients send) "
        "to HTML: the host's `name`, `cluster_name`, the installation's `cluster_uuid` (the same on "
        "every host), and Keyward's version as `version.number`. A browser gets the home page. "
        "Requires `monitor` (implied by `manage` and `all`), as Elasticsearch does.",
        tags=["Cluster"],
        parameters=[string_parameter("filter_path", "Parts of the answer to keep.")],
        responses={200: ClusterInfoSerializer, **ERRORS},
    )
    def get(self, request):
        params = url_params(request, frozenset({"filter_path"}))
        principal = principal_of(request)
        if not can_monitor(principal, MONITOR_MAIN_ACTION):
            raise unauthorized(principal, MONITOR_MAIN_ACTION)
        return Response(filter_response(cluster_info(), params.get("filter_path")))
