"""Plain YAML only: positions, YAML 1.2 scalars, no tags, no bombs, no duplicate keys."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import PurePosixPath

import pytest

from catalog.errors import SpecError
from catalog.source import MAX_BYTES, parse_yaml

P = PurePosixPath("x.yaml")


def load(text: str | bytes):
    return parse_yaml(text, P).data


def error(text: str | bytes) -> str:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, P)
    return str(info.value)


def test_yaml_1_1_traps_are_closed():
    data = load("on: yes\nno: NO\ny: n\noff: Off\nzip: 010\nday: 2026-01-01\nok: true\n")
    assert data == {"on": "yes", "no": "NO", "y": "n", "off": "Off", "zip": 10,
                    "day": "2026-01-01", "ok": True}


def test_numbers_and_null_follow_the_core_schema():
    assert load("a: 1.5\nb: -3\nc: ~\nd: null\ne: 1e3\nf: 0x1F\ng: 1_000\n") == {
        "a": 1.5, "b": -3, "c": None, "d": None, "e": 1000.0, "f": "0x1F", "g": "1_000"}


@pytest.mark.parametrize(("text", "expected"), [
    ("a: !!python/object/apply:os.system ['ls']\n",
     "x.yaml:1:4: tag !!python/object/apply:os.system is not allowed "
     "(only plain YAML: strings, numbers, booleans, null, lists, mappings)"),
    ("a: !!python/name:os.system\n",
     "x.yaml:1:4: tag !!python/name:os.system is not allowed "
     "(only plain YAML: strings, numbers, booleans, null, lists, mappings)"),
    ("a: !custom 1\n",
     "x.yaml:1:4: tag !custom is not allowed "
     "(only plain YAML: strings, numbers, booleans, null, lists, mappings)"),
    ("a: !!binary aGVsbG8=\n",
     "x.yaml:1:4: tag !!binary is not allowed "
     "(only plain YAML: strings, numbers, booleans, null, lists, mappings)"),
    ("a:\n  b: 1\n  b: 2\n",
     "x.yaml:3:3: duplicate key 'b' (each key may appear once in a mapping)"),
    ("a: [1, 2\n",
     "x.yaml:2:1: invalid YAML: did not find expected ',' or ']' "
     "(check the indentation and quoting near this position)"),
    ("a: 1\n---\nb: 2\n",
     "x.yaml:2:1: invalid YAML: only one YAML document per file is allowed (remove the extra ---)"),
    ("1: x\n", "x.yaml:1:1: mapping keys must be plain strings (quote the key)"),
    (b"a: \xff\n", "x.yaml:1:1: file is not valid UTF-8 (save it as UTF-8)"),
    ("a: b\x00\n", "x.yaml:1:1: file contains a NUL character (YAML files are text)"),
])
def test_unsafe_or_malformed_yaml_is_refused_with_its_position(text, expected):
    assert error(text) == expected


def test_merge_keys_still_work():
    assert load("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n")["m"] == {"x": 1, "y": 2}


def billion_laughs() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ",".join(["*" + prev] * 9) + "]\n"
        prev = name
    return text


def test_alias_bomb_is_refused_fast_and_small():
    tracemalloc.start()
    started = time.perf_counter()
    message = error(billion_laughs())
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert message == ("x.yaml:6:4: aliases expand to more than 200000 values "
                       "(this looks like an alias bomb; write the values out)")
    assert elapsed < 1.0
    assert peak < 50 * 1024 * 1024


def test_oversized_documents_are_refused_before_parsing():
    started = time.perf_counter()
    message = error("a: " + "x" * MAX_BYTES + "\n")
    assert message == "x.yaml:1:1: file is larger than 1024 KiB (split it into smaller files)"
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a:\n" + "".join(
    " " * i + f"k{i}:\n" for i in range(1, 100)) + " " * 100 + "v: 1\n"])
def test_absurd_nesting_gets_a_clean_error(text):
    assert "nesting deeper than 64 levels (flatten the structure)" in error(text)


def test_nesting_is_refused_at_our_limit_even_when_the_parser_gives_up_first():
    # libyaml (PyYAML >= 6.0.4) stops at its own depth limit before any node exists
    assert error("[" * 5000 + "]" * 5000) == (
        "x.yaml:1:64: nesting deeper than 64 levels (flatten the structure)")


def test_nesting_past_the_limit_is_reported_before_a_later_syntax_error():
    assert error("[" * 70 + "}") == (
        "x.yaml:1:64: nesting deeper than 64 levels (flatten the structure)")


def test_locate_points_at_values_and_keys():
    doc = parse_yaml("a:\n  b: 1\n  c: [1, {d: 2}]\n", P)
    assert str(doc.locate(["a", "c", 1, "d"])) == "x.yaml:3:14"
    assert str(doc.locate_key(["a", "c"])) == "x.yaml:3:3"
    assert str(doc.locate(["a", "missing"])) == "x.yaml:2:3"


@pytest.mark.parametrize(("text", "expected"), [
    ("a: !!int 0x1F\n", "x.yaml:1:4: 0x1F is not a decimal integer"),
    ("a: !!float abc\n", "x.yaml:1:4: abc is not a number"),
    ("a: !!bool maybe\n", "x.yaml:1:4: maybe is not true or false"),
])
def test_explicit_core_tags_must_match_their_value(text, expected):
    assert error(text) == expected


def test_explicit_core_tags_convert():
    assert load("a: !!int '7'\nb: !!float 2\nc: !!bool 'true'\nd: !!str 5\n") == {
        "a": 7, "b": 2.0, "c": True, "d": "5"}
