"""Null guards: which ordering comparisons read a form field that may be empty, unguarded.

`form.budget > 1000` is false when budget is empty (catalog.sandbox's null semantics),
which is rarely what the author meant; `deskflow validate` warns about it unless a
guard says the empty case was thought of.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from catalog.expressions import Expression

#: catalog.expressions compiles `a.b` to a call of this function: `__get(a, 'b')`
_GET = "__get"

_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
#: functions whose result is null when their first argument is
_NULL_IN_NULL_OUT = frozenset({"int", "float", "abs", "round"})


@lru_cache(maxsize=4096)  # items share conditions: analyse each text once
def unguarded_orderings(expression: Expression) -> tuple[str, ...]:
    """Form fields compared with `<`, `<=`, `>` or `>=` without a null guard, in reading order.

    Such a comparison is false when the field is empty. A guard is, in the same `and`,
    `form.x is not null`, `form.x != null` or `form.x` itself; in the same `or`,
    `form.x is null`, `form.x == null` or `not form.x`; or the test of an `if ... else`.
    `default(form.x, 0) > 3` needs none.
    """
    out: list[str] = []
    body = expression.node.value if isinstance(expression.node, ast.Expr) else expression.node
    _unguarded(body, frozenset(), out)
    return tuple(dict.fromkeys(out))


def _unguarded(node: ast.AST, guarded: frozenset[str], out: list[str]) -> None:
    if isinstance(node, ast.BoolOp):
        tests = _present if isinstance(node.op, ast.And) else _absent
        inner = guarded.union(*(tests(v) for v in node.values))
        for v in node.values:
            _unguarded(v, inner, out)
        return
    if isinstance(node, ast.IfExp):
        _unguarded(node.test, guarded, out)
        _unguarded(node.body, guarded | _present(node.test), out)
        _unguarded(node.orelse, guarded | _absent(node.test), out)
        return
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for cmp, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if isinstance(cmp, _ORDERING):
                out.extend(n for n in (*_nullable(left), *_nullable(right)) if n not in guarded)
    for child in ast.iter_child_nodes(node):
        _unguarded(child, guarded, out)


def _nullable(node: ast.AST) -> list[str]:
    """Form fields whose emptiness makes `node` null."""
    if (name := _form_field(node)) is not None:
        return [name]
    if isinstance(node, ast.BinOp):
        return _nullable(node.left) + _nullable(node.right)
    if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
        return _nullable(node.operand)
    if isinstance(node, ast.IfExp):
        return _nullable(node.body) + _nullable(node.orelse)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _NULL_IN_NULL_OUT and node.args):
        return _nullable(node.args[0])
    return []


def _present(test: ast.AST) -> frozenset[str]:
    """Fields that `test` being true proves are not null."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return frozenset().union(*(_present(v) for v in test.values))
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _absent(test.operand)
    if (name := _form_field(test)) is not None:
        return frozenset({name})
    return _null_test(test, ast.IsNot, ast.NotEq)


def _absent(test: ast.AST) -> frozenset[str]:
    """Fields that `test` being false proves are not null."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return frozenset().union(*(_absent(v) for v in test.values))
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _present(test.operand)
    return _null_test(test, ast.Is, ast.Eq)


def _null_test(test: ast.AST, *ops: type[ast.cmpop]) -> frozenset[str]:
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ops):
        left, right = test.left, test.comparators[0]
        name = _form_field(left) if _is_null(right) else _form_field(right) if _is_null(left) else None
        if name is not None:
            return frozenset({name})
    return frozenset()


def _form_field(node: ast.AST) -> str | None:
    """NAME of `form.NAME` (rewritten to `__get(form, 'NAME')`) or `form['NAME']`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == _GET:
        container, key = node.args if len(node.args) == 2 else (None, None)
    elif isinstance(node, ast.Subscript):
        container, key = node.value, node.slice
    else:
        return None
    if (isinstance(container, ast.Name) and container.id == "form"
            and isinstance(key, ast.Constant) and isinstance(key.value, str)):
        return key.value
    return None


def _is_null(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
