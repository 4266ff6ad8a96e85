"""The peer's ``manage.py``: ``python -m bench.peer.manage <command>``, e.g. ``migrate``.

The settings are set, not defaulted: the benchmark's environment names Keyward's.
"""

import os
import sys


def main():
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.peer.settings"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
