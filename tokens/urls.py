from django.urls import path

from tokens import views

TOKENS = "app/management/security/tokens"

urlpatterns = [
    path(TOKENS, views.TokenListView.as_view(), name="token-list"),
    path(f"{TOKENS}/invalidate", views.TokenInvalidateView.as_view(), name="tokens-invalidate"),
]
