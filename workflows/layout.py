"""A layered (Sugiyama-style) layout of a small directed graph, top to bottom.

Steps: back edges found by a depth-first walk from the root are turned around;
layers are longest paths from the root; edges longer than one layer pass
through dummy points; a few barycenter sweeps order each layer to reduce
crossings; x positions pull each node towards its neighbours. Everything is
deterministic: ties are broken by the order nodes and edges were given in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]
Segment = tuple[Point, Point, Point, Point]  # a cubic Bezier: start, control, control, end

LAYER_GAP = 72.0    # vertical room between layers, where edge labels go
NODE_GAP = 28.0     # horizontal room between neighbours in a layer
DUMMY_WIDTH = 18.0  # width a long edge takes up in a layer it passes through
SWEEPS = 4
_DUMMY = "\0"       # dummy names start with it; node names never do


@dataclass(frozen=True, slots=True)
class Box:
    """A node's rectangle; `x`, `y` are its top left corner."""

    x: float
    y: float
    width: float
    height: float
    layer: int

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True, slots=True)
class Route:
    """How edge `edge` is drawn: cubic segments in drawing order and a label anchor."""

    edge: int
    segments: tuple[Segment, ...]
    label_at: Point
    back: bool = False
    loop: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: dict[str, Box]
    routes: tuple[Route, ...]


def layered_layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]], root: str | None,
                   size: tuple[float, float]) -> Layout:
    """Place `nodes` (all of one `size`) in layers below `root` and route `edges`."""
    width, height = size
    back = _back_edges(nodes, edges, root)
    layer = _layers(nodes, edges, back, root)
    # each edge as a top-to-bottom chain of node and dummy names
    chains: dict[int, list[str]] = {}
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for name in _discovery_order(nodes, edges, back, root):
        rows[layer[name]].append(name)
    for i, (src, dst) in enumerate(edges):
        if src == dst:
            continue
        top, bottom = (dst, src) if i in back else (src, dst)
        chain = [top]
        for depth in range(layer[top] + 1, layer[bottom]):
            dummy = f"{_DUMMY}{i}:{depth}"
            layer[dummy] = depth
            rows[depth].append(dummy)
            chain.append(dummy)
        chains[i] = [*chain, bottom]
    _order(rows, chains)
    widths = {n: (DUMMY_WIDTH if n.startswith(_DUMMY) else width) for r in rows for n in r}
    xs = _x_positions(rows, chains, widths)
    boxes = {n: Box(xs[n], layer[n] * (height + LAYER_GAP), widths[n], height, layer[n])
             for r in rows for n in r}
    routes = _routes(edges, chains, back, boxes)
    return Layout({n: boxes[n] for n in nodes}, routes)


def _back_edges(nodes: Sequence[str], edges: Sequence[tuple[str, str]],
                root: str | None) -> set[int]:
    """Edges that close a cycle in a depth-first walk from `root`, then from the rest."""
    out: dict[str, list[int]] = {n: [] for n in nodes}
    for i, (src, _) in enumerate(edges):
        out[src].append(i)
    back: set[int] = set()
    seen: set[str] = set()
    on_stack: set[str] = set()
    for start in ([root] if root in out else []) + list(nodes):
        if start in seen:
            continue
        seen.add(start)
        on_stack.add(start)
        stack = [(start, iter(out[start]))]
        while stack:
            name, todo = stack[-1]
            for i in todo:
                dst = edges[i][1]
                if dst in on_stack:
                    back.add(i)
                elif dst not in seen:
                    seen.add(dst)
                    on_stack.add(dst)
                    stack.append((dst, iter(out[dst])))
                    break
            else:
                stack.pop()
                on_stack.discard(name)
    return back


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]], back: set[int],
            root: str | None) -> dict[str, int]:
    """Longest-path layers over the edges left after turning back edges around."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for i, (src, dst) in enumerate(edges):
        if src == dst:
            continue
        a, b = (dst, src) if i in back else (src, dst)
        preds[b].append(a)
        succs[a].append(b)
    layer = dict.fromkeys(nodes, 0)
    waiting = {n: len(preds[n]) for n in nodes}
    queue = [n for n in ([root] if root in preds else []) + list(nodes) if not waiting[n]]
    done: set[str] = set()
    while queue:
        name = queue.pop(0)
        if name in done:
            continue
        done.add(name)
        for nxt in succs[name]:
            layer[nxt] = max(layer[nxt], layer[name] + 1)
            waiting[nxt] -= 1
            if not waiting[nxt]:
                queue.append(nxt)
    # a node no edge touches (an explicit `cancelled`) sits with the ends at the bottom
    last = max(layer.values(), default=0)
    for n in nodes:
        if n != root and not preds[n] and not succs[n]:
            layer[n] = last
    return layer


def _discovery_order(nodes: Sequence[str], edges: Sequence[tuple[str, str]], back: set[int],
                     root: str | None) -> list[str]:
    """Nodes breadth first from `root` along forward edges, then the rest as given."""
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for i, (src, dst) in enumerate(edges):
        if i not in back and src != dst:
            succs[src].append(dst)
    order: dict[str, None] = {}
    queue = [root] if root in succs else []
    while queue:
        name = queue.pop(0)
        if name not in order:
            order[name] = None
            queue += succs[name]
    order.update(dict.fromkeys(n for n in nodes if n not in order))
    return list(order)


def _order(rows: list[list[str]], chains: dict[int, list[str]]) -> None:
    """Reorder each row in place by barycenters, keeping the order with fewest crossings."""
    down: dict[str, list[str]] = {n: [] for r in rows for n in r}
    up: dict[str, list[str]] = {n: [] for r in rows for n in r}
    for chain in chains.values():
        for a, b in zip(chain, chain[1:], strict=False):
            down[a].append(b)
            up[b].append(a)
    best, best_crossings = [list(r) for r in rows], _crossings(rows, down)
    for sweep in range(SWEEPS):
        indices = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for i in indices:
            ref = rows[i - 1] if sweep % 2 == 0 else rows[i + 1]
            pos = {n: p for p, n in enumerate(ref)}
            key: dict[str, tuple[float, int]] = {}
            for here, n in enumerate(rows[i]):
                linked = [pos[m] for m in neighbours[n] if m in pos]
                key[n] = (sum(linked) / len(linked) if linked else float(here), here)
            rows[i].sort(key=key.__getitem__)
        crossings = _crossings(rows, down)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in rows], crossings
    rows[:] = best


def _crossings(rows: list[list[str]], down: dict[str, list[str]]) -> int:
    count = 0
    for upper, lower in zip(rows, rows[1:], strict=False):
        pos = {n: p for p, n in enumerate(lower)}
        pairs = [(p, pos[m]) for p, n in enumerate(upper) for m in down[n] if m in pos]
        count += sum(1 for i, (a, b) in enumerate(pairs) for c, d in pairs[i + 1:]
                     if (a - c) * (b - d) < 0)
    return count


def _x_positions(rows: list[list[str]], chains: dict[int, list[str]],
                 widths: dict[str, float]) -> dict[str, float]:
    """Left x of every node: rows packed, then pulled towards their neighbours' centres."""
    links: dict[str, list[str]] = {n: [] for r in rows for n in r}
    for chain in chains.values():
        for a, b in zip(chain, chain[1:], strict=False):
            links[a].append(b)
            links[b].append(a)
    centre: dict[str, float] = {}
    widest = max((_row_width(r, widths) for r in rows), default=0.0)
    for row in rows:
        x = (widest - _row_width(row, widths)) / 2
        for n in row:
            centre[n] = x + widths[n] / 2
            x += widths[n] + NODE_GAP
    for sweep in range(SWEEPS):
        order = rows if sweep % 2 == 0 else rows[::-1]
        for row in order:
            wanted = [_mean([centre[m] for m in links[n]], centre[n]) for n in row]
            placed: list[float] = []
            for k, n in enumerate(row):
                least = placed[-1] + (widths[row[k - 1]] + widths[n]) / 2 + NODE_GAP if k else None
                placed.append(wanted[k] if least is None else max(wanted[k], least))
            shift = _mean([w - p for w, p in zip(wanted, placed, strict=True)], 0.0)
            for n, p in zip(row, placed, strict=True):
                centre[n] = p + shift
    left = min((centre[n] - widths[n] / 2 for r in rows for n in r), default=0.0)
    return {n: round(centre[n] - widths[n] / 2 - left, 1) for r in rows for n in r}


def _row_width(row: list[str], widths: dict[str, float]) -> float:
    return sum(widths[n] for n in row) + NODE_GAP * max(len(row) - 1, 0)


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _routes(edges: Sequence[tuple[str, str]], chains: dict[int, list[str]], back: set[int],
            boxes: dict[str, Box]) -> tuple[Route, ...]:
    """Cubic segments through each chain, leaving and entering nodes at spread-out ports."""
    ports: dict[tuple[str, str, int], float] = {}  # (node, "bottom"|"top", edge) -> x
    leaving: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for i, chain in chains.items():
        leaving.setdefault((chain[0], "bottom"), []).append((boxes[chain[1]].cx, i))
        leaving.setdefault((chain[-1], "top"), []).append((boxes[chain[-2]].cx, i))
    for (name, side), entries in leaving.items():
        box = boxes[name]
        for k, (_, i) in enumerate(sorted(entries)):
            ports[name, side, i] = box.x + box.width * (k + 1) / (len(entries) + 1)
    siblings: dict[tuple[str, bool], list[tuple[float, int]]] = {}
    for i, chain in chains.items():
        src = chain[-1] if i in back else chain[0]
        siblings.setdefault((src, i in back), []).append((ports[src, "top" if i in back
                                                                else "bottom", i], i))
    # labels of edges leaving one node are staggered so they do not overlap; labels of
    # edges that go up sit low in the gap, clear of those that go down
    stagger: dict[int, float] = {}
    for (_, up), entries in siblings.items():
        for k, (_, i) in enumerate(sorted(entries)):
            spread = 0.5 if len(entries) == 1 else 0.3 + 0.4 * k / (len(entries) - 1)
            stagger[i] = 0.3 if up else spread
    routes: list[Route] = []
    for i, (src, _) in enumerate(edges):
        if i not in chains:
            routes.append(_loop(i, boxes[src]))
            continue
        chain = chains[i]
        segments: list[Segment] = []
        for a, b in zip(chain, chain[1:], strict=False):
            top, bottom = boxes[a], boxes[b]
            x0 = ports[a, "bottom", i] if a == chain[0] else top.cx
            x1 = ports[b, "top", i] if b == chain[-1] else bottom.cx
            if a != chain[0]:
                segments.append(((x0, top.y), (x0, top.y), (x0, top.bottom), (x0, top.bottom)))
            mid = (top.bottom + bottom.y) / 2
            segments.append(((x0, top.bottom), (x0, mid), (x1, mid), (x1, bottom.y)))
        if i in back:
            segments = [(d, c, b, a) for a, b, c, d in reversed(segments)]
        routes.append(Route(i, tuple(segments), _point(segments[0], stagger[i]), back=i in back))
    return tuple(routes)


def _loop(i: int, box: Box) -> Route:
    r, cy = box.right, box.cy
    seg: Segment = ((r, cy - 8), (r + 40, cy - 32), (r + 40, cy + 32), (r, cy + 8))
    return Route(i, (seg,), (r + 34, cy), loop=True)


def _point(seg: Segment, t: float) -> Point:
    """The point at `t` on a cubic Bezier."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = seg
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
    return (round(a * x0 + b * x1 + c * x2 + d * x3, 1), round(a * y0 + b * y1 + c * y2 + d * y3, 1))
