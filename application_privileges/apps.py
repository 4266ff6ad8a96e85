from django.apps import AppConfig


class ApplicationPrivilegesConfig(AppConfig):
    name = "application_privileges"
    verbose_name = "Application privileges"
    default_auto_field = "django.db.models.BigAutoField"
