"""Deploy checks: an answered write (an invalidation above all) must survive a power loss, so
``check --deploy`` warns when the database would not keep it (docs/security.md, *Durability*)."""

from django.core import checks
from django.db import DatabaseError, connections

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
# As the connection sees them: a session or role setting counts too.
DURABILITY_SETTINGS = "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync')"


@checks.register(checks.Tags.security, deploy=True)
def durable_commits_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA synchronous")
                level = cursor.fetchone()[0]
                weak = {"synchronous": level} if level < FULL else {}
            elif connection.vendor == "postgresql":
                cursor.execute(DURABILITY_SETTINGS)
                weak = {name: value for name, value in cursor.fetchall() if value == "off"}
            else:
                weak = {}
    except DatabaseError:
        return []  # unreachable: the database's own errors say so where it is used
    if not weak:
        return []
    settings = ", ".join(f"{name} = {value}" for name, value in weak.items())
    return [
        checks.Warning(
            f"The database runs with {settings}: a power loss or crash of the database host may undo "
            "commits already answered, such as an API key invalidation, and the key would work again.",
            hint="On PostgreSQL set synchronous_commit and fsync on (the defaults); on SQLite keep "
            "PRAGMA synchronous=FULL (config/settings.py SQLITE_OPTIONS).",
            id="apikeys.W001",
        )
    ]
