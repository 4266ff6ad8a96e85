import secrets
from datetime import timedelta

from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.base import SecurityCommand
from accounts.models import Realm, User
from accounts.principals import Principal
from accounts.services import create_user, put_role
from apikeys.models import ApiKey
from apikeys.services import create_api_key, invalidate_api_keys
from apikeys.timeunits import format_time_value, max_lifetime, parse_time_value

ROLES = {
    "api_key_admin": {"cluster": ["manage_api_key"]},
    "security_auditor": {"cluster": ["read_security"]},
    "ingest_writer": {
        "cluster": ["manage_own_api_key", "monitor"],
        "indices": [{"names": ["logs-*", "metrics-*"], "privileges": ["create_doc", "view_index_metadata"]}],
    },
    "analyst": {
        "cluster": ["manage_own_api_key"],
        "indices": [{"names": ["logs-*"], "privileges": ["read"]}],
    },
    "viewer": {"cluster": ["monitor"], "indices": [{"names": ["*"], "privileges": ["read"]}]},
}

USERS = {
    "alice": ("Alice Admin", ["api_key_admin", "analyst"]),
    "sam": ("Sam Auditor", ["security_auditor"]),
    "bob": ("Bob Builder", ["ingest_writer"]),
    "carol": ("Carol Analyst", ["analyst"]),
    "victor": ("Victor Viewer", ["viewer"]),
}

READ_ONLY = {"read_only": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}}
WRITE_ONLY = {"write_only": {"cluster": [], "indices": [{"names": ["logs-*"], "privileges": ["create_doc"]}]}}

# (owner, name, expiration, role descriptors, metadata, state)
KEYS = [
    ("alice", "ops-dashboard", None, {}, {"team": "ops"}, "active"),
    ("alice", "nightly-reindex", "90d", READ_ONLY, {"schedule": "0 3 * * *"}, "active"),
    ("alice", "old-migration-script", None, {}, {}, "invalidated"),
    ("bob", "filebeat-prod", None, WRITE_ONLY, {"environment": "production", "beat": "filebeat"}, "active"),
    ("bob", "filebeat-staging", "3d", WRITE_ONLY, {"environment": "staging"}, "active"),
    ("bob", "logstash-pipeline", "30d", {}, {"pipeline": "main"}, "active"),
    ("bob", "ci-release", "1d", {}, {"ci": "release"}, "expired"),
    ("bob", "legacy-ingest", None, {}, {}, "invalidated"),
    ("carol", "jupyter-notebook", "7d", READ_ONLY, {"purpose": "exploration"}, "active"),
    ("carol", "quarterly-report", "1d", READ_ONLY, {}, "expired"),
    ("file:bob", "backup-cron", "365d", {}, {"host": "backup-01"}, "active"),
]


class Command(SecurityCommand):
    help = "Fill an empty database with realistic users, roles and keys in every state."

    def handle(self, *args, **options):
        if ApiKey.objects.exists() or User.objects.exclude(username="elastic").exists():
            raise CommandError("seed_demo only fills an empty database: this one already has users or keys")
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            for name, descriptor in ROLES.items():
                put_role(name, **descriptor)
            owners = {}
            for username, (full_name, roles) in USERS.items():
                owners[username] = create_user(
                    username, password, roles=roles, full_name=full_name, email=f"{username}@example.com"
                )
            # A file realm user as after a first login: a native user's name, but another person.
            file_bob = User.objects.create(
                username="bob",
                realm=Realm.objects.get(name="default_file"),
                full_name="Bob from the users file",
            )
            file_bob.set_unusable_password()
            file_bob.save()
            file_bob.roles.set(owners["bob"].roles.all())
            owners["file:bob"] = file_bob
            for owner, name, expiration, descriptors, metadata, state in KEYS:
                self._seed_key(owners[owner], name, expiration, descriptors, metadata, state)
        self.stdout.write(
            self.style.SUCCESS(f"Seeded {len(USERS)} native users, 1 file user and {len(KEYS)} keys.")
        )
        self.stdout.write(f"Demo users {', '.join(USERS)} share the password: {password}")

    def _seed_key(self, owner, name, expiration, descriptors, metadata, state):
        if (longest := max_lifetime()) is not None:
            # Under a lifetime policy no key may live forever or longer than allowed.
            wanted = parse_time_value(expiration) if expiration else longest
            expiration = format_time_value(min(wanted, longest))
        principal = Principal(owner)
        created = create_api_key(
            principal, name=name, expiration=expiration, role_descriptors=descriptors, metadata=metadata
        )
        key = created.api_key
        if state == "expired":
            # Backdated so that the key has already lived out its lifetime.
            ApiKey.objects.filter(pk=key.pk).update(
                created=key.created - timedelta(days=5), expiration=timezone.now() - timedelta(days=2)
            )
        elif state == "invalidated":
            invalidate_api_keys(principal, ids=[key.id])
