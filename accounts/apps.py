from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(sync_built_ins, sender=self, weak=False)


def sync_built_ins(**kwargs):
    """The shipped realms and roles exist after every migrate, and after a test database flush."""
    from accounts.realms import sync_realms
    from accounts.services import sync_built_in_roles

    sync_realms()
    sync_built_in_roles()
