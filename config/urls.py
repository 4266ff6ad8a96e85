from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from apikeys.console import console
from metrics.views import metrics
from restapi.schema import api_docs

urlpatterns = [
    path("", include("cluster.urls")),
    path("", include("apikeys.api.urls")),
    path("", include("accounts.api.urls")),
    path("", include("application_privileges.api.urls")),
    path("", include("tokens.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("app/dev_tools", console, name="console"),
    path("_metrics", metrics, name="metrics"),
    path("", include("accounts.urls")),
    path("", include("tokens.urls")),
    path("", include("apikeys.urls")),
    path("", include("application_privileges.urls")),
]

# API paths answer in Elasticsearch's (or Kibana's) JSON; pages get templates/403.html and 404.html.
handler403 = "restapi.wire.api_forbidden"
handler404 = "restapi.wire.api_not_found"
handler500 = "restapi.wire.api_server_error"
