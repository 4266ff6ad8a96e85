"""The peer's URLs: the admin, as ``startproject`` leaves it, and the two benchmarked views."""

from django.contrib import admin
from django.urls import path

from bench.peer import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("P", views.KeyProtectedView.as_view(), name="peer-p"),
    path("P0", views.plain_view, name="peer-p0"),
]
