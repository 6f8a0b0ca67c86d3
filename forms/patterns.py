"""Which authors' patterns mean the same in JavaScript as on the server, and how to spell them.

Patterns are written for the server (RE2, matched in full: see catalog.patterns).
They also go to the browser (the HTML `pattern` attribute, which browsers compile
with the `v` flag; the client rules, compiled with `u`) and into the API's JSON
Schema (ECMA-262 patterns). A pattern goes there only when it is written in the
subset both dialects read alike, spelled out where they differ; otherwise only the
server checks it. The check is conservative: `\\w` and `\\b` are refused (ASCII in
RE2 and JavaScript, Unicode in Python tools reading the JSON Schema), as are inline
flags, `\\p{..}` classes, `\\A`, `\\z`, `\\Q`, `{,n}`, `(?P<name>...)` and anything
else it does not know. `\\d` is ASCII in both. `.` and `\\s` differ (RE2's `.` only
excludes a newline, its `\\s` is `[\\t\\n\\f\\r ]`), so they are spelled out for JavaScript.
"""

from __future__ import annotations

import re

_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_SAME_ESCAPES = frozenset("dDnrtfv")
_V_RESERVED = frozenset("()[{}/|")
_V_DOUBLED = frozenset("&!#$%*+,.:;<=>?@^`~")
_QUANTIFIER = re.compile(r"\{[0-9]+(,[0-9]*)?\}")
_GROUP = re.compile(r"\((\?(:|<[A-Za-z_][A-Za-z0-9_]*>))?")
_HEX = re.compile(r"x[0-9A-Fa-f]{2}")
#: RE2's meaning, spelled for JavaScript: (outside a class, inside one)
_RE2_SPELLING = {".": ("[^\\n]", "."), "\\s": ("[\\t\\n\\f\\r ]", "\\t\\n\\f\\r "),
                 "\\S": ("[^\\t\\n\\f\\r ]", "")}


def ecma_pattern(pattern: str, *, unicode_sets: bool = False) -> str | None:
    """`pattern` spelled so JavaScript (`u` flag, or `v` with unicode_sets) reads it as RE2 does.

    None when it uses something the two read differently or that is not checked here.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    atoms = 0  # characters so far in the current [class]
    names: set[str] = set()
    state = "start"  # start | atom | quantified | lazy
    while i < n:
        c = pattern[i]
        if c == "\\":
            size = _escape(pattern, i, in_class)
            if not size:
                return None
            token = pattern[i:i + size]
            if in_class and token[1] in "dDsS" and pattern[i + size:i + size + 1] == "-" \
                    and pattern[i + size + 1:i + size + 2] != "]":
                return None  # `[\d-a]`: RE2 reads \d, - and a; JavaScript refuses it
            if token in _RE2_SPELLING:
                token = _RE2_SPELLING[token][in_class]
                if not token:
                    return None  # [\S] cannot be spelled inside a class
            out.append(token)
            i, atoms, state = i + size, atoms + 1, "atom"
            continue
        if in_class:
            if c == "]":
                if atoms == 0:
                    return None  # `[]` is a literal ] in RE2, an empty set in JavaScript
                in_class, state = False, "atom"
            elif c == "[":
                return None
            elif unicode_sets and not _v_class_char(pattern, i, atoms):
                return None
            else:
                atoms += 1
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class, atoms = True, 0
            size = 2 if pattern[i + 1:i + 2] == "^" else 1
            out.append(pattern[i:i + size])
            i += size
            continue
        if c == "(":
            m = _GROUP.match(pattern, i)
            if m is None or (m.group(1) is None and pattern[i + 1:i + 2] == "?"):
                return None
            name = m.group(2)[1:-1] if m.group(2) and m.group(2).startswith("<") else ""
            if name in names:
                return None  # JavaScript refuses a name used twice; RE2 accepts it
            if name:
                names.add(name)
            out.append(m.group(0))
            i, state = m.end(), "start"
            continue
        if c in "*+?" or c == "{":
            size = 1
            if c == "{":
                m = _QUANTIFIER.match(pattern, i)
                if m is None:
                    return None
                size = m.end() - i
            if state == "atom":
                state = "quantified"
            elif state == "quantified" and c == "?":
                state = "lazy"
            else:
                return None  # possessive `a*+`, or a quantifier with nothing to repeat
            out.append(pattern[i:i + size])
            i += size
            continue
        if c in "}]":
            return None
        state = "start" if c in "|^" else "atom"
        out.append(_RE2_SPELLING[c][0] if c == "." else c)
        i += 1
    return None if in_class else "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> int:
    """Length of the escape at `i` when both dialects can read it alike, else 0."""
    e = pattern[i + 1:i + 2]
    if not e:
        return 0
    if e in _SAME_ESCAPES or e in _SYNTAX or e in "sS":
        return 2
    if e == "-" and in_class:
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
