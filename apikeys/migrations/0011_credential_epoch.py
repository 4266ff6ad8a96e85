"""The credential epoch and the triggers that change it (``apikeys.models.CredentialEpoch``).

The watched columns are named here as they are in this migration's models: a column added
later that changes how a key authenticates needs its own migration to be watched, which
tests/test_key_cache.py checks field by field.
"""

from django.db import migrations, models

EPOCH = "apikeys_credentialepoch"
# Per table: the columns whose change bumps the epoch. Not watched: a key's last_used and
# expiry_notified, a user's password, last_login, session, roles and date joined (a key acts with
# its own descriptors, and no cached key holds a password), a realm's order.
WATCHED = {
    "apikeys_apikey": (
        "name", "hash", "owner_id", "realm_name", "realm_type", "type", "created", "expiration",
        "invalidated", "role_descriptors", "limited_by", "metadata",
    ),
    "accounts_user": ("realm_id", "username", "full_name", "email", "enabled", "metadata"),
    "accounts_realm": ("name", "type"),
}
# A key deleted while invalidated was already forgotten when it was invalidated.
DELETED_WHEN = {"apikeys_apikey": "OLD.invalidated IS NULL"}
BUMP = f"UPDATE {EPOCH} SET value = value + 1 WHERE id = 1"  # noqa: S608  (constant names only)


def sqlite_statements():
    for table, columns in WATCHED.items():
        changed = " OR ".join(f'OLD."{column}" IS NOT NEW."{column}"' for column in columns)
        yield (
            f'CREATE TRIGGER "{table}_epoch_update" AFTER UPDATE ON "{table}" FOR EACH ROW '
            f"WHEN {changed} BEGIN {BUMP}; END"
        )
        when = f"WHEN {DELETED_WHEN[table]} " if table in DELETED_WHEN else ""
        yield f'CREATE TRIGGER "{table}_epoch_delete" AFTER DELETE ON "{table}" FOR EACH ROW {when}BEGIN {BUMP}; END'


def postgresql_statements():
    """Statement-level triggers over transition tables: a bulk invalidation of many keys changes
    the epoch row once, not once per key."""
    for table, columns in WATCHED.items():
        changed = " OR ".join(f'o."{column}" IS DISTINCT FROM n."{column}"' for column in columns)
        deleted = f" WHERE {DELETED_WHEN[table].replace('OLD.', 'o.')}" if table in DELETED_WHEN else ""
        yield f"""
            CREATE FUNCTION "{table}_epoch_update"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {changed}) THEN
                    {BUMP};
                END IF;
                RETURN NULL;
            END $$"""  # noqa: S608
        yield (
            f'CREATE TRIGGER "{table}_epoch_update" AFTER UPDATE ON "{table}" '
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
            f'EXECUTE FUNCTION "{table}_epoch_update"()'
        )
        yield f"""
            CREATE FUNCTION "{table}_epoch_delete"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM old_rows o{deleted}) THEN
                    {BUMP};
                END IF;
                RETURN NULL;
            END $$"""  # noqa: S608
        yield (
            f'CREATE TRIGGER "{table}_epoch_delete" AFTER DELETE ON "{table}" '
            f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
            f'EXECUTE FUNCTION "{table}_epoch_delete"()'
        )


def create_triggers(apps, schema_editor):
    apps.get_model("apikeys", "CredentialEpoch").objects.create(id=1, value=0)
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": sqlite_statements, "postgresql": postgresql_statements}[vendor]()
    for statement in statements:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for table in WATCHED:
        for event in ("update", "delete"):
            on = f' ON "{table}"' if postgresql else ""
            schema_editor.execute(f'DROP TRIGGER IF EXISTS "{table}_epoch_{event}"{on}')
            if postgresql:
                schema_editor.execute(f'DROP FUNCTION IF EXISTS "{table}_epoch_{event}"()')


class Migration(migrations.Migration):

    dependencies = [
        ("apikeys", "0010_invalidated_keys_by_expiration"),
        ("accounts", "0007_user_pending_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="CredentialEpoch",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="credential_epoch_single_row")
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
