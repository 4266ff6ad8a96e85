"""On PostgreSQL, a trigram index for the API Keys page's name search (a case-insensitive
substring match, ``UPPER(name) LIKE UPPER('%…%')``), which no B-tree can serve.

``pg_trgm`` ships with PostgreSQL and is a trusted extension, so the database owner may create it.
Where it cannot be created, the search still works by reading the list index, only slower; the
migration says so rather than failing. SQLite has no such index: there the search reads the
``apikey_listed`` index, which holds the names.
"""

import logging

from django.db import DatabaseError, migrations, transaction

log = logging.getLogger(__name__)

INDEX = "apikey_name_trigram"


def create_trigram_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        log.warning("no trigram index for API key name search: cannot create extension pg_trgm (%s)", error)
        return
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "apikeys_apikey" USING gin (UPPER("name") gin_trgm_ops)'
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0003_list_and_purge_indexes")]

    operations = [migrations.RunPython(create_trigram_index, drop_trigram_index)]
