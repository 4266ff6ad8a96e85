"""Login and logout through the realm chain (SPEC §6)."""

from django.contrib.auth import views as auth_views

from apikeys.tls import api_key_service_enabled


class LoginView(auth_views.LoginView):
    """Username and password, tried against the realms in order; one message for every failure."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "api_key_service_enabled": api_key_service_enabled(self.request)}


class LogoutView(auth_views.LogoutView):
    next_page = "login"
