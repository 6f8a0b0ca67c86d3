"""Server-rendered SVG charts for /reports (no script, no CDN): markup as a safe string.

`bars` draws labelled horizontal bars (one series); `columns` draws a series of periods
(weeks) as vertical columns, two series side by side, at a fixed width however many periods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, BAR, GAP, LABEL = 460, 18, 6, 150


def bars(title: str, rows: Sequence[tuple[Any, Any]]) -> Markup:
    """A horizontal bar chart of (label, number) rows; rows without a number are left out."""
    data = [(str(label), float(v)) for label, v in rows if isinstance(v, int | float)]
    height = max(len(data), 1) * (BAR + GAP) + GAP
    top = max((v for _, v in data), default=0) or 1
    span = WIDTH - LABEL - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" '
             f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
             f'<title>{escape(title)}</title>']
    if not data:
        parts.append(f'<text x="4" y="{BAR}" font-size="12">No data</text>')
    for i, (label, value) in enumerate(data):
        y = GAP + i * (BAR + GAP)
        w = max(value, 0) / top * span
        parts.append(
            f'<text x="{LABEL - 6}" y="{y + BAR - 5}" font-size="12" text-anchor="end">'
            f'{escape(label[:24])}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{w:.1f}" height="{BAR}" fill="#0d6efd"/>'
            f'<text x="{LABEL + w + 4:.1f}" y="{y + BAR - 5}" font-size="12">{value:g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


#: the colours of `columns`' series, in order
SERIES = ("#0d6efd", "#20c997")
COLUMNS_HEIGHT, AXIS = 220, 34


def columns(title: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Markup:
    """Vertical columns of (period, value, value…) rows, one colour per series in `names`, a
    legend, the highest value on the axis and about eight period labels under it."""
    data = [(str(r[0]), [float(v) if isinstance(v, int | float) else 0.0 for v in r[1:]])
            for r in rows]
    plot = WIDTH - 40
    top = max((v for _, values in data for v in values), default=0) or 1
    step = plot / max(len(data), 1)
    width = max(step / max(len(names), 1) * 0.8, 0.5)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" role="img" '
             f'width="{WIDTH}" height="{COLUMNS_HEIGHT + AXIS}" '
             f'viewBox="0 0 {WIDTH} {COLUMNS_HEIGHT + AXIS}"><title>{escape(title)}</title>']
    for i, name in enumerate(names):
        parts.append(f'<rect x="{40 + i * 110}" y="2" width="10" height="10" fill="{SERIES[i % 2]}"/>'
                     f'<text x="{54 + i * 110}" y="11" font-size="11">{escape(name)}</text>')
    parts.append(f'<text x="0" y="28" font-size="11">{top:g}</text>'
                 f'<line x1="38" y1="{COLUMNS_HEIGHT}" x2="{WIDTH}" y2="{COLUMNS_HEIGHT}" '
                 f'stroke="#6c757d"/>')
    if not data:
        parts.append(f'<text x="40" y="{COLUMNS_HEIGHT // 2}" font-size="12">No data</text>')
    every = max(len(data) // 8, 1)
    for i, (label, values) in enumerate(data):
        x = 40 + i * step
        for j, value in enumerate(values[:len(names)]):
            h = max(value, 0) / top * (COLUMNS_HEIGHT - 30)
            parts.append(f'<rect x="{x + j * width:.2f}" y="{COLUMNS_HEIGHT - h:.1f}" '
                         f'width="{width:.2f}" height="{h:.1f}" fill="{SERIES[j % 2]}">'
                         f'<title>{escape(label)} {escape(names[j])}: {value:g}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x:.1f}" y="{COLUMNS_HEIGHT + 14}" font-size="10">'
                         f'{escape(label[:10])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
