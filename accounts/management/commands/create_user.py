import getpass
import os
import sys

from django.core.management.base import CommandError

from accounts.management.base import SecurityCommand, json_argument
from accounts.services import create_user


class Command(SecurityCommand):
    help = "Create a user in the native realm. The password comes from --password-env, or is asked for."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--roles", default="", help="comma-separated role names")
        parser.add_argument("--full-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument("--metadata", help="JSON object")
        parser.add_argument("--password-env", help="name of an environment variable holding the password")

    def handle(self, *args, **options):
        if options["password_env"]:
            password = os.environ.get(options["password_env"])
            if not password:
                raise CommandError(f"environment variable [{options['password_env']}] is not set")
        elif sys.stdin.isatty():
            password = getpass.getpass(f"Password for [{options['username']}]: ")
            if getpass.getpass("Again: ") != password:
                raise CommandError("the passwords do not match")
        else:
            raise CommandError("no terminal to ask for the password: use --password-env NAME")
        roles = [name.strip() for name in options["roles"].split(",") if name.strip()]
        user = create_user(
            options["username"],
            password,
            roles=roles,
            full_name=options["full_name"],
            email=options["email"],
            metadata=json_argument(options["metadata"], "--metadata"),
        )
        self.stdout.write(self.style.SUCCESS(f"Created user [{user.username}] in realm [{user.realm.name}]."))
