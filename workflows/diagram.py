"""Workflow diagrams: Mermaid `stateDiagram-v2` text and a self-contained SVG drawing.

The Mermaid text is written here rather than by transitions' `GraphMachine`
(`graph_engine="mermaid"`): that needs a machine with a model of its own, names
conditions after their callables, does not escape labels and cannot mark end
states. The SVG is drawn with `workflows.layout`, without graphviz or scripts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from catalog.errors import suggest
from catalog.workflow import CANCELLED, State, StateKind, Trigger, Workflow
from workflows.errors import UnknownState
from workflows.layout import Box, Layout, Route, Segment, layered_layout

OTHERWISE = "otherwise"
NODE_WIDTH = 208.0
LABEL_CHARS = 24      # characters per label line that fit in NODE_WIDTH at 13px bold
LABEL_LINES = 3
EDGE_LABEL_CHARS = 36
EDGE_CHAR_WIDTH = 6.2  # average width of an 11px character, to size label backgrounds
MARGIN = 16.0
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

#: kind -> (fill, stroke, dash)
_STYLE = {
    StateKind.APPROVAL: ("#fff7ed", "#d97706", ""),
    StateKind.TASK: ("#eff6ff", "#2563eb", ""),
    StateKind.DECISION: ("#f5f3ff", "#7c3aed", "5 3"),
    StateKind.ACTION: ("#ecfdf5", "#059669", ""),
    StateKind.WAIT: ("#f8fafc", "#64748b", ""),
    StateKind.END: ("#f1f5f9", "#1e293b", ""),
}
_MISSING_STYLE = ("#fef2f2", "#dc2626", "4 3")
_CURRENT_FILL, _CURRENT_STROKE = "#fef3c7", "#dc2626"
_EDGE = "#64748b"
# words a Mermaid state diagram reads as keywords (it ignores case)
_MERMAID_KEYWORDS = frozenset({"state", "note", "end", "class", "classdef", "direction",
                               "style", "click", "hide", "as", "accdescr", "acctitle", "left",
                               "right", "of", "default", "fork", "join", "choice"})
_MERMAID_ESCAPES = str.maketrans({"#": "#35;", '"': "#quot;", ";": "#59;", "<": "#lt;",
                                  ">": "#gt;", "&": "#amp;", "\n": " ", "\r": " ", "\t": " "})
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    label: str
    kind: str
    style: tuple[str, str, str]
    css: str
    is_end: bool = False
    missing: bool = False


@dataclass(frozen=True, slots=True)
class _Edge:
    source: str
    dest: str
    label: str


def to_mermaid(wf: Workflow, current: str | None = None) -> str:
    """Return `wf` as Mermaid `stateDiagram-v2` text, `current` highlighted."""
    nodes, edges = _graph(wf, current)
    ids = {n.name: _mermaid_id(n.name) for n in nodes}
    out = ["stateDiagram-v2",
           "    classDef endState fill:#f1f5f9,stroke:#1e293b,stroke-width:3px"]
    if current:
        out.append("    classDef current fill:#fef3c7,stroke:#dc2626,stroke-width:3px")
    out += [f'    state "{_mermaid_text(n.label)}" as {ids[n.name]}' for n in nodes]
    if wf.start in ids:
        out.append(f"    [*] --> {ids[wf.start]}")
    out += [f"    {ids[e.source]} --> {ids[e.dest]}: {_mermaid_text(e.label)}" for e in edges]
    ends = [ids[n.name] for n in nodes if n.is_end]
    out += [f"    {end} --> [*]" for end in ends]
    out += [f"    class {end} endState" for end in ends]
    if current:
        out.append(f"    class {ids[current]} current")
    return "\n".join(out) + "\n"


def to_svg(wf: Workflow, current: str | None = None) -> str:
    """Return `wf` drawn as a standalone SVG element, `current` highlighted."""
    nodes, edges = _graph(wf, current)
    labels = {n.name: _wrap(n.label, LABEL_CHARS, LABEL_LINES) for n in nodes}
    lines = max((len(v) for v in labels.values()), default=1)
    height = 22.0 + 16 * lines + 14
    names = [n.name for n in nodes]
    root = wf.start if wf.start in names else (names[0] if names else None)
    layout = layered_layout(names, [(e.source, e.dest) for e in edges], root, (NODE_WIDTH, height))
    prefix = "df-" + hashlib.sha256(f"{wf.id}\0{wf.version}\0{current}".encode()).hexdigest()[:8]
    edge_labels = [_truncate(e.label, EDGE_LABEL_CHARS) for e in edges]
    start = layout.boxes.get(root) if root == wf.start else None
    x0, y0, x1, y1 = _extent(layout, edge_labels, start)
    width, full_height = x1 - x0 + 2 * MARGIN, y1 - y0 + 2 * MARGIN
    title = f"Workflow {wf.name or wf.id} ({wf.id})" if wf.name != wf.id else f"Workflow {wf.id}"
    by_name = {n.name: n for n in nodes}
    desc = f"{len(nodes)} states, {len(edges)} transitions"
    if current:
        desc += f"; current state: {by_name[current].label}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="deskflow-diagram" role="img" '
        f'aria-labelledby="{prefix}-title {prefix}-desc" '
        f'viewBox="{_n(x0 - MARGIN)} {_n(y0 - MARGIN)} {_n(width)} {_n(full_height)}" '
        f'width="{_n(width)}" height="{_n(full_height)}" '
        f'font-family="{_esc(FONT)}" data-workflow="{_esc(wf.id)}">',
        f'<title id="{prefix}-title">{_esc(title)}</title>',
        f'<desc id="{prefix}-desc">{_esc(desc)}</desc>',
        f'<defs><marker id="{prefix}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{_EDGE}"/></marker></defs>',
        '<g class="edges" fill="none">',
    ]
    if start is not None:
        out.append(f'<circle class="start" cx="{_n(start.cx)}" cy="{_n(start.y - 26)}" r="6" '
                   f'fill="#1e293b"/><path class="edge start" d="M{_n(start.cx)},'
                   f'{_n(start.y - 20)} L{_n(start.cx)},{_n(start.y - 1)}" stroke="{_EDGE}" '
                   f'stroke-width="1.5" marker-end="url(#{prefix}-arrow)"/>')
    out += [_svg_edge(edges[r.edge], r, prefix) for r in layout.routes]
    out.append("</g>")
    out.append('<g class="states">')
    out += [_svg_node(n, layout.boxes[n.name], labels[n.name], n.name == current) for n in nodes]
    out.append("</g>")
    out.append('<g class="edge-labels" font-size="11">')
    for r in layout.routes:
        edge, text = edges[r.edge], edge_labels[r.edge]
        x, y = r.label_at
        half = EDGE_CHAR_WIDTH * len(text) / 2 + 4
        left = x - 4 if r.loop else x - half
        centre = left + half
        out.append(f'<g class="edge-label"><title>{_esc(edge.label)}</title>'
                   f'<rect x="{_n(left)}" y="{_n(y - 8)}" width="{_n(2 * half)}" height="16" '
                   f'rx="3" fill="#ffffff" fill-opacity="0.9"/><text x="{_n(centre)}" '
                   f'y="{_n(y + 4)}" text-anchor="middle" fill="#334155">{_esc(text)}</text></g>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the graph drawn


def _graph(wf: Workflow, current: str | None) -> tuple[list[_Node], list[_Edge]]:
    """The states and merged edges to draw, leaving out implicit `cancel` edges."""
    if current is not None and wf.state(current) is None:
        raise UnknownState(f"workflow {wf.id} has no state {current} "
                           f"({suggest(current, wf.state_names)})")
    labels: dict[tuple[str, str], list[str]] = {}
    for t in wf.transitions():
        if t.trigger == Trigger.CANCEL.value:
            continue
        if t.condition is not None:
            text = t.condition.source.strip()
        elif t.is_default:
            text = OTHERWISE
        elif t.trigger == Trigger.TIMER.value:
            wait = wf.state(t.source)
            text = f"after {wait.wait}" if wait and wait.wait else t.trigger
        else:
            text = t.trigger
        labels.setdefault((t.source, t.dest), []).append(text)
    edges = [_Edge(src, dst, " | ".join(texts)) for (src, dst), texts in labels.items()]
    shown = {e.dest for e in edges} | {current}
    nodes = [_node(s) for s in wf.states
             if s.name != CANCELLED or s.name in shown or _declares_cancelled(wf)]
    known = {n.name for n in nodes}
    for e in edges:
        if e.dest not in known:  # a workflow with errors still draws
            known.add(e.dest)
            nodes.append(_Node(e.dest, e.dest, "missing state", _MISSING_STYLE, "missing",
                               missing=True))
    return nodes, edges


def _declares_cancelled(wf: Workflow) -> bool:
    data = wf.definition.get("data")
    if isinstance(data, dict) and isinstance(data.get("states"), dict):
        return CANCELLED in data["states"]
    implicit = State(CANCELLED, StateKind.END, "Cancelled", outcome=CANCELLED)
    return wf.state(CANCELLED) not in (None, implicit)


def _node(s: State) -> _Node:
    label = s.label or s.name.replace("_", " ").capitalize()
    return _Node(s.name, label, _kind_text(s), _STYLE[s.kind], s.kind.value, is_end=s.is_end)


def _kind_text(s: State) -> str:
    if s.kind is StateKind.APPROVAL:
        return f"approval · {s.approvals[0].policy}" if len(s.approvals) == 1 \
            else f"{len(s.approvals)} parallel approvals"
    if s.kind is StateKind.TASK:
        return f"task · {s.tasks[0].queue}" if len(s.tasks) == 1 \
            else f"{len(s.tasks)} parallel tasks"
    if s.kind is StateKind.DECISION:
        return "decision"
    if s.kind is StateKind.ACTION:
        return f"{len(s.actions)} action{'s' * (len(s.actions) != 1)}"
    if s.kind is StateKind.WAIT:
        return f"wait · {s.wait}" if s.wait else "wait"
    return f"end · {s.outcome}" if s.outcome else "end"


# ---------------------------------------------------------------- Mermaid


def _mermaid_id(name: str) -> str:
    # state names are lowercase, so a capitalised id never clashes with another state
    return f"S_{name}" if name.lower() in _MERMAID_KEYWORDS else name


def _mermaid_text(text: str) -> str:
    return _NOT_XML.sub("", text).translate(_MERMAID_ESCAPES)


# ---------------------------------------------------------------- SVG


def _svg_node(node: _Node, box: Box, lines: list[str], is_current: bool) -> str:
    fill, stroke, dash = node.style
    width = 2.0 if node.is_end else 1.5
    if is_current:
        fill, stroke, width = _CURRENT_FILL, _CURRENT_STROKE, 3.0
    classes = " ".join(filter(None, ("state", f"kind-{node.css}", "end" if node.is_end else "",
                                     "current" if is_current else "")))
    aria = ' aria-current="step"' if is_current else ""
    radius = 18 if node.is_end else 8
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<g class="{classes}" data-state="{_esc(node.name)}"{aria}>',
           f"<title>{_esc(node.label)} ({_esc(node.name)}, {_esc(node.kind)})</title>",
           f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.width)}" '
           f'height="{_n(box.height)}" rx="{radius}" fill="{fill}" stroke="{stroke}" '
           f'stroke-width="{_n(width)}"{dash_attr}/>']
    if node.is_end:  # a double border marks where a request finishes
        out.append(f'<rect x="{_n(box.x + 4)}" y="{_n(box.y + 4)}" width="{_n(box.width - 8)}" '
                   f'height="{_n(box.height - 8)}" rx="{radius - 4}" fill="none" '
                   f'stroke="{stroke}" stroke-width="1"/>')
    block = 16 * len(lines) + 14
    top = box.y + (box.height - block) / 2
    out.append(f'<text x="{_n(box.cx)}" text-anchor="middle" font-size="13" font-weight="600" '
               f'fill="#0f172a">' + "".join(
                   f'<tspan x="{_n(box.cx)}" y="{_n(top + 12 + 16 * i)}">{_esc(line)}</tspan>'
                   for i, line in enumerate(lines)) + "</text>")
    out.append(f'<text class="kind" x="{_n(box.cx)}" y="{_n(top + 16 * len(lines) + 11)}" '
               f'text-anchor="middle" font-size="11" fill="#475569">{_esc(node.kind)}</text>')
    out.append("</g>")
    return "".join(out)


def _svg_edge(edge: _Edge, route: Route, prefix: str) -> str:
    classes = "edge" + (" back" if route.back else "") + (" loop" if route.loop else "")
    dash = ' stroke-dasharray="6 4"' if route.back else ""
    return (f'<path class="{classes}" data-source="{_esc(edge.source)}" '
            f'data-dest="{_esc(edge.dest)}" d="{_path(route.segments)}" stroke="{_EDGE}" '
            f'stroke-width="1.5"{dash} marker-end="url(#{prefix}-arrow)"/>')


def _path(segments: Iterable[Segment]) -> str:
    parts: list[str] = []
    for k, (p0, c1, c2, p3) in enumerate(segments):
        if k == 0:
            parts.append(f"M{_n(p0[0])},{_n(p0[1])}")
        if c1 == p0 and c2 == p3:
            parts.append(f"L{_n(p3[0])},{_n(p3[1])}")
        else:
            parts.append(f"C{_n(c1[0])},{_n(c1[1])} {_n(c2[0])},{_n(c2[1])} "
                         f"{_n(p3[0])},{_n(p3[1])}")
    return " ".join(parts)


def _extent(layout: Layout, labels: list[str],
            start: Box | None) -> tuple[float, float, float, float]:
    """The bounding box of everything drawn, labels by an estimate of their width."""
    xs: list[float] = []
    ys: list[float] = []
    for b in layout.boxes.values():
        xs += [b.x, b.right]
        ys += [b.y, b.bottom]
    for r in layout.routes:
        for seg in r.segments:
            xs += [p[0] for p in seg]
            ys += [p[1] for p in seg]
        half = EDGE_CHAR_WIDTH * len(labels[r.edge]) / 2 + 4
        x, y = r.label_at
        xs += [x - 4, x - 4 + 2 * half] if r.loop else [x - half, x + half]
        ys += [y - 8, y + 8]
    if start is not None:
        ys.append(start.y - 34)
    if not xs:
        return 0.0, 0.0, 0.0, 0.0
    return min(xs), min(ys), max(xs), max(ys)


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """Break `text` into at most `max_lines` lines of `width` characters, with an ellipsis."""
    words = [word[i:i + width] for word in text.split() for i in range(0, len(word), width)]
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        lines = [*lines[:max_lines - 1], (last if len(last) < width else last[:width - 1]) + "…"]
    return lines or [""]


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _esc(text: str) -> str:
    text = _NOT_XML.sub("", str(text))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _n(value: float) -> str:
    """A coordinate with at most one decimal, the same text on every run."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
