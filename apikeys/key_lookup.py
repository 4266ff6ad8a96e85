"""The read every API-key request makes: the key, its owner and the owner's realm, by the key's id.

It is the one query on the path of every authenticated request (SPEC §3), so it is written once
as SQL per database connection and then only executed. Building it through the ORM on each
request cost more than everything else authentication does together: some 0.5 ms of query
compilation around a 30 µs SQLite lookup (docs/benchmarks.md). The rows still come back as the
ORM's own model instances, through each field's converters, so callers cannot tell the
difference from ``ApiKey.objects.select_related("owner__realm").get(pk=...)``.
"""

from django.db import connections
from django.db.models import Model

from accounts.models import Realm, User
from apikeys.models import ApiKey

# The three tables, each under its alias in the statement, in the order their columns come.
JOINED = ((ApiKey, "k"), (User, "u"), (Realm, "r"))


class KeyLookup:
    """The statement and the column converters of one database connection."""

    def __init__(self, connection):
        quote = connection.ops.quote_name
        self.connection = connection
        self.models = []
        columns = []
        for model, alias in JOINED:
            fields = model._meta.concrete_fields
            columns += [f"{alias}.{quote(field.column)}" for field in fields]
            converters = [self._converters(field, alias) for field in fields]
            self.models.append((model, [field.attname for field in fields], converters))
        key, user, realm = (model._meta for model, _ in JOINED)
        owner_id, realm_id = key.get_field("owner").column, user.get_field("realm").column
        # Only names from the models' own metadata, quoted; the id travels as the one parameter.
        self.sql = (
            f"SELECT {', '.join(columns)} FROM {quote(key.db_table)} k "  # noqa: S608
            f"JOIN {quote(user.db_table)} u ON u.{quote(user.pk.column)} = k.{quote(owner_id)} "
            f"JOIN {quote(realm.db_table)} r ON r.{quote(realm.pk.column)} = u.{quote(realm_id)} "
            f"WHERE k.{quote(key.pk.column)} = %s"
        )

    def _cursor(self):
        """Django's cursor, except on PostgreSQL: there planning this three-table join takes some
        1.2 ms against 0.1 ms to run it. A cursor that binds parameters on the server lets psycopg
        prepare the statement once it has run a few times on the connection, after which it is
        not planned again. Django's client-side binding cursors cannot prepare. The wrapper is
        Django's own, so the query is logged, counted and wrapped like any other."""
        if self.connection.vendor != "postgresql":
            return self.connection.cursor()
        import psycopg

        self.connection.ensure_connection()
        with self.connection.wrap_database_errors:
            cursor = psycopg.Cursor(self.connection.connection)
        if self.connection.queries_logged:
            return self.connection.make_debug_cursor(cursor)
        return self.connection.make_cursor(cursor)

    def _converters(self, field, alias) -> list:
        column = field.get_col(alias)
        converters = self.connection.ops.get_db_converters(column) + field.get_db_converters(self.connection)
        return [(converter, column) for converter in converters]

    def fetch(self, key_id: str) -> ApiKey | None:
        with self._cursor() as cursor:
            cursor.execute(self.sql, [key_id])
            row = cursor.fetchone()
        if row is None:
            return None
        instances, start = [], 0
        for model, attnames, converters in self.models:
            values = list(row[start : start + len(attnames)])
            start += len(attnames)
            instances.append(self._instance(model, attnames, converters, values))
        key, owner, realm = instances
        owner.realm = realm
        key.owner = owner
        return key

    def _instance(self, model: type[Model], attnames, converters, values) -> Model:
        for position, field_converters in enumerate(converters):
            for converter, column in field_converters:
                values[position] = converter(values[position], column, self.connection)
        return model.from_db(self.connection.alias, attnames, values)


def api_key_with_owner(key_id: str, using: str = "default") -> ApiKey | None:
    """The key with its owner and realm loaded, or None when no key has this id."""
    connection = connections[using]
    lookup = getattr(connection, "keyward_key_lookup", None)
    if lookup is None:
        # Kept on the connection: it belongs to that connection's database and dies with it.
        lookup = connection.keyward_key_lookup = KeyLookup(connection)
    return lookup.fetch(key_id)
