"""Which fields of roles and users their query APIs expose, as Elasticsearch declares them: the role
and user indices of the query engine (``restapi.query.dsl``)."""

from django.db.models import Exists, F, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Coalesce, Greatest, Least

from accounts.models import Role, User
from restapi.query.dsl import (
    DOC,
    AnalyzedTextField,
    ColumnField,
    FlagField,
    Index,
    JsonListField,
    MetadataRootField,
    MultiValuedField,
    QueryRequest,
    WildcardMatch,
    parse_query_request,
)

# Elasticsearch's wording for the roles and users queries (the API key query keeps its own).
REFUSAL = "for querying or aggregation"
UNSUPPORTED = "currently supported in this context"


class RoleNamesField(MultiValuedField):
    """A user's ``roles``: the names of the roles assigned to them, those of defined roles and
    those no role has (yet)."""

    pending = JsonListField("roles", "pending_roles")

    def any_value(self, values: tuple = (), tokens: tuple | None = None, case_insensitive=False) -> Q:
        names = User.roles.through.objects.filter(user_id=OuterRef("pk"))
        if values:
            names = names.filter(role__name__in=values)
        if tokens is not None:
            names = names.filter(WildcardMatch(F("role__name"), tokens, case_insensitive))
        return Q(Exists(names)) | self.pending.any_value(values, tokens, case_insensitive)

    def bound(self, greatest: bool):
        names = Role.objects.filter(users=OuterRef("pk")).order_by("-name" if greatest else "name")
        defined, pending = Subquery(names.values("name")[:1]), self.pending.bound(greatest)
        # Either may be null; SQLite's MIN and MAX of a null are null.
        bound = Greatest if greatest else Least
        text = TextField()
        return bound(
            Coalesce(defined, pending, output_field=text), Coalesce(pending, defined, output_field=text),
            output_field=text,
        )


ROLES = Index(
    {
        "name": ColumnField("name", "name"),
        "description": AnalyzedTextField("description", "description"),
        "applications.application": JsonListField("applications.application", "applications", "application"),
        "applications.resources": JsonListField("applications.resources", "applications", "resources"),
        "applications.privileges": JsonListField("applications.privileges", "applications", "privileges"),
        "metadata": MetadataRootField("metadata"),
    },
    refusal=REFUSAL,
    unsupported=UNSUPPORTED,
    payload="query_role_request_payload",
    default_sort=DOC,
    id_prefix="role-",
    id_column="name",
)
USERS = Index(
    {
        "username": ColumnField("username", "username"),
        "roles": RoleNamesField("roles"),
        # Analysed text in Elasticsearch, which cannot sort by it.
        "full_name": AnalyzedTextField("full_name", "full_name", sortable=False),
        "email": AnalyzedTextField("email", "email", sortable=False),
        "enabled": FlagField("enabled", "enabled"),
    },
    refusal=REFUSAL,
    unsupported=UNSUPPORTED,
    payload="query_user_request_payload",
    default_sort=DOC,
    id_prefix="user-",
    id_column="username",
)


def parse_role_query(body) -> QueryRequest:
    """The body of ``POST|GET /_security/_query/role``, validated."""
    return parse_query_request(body, ROLES)


def parse_user_query(body) -> QueryRequest:
    """The body of ``POST|GET /_security/_query/user``, validated."""
    return parse_query_request(body, USERS)
