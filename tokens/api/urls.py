from django.urls import path

from tokens.api import views

urlpatterns = [
    path("_security/oauth2/token", views.TokenView.as_view(), name="token"),
]
