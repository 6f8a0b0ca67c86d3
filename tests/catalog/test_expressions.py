"""One expression language, parsed at load, evaluated in a sandbox with limits."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from catalog.expressions import ExpressionError, compile_expression, compile_template

NAMES = {"form": {"model": "pro16", "count": 3, "tags": ["a", "b"]},
         "requester": {"id": "alice", "manager": "bob", "name": "Alice"}}


@pytest.mark.parametrize(("source", "expected"), [
    ("form.model == 'pro16'", True),
    ("form.model == 'pro16' and requester.manager != None", True),
    ("not form.count > 5", True),
    ("'a' in form.tags", True),
    ("form.model in ['std14', 'pro16']", True),
    ("len(form.tags) + form.count", 5),
    ("lower('ABC') == 'abc'", True),
    ("form.count * 2 if form.model == 'pro16' else 0", 6),
    ("form.tags[0]", "a"),
])
def test_expressions_evaluate_against_plain_snapshots(source, expected):
    assert compile_expression(source).evaluate(NAMES) == expected


def test_expressions_know_which_paths_they_read():
    expr = compile_expression("form.model == 'pro16' and requester.manager.id != None")
    assert expr.paths == {("form", "model"), ("requester", "manager", "id")}
    assert expr.fields() == {"model"}


# RELIABILITY.md test 20: each of these raises a controlled error, fast and small.
@pytest.mark.parametrize(("source", "message"), [
    ("__class__", "unknown name __class__"),
    ("form.__class__", "private attribute __class__ is not allowed"),
    ("form.__class__.__subclasses__()", "calling methods is not allowed"),
    ("().__class__.__bases__", "private attribute __bases__ is not allowed"),
    ("__import__('os').system('id')", "calling methods is not allowed"),
    ("__import__('os')", "calling __import__ is not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("[x for x in form.tags]", "a comprehension is not allowed"),
    ("{k: 1 for k in 'ab'}", "a comprehension is not allowed"),
    ("9**9**9", "the ** operator is not allowed"),
    ("open('/etc/passwd')", "calling open is not allowed"),
    ("form.model.upper()", "calling methods is not allowed"),
    ("form.tags[0:1]", "slicing is not allowed"),
    ("f'{form}'", "an f-string is not allowed"),
    ("(x := 1)", "assignment is not allowed"),
    ("form +", "does not parse: invalid syntax"),
    ("secret", "unknown name secret"),
])
def test_dangerous_expressions_are_refused_at_load(source, message):
    started = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert info.value.message == message
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(("source", "names"), [
    ("'a' * 1000000000", {}),
    ("form.n * 'a'", {"form": {"n": 10**9}}),
    ("form.model.real", {"form": {"model": 3}}),
    ("requester.name.join", {"requester": {"name": "x"}}),
    ("1 / 0", {}),
])
def test_evaluation_failures_are_controlled_and_bounded(source, names):
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ExpressionError):
        compile_expression(source, roots={"form", "requester"}).evaluate(names)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.05
    assert peak < 10 * 1024 * 1024


def test_dotted_names_read_keys_never_methods_and_tolerate_missing_values():
    assert compile_expression("form.items").evaluate({"form": {}}) is None
    assert compile_expression("form.optional == 'x'").evaluate({"form": {}}) is False
    assert compile_expression("requester.manager.name").evaluate({"requester": {"manager": None}}) is None
    with pytest.raises(ExpressionError) as info:
        compile_expression("form.model.real").evaluate({"form": {"model": "m"}})
    assert info.value.message == "form.model.real: cannot read .real of a text"


def test_attributes_of_python_objects_are_never_reached():
    class Secretive:
        token = "s3cret"

    with pytest.raises(ExpressionError):
        compile_expression("form.obj.token").evaluate({"form": {"obj": Secretive()}})


def test_templates_interpolate_with_the_same_language():
    tpl = compile_template("Laptop {{ form.model }} for {{ requester.name }}")
    assert tpl.render(NAMES) == "Laptop pro16 for Alice"
    assert tpl.paths == {("form", "model"), ("requester", "name")}


@pytest.mark.parametrize(("source", "message"), [
    ("Hi {{ secret }}", "in {{ secret }}: unknown name secret"),
    ("Hi {{ form.model", "unbalanced {{ }} in template"),
])
def test_bad_templates_are_refused(source, message):
    with pytest.raises(ExpressionError) as info:
        compile_template(source)
    assert info.value.message == message
