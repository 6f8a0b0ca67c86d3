"""Plain, positioned YAML: safe tags only, YAML 1.2 scalars, limits against bombs.

A file loads fast (PyYAML's C parser when present); positions are looked up in the
composed node tree only when an error has to point somewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml
from yaml.events import CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from catalog.errors import Location, SpecError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000
MAX_ALIASES = 1_000

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _Problem(Exception):
    """Raised inside the loader; turned into a SpecError with the node's position."""

    def __init__(self, node: Node | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.node, self.message, self.hint = node, message, hint


class PlainLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader with YAML 1.2 core scalars, no custom tags and no duplicate keys."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    yaml_constructors = {
        k: v for k, v in yaml.SafeLoader.yaml_constructors.items() if k in _ALLOWED_TAGS
    }

    def construct_yaml_int(self, node: ScalarNode) -> int:
        value = self.construct_scalar(node)
        if not _INT.match(value):
            raise _Problem(node, f"{value} is not a decimal integer")
        return int(value)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value = self.construct_scalar(node)
        if not (_FLOAT.match(value) or _INT.match(value)):
            raise _Problem(node, f"{value} is not a number")
        return yaml.SafeLoader.construct_yaml_float(self, node)  # type: ignore[no-any-return]

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        value = self.construct_scalar(node)
        if not _BOOL.match(value):
            raise _Problem(node, f"{value} is not true or false")
        return value.lower() == "true"


PlainLoader.add_constructor(f"{_TAG}int", PlainLoader.construct_yaml_int)
PlainLoader.add_constructor(f"{_TAG}float", PlainLoader.construct_yaml_float)
PlainLoader.add_constructor(f"{_TAG}bool", PlainLoader.construct_yaml_bool)
PlainLoader.add_constructor(f"{_TAG}map", yaml.SafeLoader.construct_yaml_map)
PlainLoader.add_implicit_resolver(f"{_TAG}bool", _BOOL, list("tTfF"))
PlainLoader.add_implicit_resolver(f"{_TAG}null", _NULL, ["~", "n", "N", ""])
PlainLoader.add_implicit_resolver(f"{_TAG}int", _INT, list("-+0123456789"))
PlainLoader.add_implicit_resolver(f"{_TAG}float", _FLOAT, list("-+.0123456789"))
PlainLoader.add_implicit_resolver(f"{_TAG}merge", re.compile(r"^<<$"), ["<"])


@dataclass(slots=True)
class SourceDoc:
    """One parsed YAML file: its data and the node tree to locate errors in it."""

    path: PurePosixPath
    data: Any
    text: str
    _root: Node | None = None

    @property
    def root(self) -> Node | None:
        """The composed node tree, built again only when an error needs a position."""
        if self._root is None and self.text:
            loader = PlainLoader(self.text)
            try:
                self._root = loader.get_single_node()
            except yaml.YAMLError:
                return None
            finally:
                loader.dispose()
        return self._root

    def locate(self, path: Sequence[str | int]) -> Location:
        """Return where the value at `path` starts, or its nearest existing parent."""
        node = self.root
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            node = child
        if node is None:
            return Location(self.path, 1, 1)
        return Location(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def locate_key(self, path: Sequence[str | int]) -> Location:
        """Return where the key of the last element of `path` is written."""
        if not path:
            return self.locate(path)
        parent = self.root
        for part in path[:-1]:
            parent = _child(parent, part)
        if isinstance(parent, MappingNode):
            for k, _ in parent.value:
                if isinstance(k, ScalarNode) and k.value == path[-1]:
                    return Location(self.path, k.start_mark.line + 1, k.start_mark.column + 1)
        return self.locate(path)

    def error(self, path: Sequence[str | int], message: str, hint: str = "",
              *, at_key: bool = False, **kw: Any) -> SpecError:
        where = self.locate_key(path) if at_key else self.locate(path)
        return SpecError(where, dotted(path), message, hint, **kw)


def _child(node: Node | None, part: str | int) -> Node | None:
    if isinstance(node, MappingNode):
        found = None
        for k, v in node.value:
            if k.tag == f"{_TAG}merge":
                # merged keys are found only if not written out; look inside the merge
                candidate = _child(v, part) if isinstance(v, MappingNode) else None
                if candidate is not None and found is None:
                    found = candidate
            elif isinstance(k, ScalarNode) and k.value == part:
                return v  # type: ignore[no-any-return]
        return found
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def dotted(path: Iterable[str | int]) -> str:
    """Render a JSON path as `states.review.on.approved` (list indexes as `form[2]`)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def too_large(path: PurePosixPath) -> SpecError:
    """The error for a file over MAX_BYTES (YAML, or a KB article)."""
    return SpecError(Location(path, 1, 1), "", f"file is larger than {MAX_BYTES // 1024} KiB",
                     "split it into smaller files")


def parse_yaml(text: str | bytes, path: PurePosixPath) -> SourceDoc:
    """Parse one YAML document safely; raise SpecError pointing at the problem."""
    if len(text) > MAX_BYTES:
        raise too_large(path)
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise SpecError(Location(path, line, 1), "", "file is not valid UTF-8",
                            "save it as UTF-8") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SpecError(Location(path, line, 1), "", "file contains a NUL character",
                        "YAML files are text") from None
    loader = PlainLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return SourceDoc(path, None, text)
        if _check_shape(root):
            _check_expansion(root)
        data = loader.construct_document(root)
        return SourceDoc(path, data, text)
    except _Problem as p:
        mark = p.node.start_mark if p.node is not None else None
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1, 1)
        raise SpecError(where, "", p.message, p.hint) from None
    except (yaml.YAMLError, RecursionError) as exc:
        # The parser may give up on deep nesting before our own check sees the tree
        # (libyaml has its own depth limit): report our limit, wherever it is crossed first.
        mark = getattr(exc, "problem_mark", None)
        deep = _too_deep(text[: mark.index] if mark is not None else text)
        if deep is not None:
            raise SpecError(Location(path, *deep), "", f"nesting deeper than {MAX_DEPTH} levels",
                            "flatten the structure") from None
        raise _yaml_error(exc, path) from None
    finally:
        loader.dispose()


def _yaml_error(exc: BaseException, path: PurePosixPath) -> SpecError:
    """The parser's complaint, positioned and in our words where we have them."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1, 1)
        message = (exc.problem or exc.context or "invalid YAML").strip()
        if "but found another document" in message:
            message, hint = "only one YAML document per file is allowed", "remove the extra ---"
        else:
            hint = "check the indentation and quoting near this position"
        return SpecError(where, "", f"invalid YAML: {message}", hint)
    if isinstance(exc, RecursionError):
        return SpecError(Location(path, 1, 1), "", f"nesting deeper than {MAX_DEPTH} levels",
                         "flatten the structure")
    return SpecError(Location(path, 1, 1), "", f"invalid YAML: {exc}")


def _too_deep(text: str) -> tuple[int, int] | None:
    """Line and column where collections first nest MAX_DEPTH deep, reading events until the parser stops.

    Called with the text before the point where parsing failed: cut there, it is read
    without hitting whatever depth limit the YAML library enforces itself (libyaml's
    fires while it looks ahead for keys, before any event), so ours is always the one
    reported.
    """
    loader = PlainLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, CollectionStartEvent):
                depth += 1
                mark = event.start_mark
                if depth >= MAX_DEPTH and mark is not None:
                    return mark.line + 1, mark.column + 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    finally:
        loader.dispose()
    return None


def _check_shape(root: Node) -> bool:
    """Refuse bad tags, duplicate keys and absurd nesting; say whether aliases are used.

    One breadth-first pass over the composed nodes, before anything recursive sees them.
    """
    seen: set[int] = set()
    aliases, depth = 0, 0
    merge, text, allowed = f"{_TAG}merge", f"{_TAG}str", _ALLOWED_TAGS
    level: list[Node] = [root]
    while level:
        depth += 1
        following: list[Node] = []
        for node in level:
            if node.tag not in allowed and node.tag != merge:
                raise _Problem(node, f"tag {_short_tag(node.tag)} is not allowed",
                               "only plain YAML: strings, numbers, booleans, null, lists, mappings")
            if type(node) is ScalarNode:
                continue
            if id(node) in seen:
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _Problem(node, f"more than {MAX_ALIASES} alias uses",
                                   "write the values out instead of repeating anchors")
                continue
            if depth >= MAX_DEPTH:
                raise _Problem(node, f"nesting deeper than {MAX_DEPTH} levels", "flatten the structure")
            seen.add(id(node))
            if type(node) is SequenceNode:
                following.extend(node.value)
                continue
            keys: set[str] = set()
            for k, v in node.value:
                following.append(v)
                if k.tag == merge:
                    continue
                if type(k) is not ScalarNode or k.tag != text:
                    raise _Problem(k, "mapping keys must be plain strings", "quote the key")
                if k.value in keys:
                    raise _Problem(k, f"duplicate key {k.value!r}",
                                   "each key may appear once in a mapping")
                keys.add(k.value)
        level = following
    return aliases > 0


def _check_expansion(root: Node) -> None:
    """Refuse documents whose aliases expand to more values than a catalog ever needs."""
    sizes: dict[int, int] = {}
    order: list[Node] = []
    stack: list[Node] = [root]
    while stack:  # post-order over the DAG, each shared node once
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = -1
        order.append(node)
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    for node in reversed(order):
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(sizes[id(c)] for c in node.value)
        elif isinstance(node, MappingNode):
            total += sum(sizes[id(k)] + sizes[id(v)] for k, v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise _Problem(node, f"aliases expand to more than {MAX_EXPANDED_NODES} values",
                           "this looks like an alias bomb; write the values out")
        sizes[id(node)] = total


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
