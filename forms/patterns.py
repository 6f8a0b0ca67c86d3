"""Which authors' patterns mean the same in JavaScript as on the server.

Patterns are written for the server (Python's `regex` module, matched in full).
They also go to the browser (the HTML `pattern` attribute, which browsers compile
with the `v` flag; the client rules, compiled with `u`) and into the API's JSON
Schema (ECMA-262 patterns). A pattern goes there only when it is written in the
subset both dialects read alike; otherwise only the server checks it. The check
is conservative: `\\w` and `\\b` are refused (Unicode in Python, ASCII in
JavaScript), as are inline flags, possessive quantifiers, `\\A`, `\\Z`, `{,n}`,
`(?P<name>...)` and anything else it does not know.
"""

from __future__ import annotations

import re

_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_SAME_ESCAPES = frozenset("dDsSnrtfv")
_V_RESERVED = frozenset("()[{}/|")
_V_DOUBLED = frozenset("&!#$%*+,.:;<=>?@^`~")
_QUANTIFIER = re.compile(r"\{[0-9]+(,[0-9]*)?\}")
_GROUP = re.compile(r"\((\?(:|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>))?")
_HEX = re.compile(r"x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}")


def ecma_compatible(pattern: str, *, unicode_sets: bool = False) -> bool:
    """Say whether JavaScript (`u` flag, or `v` with unicode_sets) reads `pattern` as Python does."""
    i, n = 0, len(pattern)
    in_class = False
    atoms = 0  # characters so far in the current [class]
    state = "start"  # start | atom | quantified | lazy
    while i < n:
        c = pattern[i]
        if c == "\\":
            size = _escape(pattern, i, in_class)
            if not size:
                return False
            i, atoms, state = i + size, atoms + 1, "atom"
            continue
        if in_class:
            if c == "]":
                if atoms == 0:
                    return False  # `[]` is a literal ] in Python, an empty set in JavaScript
                in_class, state = False, "atom"
            elif c == "[":
                return False
            elif unicode_sets and not _v_class_char(pattern, i, atoms):
                return False
            else:
                atoms += 1
            i += 1
            continue
        if c == "[":
            in_class, atoms = True, 0
            i += 2 if pattern[i + 1:i + 2] == "^" else 1
            continue
        if c == "(":
            m = _GROUP.match(pattern, i)
            if m is None or (m.group(1) is None and pattern[i + 1:i + 2] == "?"):
                return False
            i, state = m.end(), "start"
            continue
        if c in "*+?" or c == "{":
            size = 1
            if c == "{":
                m = _QUANTIFIER.match(pattern, i)
                if m is None:
                    return False
                size = m.end() - i
            if state == "atom":
                state = "quantified"
            elif state == "quantified" and c == "?":
                state = "lazy"
            else:
                return False  # possessive `a*+`, or a quantifier with nothing to repeat
            i += size
            continue
        if c in "}]":
            return False
        state = "start" if c in "|^" else "atom"
        i += 1
    return not in_class


def _escape(pattern: str, i: int, in_class: bool) -> int:
    """Length of the escape at `i` when it means the same in both dialects, else 0."""
    e = pattern[i + 1:i + 2]
    if not e:
        return 0
    if e in _SAME_ESCAPES or e in _SYNTAX:
        return 2
    if e == "b" and in_class:
        return 2  # backspace in both
    if e == "-" and in_class:
        return 2
    if e in "123456789" and not in_class and not pattern[i + 2:i + 3].isdigit():
        return 2  # a backreference
    if e == "0" and not pattern[i + 2:i + 3].isdigit():
        return 2
    m = _HEX.match(pattern, i + 1)
    return 1 + len(m.group(0)) if m else 0


def _v_class_char(pattern: str, i: int, atoms: int) -> bool:
    c = pattern[i]
    if c in _V_RESERVED:
        return False
    if c == "-":  # only as a range between two characters
        return atoms > 0 and pattern[i - 1] != "-" and pattern[i + 1:i + 2] not in ("", "]", "-")
    return not (c in _V_DOUBLED and pattern[i + 1:i + 2] == c)


def ascii_ignorecase(pattern: str) -> str:
    """Spell letters in both cases (`h` as `[hH]`, `[a-c]` as `[a-cA-C]`): no flag needed."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif c == "[":
            start = i + 2 if pattern[i + 1:i + 2] == "^" else i + 1
            tokens, j = [], start
            while j < len(pattern) and pattern[j] != "]":
                size = 2 if pattern[j] == "\\" else 1
                tokens.append(pattern[j:j + size])
                j += size
            body = "".join(tokens)
            other = "".join(t if len(t) > 1 or not t.isascii() else t.swapcase() for t in tokens)
            out.append(pattern[i:start] + body + (other if other != body else "") + "]")
            i = j + 1
        else:
            out.append(f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else c)
            i += 1
    return "".join(out)
