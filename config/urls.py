from django.urls import include, path

urlpatterns = [
    path("", include("apikeys.api.urls")),
    path("", include("accounts.api.urls")),
    path("", include("apikeys.urls")),
]

handler404 = "apikeys.api.wire.api_not_found"
handler500 = "apikeys.api.wire.api_server_error"
