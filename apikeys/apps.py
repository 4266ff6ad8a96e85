from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ApikeysConfig(AppConfig):
    name = "apikeys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apikeys import checks  # noqa: F401  (registers the deploy checks)

        connection_created.connect(watch_credential_writes, dispatch_uid="keyward-credential-writes")


def watch_credential_writes(sender, connection, **kwargs):
    """Writes to keys, users and realms move this host's generation on (``apikeys.key_cache``)."""
    from apikeys.key_cache import publish_after_writes

    if connection.vendor == "postgresql" and publish_after_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(publish_after_writes)
