"""Benchmark: `deskflow diff` of two 1,000-item catalogs against a full validate of one.

The new catalog is the old one with 1% of its items and one workflow edited, as in a pull
request. Prints, measured in one run (medians of several rounds, interleaved):
  (a) a full validate of one catalog (load, schema checks, models, cross-file checks);
  (b) the diff of the two directories: both loaded and validated, then compared;
  (c) the same as two git revisions of one repository (read from git, then (b)), for information.
Target: b/a <= 1.5 — files identical on both sides are parsed once (one FileCache, keyed by
content hash), so the second catalog costs its reading and hashing and the cross-file checks.

    python benchmarks/diff.py [--items 1000] [--workflows 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/web.py would hide the web package: the project's root first, this folder not at all
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from catalog.diff import diff_catalogs, load_pair  # noqa: E402
from catalog.file_cache import FileCache  # noqa: E402
from catalog.loader import load_catalog  # noqa: E402
from catalog.revisions import extract  # noqa: E402


def _validate_benchmark() -> Any:
    """benchmarks/validate.py, for its catalog generator and `target` line."""
    spec = importlib.util.spec_from_file_location("bench_validate", ROOT / "benchmarks" / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_validate = _validate_benchmark()
make_catalog, target = _validate.make_catalog, _validate.target


def edit(root: Path, items: int) -> int:
    """Edit 1% of the items (at least one) and one workflow, as a pull request would."""
    changed = max(1, items // 100)
    for n in range(0, items, max(1, items // changed)):
        path = root / "items" / f"item-{n}.yaml"
        path.write_text(path.read_text().replace("max_length: 120", "max_length: 100")
                        .replace("category: Category", "category: Renamed"))
    wf = root / "workflows" / "wf-0.yaml"
    wf.write_text(wf.read_text().replace("policy: {quorum: 2}", "policy: all"))
    return changed


def diff_dirs(old: Path, new: Path) -> int:
    a, b = load_pair(old, new)
    assert a.ok and b.ok
    return len(diff_catalogs(a, b).changes)


def diff_revisions(repo: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        old = extract(repo, "main", Path(tmp) / "old")
        new = extract(repo, "change", Path(tmp) / "new")
        return diff_dirs(old, new)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--workflows", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old, new, repo = Path(tmp) / "old", Path(tmp) / "new", Path(tmp) / "repo"
        make_catalog(old, args.items, args.workflows)
        shutil.copytree(old, new)
        edited = edit(new, args.items)
        shutil.copytree(old, repo)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "old")
        git(repo, "checkout", "-qb", "change")
        edit(repo, args.items)
        git(repo, "commit", "-qam", "new")
        changes = diff_dirs(old, new)
        assert changes >= edited, changes

        a_runs, b_runs, c_runs = [], [], []
        for _ in range(args.rounds):
            for runs, fn in ((a_runs, lambda: load_catalog(old, FileCache())),
                             (b_runs, lambda: diff_dirs(old, new)),
                             (c_runs, lambda: diff_revisions(repo))):
                started = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - started)
        a, b, c = (statistics.median(r) for r in (a_runs, b_runs, c_runs))

    print(f"catalogs: {args.items} items, {args.workflows} workflows; {edited} items and "
          f"1 workflow edited; {changes} changes")
    print(f"(a) validate one catalog              {a * 1000:9.1f} ms")
    print(f"(b) diff of two directories           {b * 1000:9.1f} ms")
    print(f"(c) diff of two git revisions         {c * 1000:9.1f} ms")
    print(f"b/a = {b / a:.2f}   c/a = {c / a:.2f}")
    print(target("diff.directories_vs_validate", b / a, "<=", 1.5))


if __name__ == "__main__":
    main()
