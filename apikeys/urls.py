from django.urls import path

from apikeys import views

# Kibana's paths (SPEC §6). "create", "invalidate" and "invalidate_matching" are shorter than any
# key id, so they never hide a key's details page.
API_KEYS = "app/management/security/api_keys"

urlpatterns = [
    path(API_KEYS, views.api_key_list, name="api_keys"),
    path(f"{API_KEYS}/create", views.api_key_create, name="api_key_create"),
    path(f"{API_KEYS}/invalidate", views.api_keys_invalidate, name="api_keys_invalidate"),
    path(
        f"{API_KEYS}/invalidate_matching",
        views.api_keys_invalidate_matching,
        name="api_keys_invalidate_matching",
    ),
    path(f"{API_KEYS}/<str:key_id>", views.api_key_details, name="api_key_details"),
    path(f"{API_KEYS}/<str:key_id>/update", views.api_key_update, name="api_key_update"),
    path(f"{API_KEYS}/<str:key_id>/rotate", views.api_key_rotate, name="api_key_rotate"),
    path(f"{API_KEYS}/<str:key_id>/reveal", views.api_key_reveal, name="api_key_reveal"),
]
