from django.urls import include, path

urlpatterns = [
    path("", include("apikeys.api.urls")),
    path("", include("apikeys.urls")),
]
