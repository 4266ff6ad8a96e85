"""The syntax of Elasticsearch's ``simple_query_string`` query (Lucene's simple query parser).

``+`` joins with AND, ``|`` with OR, ``-`` negates, ``"..."`` is a phrase, a trailing ``*`` makes a
prefix, ``(`` and ``)`` group, ``~N`` is a fuzziness or a slop, ``\\`` escapes. Whitespace separates
terms, joined by the default operator. There is no precedence: operators apply left to right, and a
run of the same operator is one group. A term or group the query cannot use is left out, as
Lucene leaves out a clause that analyses to nothing.

The parse is a small tree of ``Text``, ``Not`` and ``Group`` nodes; ``restapi.query.dsl`` turns it into
clauses of the query DSL over the requested fields.
"""

from dataclasses import dataclass

FLAGS = frozenset(
    {"AND", "OR", "NOT", "PREFIX", "PHRASE", "PRECEDENCE", "ESCAPE", "WHITESPACE", "FUZZY", "NEAR", "SLOP"}
)
# Elasticsearch's integer form of the flags, bit by bit.
FLAG_BITS = {
    "AND": 1, "NOT": 2, "OR": 4, "PREFIX": 8, "PHRASE": 16, "PRECEDENCE": 32, "ESCAPE": 64,
    "WHITESPACE": 128, "FUZZY": 256, "NEAR": 512, "SLOP": 512,
}


@dataclass(frozen=True)
class Text:
    """A term or a phrase; ``prefix`` when it ended with ``*``; ``fuzziness`` from ``~N``."""

    text: str
    prefix: bool = False
    phrase: bool = False
    fuzziness: int = 0


@dataclass(frozen=True)
class Not:
    clause: object


@dataclass(frozen=True)
class Group:
    operator: str  # "and" or "or"
    clauses: tuple


def parse_flags(value) -> frozenset:
    """``flags``: ``ALL``, ``NONE`` or names joined by ``|``; or Elasticsearch's integer form."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value == -1:
            return FLAGS
        return frozenset(name for name, bit in FLAG_BITS.items() if value & bit)
    if not isinstance(value, str):
        raise ValueError(value)
    names = set()
    for name in value.upper().split("|"):
        name = name.strip()
        if name == "ALL":
            names |= FLAGS
        elif name in FLAGS:
            names.add(name)
        elif name not in ("NONE", ""):
            raise ValueError(name)
    return frozenset(names)


class TooDeep(ValueError):
    """Parentheses nest deeper than the query may."""


class _State:
    def __init__(self, text: str, flags: frozenset, default_operator: str, max_depth: int):
        self.text = text
        self.index = 0
        self.flags = flags
        self.default_operator = default_operator
        self.max_depth = max_depth

    def at(self, char: str, flag: str) -> bool:
        return self.index < len(self.text) and self.text[self.index] == char and flag in self.flags

    def at_space(self) -> bool:
        return self.index < len(self.text) and self.text[self.index].isspace() and "WHITESPACE" in self.flags

    def token_ends(self) -> bool:
        return (
            self.at('"', "PHRASE") or self.at("|", "OR") or self.at("+", "AND") or self.at("(", "PRECEDENCE")
            or self.at(")", "PRECEDENCE") or self.at_space()
        )


class _Tree:
    """The clauses of one level, joined left to right as Lucene's simple parser joins them."""

    def __init__(self, default_operator: str):
        self.default_operator = default_operator
        self.top = None
        self.operator = None
        self.previous = None
        self.negations = 0

    def add(self, branch) -> None:
        if branch is not None:
            if self.negations % 2:
                branch = Not(branch)
            if self.top is None:
                self.top = branch
            else:
                operator = self.operator or self.default_operator
                if operator == self.previous and isinstance(self.top, Group):
                    self.top = Group(operator, (*self.top.clauses, branch))
                else:
                    self.top = Group(operator, (self.top, branch))
                self.previous = operator
        self.negations = 0
        self.operator = None


def _number(state: _State) -> int:
    start = state.index
    while state.index < len(state.text) and state.text[state.index].isdigit():
        state.index += 1
    digits = state.text[start : state.index]
    return int(digits[:9]) if digits else 0


def _phrase(state: _State) -> Text | None:
    state.index += 1
    chars, escaped = [], False
    while state.index < len(state.text):
        char = state.text[state.index]
        if not escaped and char == "\\" and "ESCAPE" in state.flags:
            escaped = True
        elif not escaped and char == '"':
            break
        else:
            chars.append(char)
            escaped = False
        state.index += 1
    closed = state.index < len(state.text)
    state.index += 1
    if closed and state.at("~", "NEAR"):
        state.index += 1
        _number(state)  # a slop: a phrase on a keyword is one term, whatever the slop
    if not closed:
        # An unclosed quote is a term of its own, as Lucene reads it.
        return Text('"' + "".join(chars)) if chars else None
    return Text("".join(chars), phrase=True) if chars else None


def _token(state: _State) -> Text | None:
    chars, escaped, last_escaped, fuzziness = [], False, False, 0
    while state.index < len(state.text):
        char = state.text[state.index]
        if not escaped and char == "\\" and "ESCAPE" in state.flags:
            escaped = True
            state.index += 1
            continue
        if not escaped and state.token_ends():
            break
        if not escaped and chars and char == "~" and "FUZZY" in state.flags:
            state.index += 1
            fuzziness = min(_number(state), 2)
            break
        chars.append(char)
        last_escaped, escaped = escaped, False
        state.index += 1
    if not chars:
        return None
    if chars[-1] == "*" and not last_escaped and "PREFIX" in state.flags:
        return Text("".join(chars[:-1]), prefix=True)
    return Text("".join(chars), fuzziness=fuzziness)


def _level(state: _State, depth: int):
    if depth > state.max_depth:
        raise TooDeep(depth)
    tree = _Tree(state.default_operator)
    while state.index < len(state.text):
        if state.at("(", "PRECEDENCE"):
            state.index += 1
            tree.add(_level(state, depth + 1))
        elif state.at(")", "PRECEDENCE"):
            state.index += 1
            if depth:
                return tree.top
        elif state.at('"', "PHRASE"):
            tree.add(_phrase(state))
        elif state.at("+", "AND"):
            state.index += 1
            if tree.top is not None:
                tree.operator = "and"
        elif state.at("|", "OR"):
            state.index += 1
            if tree.top is not None:
                tree.operator = "or"
        elif state.at("-", "NOT"):
            state.index += 1
            tree.negations += 1
        elif state.at_space():
            state.index += 1
        else:
            tree.add(_token(state))
    return tree.top


def parse(text: str, flags: frozenset = FLAGS, default_operator: str = "or", max_depth: int = 30):
    """The tree of ``text``, or None when it holds no term at all; ``TooDeep`` when its parentheses
    nest deeper than ``max_depth``."""
    return _level(_State(text, flags, default_operator, max_depth), 0)
