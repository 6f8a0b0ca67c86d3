"""Benchmark: `deskflow test` of 200 scenarios, in milliseconds per scenario step.

The scenarios are acme's (examples/acme/tests), repeated until there are --scenarios of them,
one per file, in a copy of acme. Prints, measured in one run:
  (a) `deskflow test` as CI runs it (a process: start-up, catalog load, every scenario);
  (b) the scenarios alone in one process (engine.scenarios), for information.
Target: a / steps <= 10 ms. Each scenario starts from a copy of a template database that holds
the schema and the directory (SQLite's backup API), so set-up costs a copy, not a schema.

    python benchmarks/scenarios.py [--scenarios 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/web.py would hide the web package: the project's root first, this folder not at all
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from catalog.loader import load_catalog  # noqa: E402
from engine.scenarios import run_scenarios  # noqa: E402

ACME = ROOT / "examples" / "acme"


def _target() -> Any:
    """benchmarks/validate.py's `target` line."""
    spec = importlib.util.spec_from_file_location("bench_validate", ROOT / "benchmarks" / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.target


def make_catalog(into: Path, count: int) -> Path:
    """A copy of acme whose tests/ holds `count` scenarios, acme's repeated, one per file."""
    target = into / "acme"
    shutil.copytree(ACME, target, ignore=shutil.ignore_patterns("tests"))
    ours = []
    for path in sorted((ACME / "tests").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        ours += [{"item": data.get("item"), **sc} for sc in data["scenarios"]]
    (target / "tests").mkdir()
    for i, sc in enumerate(islice(cycle(ours), count)):
        doc = {"kind": "Scenarios", "scenarios": [{**sc, "name": f"{sc['name']} #{i + 1}"}]}
        (target / "tests" / f"s{i + 1:04d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=200)
    args = ap.parse_args()
    target = _target()
    with tempfile.TemporaryDirectory() as tmp:
        catalog_dir = make_catalog(Path(tmp), args.scenarios)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "from web.cli import main; main()", "test",
                               "--catalog", str(catalog_dir)],
                              cwd=ROOT, capture_output=True, text=True, check=False)
        a = time.perf_counter() - started
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
        m = re.fullmatch(r"(\d+) scenarios: (\d+) passed, (\d+) failed \((\d+) steps\)", summary)
        if done.returncode != 0 or m is None:
            sys.exit(f"deskflow test failed: {summary}")
        steps = int(m.group(4))
        catalog = load_catalog(catalog_dir)
        started = time.perf_counter()
        results = run_scenarios(catalog, catalog.scenarios)
        b = time.perf_counter() - started
    print(f"scenarios: {m.group(1)}, steps: {steps}")
    print(f"(a) deskflow test, one process:  {a * 1000:9.1f} ms  {a * 1000 / steps:6.2f} ms/step")
    print(f"(b) the scenarios alone:         {b * 1000:9.1f} ms  "
          f"{b * 1000 / sum(r.steps for r in results):6.2f} ms/step")
    print(target("scenarios.ms_per_step", a * 1000 / steps, "<=", 10))


if __name__ == "__main__":
    main()
