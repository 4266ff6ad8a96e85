"""The API Keys page's search box (SPEC §6): Kibana's search-bar syntax, read into the query DSL of
``POST /_security/_query/api_key``, so that the page and the API search with one engine.

    filebeat                  names containing "filebeat", in any case
    "my key"                  names containing the phrase
    name:filebeat*            names (``*`` and ``?`` are wildcards), in any case
    owner:bob  realm:default_file  type:rest  metadata.team:ops
    status:active|expiring|expired|invalidated
    -owner:bob                leave out what matches
    a OR b                    either; terms side by side must all match; (parentheses) group

Bad input raises ``SearchSyntaxError`` with a sentence for the page. The grammar is fixed, so
its tokens are read with our own patterns; what the user types is only ever a value.
"""

from dataclasses import dataclass
from datetime import datetime

import re2
from django.utils import timezone

from apikeys.timeunits import configured_time_value
from restapi.errors import ValidationError
from restapi.query.dsl import METADATA_KEY, epoch_millis, storable_text

MAX_LENGTH = 1000
MAX_DEPTH = 8
SPACE = re2.compile(r"\s+")
FIELD = re2.compile(r"([A-Za-z_][\w.@+-]*):")
WORD = re2.compile(r'[^\s()"]+')
QUOTED = re2.compile(r'(?s)"((?:[^"\\]|\\.)*)"')
ESCAPE = re2.compile(r"(?s)\\(.)")
# The search box's field names, and the API's field each searches.
FIELDS = {"name": "name", "owner": "username", "username": "username", "realm": "realm_name",
          "realm_name": "realm_name", "type": "type", "status": "status"}
STATUSES = ("active", "expiring", "expired", "invalidated")
TYPES = ("rest", "cross_cluster")
KNOWN_FIELDS = "name, owner, realm, status, type or metadata.<key>"


class SearchSyntaxError(ValueError):
    """What is wrong with a search, in a sentence for the page."""

    @property
    def message(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Term:
    field: str | None  # None: free text, matched in names
    value: str
    negated: bool = False


# ---------------------------------------------------------------------------------------------
# Tokens: "(", ")", "-(", "OR", "AND" and terms


def _quoted(text: str, position: int) -> tuple[str, int]:
    match = QUOTED.match(text, position)
    if match is None:
        raise SearchSyntaxError("A quote is not closed: add the closing \" or remove the opening one.")
    return ESCAPE.sub(r"\1", match[1]), match.end()


def _term(text: str, position: int) -> tuple[Term, int]:
    negated = text.startswith("-", position)
    position += negated
    field = FIELD.match(text, position)
    if field:
        position = field.end()
    if text.startswith('"', position):
        value, position = _quoted(text, position)
    else:
        word = WORD.match(text, position)
        if word is None:
            if field:
                raise SearchSyntaxError(f"Give a value after \u201c{field[0]}\u201d.")
            raise SearchSyntaxError("Give a search term after \u201c-\u201d, such as -owner:bob.")
        value, position = word[0], word.end()
    return Term(field[1] if field else None, value, negated), position


def tokenize(text: str) -> list:
    tokens, position = [], 0
    while position < len(text):
        space = SPACE.match(text, position)
        if space:
            position = space.end()
        elif text[position] in "()":
            tokens.append(text[position])
            position += 1
        elif text.startswith("-(", position):
            tokens.append("-(")
            position += 2
        else:
            term, end = _term(text, position)
            # OR and AND are operators as bare words only: quoted, they are searched for.
            bare = term.field is None and not term.negated and text[position] != '"'
            tokens.append(term.value if bare and term.value in ("OR", "AND") else term)
            position = end
    return tokens


# ---------------------------------------------------------------------------------------------
# Grammar: query = all (OR all)*; all = unit (AND? unit)*; unit = term | -?( query )


class _Parser:
    def __init__(self, tokens: list):
        self.tokens = tokens
        self.position = 0

    def peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self):
        token = self.peek()
        self.position += 1
        return token

    def query(self, depth: int = 0) -> dict:
        alternatives = [self.all_of(depth)]
        while self.peek() == "OR":
            self.take()
            alternatives.append(self.all_of(depth))
        return alternatives[0] if len(alternatives) == 1 else any_of(alternatives)

    def all_of(self, depth: int) -> dict:
        clauses = [self.unit(depth)]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            clauses.append(self.unit(depth))
        return clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}

    def unit(self, depth: int) -> dict:
        token = self.take()
        if isinstance(token, Term):
            return term_query(token)
        if token in ("(", "-("):
            if depth >= MAX_DEPTH:
                raise SearchSyntaxError(f"Too many nested parentheses: at most {MAX_DEPTH} levels.")
            if self.peek() == ")":
                raise SearchSyntaxError("Empty parentheses: put a search term between them.")
            inner = self.query(depth + 1)
            if self.take() != ")":
                raise SearchSyntaxError("A parenthesis is not closed: add the closing \u201c)\u201d.")
            return _not(inner) if token == "-(" else inner
        if token == ")":
            raise SearchSyntaxError("A closing parenthesis \u201c)\u201d has no opening one.")
        if token is None:
            token = self.tokens[self.position - 2] if self.position >= 2 else "OR"
            if token in ("(", "-("):
                raise SearchSyntaxError("A parenthesis is not closed: add the closing \u201c)\u201d.")
        raise SearchSyntaxError(f"Put a search term on each side of \u201c{token}\u201d.")


def parse(text: str) -> dict | None:
    """The search as a query DSL dict; None when it is empty."""
    if len(text) > MAX_LENGTH:
        raise SearchSyntaxError(f"The search is too long: at most {MAX_LENGTH:,} characters.")
    try:
        storable_text("search", text)
    except ValidationError:
        raise SearchSyntaxError("The search holds a character that cannot be searched for.") from None
    tokens = tokenize(text)
    if not tokens:
        return None
    parser = _Parser(tokens)
    query = parser.query()
    if parser.peek() is not None:
        # Only a stray ")" stops a complete query.
        raise SearchSyntaxError("A closing parenthesis \u201c)\u201d has no opening one.")
    return query


def names_field(text: str, field: str) -> bool:
    """Whether the search names ``field`` (a box name, such as ``status``)."""
    try:
        tokens = tokenize(text)
    except SearchSyntaxError:
        return False
    return any(isinstance(token, Term) and token.field == field for token in tokens)


# ---------------------------------------------------------------------------------------------
# Terms as query DSL


def any_of(clauses: list[dict]) -> dict:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def _not(clause: dict) -> dict:
    return {"bool": {"must_not": [clause]}}


def _literal(text: str) -> str:
    """Text for a wildcard query that matches itself only."""
    return re2.sub(r"([*?\\])", r"\\\1", text)


def _matches(field: str, value: str, case_insensitive: bool) -> dict:
    """``value`` on ``field``: a wildcard query if it has ``*`` or ``?``, else a term query."""
    kind = "wildcard" if "*" in value or "?" in value else "term"
    return {kind: {field: {"value": value, "case_insensitive": case_insensitive}}}


def term_query(term: Term) -> dict:
    clause = _positive(term)
    return _not(clause) if term.negated else clause


def _positive(term: Term) -> dict:
    if term.field is None:
        return {"wildcard": {"name": {"value": f"*{_literal(term.value)}*", "case_insensitive": True}}}
    if term.field.startswith("metadata."):
        if not all(METADATA_KEY.fullmatch(key) for key in term.field.split(".")[1:]):
            raise SearchSyntaxError(f"The metadata key of \u201c{term.field}\u201d cannot be searched.")
        return _matches(term.field, term.value, case_insensitive=False)
    field = FIELDS.get(term.field)
    if field is None:
        raise SearchSyntaxError(f"Unknown field \u201c{term.field}\u201d: search by {KNOWN_FIELDS}.")
    if field == "status":
        return status_query(term.value)
    if field == "type" and term.value not in TYPES:
        raise SearchSyntaxError(f"Unknown type \u201c{term.value}\u201d: use {' or '.join(TYPES)}.")
    # Names and owners in any case, as a person types them; realms exactly, as their index reads.
    return _matches(field, term.value, case_insensitive=field in ("name", "username"))


def owner_query(username: str) -> dict:
    """Keys of an owner by username, in any case: ``owner:`` and the Owner filter alike."""
    return _matches("username", username, case_insensitive=True)


def status_query(status: str, now: datetime | None = None) -> dict:
    """Keys of a status as the table's Status column shows it. Active keys include those that expire
    soon; ``expiring`` is those alone, within ``API_KEY_EXPIRY_WARNING``."""
    if status not in STATUSES:
        choices = f"{', '.join(STATUSES[:-1])} or {STATUSES[-1]}"
        raise SearchSyntaxError(f"Unknown status \u201c{status}\u201d: use {choices}.")
    if status == "invalidated":
        return {"term": {"invalidated": True}}
    now = now or timezone.now()
    live = {"term": {"invalidated": False}}
    expires_after_now = {"range": {"expiration": {"gt": epoch_millis(now)}}}
    if status == "expired":
        return {"bool": {"filter": [live, {"range": {"expiration": {"lte": epoch_millis(now)}}}]}}
    if status == "expiring":
        soon = epoch_millis(now + configured_time_value("API_KEY_EXPIRY_WARNING"))
        return {"bool": {"filter": [live, {"range": {"expiration": {"gt": epoch_millis(now), "lte": soon}}}]}}
    never_expires = _not({"exists": {"field": "expiration"}})
    return {"bool": {"filter": [live, any_of([expires_after_now, never_expires])]}}
