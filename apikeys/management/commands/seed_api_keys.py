"""Fill the database with many users and keys quickly, for trying Keyward at scale.

Keys are bulk-inserted as the service would store them (a real salted hash of a random secret
that is thrown away, the owner's realm and roles as ``limited_by``), so every page and query sees
realistic rows. The command adds to what is there: run it again to grow the table.
"""

import random
import secrets
import time
from datetime import timedelta

from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.base import SecurityCommand
from accounts.models import Realm, Role, User
from accounts.services import put_role
from apikeys.charts import forget_overviews
from apikeys.credentials import generate_api_key_id, generate_api_key_secret
from apikeys.hashers import make_api_key_hash
from apikeys.models import ApiKey
from apikeys.timeunits import parse_time_value

OWNER_ROLE = "api_key_owner"
OWNER_DESCRIPTOR = {"cluster": ["manage_own_api_key"], "indices": []}
REALMS = ("default_native", "default_file")
USERNAME = "user-{:05d}"
PURPOSES = ("filebeat", "logstash", "metricbeat", "ci-deploy", "backup", "ingest", "reporting", "alerting")
ENVIRONMENTS = ("prod", "staging", "dev")


class Command(SecurityCommand):
    help = (
        "Add many API keys over many users in two realms with bulk inserts: active, expired and "
        "invalidated, created over the past year."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keys", type=int, required=True, help="how many keys to add")
        parser.add_argument(
            "--users", type=int, default=10_000, help="owners, half in each realm (default 10000)"
        )
        parser.add_argument(
            "--active",
            type=float,
            default=0.7,
            help="share of active keys; the rest are half expired, half invalidated (default 0.7)",
        )
        parser.add_argument(
            "--ended-before",
            default=None,
            metavar="TIME",
            help="expired and invalidated keys ended at least this long ago, e.g. 30d (default: any time "
            "in the past year)",
        )
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=None, help="seed of the layout, not of the secrets")

    def handle(self, *args, keys, users, active, ended_before, batch_size, seed, verbosity, **options):
        if keys < 0 or users < 1 or batch_size < 1 or not 0 <= active <= 1:
            raise CommandError("--keys must be >= 0, --users and --batch-size >= 1, --active within [0, 1]")
        ended_before = parse_time_value(ended_before) if ended_before else timedelta(0)
        layout = random.Random(seed)  # noqa: S311 - where rows fall, never a secret
        started = time.monotonic()
        owners = self._owners(users)
        limited_by = {OWNER_ROLE: Role.objects.get(name=OWNER_ROLE).descriptor()}
        now = timezone.now().replace(microsecond=0)
        serial = ApiKey.objects.count()
        # Names stay unique among active keys even after a purge has shrunk the table.
        run = secrets.token_hex(3)
        added = 0
        while added < keys:
            count = min(batch_size, keys - added)
            rows = [
                self._key(layout, owners, run, added + offset, now, active, ended_before, limited_by)
                for offset in range(count)
            ]
            with transaction.atomic():
                ApiKey.objects.bulk_create(rows, batch_size=1000)
            added += count
            forget_overviews()
            if verbosity >= 2 or (verbosity >= 1 and added % 100_000 == 0):
                self.stdout.write(f"{added:,} keys added ({time.monotonic() - started:.1f} s)")
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {added:,} keys over {len(owners):,} users in {time.monotonic() - started:.1f} s; "
                f"the table holds {serial + added:,}."
            )
        )

    def _owners(self, count) -> list[tuple[int, str, str]]:
        """``(id, realm name, realm type)`` of ``user-00000`` … in both realms, created when missing."""
        role, _ = Role.objects.get_or_create(name=OWNER_ROLE, defaults=OWNER_DESCRIPTOR)
        if role.cluster != OWNER_DESCRIPTOR["cluster"]:
            put_role(OWNER_ROLE, **OWNER_DESCRIPTOR)
        realms = {realm.name: realm for realm in Realm.objects.filter(name__in=REALMS)}
        if len(realms) != len(REALMS):
            raise CommandError(f"the realms {', '.join(REALMS)} must exist: run migrate first")
        wanted = [(realms[REALMS[index % 2]], USERNAME.format(index)) for index in range(count)]
        existing = set(
            User.objects.filter(username__startswith="user-").values_list("realm__name", "username")
        )
        missing = [
            User(realm=realm, username=username, full_name=f"Seeded {username}", password="!")
            for realm, username in wanted
            if (realm.name, username) not in existing
        ]
        with transaction.atomic():
            User.objects.bulk_create(missing, batch_size=1000)
            links = User.roles.through
            ids = User.objects.filter(username__startswith="user-").values_list("pk", flat=True)
            linked = set(links.objects.filter(role=role).values_list("user_id", flat=True))
            links.objects.bulk_create(
                [links(user_id=pk, role_id=role.pk) for pk in ids if pk not in linked], batch_size=1000
            )
        names = {(realm.name, username) for realm, username in wanted}
        return [
            (pk, realm_name, realms[realm_name].type)
            for pk, realm_name, username in User.objects.filter(username__startswith="user-")
            .values_list("pk", "realm__name", "username")
            .order_by("pk")
            if (realm_name, username) in names
        ]

    def _key(self, layout, owners, run, serial, now, active_share, ended_before, limited_by) -> ApiKey:
        owner_id, realm_name, realm_type = owners[layout.randrange(len(owners))]
        name = f"{layout.choice(PURPOSES)}-{layout.choice(ENVIRONMENTS)}-{run}-{serial:07d}"
        state = layout.random()
        if state < active_share:
            created = now - timedelta(seconds=layout.randrange(365 * 86400))
            lifetime = layout.choice(
                (None, None, timedelta(days=30), timedelta(days=90), timedelta(days=365))
            )
            expiration = created + lifetime if lifetime and created + lifetime > now else None
            invalidated = None
        else:
            ended = now - ended_before - timedelta(seconds=layout.randrange(1, 365 * 86400))
            created = ended - timedelta(days=layout.choice((1, 7, 30, 90)))
            expired = state < active_share + (1 - active_share) / 2
            expiration = ended if expired else None
            invalidated = None if expired else ended
        return ApiKey(
            id=generate_api_key_id(),
            name=name,
            hash=make_api_key_hash(generate_api_key_secret()),
            owner_id=owner_id,
            realm_name=realm_name,
            realm_type=realm_type,
            created=created,
            expiration=expiration,
            invalidated=invalidated,
            limited_by=limited_by,
            metadata={"environment": name.split("-")[-3]} if serial % 4 == 0 else {},
        )
