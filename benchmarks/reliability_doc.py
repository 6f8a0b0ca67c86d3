"""Write docs/reliability.md's generated parts: the figures of the last load run, and the tests.

    python benchmarks/load.py --out load.json            # the run (60 s by default)
    python benchmarks/reliability_doc.py load.json       # rewrites the two generated blocks

The figures table comes from the JSON that benchmarks/load.py writes with --out. The tests table
lists every reliability test that a file under tests/ cites ("docs/reliability-tests.md, test
N"), with its pass criterion and, with --collect, how many cases pytest collects from those
files (the bad inputs tried, by class). Everything between the `<!-- generated: NAME -->` and
`<!-- end: NAME -->` markers is replaced; the rest of the document is left as written.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
#: the pass criterion of each numbered test, from the project's reliability plan
CRITERIA = {
    1: "model-based run of the request service: every state declared in its pinned version, one "
       "audit row per change, closed requests never change, one decision per approval, the "
       "database matches the model; 0 failing examples",
    2: "100 threads approve one approval: 1 success, 99 clean 409s, 1 transition, 0 5xx",
    3: "approve/reject, approve/cancel, fulfil/cancel races: one winner, the loser 409",
    9: "a failure after the state update, the audit or the outbox insert persists nothing",
    10: "kill -9 under load: no state without its audit row, every outbox row delivered or "
        "pending, duplicates share one idempotency key",
    14: "webhook chaos: backoff with jitter, permanent 4xx dead-lettered, 0 lost after recovery",
    15: "SMTP chaos (down, 4xx, 5xx, slow): the same rules; no network I/O inside a request "
        "transaction",
    20: "each expression escape or bomb of the corpus is refused with its own message, in "
        "under 50 ms",
    22: "every route x method x role cell matches the authorization policy; another person's "
        "request is a 404",
    23: "nobody decides on their own request: 403 and a security audit event",
    25: "fields a form does not have change nothing",
    26: "no write without a CSRF token; a GET never writes",
    31: "what a person types comes back escaped, in pages and in emails",
    39: "PostgreSQL unreachable: 503 with Retry-After from a page that needs no database, "
        "never a 500; the app recovers with no restart, 0 errors after",
    40: "a killed `deskflow worker` is restarted; rows it held are retried after their lease",
}
CITE = re.compile(r"reliability-tests\.md,\s*tests?\s+((?:\d+(?:,\s*|\s+and\s+)?)+)")


def cited(root: Path) -> dict[int, list[str]]:
    """Test number -> the test files that cite it."""
    found: dict[int, set[str]] = defaultdict(set)
    for path in sorted((root / "tests").rglob("*.py")):
        for match in CITE.finditer(path.read_text(errors="replace")):
            for n in re.findall(r"\d+", match.group(1)):
                found[int(n)].add(path.relative_to(root).as_posix())
    return {n: sorted(files) for n, files in sorted(found.items())}


def collected(files: list[str]) -> int:
    """How many test cases pytest collects from `files`."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly",
                          *files], cwd=ROOT, capture_output=True, text=True, timeout=600)
    found = re.search(r"(\d+) tests? collected", out.stdout)
    return int(found.group(1)) if found else sum(1 for line in out.stdout.splitlines() if "::" in line)


def tests_table(root: Path, collect: bool) -> str:
    rows = ["| # | pass criterion | cited by | cases |" if collect else "| # | pass criterion | cited by |",
            "| --- | --- | --- | --- |" if collect else "| --- | --- | --- |"]
    for n, files in cited(root).items():
        criterion = CRITERIA.get(n, "see docs/reliability-tests.md")
        where = ", ".join(f"`{f}`" for f in files)
        rows.append(f"| {n} | {criterion} | {where} |" + (f" {collected(files):,} |" if collect else ""))
    return "\n".join(rows)


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def figures_table(fig: dict[str, Any]) -> str:
    """The figures of one run of benchmarks/load.py as Markdown."""
    c, targets = fig["checks"], fig["targets"]
    window = fig.get("pg_window_s") or [0, 0]
    lines = [f"Run of {fig.get('when', '?')}: {fig['seconds']:g} s, {fig['threads']} client threads "
             "in a second process, gunicorn with 4 sync workers, 2 `deskflow worker` processes, "
             "PostgreSQL, all on 127.0.0.1.", "",
             "| figure | value |", "| --- | --- |",
             f"| load held | {fig['answers']:,} answers, {fig['ok']:,} ok, {fig['per_second']:.1f} ok/s |"]
    for f in fig["faults"]:
        span = f"{f['from_s']:g} s" + (f" to {f['to_s']:g} s" if "to_s" in f else "")
        lines.append(f"| fault injected at {span} | {f['fault']} |")
    errors = sum(fig["errors"].values())
    lines += [
        f"| faults survived | 5xx outside the PostgreSQL window ({window[0]:.1f} s to "
        f"{window[1]:.1f} s): {fig['5xx_outside_restart']}; after it: {fig['5xx_after_restart']}; "
        f"inside it: {fig['5xx_total'] - fig['5xx_outside_restart']}; other failed answers: "
        f"{errors - fig['5xx_total']}; worker restarts by the supervisor: {fig['worker_restarts']} |",
        f"| transitions checked | {c['transitions']:,} audited changes of state of {c['requests']:,} "
        f"requests; {c['approvals_decided']:,} approvals decided |",
        f"| data lost | {c['lost']} transitions lost, {c['doubled']} applied twice, "
        f"{targets['undelivered']} messages neither delivered nor dead-lettered |",
        f"| outbox after a {fig['drain_s']:.0f} s drain | "
        + ", ".join(f"{k} {v:,}" for k, v in c["outbox"].items())
        + f"; {c.get('retried', 0):,} needed more than one attempt |",
        f"| received | {c['emails_received']:,} emails ({c['emails_unique']:,} unique Message-IDs), "
        f"{c['webhooks_received']:,} webhook calls ({c['webhooks_unique']:,} unique Idempotency-Keys) |",
        "", "| action | answers | ok/s | p50 ms | p95 ms | p99 ms | not ok |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, a in fig["actions"].items():
        bad = ", ".join(f"{k} {v}" for k, v in a["outcomes"].items() if k != "ok") or "-"
        lines.append(f"| {name} | {a['count']:,} | {a['per_second']:.1f} | {_ms(a['p50'])} | "
                     f"{_ms(a['p95'])} | {_ms(a['p99'])} | {bad} |")
    lines += ["", "| error kind, action, window | count |", "| --- | ---: |"]
    lines += [f"| {k.replace(' | ', '; ')} | {v} |" for k, v in fig["errors"].items()] or ["| none | 0 |"]
    lines += ["", "```"] + [f"target load.{k} {v} <= 0 {'PASS' if v <= 0 else 'MISS'}"
                            for k, v in targets.items()] + ["```"]
    return "\n".join(lines)


def replace_block(doc: str, name: str, body: str, where: Path) -> str:
    start, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{where}: no {start} ... {end} block")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", type=Path, help="the JSON written by benchmarks/load.py --out")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--collect", action="store_true",
                        help="count the cases pytest collects from the cited test files")
    args = parser.parse_args()
    try:
        fig = json.loads(args.figures.read_text())
        table = figures_table(fig)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{args.figures}: not figures from benchmarks/load.py --out ({exc})") from None
    doc = args.doc.read_text()
    doc = replace_block(doc, "figures", table, args.doc)
    doc = replace_block(doc, "tests", tests_table(ROOT, args.collect), args.doc)
    args.doc.write_text(doc)
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
