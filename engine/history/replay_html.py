"""The replay report as one self-contained HTML page: inline CSS, bar charts drawn here as
inline SVG, no script and nothing loaded from elsewhere; every value from the export escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222;max-width:60rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;
text-align:left}td.n{text-align:right}svg text{font:12px sans-serif}h1{font-size:1.4rem}"""
BAR_WIDTH = 360
LABEL_WIDTH = 260


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def bars(rows: Sequence[tuple[str, float]], unit: str = "", title: str = "") -> str:
    """A horizontal bar chart as inline SVG, one bar per (label, value)."""
    top = max((v for _, v in rows), default=0) or 1
    height = 22 * len(rows) + 4
    parts = [f'<svg role="img" width="{LABEL_WIDTH + BAR_WIDTH + 90}" '
             f'height="{height}"><title>{e(title)}</title>']
    for i, (label, value) in enumerate(rows):
        y = 22 * i + 2
        w = max(1, round(BAR_WIDTH * value / top)) if value else 0
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end">{e(label[:40])}</text>'
                     f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w}" height="18" fill="#4a78b0"/>'
                     f'<text x="{LABEL_WIDTH + w + 4}" y="{y + 14}">{e(_num(value))}{e(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["<table><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td class="n">{e(_num(c))}</td>' if isinstance(c, int | float) else f"<td>{e(c)}</td>"
            for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def render_html(r: Mapping[str, Any]) -> str:
    outcome = [("accepted end to end", r["accepted"]), ("refused", r["refused"]),
               ("unfinished", r["unfinished"])]
    refused = r["refused_transitions"]
    spent = r["time_in_state"]
    body = [
        f"<h1>Replay of {e(r['file'])} through {e(r['item'])}</h1>",
        f"<p>Mapping {e(r['mapping'])}, workflow {e(r['workflow'])}, states {e(r['states_file'])}: "
        f"{r['cases']} cases from {r['rows_read']} rows ({r['rows_skipped']} rows skipped).</p>",
        f"<h2>Conformance: {r['accepted_share']:.1%} accepted end to end</h2>",
        bars(outcome, " cases", "cases by outcome"), table(["outcome", "cases"], outcome),
        "<h2>Most frequent refused transitions</h2>",
        bars([(f"{t['from']} → {t['to']}", t["count"]) for t in refused], "", "refused transitions")
        if refused else "<p>None.</p>",
        table(["from", "to", "why", "count", "example case", "source states"],
              [(t["from"], t["to"], t["why"], t["count"], t["example_case"], t["example_source"])
               for t in refused]) if refused else "",
    ]
    if r["unmapped_states"]:
        body += ["<h2>Source states with no workflow state (ignored)</h2>",
                 table(["state", "rows", "cases"],
                       [(u["state"], u["rows"], u["cases"]) for u in r["unmapped_states"]])]
    body += [
        "<h2>Where cases wait longest (share of all time)</h2>",
        bars([(s["state"], round(100 * s["share_of_time"], 2)) for s in spent], " %",
             "share of time by state"),
        "<h2>Time in each state (hours)</h2>",
        bars([(s["state"], s["p90_hours"]) for s in spent], " h", "p90 hours by state"),
        table(["state", "workflow state", "visits", "median h", "p90 h", "total h", "share"],
              [(s["state"], s["workflow_state"] or "-", s["visits"], s["median_hours"],
                s["p90_hours"], s["total_hours"], f"{s['share_of_time']:.1%}") for s in spent]),
        "<h2>Longest single waits</h2>",
        table(["case", "state", "hours"],
              [(w["case"], w["state"], w["hours"]) for w in r["longest_waits"]]),
    ]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Replay: {e(r['item'])}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
