"""Server-rendered SVG bar charts for /reports (no script, no CDN): markup as a safe string."""

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
