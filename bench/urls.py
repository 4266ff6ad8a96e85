"""Keyward's URLs, plus the reference views the HTTP benchmark compares ``_authenticate`` with."""

from django.urls import path

from bench import views
from config.urls import handler404, handler500  # noqa: F401  (the URLconf's error handlers)
from config.urls import urlpatterns as keyward_urlpatterns

urlpatterns = [
    path("bench/A", views.MinimalView.as_view(), name="bench-a"),
    path("bench/A0", views.minimal_function_view, name="bench-a0"),
    path("bench/C", views.PeerKeyView.as_view(), name="bench-c"),
    *keyward_urlpatterns,
]
