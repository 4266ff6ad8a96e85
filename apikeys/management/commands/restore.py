from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apikeys.backups import BackupError, pg_restore_command, restore, sqlite_database


class Command(BaseCommand):
    # The system checks open the database (SQLite's JSON support), which would create a missing
    # file or keep the one being replaced open.
    requires_system_checks = []
    help = (
        "Replace the SQLite database with a backup made by `manage.py backup`. Stop the server "
        "first: the command refuses while one runs on this data directory."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="the backup file")

    def handle(self, *args, path, **options):
        database = sqlite_database()
        if database is None:
            raise CommandError(
                "restore replaces a SQLite database only; on PostgreSQL, stop the servers and restore "
                f"a pg_dump file with: {pg_restore_command(path)}"
            )
        try:
            restored = restore(Path(path), database, Path(settings.DATA_DIR))
        except BackupError as error:
            raise CommandError(str(error)) from None
        written = restored.written
        self.stdout.write(
            f"Restored {Path(path).absolute()} into {written.path}: {written.size:,} bytes, "
            f"{written.keys:,} API keys ({written.active:,} not invalidated)."
        )
        if restored.previous is not None:
            self.stdout.write(f"The replaced database is kept as {restored.previous}.")
        self.stdout.write(
            "The database now holds what it held when the backup was made: keys created since then\n"
            "are gone, and keys invalidated, users disabled or deleted, and roles and passwords\n"
            "changed since then are as they were. The credential epoch was moved on, in the database\n"
            "and in <data dir>/credential-epoch, and the cached API key overviews and remembered\n"
            "verifications were forgotten, so that no worker trusts anything it remembered."
        )
        for note in restored.notes:
            self.stderr.write(f"Warning: {note}.")
        if restored.revived:
            count = len(restored.revived)
            ids = " ".join(f"--id={key_id}" for key_id in restored.revived)
            self.stderr.write(
                f"Warning: {count} API {'key was' if count == 1 else 'keys were'} invalidated in the "
                "replaced database and work again in the restored one. Invalidate them again:\n"
                f"  manage.py invalidate_api_keys {ids}"
            )
        if restored.pending:
            self.stdout.write(
                f"{len(restored.pending)} migrations are not applied to the backup "
                f"({', '.join(restored.pending)}): run `manage.py migrate` before starting the server."
            )
