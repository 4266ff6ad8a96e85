import json

from accounts.management.base import SecurityCommand
from accounts.principals import Principal
from apikeys.services import invalidate_api_keys


class Command(SecurityCommand):
    help = "Invalidate API keys by id, name, owner or realm, with the privileges of the acting user."

    def add_arguments(self, parser):
        self.add_user_arguments(
            parser, flag="--as", default="elastic", help_text="acting user (default: elastic)"
        )
        parser.add_argument(
            "--id", dest="ids", action="append",
            help="a key id, as --id=<id> since an id may begin with -; repeat for several",
        )
        parser.add_argument("--name", help="key name, * wildcards allowed")
        parser.add_argument("--username", dest="key_owner", help="keys of this user")
        parser.add_argument("--realm-name", help="keys of users of this realm")
        parser.add_argument("--owner", action="store_true", help="keys of the acting user")

    def handle(self, *args, **options):
        acting = self.get_user(options["username"], options["realm"])
        result = invalidate_api_keys(
            Principal(acting),
            ids=options["ids"],
            name=options["name"],
            username=options["key_owner"],
            realm_name=options["realm_name"],
            owner=options["owner"],
        )
        body = {
            "invalidated_api_keys": result.invalidated,
            "previously_invalidated_api_keys": result.previously_invalidated,
            "error_count": len(result.errors),
        }
        if result.errors:
            body["error_details"] = result.errors
        self.stdout.write(json.dumps(body, indent=2))
