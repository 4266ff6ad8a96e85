from accounts.management.base import SecurityCommand, json_argument
from accounts.services import put_role


class Command(SecurityCommand):
    help = "Create or replace a role: cluster privileges, index privileges, run_as."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--cluster", default="", help="comma-separated cluster privileges, e.g. manage_own_api_key"
        )
        parser.add_argument(
            "--indices", help='JSON array, e.g. \'[{"names": ["logs-*"], "privileges": ["read"]}]\''
        )
        parser.add_argument("--run-as", default="", help="comma-separated usernames")
        parser.add_argument("--metadata", help="JSON object")

    def handle(self, *args, **options):
        role, created = put_role(
            options["name"],
            cluster=[name.strip() for name in options["cluster"].split(",") if name.strip()],
            indices=json_argument(options["indices"], "--indices", expected=list) or [],
            run_as=[name.strip() for name in options["run_as"].split(",") if name.strip()],
            metadata=json_argument(options["metadata"], "--metadata"),
        )
        self.stdout.write(self.style.SUCCESS(f"{'Created' if created else 'Updated'} role [{role.name}]."))
