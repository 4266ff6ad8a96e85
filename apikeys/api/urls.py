from django.urls import path

from apikeys.api import forward_auth, views

urlpatterns = [
    path("_security/api_key", views.ApiKeyView.as_view(), name="api-key"),
    path("_security/api_key/grant", views.GrantApiKeyView.as_view(), name="grant-api-key"),
    path(
        "_security/api_key/<str:ids>/_clear_cache", views.ClearApiKeyCacheView.as_view(),
        name="clear-api-key-cache",
    ),
    # Before the id route, which would take "_bulk_update" for an id.
    path(
        "_security/api_key/_bulk_update", views.BulkUpdateApiKeysView.as_view(), name="bulk-update-api-keys"
    ),
    path("_security/api_key/<str:api_key_id>", views.UpdateApiKeyView.as_view(), name="update-api-key"),
    # Keyward's own: Elasticsearch has no rotate API.
    path(
        "_security/api_key/<str:api_key_id>/_rotate", views.RotateApiKeyView.as_view(), name="rotate-api-key"
    ),
    path("_security/_query/api_key", views.QueryApiKeyView.as_view(), name="query-api-key"),
    path("_security/_authenticate", views.AuthenticateView.as_view(), name="authenticate"),
    # Keyward's own, for reverse proxies: Elasticsearch has no forward authentication.
    path("_security/_forward_auth", forward_auth.ForwardAuthView.as_view(), name="forward-auth"),
]
