"""The one expression language of conditions and `{{ }}` templates.

Expressions are parsed and checked when the catalog loads (syntax, known names,
allowed functions; constant parts are evaluated then, under the budget) and evaluated
by simpleeval (`catalog.sandbox`: a budget, null semantics) against plain dict
snapshots. Attribute access `a.b` is rewritten to item access `a['b']`, so no
attribute of any Python object is ever reached.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import simpleeval

from catalog.errors import DeskflowError
from catalog.sandbox import FUNCTIONS as BUILTIN_FUNCTIONS
from catalog.sandbox import MAX_DIGITS, MAX_ITEMS, MAX_TEXT, Evaluator, OverBudget

MAX_EXPRESSION_LENGTH = 1000
ROOTS = frozenset({"form", "requester", "requested_for", "request", "item", "now"})

#: Functions the catalog supplies at evaluation time (their names are known at load).
CATALOG_FUNCTIONS = frozenset({"lookup"})
FUNCTIONS = frozenset(BUILTIN_FUNCTIONS) | CATALOG_FUNCTIONS
BUDGET_HINT = (f"an expression may not build lists of more than {MAX_ITEMS:,} items, text of "
               f"more than {MAX_TEXT:,} characters or numbers of more than {MAX_DIGITS} digits")

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expr, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.FloorDiv,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant,
    ast.List, ast.Tuple, ast.Call, ast.IfExp,
)


_GET = "__get"


def _get(container: Any, key: str) -> Any:
    """`a.b`: the value under key b of mapping a; None when a is None or has no b."""
    if container is None:
        return None
    if isinstance(container, Mapping):
        return container.get(key)
    raise ExpressionError(f"cannot read .{key} of a {_kind(container)}")


def path_value(names: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value an expression reads at a dotted path (`form.cost`), None where it has none."""
    value: Any = names
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _kind(value: Any) -> str:
    return {str: "text", int: "number", float: "number", bool: "boolean",
            list: "list", tuple: "list"}.get(type(value), "value")


#: YAML spellings of the constants, so `form.urgent == true` means what an admin expects
_YAML_CONSTANTS = {"true": True, "false": False, "null": None}


class ExpressionError(DeskflowError):
    """An expression does not parse, names something unknown, or failed to evaluate."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class ExpressionBudgetExceeded(ExpressionError):
    """Evaluating an expression would take more memory or time than its budget."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed, checked expression; `paths` are the dotted names it reads."""

    source: str
    paths: frozenset[tuple[str, ...]]
    calls: tuple[tuple[str, tuple[Any, ...]], ...]
    node: ast.AST = field(compare=False, hash=False, repr=False)

    def evaluate(self, names: Mapping[str, Any],
                 functions: Mapping[str, Callable[..., Any]] | None = None) -> Any:
        """Evaluate against `names` (plain dicts); raise ExpressionError on any failure."""
        evaluator = Evaluator(names, {**BUILTIN_FUNCTIONS, **(functions or {}), _GET: _get})
        try:
            return evaluator.eval(self.source, previously_parsed=self.node)
        except OverBudget as exc:
            raise ExpressionBudgetExceeded(f"{self.source}: expression exceeded its budget: {exc}",
                                           BUDGET_HINT) from None
        except ExpressionError as exc:
            raise ExpressionError(f"{self.source}: {exc.message}") from None
        except simpleeval.NameNotDefined as exc:
            raise ExpressionError(f"{self.source}: no value for {exc.name}") from None
        except (KeyError, IndexError) as exc:
            raise ExpressionError(f"{self.source}: no value for {exc}") from None
        except (simpleeval.InvalidExpression, ArithmeticError, TypeError, ValueError,
                RecursionError, MemoryError) as exc:
            raise ExpressionError(f"{self.source}: {_exception_text(exc)}") from None

    def test(self, names: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] | None = None) -> bool:
        """Evaluate as a condition."""
        return bool(self.evaluate(names, functions))

    def fields(self) -> set[str]:
        """Form field names the expression reads (`form.NAME`)."""
        return {p[1] for p in self.paths if p[0] == "form" and len(p) > 1}


def _exception_text(exc: BaseException) -> str:
    """The exception's message without simpleeval's apology, at most 200 characters."""
    text = str(exc).replace("Sorry, ", "")
    return text[:200] or type(exc).__name__


def compile_expression(source: str, roots: Iterable[str] = ROOTS) -> Expression:
    """Parse and check an expression; raise ExpressionError saying what is wrong."""
    return _compile(source, frozenset(roots))


@lru_cache(maxsize=4096)
def _compile(source: str, roots: frozenset[str]) -> Expression:
    """Compile once per text: catalogs repeat conditions, and the result is immutable."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"does not parse: {exc.msg}",
                              "expressions look like form.model == 'pro16'") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("does not parse", "simplify the expression") from None
    paths: set[tuple[str, ...]] = set()
    calls: list[tuple[str, tuple[Any, ...]]] = []
    node = ast.fix_missing_locations(ast.Expr(value=_rewrite(tree.body, roots, paths, calls)))
    _fold_constants(node.value)
    return Expression(source, frozenset(paths), tuple(calls), node)


def _fold_constants(body: ast.expr) -> None:
    """Evaluate the parts that read no names now, under the budget, to refuse overruns at load.

    `len([[[1]*300]*300]*300) > 0` or `'%01000000000d' % 1` exceed the budget whatever the
    answers are; only the budget is judged here, other failures surface at run time.
    """
    constant: list[ast.expr] = []
    if _collect_constants(body, constant):
        constant = [body]
    for node in constant:
        try:
            Evaluator({}, BUILTIN_FUNCTIONS).eval("", previously_parsed=node)
        except OverBudget as exc:
            raise ExpressionBudgetExceeded(f"exceeds its budget: {exc}", BUDGET_HINT) from None
        except Exception:  # any other failure is reported when the expression runs
            continue


def _collect_constants(node: ast.expr, out: list[ast.expr]) -> bool:
    """Whether `node` reads no names; the largest such parts of one that does go to `out`."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return False
    if isinstance(node, ast.Call):
        children, own = node.args, isinstance(node.func, ast.Name) and (
            node.func.id in BUILTIN_FUNCTIONS)
    else:
        children, own = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)], True
    flags = [_collect_constants(c, out) for c in children]
    if own and all(flags):
        return True
    out.extend(c for c, flag in zip(children, flags, strict=True)
               if flag and not isinstance(c, ast.Constant))
    return False


def _rewrite(node: ast.AST, roots: frozenset[str], paths: set[tuple[str, ...]],
             calls: list[tuple[str, tuple[Any, ...]]]) -> ast.expr:
    """Check every node against the allow-list and turn `a.b` into `a['b']`."""
    if not isinstance(node, _ALLOWED_NODES):
        raise ExpressionError(f"{_describe(node)} {_verb(node)} not allowed",
                              "use comparisons, and/or/not, arithmetic and the allowed functions")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else "methods"
            raise ExpressionError(f"calling {name} is not allowed",
                                  f"allowed functions: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise ExpressionError(f"keyword arguments to {node.func.id} are not allowed")
        args = [_rewrite(a, roots, paths, calls) for a in node.args]
        calls.append((node.func.id, tuple(a.value if isinstance(a, ast.Constant) else None
                                          for a in args)))
        return ast.Call(func=ast.Name(id=node.func.id, ctx=ast.Load()), args=args, keywords=[])
    if isinstance(node, ast.Name):
        if node.id in _YAML_CONSTANTS:
            return ast.Constant(_YAML_CONSTANTS[node.id])
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id} is a function; call it as {node.id}(...)")
        if node.id not in roots:
            raise ExpressionError(f"unknown name {node.id}",
                                  f"names available here: {', '.join(sorted(roots))}")
        paths.add((node.id,))
        return node
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise ExpressionError(f"private attribute {node.attr} is not allowed")
        chain = _chain(node)
        value = _rewrite(node.value, roots, paths, calls)
        if chain:
            paths.discard(chain[:-1])
            paths.add(chain)
        return ast.Call(func=ast.Name(id=_GET, ctx=ast.Load()),
                        args=[value, ast.Constant(node.attr)], keywords=[])
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str | int | float | bool | type(None)):
            raise ExpressionError(f"literal {node.value!r} is not allowed")
        return node
    if isinstance(node, ast.Compare):
        operands = [_rewrite(o, roots, paths, calls) for o in (node.left, *node.comparators)]
        for cmp, left, right in zip(node.ops, operands, operands[1:], strict=False):
            _check_only(cmp)
            if isinstance(cmp, ast.Is | ast.IsNot) and not (_is_null(left) or _is_null(right)):
                raise ExpressionError("is and is not compare with null only",
                                      "write form.x is null, or compare values with ==")
        node.left, node.comparators = operands[0], operands[1:]
        return node
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            setattr(node, name, _rewrite(value, roots, paths, calls)
                    if isinstance(value, ast.expr) else _check_only(value))
        elif isinstance(value, list):
            setattr(node, name, [_rewrite(v, roots, paths, calls) if isinstance(v, ast.expr)
                                 else _check_only(v) for v in value])
    return node  # type: ignore[return-value]


def _is_null(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _check_only(node: Any) -> Any:
    if isinstance(node, ast.AST) and not isinstance(node, _ALLOWED_NODES):
        raise ExpressionError(f"{_describe(node)} {_verb(node)} not allowed")
    return node


def _chain(node: ast.AST) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    return None


_DESCRIPTIONS = {
    ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator", ast.Dict: "a dict literal",
    ast.Set: "a set literal", ast.Starred: "unpacking", ast.NamedExpr: "assignment",
    ast.JoinedStr: "an f-string", ast.Await: "await", ast.Pow: "the ** operator",
    ast.Yield: "yield", ast.BitAnd: "bitwise operators", ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators", ast.LShift: "shifts", ast.RShift: "shifts",
    ast.Invert: "bitwise operators", ast.MatMult: "the @ operator", ast.Slice: "slicing",
}


def _verb(node: ast.AST) -> str:
    return "are" if _describe(node).endswith("s") and not _describe(node).startswith("the ") else "is"


def _describe(node: ast.AST) -> str:
    return _DESCRIPTIONS.get(type(node), type(node).__name__)


# ---------------------------------------------------------------- templates

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)


@dataclass(frozen=True, slots=True)
class Template:
    """Text with `{{ expression }}` placeholders."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def paths(self) -> frozenset[tuple[str, ...]]:
        return frozenset(p for part in self.parts if isinstance(part, Expression)
                         for p in part.paths)

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(p for p in self.parts if isinstance(p, Expression))

    @property
    def is_static(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, names: Mapping[str, Any],
               functions: Mapping[str, Callable[..., Any]] | None = None) -> str:
        """Fill in the placeholders; None renders as an empty string."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.evaluate(names, functions)
                out.append("" if value is None else _text(value))
        text = "".join(out)
        if len(text) > MAX_TEXT:
            raise ExpressionBudgetExceeded(f"{self.source[:40]}: rendered text is too long",
                                           f"a template renders at most {MAX_TEXT:,} characters")
        return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def compile_template(source: str, roots: Iterable[str] = ROOTS) -> Template:
    """Split text into literal parts and checked expressions."""
    parts: list[str | Expression] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(source):
        if match.start() > pos:
            parts.append(source[pos:match.start()])
        try:
            parts.append(compile_expression(match.group(1), roots))
        except ExpressionError as exc:
            raise ExpressionError(f"in {{{{{match.group(1)}}}}}: {exc.message}", exc.hint) from None
        pos = match.end()
    if pos < len(source):
        parts.append(source[pos:])
    rest = "".join(p for p in parts if isinstance(p, str))
    if "{{" in rest or "}}" in rest:
        raise ExpressionError("unbalanced {{ }} in template", "close every {{ with }}")
    return Template(source, tuple(parts))
