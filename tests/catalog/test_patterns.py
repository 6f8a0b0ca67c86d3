"""Authors' patterns run on RE2: refused when unusable, linear on every answer, sampled."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catalog.fields import value_errors
from catalog.file_cache import FileCache
from catalog.loader import load_catalog
from catalog.models import Field, FieldType
from catalog.patterns import PatternError, check_pattern, sample_match

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("kind: Settings\nname: T\ntime_zone: UTC\n"
            "business_hours: {days: [mon], start: '09:00', end: '17:00'}\n")
WORKFLOW = ("kind: Workflow\nid: wf\nstart: work\nstates:\n"
            "  work: {task: {queue: team}, on: {done: done}}\n  done: {end: fulfilled}\n")
DIRECTORY = ("people:\n  - {id: ann, name: Ann, email: ann@example.com}\n"
             "groups:\n  - {id: team, name: Team, members: [ann]}\n")
LINEAR = "backreferences and lookaround are not supported: answers are matched in linear time"
SIZE = "use + or * with max_length instead of large counted repeats"


def write_catalog(root: Path, pattern: str) -> None:
    (root / "deskflow.yaml").write_text(SETTINGS)
    (root / "directory.yaml").write_text(DIRECTORY)
    (root / "workflows").mkdir()
    (root / "workflows" / "wf.yaml").write_text(WORKFLOW)
    (root / "items").mkdir()
    (root / "items" / "x.yaml").write_text(
        "kind: CatalogItem\nid: x\nname: X\ncategory: C\nsummary: S\nworkflow: wf\nform:\n"
        f"  - name: code\n    type: string\n    pattern: '{pattern}'\n")


def errors(root: Path) -> list[str]:
    return [e.render() for e in load_catalog(root, FileCache()).errors]


def field(pattern: str, max_length: int = 100_000) -> Field:
    return Field(name="code", type=FieldType.TEXTAREA, label="Code", pattern=pattern,
                 max_length=max_length)


def pattern_error(pattern: str) -> str:
    with pytest.raises(PatternError) as info:
        check_pattern(pattern)
    return str(info.value)


def test_a_pattern_error_points_at_the_pattern(tmp_path):
    write_catalog(tmp_path, "(?:x{65535}){65535}")
    assert errors(tmp_path) == [
        "items/x.yaml:10:14: form[0].pattern: pattern (?:x{65535}){65535} is too large: "
        f"counted repeats may be at most 1000, nested ones multiplied together ({SIZE})"]


def test_the_pattern_that_took_18_gb_is_refused_fast_in_bounded_memory(tmp_path):
    write_catalog(tmp_path, "(?:x{65535}){65535}")
    script = textwrap.dedent(f"""
        import resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        sys.path.insert(0, {str(ROOT)!r})
        from catalog.loader import load_catalog
        started = time.perf_counter()
        catalog = load_catalog({str(tmp_path)!r})
        print(len(catalog.errors), round(time.perf_counter() - started, 3))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    count, seconds = done.stdout.split()
    assert count == "1"
    assert float(seconds) < 2.0


@pytest.mark.parametrize(("pattern", "expected"), [
    ("(?:(?:a{1000}){1000}){1000}",
     "pattern (?:(?:a{1000}){1000}){1000} is too large: counted repeats may be at most 1000, "
     f"nested ones multiplied together ({SIZE})"),
    ("a{1001}", "pattern a{1001} is too large: counted repeats may be at most 1000, "
     f"nested ones multiplied together ({SIZE})"),
    ("\\p{L}{100}", "pattern \\p{L}{100} is too large: it compiles to more than 5000 "
     f"instructions ({SIZE})"),
    ("[\\p{L}\\p{N}]{1000}", "pattern [\\p{L}\\p{N}]{1000} is too large: it compiles to more "
     f"than 5000 instructions ({SIZE})"),
])
def test_patterns_too_large_to_match_quickly_are_refused(pattern, expected):
    assert pattern_error(pattern) == expected


@pytest.mark.parametrize(("pattern", "what"), [
    ("^(?!admin)[a-z]+$", "lookaround"),
    ("(?=x)x", "lookaround"),
    ("(?<=a)b", "lookaround"),
    ("(?<!a)b", "lookaround"),
    ("(a)\\1", "a backreference"),
    ("(?P<n>a)(?P=n)", "a backreference"),
    ("(?<n>a)\\k<n>", "a backreference"),
])
def test_lookaround_and_backreferences_get_the_hint(pattern, what):
    assert pattern_error(pattern) == (
        f"invalid regular expression {pattern}: it uses {what} ({LINEAR})")


@pytest.mark.parametrize(("pattern", "reason"), [
    ("[unclosed", "a [ is not closed"),
    ("(a", "a ( is not closed"),
    ("a)", "a ) closes no group"),
    ("a\\", "it ends with a lone \\"),
    ("\\u00e9", "unknown escape \\u"),
    ("[[:foo:]]", "invalid character class or range [:foo:]"),
    ("[z-a]", "invalid character class or range z-a"),
    ("*a", "* has nothing to repeat"),
    ("a**", "invalid quantifier **"),
    ("a{2,1}", "{2,1} has its maximum below its minimum"),
    ("(?#note)", "unsupported group (?#"),
    ("\\(?=a[\\1]", "unknown escape \\1"),  # escaped (, \\1 in a class: no hint
])
def test_syntax_errors_are_explained_in_our_words(pattern, reason):
    assert pattern_error(pattern) == f"invalid regular expression {pattern}: {reason}"


@pytest.mark.parametrize("pattern", [
    "\\d*\\d*\\d*\\d*\\d*\\d*\\D", "(.*a){12}", "(a+)+$", "(a|aa)*$", "^(\\w+\\s?)*$"])
def test_formerly_catastrophic_patterns_check_a_long_answer_fast(pattern):
    check_pattern(pattern)
    f = field(pattern)
    for answer in ("1" * 99_999, "a" * 99_998 + "!", "ab" * 49_999 + "\x01"):
        started = time.perf_counter()
        verdict = value_errors(f, answer)
        assert time.perf_counter() - started < 0.1
        assert verdict in ([], [f"must match the pattern {pattern}"])


def test_answers_must_match_the_whole_pattern():
    f = field("CC-[0-9]{4}")
    assert value_errors(f, "CC-1234") == []
    assert value_errors(f, "CC-12345") == ["must match the pattern CC-[0-9]{4}"]
    assert value_errors(f, "CC-1234\n") == ["must match the pattern CC-[0-9]{4}"]


def test_digits_are_ascii_as_in_the_browser():
    assert value_errors(field("\\d+"), "\u0661\u0662") == ["must match the pattern \\d+"]


def test_text_with_an_unpaired_surrogate_never_matches():
    assert value_errors(field(".+"), "a\ud800") == ["must match the pattern .+"]


@pytest.mark.parametrize(("pattern", "sample"), [
    ("^CC-[0-9]{4}$", "CC-0000"),
    ("^([01][0-9]|2[0-3]):[0-5][0-9]$", "00:00"),
    ("^\\+31 ?6 ?[0-9]{8}$", "+31 6 00000000"),
    ("^https://acme\\.sharepoint\\.com/.+$", "https://acme.sharepoint.com/a"),
    ("^[a-z0-9.-]+@acme\\.example$", "a@acme.example"),
    ("(?<year>\\d{4})-[^a]x", "1111-1x"),
    ("(?:ab|cd)+?", "ab"),
    ("[^a1A -_.x0Z]", None),
    ("\\p{Greek}+", None),
    ("(a)\\1", None),
])
def test_samples_for_dry_runs_match_their_pattern(pattern, sample):
    assert sample_match(pattern) == sample
