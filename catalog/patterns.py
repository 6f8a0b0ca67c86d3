"""Authors' regular expressions: compiled with RE2, refused with a reason, sampled.

RE2 matches in time linear in the answer and memory bounded per pattern, so a
pattern cannot hang the server; in exchange it has no backreferences and no
lookaround. A pattern is refused when the catalog loads if RE2 cannot read it or
its compiled program is larger than MAX_PATTERN_SIZE instructions.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2

from catalog.errors import DeskflowError

#: memory RE2 may use for one pattern: its program and its DFA cache
PATTERN_MAX_MEM = 4 * 1024 * 1024
#: instructions of a compiled pattern; matching costs at most this many steps per character
MAX_PATTERN_SIZE = 5000
#: RE2's limit on a counted repeat, nested ones multiplied together
MAX_REPEAT = 1000

LINEAR_HINT = "backreferences and lookaround are not supported: answers are matched in linear time"
SIZE_HINT = "use + or * with max_length instead of large counted repeats"

#: RE2's kinds of syntax error, in our words ("{}" is the part of the pattern it is about)
_REASONS = {
    "missing ]": "a [ is not closed",
    "missing )": "a ( is not closed",
    "unexpected )": "a ) closes no group",
    "missing (": "a ) closes no group",
    "trailing \\": "it ends with a lone \\",
    "invalid escape sequence": "unknown escape {}",
    "invalid character class": "unknown character class {}",
    "invalid character class range": "invalid character class or range {}",
    "no argument for repetition operator": "{} has nothing to repeat",
    "missing argument to repetition operator": "{} has nothing to repeat",
    "bad repetition operator": "invalid quantifier {}",
    "invalid perl operator": "unsupported group {}",
    "invalid named capture group": "invalid group name {}",
    "duplicate capture group name": "group name {} is used twice",
}
_BAD_REPEAT = "invalid repetition size"  # {1001}, nested repeats over the limit, or {2,1}
_TOO_BIG = "pattern too large"  # the program outgrew PATTERN_MAX_MEM while compiling
_COUNTS = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_BACKREFERENCE = re.compile(r"\\[1-9gk]|\(\?P=")


class PatternError(DeskflowError):
    """An author's pattern that Deskflow will not match answers against."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message} ({hint})" if hint else message)
        self.message, self.hint = message, hint


def _options(*, capture: bool) -> re2.Options:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False
    options.never_capture = not capture  # no groups wanted: the fastest matcher serves
    return options


@lru_cache(maxsize=1024)
def check_pattern(pattern: str) -> None:
    """Raise PatternError saying why `pattern` cannot be used; return when it can."""
    if not _encodable(pattern):
        raise PatternError("invalid regular expression: it contains an unpaired surrogate")
    try:
        # captures on, so that group syntax (duplicate names) is checked too
        program = re2.compile(pattern, _options(capture=True))
    except re2.error as exc:
        raise _explain(pattern, exc) from None
    if program.programsize > MAX_PATTERN_SIZE:
        raise _too_large(pattern)


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program that checks answers against `pattern`; PatternError when unusable."""
    check_pattern(pattern)
    return re2.compile(pattern, _options(capture=False))


def full_match(pattern: str, value: str) -> bool:
    """Whether all of `value` matches `pattern` (text that is not valid Unicode never does)."""
    return _encodable(value) and compile_pattern(pattern).fullmatch(value) is not None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _explain(pattern: str, exc: re2.error) -> PatternError:
    text = exc.args[0] if exc.args else ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    kind, _, part = text.partition(": ")
    if kind.startswith(_TOO_BIG):
        return _too_large(pattern)
    if kind == _BAD_REPEAT:
        counts = _COUNTS.fullmatch(part)
        if counts and counts.group(2) and int(counts.group(2)) < int(counts.group(1)):
            return PatternError(f"invalid regular expression {pattern}: {part} has its maximum "
                                "below its minimum")
        return _too_large(pattern, repeat=True)
    unsupported = _unsupported(pattern)
    if unsupported:
        return PatternError(f"invalid regular expression {pattern}: it uses {unsupported}",
                            LINEAR_HINT)
    reason = _REASONS.get(kind, "RE2 cannot read it").format(part)
    return PatternError(f"invalid regular expression {pattern}: {reason}")


def _too_large(pattern: str, *, repeat: bool = False) -> PatternError:
    if repeat:
        return PatternError(f"pattern {pattern} is too large: counted repeats may be at most "
                            f"{MAX_REPEAT}, nested ones multiplied together", SIZE_HINT)
    return PatternError(f"pattern {pattern} is too large: it compiles to more than "
                        f"{MAX_PATTERN_SIZE} instructions", SIZE_HINT)


def _unsupported(pattern: str) -> str:
    """`lookaround` or `a backreference` when the pattern has one outside a [class]."""
    outside = _outside_classes(pattern)
    if _LOOKAROUND.search(outside):
        return "lookaround"
    if _BACKREFERENCE.search(outside):
        return "a backreference"
    return ""


def _outside_classes(pattern: str) -> str:
    """The pattern with every [class] blanked out, escapes kept as written."""
    out: list[str] = []
    i, n, depth = 0, len(pattern), 0
    while i < n:
        c = pattern[i]
        if c == "\\":
            # escapes that mean something stay (\1, \k); an escaped (, [ or \ is plain text
            meaningful = depth == 0 and pattern[i + 1:i + 2].isalnum()
            out.append(pattern[i:i + 2] if meaningful else "  ")
            i += 2
            continue
        if depth == 0 and c == "[":
            depth = 1
            start = i + 1
            if pattern[start:start + 1] == "^":
                start += 1
            if pattern[start:start + 1] == "]":
                start += 1  # a leading ] is a literal in RE2 (as in Perl)
            out.append(" " * (start - i))
            i = start
            continue
        if depth and c == "]":
            depth = 0
        out.append(c if depth == 0 else " ")
        i += 1
    return "".join(out)


# ---------------------------------------------------------------- samples

_CLASS_ESCAPES = {"d": "1", "s": " ", "w": "a", "D": "a", "S": "a", "W": " "}
_CANDIDATES = "a1A -_.x0Z"


def sample_match(pattern: str) -> str | None:
    """A string `pattern` fully matches, for the simple shapes forms use; None otherwise.

    Literals, escapes, classes, groups (first branch) and quantifiers (least count, at
    least once); the candidate is kept only when RE2 agrees it matches.
    """
    try:
        compile_pattern(pattern)
        candidate, end = _sequence(pattern, 0)
    except (PatternError, _NoSample, re2.error, ValueError):
        return None  # a shape not sampled here (a class RE2 reads alone, an unclosed <name)
    if end != len(pattern) or not full_match(pattern, candidate):
        return None
    return candidate


class _NoSample(Exception):
    pass


def _sequence(p: str, i: int) -> tuple[str, int]:
    """Sample the branch starting at `i`; skip the other branches of its group."""
    out: list[str] = []
    while i < len(p) and p[i] != ")":
        c = p[i]
        if c == "|":
            i = _skip_branches(p, i)
            break
        if c in "^$":
            i += 1
            continue
        atom, i = _atom(p, i)
        low, i = _quantifier(p, i)
        out.append(atom * max(low, 1))
    return "".join(out), i


def _atom(p: str, i: int) -> tuple[str, int]:
    c = p[i]
    if c == "\\":
        e = p[i + 1:i + 2]
        if e in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[e], i + 2
        if e.isalnum():
            raise _NoSample  # \x41, \n, \p{L}, \b...: rare in forms; not worth spelling out
        return e, i + 2
    if c == "[":
        return _class(p, i)
    if c == "(":
        j = i + 1
        if p.startswith("?:", j):
            j += 2
        elif p.startswith("?P<", j) or p.startswith("?<", j):
            j = p.index(">", j) + 1
        elif p.startswith("?", j):
            raise _NoSample  # flags
        text, j = _sequence(p, j)
        if p[j:j + 1] != ")":
            raise _NoSample
        return text, j + 1
    if c == ".":
        return "a", i + 1
    if c in "*+?{":
        raise _NoSample
    return c, i + 1


def _class(p: str, i: int) -> tuple[str, int]:
    """The first character a [class] allows (for a negated one, a common one it allows)."""
    j = i + 1
    negated = p[j:j + 1] == "^"
    j += negated
    first: str | None = None
    start = j
    while j < len(p) and (p[j] != "]" or j == start):
        size = 2 if p[j] == "\\" else 1
        if first is None:
            first = _CLASS_ESCAPES.get(p[j + 1:j + 2], p[j + 1:j + 2]) if size == 2 else p[j]
        j += size
    if j >= len(p):
        raise _NoSample
    end = j + 1
    if not negated and first is not None:
        return first, end
    allowed = re2.compile(p[i:end], _options(capture=False))
    for candidate in _CANDIDATES:
        if allowed.fullmatch(candidate):
            return candidate, end
    raise _NoSample


def _quantifier(p: str, i: int) -> tuple[int, int]:
    """The least count of the quantifier at `i` (1 when there is none) and where it ends."""
    c = p[i:i + 1]
    if c in ("*", "?"):
        low, i = 0, i + 1
    elif c == "+":
        low, i = 1, i + 1
    elif c == "{" and (m := re.match(r"\{([0-9]+)(?:,[0-9]*)?\}", p[i:])):
        low, i = int(m.group(1)), i + m.end()
    else:
        return 1, i
    if p[i:i + 1] == "?":
        i += 1
    return low, i


def _skip_branches(p: str, i: int) -> int:
    """From a `|`, the index of the `)` closing the group (or the end of the pattern)."""
    depth = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            _, i = _class(p, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return i
