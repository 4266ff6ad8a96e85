from django.shortcuts import render

from apikeys.tls import api_key_service_enabled


def home(request):
    return render(request, "home.html", {"api_key_service_enabled": api_key_service_enabled(request)})
