"""Name patterns supplied by users (SPEC §1, §3): index names and action names in role descriptors.

Two forms, as in Elasticsearch: a wildcard pattern (``*`` any run of characters, ``?`` one
character, everything else literal, ``[`` and ``\\`` included), and ``/regex/``, a regular
expression in Lucene's RegExp syntax. Both are translated to RE2, which runs in time linear in the
name and never backtracks, so no pattern can stall a worker.

Lucene syntax matches the whole name (``^`` and ``$`` are ordinary characters) and offers ``.``,
``[...]`` and ``[^...]`` classes with ranges, ``\\d \\s \\w`` and their negations, ``?*+{n,m}``,
``|``, ``(...)``, ``"..."`` literal strings, ``@`` (any string), ``#`` (nothing) and ``<n-m>``
numeric intervals. Refused with a reason: the complement ``~`` and intersection ``&`` operators
(RE2 has no equivalent), named automata ``<name>``, regexes over ``index.max_regex_length``, and
patterns of either form whose program exceeds RE2's memory budget.
"""

import functools
from collections.abc import Iterable

import re2

# Elasticsearch's index.max_regex_length.
MAX_REGEX_LENGTH = 1000
# RE2's own limit on a counted repetition, {n,m}.
MAX_REPETITION = 1000
# Memory RE2 may use for one pattern's program and its matching state; a pattern whose program
# does not fit is refused. Index names have at most 255 bytes: real patterns need a few KiB.
PROGRAM_MEMORY = 256 << 10
# Compiled programs kept between requests (a PrivilegeSet is built for each request): at most
# CACHE_SIZE * PROGRAM_MEMORY bytes, plus re2's own cache of the last 128 compiled.
CACHE_SIZE = 256

# Lucene's numeric intervals are Java ints.
MAX_INTERVAL_BOUND = 2**31 - 1
MAX_CODE_POINT = 0x10FFFF
NOTHING = "[^\\x{0}-\\x{10FFFF}]"

_PREDEFINED_CLASSES = {
    "d": ((0x30, 0x39),),
    "s": ((0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x20)),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
}
# Lucene refuses a backslash before any other ASCII letter.
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class PatternError(ValueError):
    """A pattern that cannot be compiled; ``reason`` says why, for the person who wrote it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def is_regex_pattern(pattern: str) -> bool:
    """Elasticsearch's ``/regex/`` form of a name pattern."""
    return len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/")


def is_literal(pattern: str) -> bool:
    return not (is_regex_pattern(pattern) or "*" in pattern or "?" in pattern)


def validate_pattern(pattern: str) -> None:
    """Raise PatternError if ``pattern`` cannot be compiled."""
    if not is_literal(pattern):
        _, reason = _cached_program(pattern)
        if reason:
            raise PatternError(reason)


class NamePatterns:
    """The names matched by any of a list of patterns, such as an ``indices`` entry's ``names``.

    Plain names are looked up in a set; other patterns are compiled on first use, and one that
    cannot be compiled (stored before it was refused) matches nothing.
    """

    __slots__ = ("_any", "_literals", "_patterns")

    def __init__(self, patterns: Iterable[str]):
        patterns = list(dict.fromkeys(patterns))
        self._any = "*" in patterns
        self._literals = frozenset(pattern for pattern in patterns if is_literal(pattern))
        self._patterns = tuple(pattern for pattern in patterns if not is_literal(pattern))

    def matches(self, name: str) -> bool:
        if self._any or name in self._literals:
            return True
        if not self._patterns:
            return False
        # A lone surrogate (valid in a JSON string) is one character to RE2 too.
        text = name.encode("utf-8", "surrogatepass")
        for pattern in self._patterns:
            program, _ = _cached_program(pattern)
            if program is not None and program.fullmatch(text) is not None:
                return True
        return False


# ---------------------------------------------------------------------------------------------
# Coverage: whether every name one pattern matches is matched by others

# Pairs of automaton states explored before giving up, and answering "not covered".
MAX_COVERAGE_STATES = 20_000


def is_total(pattern: str) -> bool:
    """A wildcard pattern that matches every name."""
    return bool(pattern) and set(pattern) == {"*"}


def covers(granted: Iterable[str], requested: str) -> bool:
    """Whether every name ``requested`` matches is matched by one of the ``granted`` patterns, as
    Elasticsearch checks one automaton is a subset of another.

    Exact for wildcard patterns, which is what application actions and resources are in practice.
    Where a ``/regex/`` is involved the answer errs towards "not covered": a requested regex is
    covered only by a total pattern (``*``), and a granted regex covers only the plain names it
    matches. So does a comparison too large to finish within MAX_COVERAGE_STATES.
    """
    granted = list(dict.fromkeys(granted))
    if any(is_total(pattern) for pattern in granted):
        return True
    if is_literal(requested):
        return NamePatterns(granted).matches(requested)
    if is_regex_pattern(requested):
        return False
    return _wildcard_subset(requested, [pattern for pattern in granted if not is_regex_pattern(pattern)])


def _closure(pattern: str, positions) -> frozenset:
    """Positions reachable without reading a character: a ``*`` may match nothing."""
    reached, pending = set(positions), list(positions)
    while pending:
        position = pending.pop()
        if position < len(pattern) and pattern[position] == "*" and position + 1 not in reached:
            reached.add(position + 1)
            pending.append(position + 1)
    return frozenset(reached)


def _step(pattern: str, positions: frozenset, char: str | None) -> frozenset:
    """Positions after reading ``char`` (None: any character that no pattern names)."""
    after = set()
    for position in positions:
        if position < len(pattern):
            token = pattern[position]
            if token == "*":
                after.add(position)
            elif token == "?" or token == char:
                after.add(position + 1)
    return _closure(pattern, after)


def _wildcard_subset(requested: str, granted: list[str]) -> bool:
    """Walks the requested pattern's automaton and the union of the granted ones' side by side, over
    the characters the patterns name and one standing for every other: a name the requested pattern
    accepts and no granted pattern does is a counterexample."""
    alphabet = [*sorted({char for pattern in (requested, *granted) for char in pattern} - {"*", "?"}), None]

    def union_step(states: tuple, char) -> tuple:
        pairs = zip(granted, states, strict=True)
        return tuple(_step(pattern, positions, char) for pattern, positions in pairs)

    def union_accepts(states: tuple) -> bool:
        return any(len(pattern) in positions for pattern, positions in zip(granted, states, strict=True))

    start = (_closure(requested, {0}), tuple(_closure(pattern, {0}) for pattern in granted))
    seen, pending = {start}, [start]
    while pending:
        mine, theirs = pending.pop()
        if len(requested) in mine and not union_accepts(theirs):
            return False
        for char in alphabet:
            following = _step(requested, mine, char)
            if not following:
                continue
            state = (following, union_step(theirs, char))
            if state not in seen:
                if len(seen) >= MAX_COVERAGE_STATES:
                    return False
                seen.add(state)
                pending.append(state)
    return True


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_program(pattern: str) -> tuple:
    """``(program, None)``, or ``(None, reason)`` for a pattern that cannot be compiled."""
    try:
        return compile_pattern(pattern), None
    except PatternError as error:
        return None, error.reason


def compile_pattern(pattern: str):
    """The RE2 program matching exactly the names ``pattern`` matches."""
    regex = lucene_to_re2(pattern[1:-1]) if is_regex_pattern(pattern) else wildcard_to_re2(pattern)
    try:
        return re2.compile(regex, _OPTIONS)
    except re2.error as error:
        raise PatternError(_compile_failure(error)) from None


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PROGRAM_MEMORY
    options.dot_nl = True
    options.never_capture = True
    options.log_errors = False
    return options


_OPTIONS = _options()


def _compile_failure(error: re2.error) -> str:
    message = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
    if "pattern too large" in message:
        return f"the pattern is too large to compile (its program needs more than {PROGRAM_MEMORY >> 10} KiB)"
    if "repetition size" in message:
        return f"nested repetitions would repeat more than {MAX_REPETITION} times"
    return f"the pattern cannot be compiled: {message}"


# ---------------------------------------------------------------------------------------------
# Wildcard patterns


def wildcard_to_re2(pattern: str) -> str:
    """``*`` and ``?`` are wildcards; every other character is literal."""
    return "".join(".*" if char == "*" else "." if char == "?" else _literal(char) for char in pattern)


def _literal(char: str) -> str:
    return char if char.isascii() and char.isalnum() else f"\\x{{{ord(char):X}}}"


# ---------------------------------------------------------------------------------------------
# Character sets, as sorted lists of inclusive code point ranges


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    complement, start = [], 0
    for low, high in _merged(ranges):
        if low > start:
            complement.append((start, low - 1))
        start = high + 1
    if start <= MAX_CODE_POINT:
        complement.append((start, MAX_CODE_POINT))
    return complement


def _class_regex(ranges: Iterable[tuple[int, int]]) -> str:
    ranges = _merged(ranges)
    if not ranges:
        return NOTHING
    items = (
        f"\\x{{{low:X}}}" if low == high else f"\\x{{{low:X}}}-\\x{{{high:X}}}" for low, high in ranges
    )
    return "[" + "".join(items) + "]"


def _predefined(letter: str) -> list[tuple[int, int]]:
    """Lucene's ``\\d \\s \\w`` (ASCII only, ``\\s`` without form feed) and their negations."""
    ranges = _PREDEFINED_CLASSES[letter.lower()]
    return list(ranges) if letter.islower() else _complement(ranges)


# ---------------------------------------------------------------------------------------------
# Numeric intervals


def _any_digits(count: int) -> str:
    return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _digit_range(low: str, high: str) -> str:
    return low if low == high else f"[{low}-{high}]"


def _at_least(digits: str) -> str:
    """Digit strings as long as ``digits`` whose value is at least its value."""
    if len(digits) == 1:
        return _digit_range(digits, "9")
    head, tail = digits[0], digits[1:]
    choices = [head + _at_least(tail)]
    if head < "9":
        choices.append(_digit_range(chr(ord(head) + 1), "9") + _any_digits(len(tail)))
    return "(?:" + "|".join(choices) + ")"


def _at_most(digits: str) -> str:
    """Digit strings as long as ``digits`` whose value is at most its value."""
    if len(digits) == 1:
        return _digit_range("0", digits)
    head, tail = digits[0], digits[1:]
    choices = [head + _at_most(tail)]
    if head > "0":
        choices.append(_digit_range("0", chr(ord(head) - 1)) + _any_digits(len(tail)))
    return "(?:" + "|".join(choices) + ")"


def _between(low: str, high: str) -> str:
    """Digit strings of the common length of ``low`` <= ``high`` whose value lies between theirs."""
    shared = 0
    while shared < len(low) and low[shared] == high[shared]:
        shared += 1
    prefix, low, high = low[:shared], low[shared:], high[shared:]
    if not low:
        return prefix
    if len(low) == 1:
        return prefix + _digit_range(low, high)
    # Past the shared prefix at most ten digits remain: the bounds are below 2**31.
    choices = [low[0] + _at_least(low[1:])]
    if ord(high[0]) - ord(low[0]) > 1:
        choices.append(_digit_range(chr(ord(low[0]) + 1), chr(ord(high[0]) - 1)) + _any_digits(len(low) - 1))
    choices.append(high[0] + _at_most(high[1:]))
    return prefix + "(?:" + "|".join(choices) + ")"


def interval_to_re2(low: int, high: int, width: int) -> str:
    """Lucene's ``<low-high>``: with a fixed ``width``, numbers written with exactly that many digits;
    with width 0, numbers written with any number of leading zeros."""
    if width:
        return _between(str(low).zfill(width), str(high).zfill(width))
    choices = []
    for length in range(len(str(low)), len(str(high)) + 1):
        smallest = max(low, 10 ** (length - 1) if length > 1 else 0)
        largest = min(high, 10**length - 1)
        choices.append(_between(str(smallest), str(largest)))
    return "0*(?:" + "|".join(choices) + ")"


# ---------------------------------------------------------------------------------------------
# Lucene regular expressions


def lucene_to_re2(regex: str) -> str:
    """An RE2 regex matching the same whole names as Lucene's RegExp (with its default syntax) does."""
    if len(regex) > MAX_REGEX_LENGTH:
        raise PatternError(
            f"the regular expression is {len(regex)} characters long, more than the maximum of "
            f"[{MAX_REGEX_LENGTH}] (index.max_regex_length)"
        )
    return _LuceneTranslator(regex).translate()


class _Group:
    """An open ``(...)`` (or the whole expression): finished alternatives and the one being read."""

    __slots__ = ("alternatives", "opened_at", "sequence")

    def __init__(self, opened_at: int):
        self.opened_at = opened_at
        self.alternatives: list[str] = []
        self.sequence: list[str] = []

    def regex(self) -> str:
        return "(?:" + "|".join([*self.alternatives, "".join(self.sequence)]) + ")"


class _LuceneTranslator:
    """Reads a Lucene regex as Lucene's parser does (same precedence, same characters literal where
    Lucene takes them literally) and writes RE2. Groups are kept on a list, not the call stack, so
    nesting depth is bounded by the length limit alone."""

    def __init__(self, regex: str):
        self.regex = regex
        self.pos = 0

    # -- reading

    def more(self) -> bool:
        return self.pos < len(self.regex)

    def peek(self, chars: str) -> bool:
        return self.more() and self.regex[self.pos] in chars

    def match(self, char: str) -> bool:
        if self.peek(char):
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if not self.more():
            raise PatternError("unexpected end of the regular expression")
        self.pos += 1
        return self.regex[self.pos - 1]

    # -- structure

    def translate(self) -> str:
        if not self.regex:
            return ""
        groups = [_Group(-1)]
        while True:
            element = self.element()
            if element is None:
                groups.append(_Group(self.pos - 1))
                continue
            groups[-1].sequence.append(self.repeats(element))
            while self.peek(")") and len(groups) > 1:
                self.pos += 1
                groups[-2].sequence.append(self.repeats(groups.pop().regex()))
            if not self.more():
                if len(groups) > 1:
                    raise PatternError(
                        f"unbalanced parentheses: the [(] at position {groups[-1].opened_at} is never closed"
                    )
                return groups[0].regex()
            if self.peek(")"):
                raise PatternError(f"unbalanced parentheses: unexpected [)] at position {self.pos}")
            if self.peek("&"):
                raise PatternError("the intersection operator [&] is not supported")
            if self.match("|"):
                groups[-1].alternatives.append("".join(groups[-1].sequence))
                groups[-1].sequence = []

    def element(self) -> str | None:
        """One operand of a concatenation, or None when it opens a group."""
        if self.peek("~"):
            raise PatternError("the complement operator [~] is not supported")
        if self.match("["):
            return self.char_class()
        if self.match("."):
            return "."
        if self.match("#"):
            return NOTHING
        if self.match("@"):
            return ".*"
        if self.match('"'):
            return self.quoted()
        if self.match("("):
            return "" if self.match(")") else None
        if self.match("<"):
            return self.interval()
        predefined = self.escape()
        if predefined is not None:
            return _class_regex(predefined)
        return _literal(self.next())

    def repeats(self, operand: str) -> str:
        while self.peek("?*+{"):
            operator = self.next()
            if operator == "{":
                operator = self.counted_repetition()
            operand = f"(?:{operand}){operator}"
        return operand

    def counted_repetition(self) -> str:
        low = self.number()
        if low is None:
            raise PatternError(f"expected a number at position {self.pos}")
        high = self.number() if self.match(",") else low
        if not self.match("}"):
            raise PatternError(f"expected [}}] at position {self.pos}")
        for count in (low, high):
            if count is not None and count > MAX_REPETITION:
                raise PatternError(f"repetition count [{count}] is larger than {MAX_REPETITION}")
        if high is None:
            return f"{{{low},}}"
        if low > high:
            raise PatternError(f"invalid repetition range {{{low},{high}}}: the minimum is above the maximum")
        return f"{{{low},{high}}}"

    def number(self) -> int | None:
        start = self.pos
        while self.peek("0123456789"):
            self.pos += 1
        return int(self.regex[start : self.pos]) if self.pos > start else None

    # -- leaves

    def escape(self) -> list[tuple[int, int]] | None:
        """After a backslash: a predefined class, or None with the escaped character up next."""
        if not self.match("\\"):
            return None
        if self.peek("dDsSwW"):
            return _predefined(self.next())
        if self.peek(_LETTERS):
            raise PatternError(f"invalid character class [\\{self.next()}]")
        return None

    def char_class(self) -> str:
        opened_at = self.pos - 1
        negated = self.match("^")
        ranges = self.class_item()
        while self.more() and not self.peek("]"):
            ranges += self.class_item()
        if not self.match("]"):
            raise PatternError(f"the character class at position {opened_at} is never closed")
        return _class_regex(_complement(ranges) if negated else ranges)

    def class_item(self) -> list[tuple[int, int]]:
        escaped = self.peek("\\")
        predefined = self.escape()
        if predefined is not None:
            return predefined
        if escaped and self.regex[self.pos - 1 : self.pos + 1] == "\\\\":
            # Lucene takes an escaped backslash alone, never as the start of a range.
            self.pos += 1
            return [(0x5C, 0x5C)]
        low = self.next()
        if not self.match("-"):
            return [(ord(low), ord(low))]
        self.match("\\")
        high = self.next()
        if low > high:
            raise PatternError(f"invalid character range [{low}-{high}]: the start is after the end")
        return [(ord(low), ord(high))]

    def quoted(self) -> str:
        opened_at = self.pos - 1
        end = self.regex.find('"', self.pos)
        if end < 0:
            raise PatternError(f"the string quoted at position {opened_at} is never closed")
        text, self.pos = self.regex[self.pos : end], end + 1
        return "".join(_literal(char) for char in text)

    def interval(self) -> str:
        opened_at = self.pos - 1
        end = self.regex.find(">", self.pos)
        if end < 0:
            raise PatternError(f"the interval at position {opened_at} is never closed with [>]")
        body, self.pos = self.regex[self.pos : end], end + 1
        if "-" not in body:
            raise PatternError(f"named automata such as [<{body}>] are not supported")
        low, _, high = body.partition("-")
        if not (low.isascii() and low.isdigit() and high.isascii() and high.isdigit()):
            raise PatternError(f"invalid numeric interval [<{body}>] at position {opened_at}")
        bounds = sorted((int(low), int(high)))
        if bounds[1] > MAX_INTERVAL_BOUND:
            raise PatternError(f"numeric interval bounds must be at most {MAX_INTERVAL_BOUND}")
        width = len(low) if len(low) == len(high) else 0
        return "(?:" + interval_to_re2(bounds[0], bounds[1], width) + ")"
