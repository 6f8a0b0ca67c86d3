"""benchmarks/reliability_doc.py writes docs/reliability.md's tables from a load run's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "reliability_doc.py"

FIGURES = {
    "when": "2026-11-28 00:40 UTC", "seconds": 60, "threads": 6, "drain_s": 12.4,
    "answers": 1000, "ok": 900, "per_second": 15.0, "worker_restarts": 1,
    "faults": [{"fault": "SIGKILL of a gunicorn worker", "from_s": 9.0, "detail": ""},
               {"fault": "PostgreSQL restarted (pg_ctl restart -m fast)", "from_s": 39.0,
                "to_s": 39.5, "detail": ""}],
    "pg_window_s": [39.0, 41.5], "5xx_outside_restart": 1, "5xx_after_restart": 1,
    "5xx_total": 4,
    "errors": {"http 500 | browse | during PostgreSQL restart": 3,
               "http 500 | order | after PostgreSQL restart": 1},
    "actions": {"browse": {"count": 120, "ok": 117, "per_second": 1.96, "p50": 210.4,
                           "p95": 464.2, "p99": 969.7, "outcomes": {"ok": 117, "http 500": 3}}},
    "checks": {"requests": 156, "transitions": 426, "lost": 0, "doubled": 2,
               "approvals_decided": 51, "outbox": {"email:delivered": 463, "webhook:dead": 1},
               "retried": 7, "emails_received": 464, "emails_unique": 463,
               "webhooks_received": 56, "webhooks_unique": 56},
    "targets": {"5xx_outside_restart": 1, "lost_or_doubled": 2, "undelivered": 0},
}

DOC = """# Reliability

Hand-written text stays.

<!-- generated: figures -->
old figures
<!-- end: figures -->

Between the blocks.

<!-- generated: tests -->
old tests
<!-- end: tests -->
"""


def render(tmp_path: Path, figures: object, doc: str = DOC) -> tuple[subprocess.CompletedProcess[str], str]:
    data, page = tmp_path / "load.json", tmp_path / "reliability.md"
    data.write_text(json.dumps(figures))
    page.write_text(doc)
    out = subprocess.run([sys.executable, str(SCRIPT), str(data), "--doc", str(page)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    return out, page.read_text()


def test_the_figures_table_says_what_the_run_measured(tmp_path: Path) -> None:
    out, page = render(tmp_path, FIGURES)
    assert out.returncode == 0, out.stderr
    assert "old figures" not in page and "old tests" not in page
    assert "Hand-written text stays." in page and "Between the blocks." in page
    assert "| load held | 1,000 answers, 900 ok, 15.0 ok/s |" in page
    assert "| fault injected at 39 s to 39.5 s | PostgreSQL restarted (pg_ctl restart -m fast) |" in page
    assert ("| faults survived | 5xx outside the PostgreSQL window (39.0 s to 41.5 s): 1; after it: 1; "
            "inside it: 3; other failed answers: 0; worker restarts by the supervisor: 1 |") in page
    assert ("| data lost | 0 transitions lost, 2 applied twice, 0 messages neither delivered nor "
            "dead-lettered |") in page
    assert ("| outbox after a 12 s drain | email:delivered 463, webhook:dead 1; 7 needed more than "
            "one attempt |") in page
    assert "| browse | 120 | 2.0 | 210 | 464 | 970 | http 500 3 |" in page
    assert "| http 500; order; after PostgreSQL restart | 1 |" in page
    assert "target load.5xx_outside_restart 1 <= 0 MISS" in page
    assert "target load.undelivered 0 <= 0 PASS" in page


def test_the_tests_table_lists_the_files_that_cite_each_test(tmp_path: Path) -> None:
    out, page = render(tmp_path, FIGURES)
    assert out.returncode == 0, out.stderr
    assert ("| 22 | every route x method x role cell matches the authorization policy; another "
            "person's request is a 404 | `tests/web/test_authorization.py` |") in page


def test_figures_from_something_else_are_refused_and_the_page_is_left_alone(tmp_path: Path) -> None:
    out, page = render(tmp_path, {"seconds": 60})
    assert out.returncode == 1
    assert out.stderr.strip() == (f"{tmp_path / 'load.json'}: not figures from benchmarks/load.py "
                                  "--out ('checks')")
    assert page == DOC


def test_a_page_without_the_markers_is_refused(tmp_path: Path) -> None:
    out, page = render(tmp_path, FIGURES, "# Reliability\n")
    assert out.returncode == 1
    assert out.stderr.strip() == (f"{tmp_path / 'reliability.md'}: no <!-- generated: figures --> "
                                  "... <!-- end: figures --> block")
    assert page == "# Reliability\n"
