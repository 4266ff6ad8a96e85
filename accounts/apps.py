from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts.realms import sync_realms

        post_migrate.connect(lambda **kwargs: sync_realms(), sender=self, weak=False)
