import json

from accounts.management.base import SecurityCommand, json_argument
from accounts.principals import Principal
from apikeys.services import create_api_key


class Command(SecurityCommand):
    help = "Create an API key owned by a user; prints its credential once, as the REST API does."

    def add_arguments(self, parser):
        self.add_user_arguments(parser, help_text="the owner of the key")
        parser.add_argument("--name", required=True)
        parser.add_argument("--expiration", help="Elasticsearch time units, e.g. 30d, 12h")
        parser.add_argument("--role-descriptors", help="JSON object of role descriptors")
        parser.add_argument("--metadata", help="JSON object")

    def handle(self, *args, **options):
        owner = self.get_user(options["username"], options["realm"])
        created = create_api_key(
            Principal(owner),
            name=options["name"],
            expiration=options["expiration"],
            role_descriptors=json_argument(options["role_descriptors"], "--role-descriptors"),
            metadata=json_argument(options["metadata"], "--metadata"),
        )
        key = created.api_key
        response = {"id": key.id, "name": key.name, "api_key": created.secret, "encoded": created.encoded}
        if key.expiration:
            response["expiration"] = int(key.expiration.timestamp() * 1000)
        self.stdout.write(json.dumps(response, indent=2))
        self.stderr.write("Copy this key now. You will not be able to view it again.")
