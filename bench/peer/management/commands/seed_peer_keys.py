"""Fill the peer's key table to ``--keys`` keys and print a new one's secret, the only output."""

from django.core.management.base import BaseCommand

from bench.peer.keys import fill


class Command(BaseCommand):
    help = "Fill the key table to --keys keys, one of them new; print the new key."

    def add_arguments(self, parser):
        parser.add_argument("--keys", type=int, required=True)
        parser.add_argument("--name", default="bench-peer-key", help="the new key's name")

    def handle(self, *args, keys, name, **options):
        self.stdout.write(fill(keys, name))
