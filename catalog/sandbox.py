"""The evaluator behind the expression language: simpleeval with a budget and null semantics.

Every operator and function that can build a value checks the size of what it would
build *before* building it, so no evaluation allocates or computes more than the limits
below; every evaluated node counts as a step, and a deadline in the thread's CPU time is the
last resort (CPU time, not wall-clock: a busy machine that descheduled the thread must not
fail a cheap expression; and not the time the garbage collector spent in the thread either: a
full collection of a large process's heap can take longer than the whole budget and says
nothing about the expression). Null (`None`, an empty answer) is an empty value: ordering comparisons with it
are false, arithmetic with it is null, and the functions treat it as documented in
docs/catalog-format.md (§9). This module knows nothing of catalogs; the language's
wrapper (`catalog.expressions`) turns `OverBudget` into its own error.
"""

from __future__ import annotations

import ast
import gc
import operator as op
import re
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

#: nested lists count every element at every level: [[1, 2], [3]] is 5 items
MAX_ITEMS = 10_000
MAX_TEXT = 100_000
MAX_DIGITS = 100
MAX_FORMAT_WIDTH = 100
MAX_STEPS = 10_000
MAX_SECONDS = 0.25

_BIG = 10**MAX_DIGITS
#: a %-format conversion: %[(key)][flags][width][.precision][length]type
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)


class OverBudget(Exception):
    """An evaluation would exceed one of the limits; the message says which."""


def _items(value: Any) -> int:
    """Elements of a list at every level, counted until the limit is passed."""
    total, stack = 0, [value]
    while stack and total <= MAX_ITEMS:
        v = stack.pop()
        if isinstance(v, list | tuple):
            total += len(v)
            stack.extend(x for x in v if isinstance(x, list | tuple | dict))
        elif isinstance(v, dict):
            total += len(v)
            stack.extend(x for x in v.values() if isinstance(x, list | tuple | dict))
    return total


def _text_size(value: Any) -> int:
    """An upper estimate of len(str(value)), computed until the text limit is passed."""
    total, stack = 0, [value]
    while stack and total <= MAX_TEXT:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v) + 4                # quotes and a separator inside a list
        elif isinstance(v, list | tuple | dict):
            total += 2 + 2 * len(v)
            stack.extend(v.items() if isinstance(v, dict) else v)
        elif isinstance(v, int) and not isinstance(v, bool):
            total += v.bit_length() // 3 + 2   # decimal digits <= bits / 3.32, and a sign
        else:
            total += 32                        # floats, booleans, null
    return total


def _check_items(count: int) -> None:
    if count > MAX_ITEMS:
        raise OverBudget(f"a list of more than {MAX_ITEMS:,} items")


def _check_text(length: int) -> None:
    if length > MAX_TEXT:
        raise OverBudget(f"text of more than {MAX_TEXT:,} characters")


def _check_number(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > 300 and abs(value) >= _BIG:
        raise OverBudget(f"a number of more than {MAX_DIGITS} digits")
    return value


def _mult(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    for seq, n in ((a, b), (b, a)):
        if not isinstance(n, int):
            continue
        if isinstance(seq, str):
            _check_text(len(seq) * n)
        elif isinstance(seq, list | tuple):
            _check_items(_items(seq) * n)
    return _check_number(a * b)


def _add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, str) and isinstance(b, str):
        _check_text(len(a) + len(b))
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        _check_items(_items(a) + _items(b))
    return _check_number(a + b)


def _sub(a: Any, b: Any) -> Any:
    return None if a is None or b is None else _check_number(a - b)


def _mod(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, str):
        return _format(a, b)
    return a % b


def _format(template: str, args: Any) -> str:
    """`'%05d' % n` with every width and precision bounded, and the result's length."""
    length = len(template) + _text_size(args)
    for match in _FORMAT_SPEC.finditer(template):
        width, precision = match.group(1), match.group(2)
        if "*" in (width, precision):
            raise OverBudget("a % format that takes its width from a value")
        sizes = [int(x) for x in (width, precision) if x]
        if any(s > MAX_FORMAT_WIDTH for s in sizes):
            raise OverBudget(f"a % format wider than {MAX_FORMAT_WIDTH} characters")
        length += sum(sizes)
    _check_text(length)
    text = template % args
    _check_text(len(text))
    return text


def _null_safe(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        return None if a is None or b is None else fn(a, b)
    return apply


def _ordering(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        return False if a is None or b is None else fn(a, b)
    return compare


def _contains(item: Any, box: Any) -> bool:
    return False if box is None else op.contains(box, item)


def _unary(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(a: Any) -> Any:
        return None if a is None else fn(a)
    return apply


#: the only operators; the language refuses the others when it loads (`**`, bitwise, shifts)
OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: _add, ast.Sub: _sub, ast.Mult: _mult, ast.Div: _null_safe(op.truediv),
    ast.FloorDiv: _null_safe(op.floordiv), ast.Mod: _mod,
    ast.Eq: op.eq, ast.NotEq: op.ne,
    ast.Lt: _ordering(op.lt), ast.LtE: _ordering(op.le),
    ast.Gt: _ordering(op.gt), ast.GtE: _ordering(op.ge),
    ast.In: _contains, ast.NotIn: lambda item, box: not _contains(item, box),
    ast.Is: op.is_, ast.IsNot: op.is_not,
    ast.Not: op.not_, ast.USub: _unary(op.neg), ast.UAdd: _unary(op.pos),
}


# ---------------------------------------------------------------- functions

def _text(value: Any) -> str:
    if value is None:
        return ""
    _check_text(_text_size(value))
    return str(value)


def _lower(value: Any) -> str:
    return _text(value).lower()


def _upper(value: Any) -> str:
    return _text(value).upper()


def _length(value: Any) -> int:
    return len(value) if value is not None else 0


def _round(value: Any, digits: Any = None) -> Any:
    if value is None:
        return None
    if digits is None:
        return round(value)
    if isinstance(digits, int) and abs(digits) > MAX_DIGITS:
        raise OverBudget(f"rounding to more than {MAX_DIGITS} digits")
    return round(value, digits)


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def choose(*args: Any) -> Any:
        values = args[0] if len(args) == 1 and isinstance(args[0], list | tuple) else args
        present = [v for v in values if v is not None]
        return pick(present) if present else None
    return choose


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _length, "lower": _lower, "upper": _upper, "str": _text,
    "int": _unary(int), "float": _unary(float), "round": _round,
    "min": _extreme(min), "max": _extreme(max), "abs": _unary(abs), "default": _default,
}


class _GcClock(threading.local):
    """The CPU time the garbage collector has spent in this thread (collections run in the
    thread whose allocation triggered them)."""

    started: float | None = None
    spent: float = 0.0


_gc_clock = _GcClock()


def _time_the_collector(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_clock.started = time.thread_time()
    elif _gc_clock.started is not None:
        _gc_clock.spent += time.thread_time() - _gc_clock.started
        _gc_clock.started = None


gc.callbacks.append(_time_the_collector)


def cpu_time() -> float:
    """The thread's CPU time less what the garbage collector took of it."""
    return time.thread_time() - _gc_clock.spent


class Evaluator(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with our operators, a step count and a deadline."""

    ATTR_INDEX_FALLBACK = False

    def __init__(self, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]) -> None:
        super().__init__(operators=dict(OPERATORS), functions=dict(functions), names=dict(names))
        self.steps = 0
        self.deadline = cpu_time() + MAX_SECONDS

    def _eval(self, node: ast.AST) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise OverBudget(f"more than {MAX_STEPS:,} steps")
        # the clock every 16 steps: reading it cost more than most steps (each step is bounded
        # by the operators' own limits, so 16 of them cannot overrun the deadline by much)
        if not self.steps & 15 and cpu_time() > self.deadline:
            raise OverBudget(f"more than {MAX_SECONDS} seconds of CPU time")
        return super()._eval(node)

    def _check_disallowed_items(self, item: Any) -> None:
        # Every value is checked as the result of the node that produced it, so nested
        # values need no walk; the base class walks whole lists at every node, which is
        # what made `len([[[1]*300]*300]*300)` take seconds.
        if isinstance(item, types.ModuleType) or (
                callable(item) and item in simpleeval.DISALLOW_FUNCTIONS):
            raise simpleeval.FeatureNotAvailable("this value is not allowed")
