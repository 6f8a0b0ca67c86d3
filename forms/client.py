"""The rules the browser enforces before the server does, as JSON.

`client_rules(item)` gives, in form order, each field's `name`, `type`, `required`
(as written: a field is required in the browser when it is shown and `required`
is true or its `required_if` holds), `show_if` and `required_if` (condition ASTs,
below, or null), `pattern` (null when JavaScript would read it differently; the
server still checks it), `min`/`max` (numbers, or ISO dates), `min_length`/
`max_length`, `min_items`/`max_items`, `depends_on` and, for tables, `columns`;
then the item's `checks` across fields, each `when` (a condition AST), `message`
and `field` (null: the top of the form). The browser shows a check's message while
its `when` holds (a `{"server": true}` one never: the server decides it).
The browser is a convenience: the server decides every answer again.

Condition AST (one JSON object per node):

    {"const": V}                      a string, number, true, false or null
    {"field": "NAME"}                 form.NAME: the field's current value
    {"list": [NODE, ...]}             a list literal
    {"and": [NODE, ...]}              Python's and/or: the first falsy (truthy)
    {"or": [NODE, ...]}               operand, else the last one
    {"not": NODE}
    {"op": OP, "left": NODE, "right": NODE}
                                      OP is == != < <= > >= in "not in"
    {"call": "len"|"lower"|"upper", "args": [NODE]}
    {"call": "default", "args": [NODE, NODE]}
                                      the first value, or the second when it is null
    {"server": true}                  the whole rule: only the server decides

Values follow the server's view of the form: an empty or hidden field, or one
after the field being decided, is null; a number field holds a number, a
checkbox true or false, a multichoice a list of strings (empty when nothing is
chosen). Truthiness is Python's: null, false, 0, "" and [] are false. `==`
compares strings, numbers, booleans, null and lists (element-wise) by value.
Ordering compares two numbers or two strings, and is false when either side is
null. `in` tests membership in a list or a substring of a string, and is false
for null. `len(null)` is 0, `lower(null)` and `upper(null)` are "". Anything else
the server cannot evaluate either (`3 < 'a'`, `'a' in 3`): the whole rule is then
false, as on the server. A rule that reads the
requester, calls another function, does arithmetic or uses `x if c else y`
is `{"server": true}`: the browser shows the field and does not require it.
"""

from __future__ import annotations

import ast
from datetime import date
from typing import Any

from catalog.expressions import Expression
from catalog.models import CatalogItem, Field
from forms.patterns import ecma_pattern

FORMAT = 1
SERVER: dict[str, Any] = {"server": True}
_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}
_FUNCTIONS = frozenset({"len", "lower", "upper"})
#: catalog.expressions compiles `a.b` to a call of this function: `__get(a, 'b')`
_GET = "__get"


class _Unsupported(Exception):
    """The expression uses something the browser does not evaluate."""


def client_rules(item: CatalogItem) -> dict[str, Any]:
    """Rules of every field of `item` for the browser, JSON-serialisable."""
    return {"format": FORMAT, "item": item.id, "fields": [field_rules(f) for f in item.fields],
            "checks": [{"when": condition_ast(c.when), "message": c.message, "field": c.field}
                       for c in item.checks]}


def field_rules(f: Field) -> dict[str, Any]:
    """One field's rules for the browser."""
    rules: dict[str, Any] = {
        "name": f.name, "type": f.type.value, "label": f.label, "required": f.required,
        "show_if": condition_ast(f.show_if), "required_if": condition_ast(f.required_if),
        "pattern": ecma_pattern(f.pattern) if f.pattern else None,
        "min": _bound(f.min), "max": _bound(f.max),
        "min_length": f.min_length, "max_length": f.effective_max_length,
        "min_items": f.min_items, "max_items": f.max_items, "depends_on": f.depends_on,
    }
    if f.columns:
        rules["columns"] = [field_rules(c) for c in f.columns]
    return rules


def condition_ast(expression: Expression | None) -> dict[str, Any] | None:
    """The JSON AST of a condition; `{"server": true}` when the browser cannot evaluate it."""
    if expression is None:
        return None
    node = expression.node.value if isinstance(expression.node, ast.Expr) else expression.node
    try:
        return _convert(node)
    except _Unsupported:
        return dict(SERVER)


def _convert(node: ast.AST) -> dict[str, Any]:
    if isinstance(node, ast.Constant):
        return {"const": node.value}
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return {"not": _convert(node.operand)}
        inner = _convert(node.operand)
        value = inner.get("const")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"const": -value if isinstance(node.op, ast.USub) else value}
        raise _Unsupported
    if isinstance(node, ast.BoolOp):
        return {"and" if isinstance(node.op, ast.And) else "or": [_convert(v) for v in node.values]}
    if isinstance(node, ast.Compare):
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(_compare(op, left, right))
            left = right
        return parts[0] if len(parts) == 1 else {"and": parts}
    if isinstance(node, ast.List | ast.Tuple):
        return {"list": [_convert(e) for e in node.elts]}
    if isinstance(node, ast.Subscript):
        return {"field": _form_field(node.value, node.slice)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id == _GET and len(node.args) == 2:
            return {"field": _form_field(*node.args)}
        if node.func.id in _FUNCTIONS and len(node.args) == 1:
            return {"call": node.func.id, "args": [_convert(node.args[0])]}
        if node.func.id == "default" and len(node.args) == 2:
            return {"call": "default", "args": [_convert(a) for a in node.args]}
    raise _Unsupported


def _compare(op: ast.cmpop, left: ast.expr, right: ast.expr) -> dict[str, Any]:
    if isinstance(op, ast.Is | ast.IsNot):
        if not _is_none(left) and not _is_none(right):
            raise _Unsupported
        symbol = "==" if isinstance(op, ast.Is) else "!="
    elif type(op) in _OPS:
        symbol = _OPS[type(op)]
    else:
        raise _Unsupported
    return {"op": symbol, "left": _convert(left), "right": _convert(right)}


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _form_field(container: ast.expr, key: ast.expr) -> str:
    """NAME from `form.NAME` or `form['NAME']`."""
    if (isinstance(container, ast.Name) and container.id == "form"
            and isinstance(key, ast.Constant) and isinstance(key.value, str)):
        return key.value
    raise _Unsupported


def _bound(value: float | date | None) -> float | str | None:
    return value.isoformat() if isinstance(value, date) else value
