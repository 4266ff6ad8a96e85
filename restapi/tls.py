"""The TLS gate (SPEC §3): the API key service is enabled only for requests that came over HTTPS."""

from functools import wraps

from django.conf import settings
from django.shortcuts import render

from config.proxies import request_is_secure


def api_key_service_enabled(request) -> bool:
    """True over HTTPS (TLS at gunicorn, or a trusted proxy's word), or when the gate is switched off."""
    return request_is_secure(request) or not settings.API_KEY_REQUIRE_HTTPS


def https_required(view):
    """Pages of the API key service answer plain HTTP with an explanation instead of controls."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not api_key_service_enabled(request):
            return render(request, "apikeys/https_required.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
