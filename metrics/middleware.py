"""Counts every response by its URL route and status code."""

import functools

from django.conf import settings
from django.urls import Resolver404, resolve

from metrics.registry import count_request

# The route of a request that matches no URL pattern: its path is never a label.
UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    """First of the middleware, so that it sees every answer, the hot path's included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = request.resolver_match
        route = "/" + match.route if match is not None else _route_of(request.path_info)
        count_request(route, response.status_code)
        return response


@functools.lru_cache(maxsize=1024)
def _route_of(path: str) -> str:
    """The route of a request answered before URL resolution: the hot path's, a static file's, a
    redirect's; or ``unmatched``."""
    try:
        return "/" + resolve(path).route
    except Resolver404:
        static = "/" + settings.STATIC_URL
        return static if path.startswith(static) else UNMATCHED
