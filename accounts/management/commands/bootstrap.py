import os
import secrets

from django.db import transaction

from accounts.management.base import SecurityCommand
from accounts.models import Realm, User
from accounts.realms import sync_realms
from accounts.services import ELASTIC, NATIVE_REALM, create_elastic_user, restore_elastic_superuser


class Command(SecurityCommand):
    help = "Create the realms and the 'elastic' superuser (password from ELASTIC_PASSWORD, else generated)."

    def handle(self, *args, **options):
        sync_realms()
        with transaction.atomic():
            if User.objects.filter(username=ELASTIC, realm__name=NATIVE_REALM).exists():
                self.stdout.write("The [elastic] superuser already exists; its password is unchanged.")
                if restore_elastic_superuser():
                    self.stdout.write("Its [superuser] role, which a reserved user keeps, was restored.")
                return
            password = os.environ.get("ELASTIC_PASSWORD") or secrets.token_urlsafe(18)
            create_elastic_user(password)
        realm = Realm.objects.get(name=NATIVE_REALM)
        self.stdout.write(self.style.SUCCESS(f"Created the [elastic] superuser in realm [{realm.name}]."))
        if not os.environ.get("ELASTIC_PASSWORD"):
            self.stdout.write(f"Its password, shown this once: {password}")
