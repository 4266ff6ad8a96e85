"""``id__among=[...]``: a list of ids sent as one parameter, so that a statement with ten thousand
ids is one statement, planned the same way whatever the count.

``id__in`` spells every id as a parameter of its own: SQLite refuses more than 32,766 and the
callers had to cut lists into batches, one statement each. Here PostgreSQL receives an array and
SQLite a JSON array that ``json_each`` reads; both look each id up in the primary key index.
"""

import json

from django.db.models import Lookup


class Among(Lookup):
    lookup_name = "among"
    prepare_rhs = False

    def get_prep_lookup(self):
        if not isinstance(self.rhs, list | tuple) or not all(isinstance(item, str) for item in self.rhs):
            raise TypeError("among takes a list of strings")
        return list(self.rhs)

    def as_sql(self, compiler, connection):
        # The column comes from the compiler; the ids only ever travel as the one parameter.
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::text[])", (*params, self.rhs)
        return f"{lhs} IN (SELECT value FROM json_each(%s))", (*params, json.dumps(self.rhs))  # noqa: S608
