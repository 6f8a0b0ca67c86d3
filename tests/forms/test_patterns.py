"""Which patterns the browser and JSON Schema may use: those JavaScript reads as Python does."""

from __future__ import annotations

import re

import pytest

from catalog.fields import URL
from forms.patterns import ascii_ignorecase, ecma_compatible


@pytest.mark.parametrize(("pattern", "u", "v"), [
    ("^CC-[0-9]{4}$", True, True),
    ("^ACME-[0-9]{6}$", True, True),
    ("^([01][0-9]|2[0-3]):[0-5][0-9]$", True, True),
    ("^https://acme\\.sharepoint\\.com/.+$", True, True),
    ("^[a-z0-9.-]+@acme\\.example$", True, False),     # `-` not in a range: `v` refuses it
    ("^\\+?[0-9 ()-]{8,20}$", True, False),           # `(` `)` in a class: `v` refuses them
    ("^[a-z][a-z0-9_]*$", True, True),
    ("^(?:ab|cd)+?$", True, True),
    ("^(?<year>[0-9]{4})$", True, True),
    ("^\\d+\\s\\D$", True, True),
    ("^\\x41\\u00e9\\t$", True, True),
    ("(a)\\1", True, True),
    ("^\\w+$", False, False),                         # Unicode in Python, ASCII in JavaScript
    ("\\bword\\b", False, False),
    ("(?i)abc", False, False),
    ("(?P<name>a)", False, False),
    ("a*+", False, False),                            # possessive
    ("a{,3}", False, False),                          # {,n} means 0..n only in Python
    ("a{", False, False),
    ("a}", False, False),
    ("[]a]", False, False),
    ("\\Aabc\\Z", False, False),
    ("\\p{L}+", False, False),
    ("a\\-b", False, False),
    ("[[a]", False, False),
    ("[a&&b]", True, False),
    ("[ab", False, False),
])
def test_ecma_compatibility(pattern, u, v):
    assert ecma_compatible(pattern) is u
    assert ecma_compatible(pattern, unicode_sets=True) is v


def test_ignore_case_by_spelling_letters():
    rewritten = ascii_ignorecase(URL.pattern)
    assert rewritten.startswith("^[hH][tT][tT][pP][sS]?://")
    for text in ("https://x.example", "HTTP://X.EXAMPLE/a", "Https://x", "ftp://x", "http:// x"):
        assert bool(re.fullmatch(rewritten, text)) is bool(URL.match(text))
    assert ascii_ignorecase("[a-c]x\\d[^\\s9]") == "[a-cA-C][xX]\\d[^\\s9]"
