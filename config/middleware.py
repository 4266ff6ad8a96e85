"""The 405 page: a page that refuses a method says so in the product's layout, naming the methods
it accepts, where Django would answer with an empty body."""

from django.http import HttpResponseNotAllowed
from django.shortcuts import render

from restapi.wire import is_api_path


class MethodNotAllowedPageMiddleware:
    """Replaces the empty 405 of a page (``require_http_methods``, a class-based view's
    ``http_method_not_allowed``); the REST API's own 405 answers are left as they are."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not isinstance(response, HttpResponseNotAllowed) or is_api_path(request.path):
            return response
        allowed = [method.strip() for method in response["Allow"].split(",") if method.strip()]
        page = render(request, "405.html", {"method": request.method, "allowed": allowed}, status=405)
        page["Allow"] = response["Allow"]
        return page
