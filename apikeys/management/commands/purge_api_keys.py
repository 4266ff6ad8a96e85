from accounts.management.base import SecurityCommand
from apikeys.services import PURGE_BATCH_SIZE, purge_api_keys
from tokens.services import purge_tokens


class Command(SecurityCommand):
    help = (
        "Delete invalidated and expired API keys, and access tokens, older than the retention period "
        "(KEYWARD_API_KEY_RETENTION_PERIOD), in batches. For cron."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PURGE_BATCH_SIZE,
            help=f"keys deleted per transaction (default: {PURGE_BATCH_SIZE})",
        )

    def handle(self, *args, **options):
        # Progress only for a person watching; a cron log gets the summary line alone.
        result = purge_api_keys(
            batch_size=options["batch_size"],
            dry_run=options["dry_run"],
            progress=self.show_progress if self.stdout.isatty() else None,
        )
        tokens = purge_tokens(dry_run=options["dry_run"])
        keys = f"{result.deleted} API {'key' if result.deleted == 1 else 'keys'}"
        before = f"invalidated or expired before {result.cutoff:%Y-%m-%d %H:%M:%S %Z}"
        also = f"{tokens} access {'token' if tokens == 1 else 'tokens'} past retention"
        if result.dry_run:
            self.stdout.write(f"Dry run: {keys} {before} would be deleted, and {also}.")
        else:
            self.stdout.write(f"Deleted {keys} {before}, and {also}.")

    def show_progress(self, deleted: int) -> None:
        self.stdout.write(f"  {deleted} deleted so far")
