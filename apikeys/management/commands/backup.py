from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apikeys.backups import BackupError, backup, pg_dump_command, pg_restore_command, sqlite_database


class Command(BaseCommand):
    # The system checks open the database (SQLite's JSON support), which would create a missing
    # file or keep the one being replaced open.
    requires_system_checks = []
    help = (
        "Back up the database to PATH while the server runs: SQLite's online backup, a consistent "
        "copy of the last commit. On PostgreSQL, print the pg_dump command to run instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="the file to write")
        parser.add_argument("--force", action="store_true", help="replace PATH if it exists")

    def handle(self, *args, path, force, **options):
        database = sqlite_database()
        if database is None:
            self.stdout.write(
                "Keyward runs nothing on PostgreSQL. Dump the database with pg_dump, which reads the "
                "password from PGPASSWORD or ~/.pgpass:\n\n"
                f"  {pg_dump_command(path)}\n\n"
                "and restore the dump, with the servers stopped, with:\n\n"
                f"  {pg_restore_command(path)}"
            )
            return
        try:
            written = backup(database, Path(path), force=force)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Backed up {database} to {written.path}: {written.size:,} bytes, "
            f"{written.keys:,} API keys ({written.active:,} not invalidated)."
        )
