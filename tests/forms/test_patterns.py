"""Which patterns the browser and JSON Schema may use: those JavaScript reads as RE2 does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from catalog.fields import URL
from catalog.patterns import full_match
from forms.patterns import ascii_ignorecase, ecma_pattern


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
    ("^\\d+\\s\\D$", True, True),                   # \\s spelled out, see below
    ("^\\x41\\t$", True, True),
    ("^\\x41\\u00e9\\t$", False, False),                # RE2 has no \\u escape
    ("(a)\\1", False, False),                         # RE2 has no backreferences
    ("(?<n>a)(?<n>b)", False, False),                 # RE2 allows a name twice, JavaScript not
    ("[\\d-a]", False, False),                        # RE2: \\d, - and a; JavaScript: an error
    ("[a\\S]", False, False),                         # no way to spell RE2's \\S inside a class
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
    assert (ecma_pattern(pattern) is not None) is u
    assert (ecma_pattern(pattern, unicode_sets=True) is not None) is v


def test_ignore_case_by_spelling_letters():
    rewritten = ascii_ignorecase(URL.pattern)
    assert rewritten.startswith("^[hH][tT][tT][pP][sS]?://")
    for text in ("https://x.example", "HTTP://X.EXAMPLE/a", "Https://x", "ftp://x", "http:// x"):
        assert bool(re.fullmatch(rewritten, text)) is bool(URL.match(text))
    assert ascii_ignorecase("[a-c]x\\d[^\\s9]") == "[a-cA-C][xX]\\d[^\\s9]"


@pytest.mark.parametrize(("pattern", "u", "v"), [
    ("a.b", "a[^\\n]b", "a[^\\n]b"),                  # RE2's . matches \r, U+2028, U+2029
    ("\\s\\S", "[\\t\\n\\f\\r ][^\\t\\n\\f\\r ]", "[\\t\\n\\f\\r ][^\\t\\n\\f\\r ]"),
    ("[^\\s.]", "[^\\t\\n\\f\\r .]", "[^\\t\\n\\f\\r .]"),
    ("^CC-[0-9]{4}$", "^CC-[0-9]{4}$", "^CC-[0-9]{4}$"),
])
def test_where_re2_and_javascript_differ_the_pattern_is_spelled_out(pattern, u, v):
    assert ecma_pattern(pattern) == u
    assert ecma_pattern(pattern, unicode_sets=True) == v


SAMPLES = ["", "a", "ab", "a\nb", "a\rb", "a\u2028b", "a b", "a\u00a0b", "a\u000bb", "\u0661",
           "12", "\u0661\u0662", "CC-1234", "x-", "-", "\ufeff", "\t", "A", "\u00e9", "[]", "a\u2029b"]
DIFFERENTIAL = ["a.b", "^\\d+$", "^\\D+$", "^\\s*$", "^\\S+$", "a\\sb", "[^\\s]+", "[\\s\\d]+", ".*",
                "^CC-[0-9]{4}$", "[^a]b", "(?:ab|a)+", "^(?<y>\\d{2})$", "\\x41", "[\\d-]+", "\\[\\]",
                "a{2}", "a{1,}b?", "[a-z\\-]+", "\\/", "x|", "[.]"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run JavaScript's RegExp")
@pytest.mark.parametrize("flags", ["u", "v"])
def test_javascript_matches_the_spelled_out_pattern_exactly_where_re2_does(flags):
    cases = [(p, ecma_pattern(p, unicode_sets=flags == "v")) for p in DIFFERENTIAL]
    given = [(p, js) for p, js in cases if js is not None]
    script = ("const [cases, samples, flags] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(cases.map(([, js]) => samples.map("
              "s => new RegExp('^(?:' + js + ')$', flags).test(s)))));")
    out = subprocess.run(["node", "-e", script], input=json.dumps([given, SAMPLES, flags]),
                         capture_output=True, text=True, check=True, timeout=30).stdout
    browser = json.loads(out)
    server = [[full_match(p, s) for s in SAMPLES] for p, _ in given]
    assert len(given) >= len(DIFFERENTIAL) - 2
    assert browser == server
