import os
import secrets

from django.db import transaction

from accounts.management.base import SecurityCommand
from accounts.models import Realm, User
from accounts.realms import sync_realms
from accounts.services import create_user

ELASTIC = "elastic"


class Command(SecurityCommand):
    help = "Create the realms and the 'elastic' superuser (password from ELASTIC_PASSWORD, else generated)."

    def handle(self, *args, **options):
        sync_realms()
        with transaction.atomic():
            if User.objects.filter(username=ELASTIC, realm__name="default_native").exists():
                self.stdout.write("The [elastic] superuser already exists; its password is unchanged.")
                return
            password = os.environ.get("ELASTIC_PASSWORD") or secrets.token_urlsafe(18)
            create_user(ELASTIC, password, roles=["superuser"], full_name="Built-in superuser")
        realm = Realm.objects.get(name="default_native")
        self.stdout.write(self.style.SUCCESS(f"Created the [elastic] superuser in realm [{realm.name}]."))
        if not os.environ.get("ELASTIC_PASSWORD"):
            self.stdout.write(f"Its password, shown this once: {password}")
