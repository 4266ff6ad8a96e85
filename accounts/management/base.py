"""What every Keyward management command shares: users by realm, JSON options, clean errors."""

import json

from django.core.management.base import BaseCommand, CommandError

from accounts.exceptions import SecurityError
from accounts.models import User


class SecurityCommand(BaseCommand):
    """A command whose domain errors end as one clear line and exit status 1, never a traceback."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except SecurityError as error:
            raise CommandError(error.reason) from None

    def add_user_arguments(self, parser, flag="--user", default=None, help_text="username"):
        parser.add_argument(flag, dest="username", default=default, required=default is None, help=help_text)
        parser.add_argument(
            "--realm", default="default_native", help="the user's realm (default: default_native)"
        )

    def get_user(self, username, realm_name) -> User:
        user = User.objects.select_related("realm").filter(username=username, realm__name=realm_name).first()
        if user is None:
            raise CommandError(f"user [{username}] does not exist in realm [{realm_name}]")
        return user


def json_argument(text, label, expected=dict):
    """Parse a JSON option, with an error that names the option."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{label} is not valid JSON: {error}") from None
    if not isinstance(value, expected):
        raise CommandError(f"{label} must be a JSON {'object' if expected is dict else 'array'}")
    return value
