from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Access tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tokens import checks  # noqa: F401  (registers the startup checks)
