from django.core.management.base import CommandError

from accounts.management.base import SecurityCommand
from apikeys.services import notify_expiring_api_keys


class Command(SecurityCommand):
    help = (
        "Email the owner of each active API key that expires within KEYWARD_API_KEY_EXPIRY_WARNING, "
        "once per key. For cron."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list the keys, send nothing")

    def handle(self, *args, **options):
        try:
            keys = notify_expiring_api_keys(dry_run=options["dry_run"])
        except OSError as error:
            raise CommandError(f"could not send an expiry warning: {error}") from None
        dry_run = options["dry_run"]
        for key in keys:
            self.stdout.write(
                f"{'Would warn' if dry_run else 'Warned'} {key.owner.email} about API key [{key.id}] "
                f"'{key.name}', expiring {key.expiration:%Y-%m-%d %H:%M:%S %Z}"
            )
        warnings = f"{len(keys)} expiry {'warning' if len(keys) == 1 else 'warnings'}"
        self.stdout.write(f"Dry run: {warnings} would be sent." if dry_run else f"Sent {warnings}.")
