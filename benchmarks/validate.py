"""Benchmark: validating a catalog of 1,000 items and 100 workflows.

Prints, measured in one run (medians of several rounds):
  (a) parsing every file with PyYAML's C loader alone (the floor);
  (b) Deskflow's full load: parsing, schema validation, models and cross-file checks;
  (c) reloading after one file changed (unchanged files are not re-validated).
Targets: b/a <= 2.5 and c/b <= 0.1.

    python benchmarks/validate.py [--items 1000] [--workflows 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from catalog.file_cache import FileCache
from catalog.loader import load_catalog

SETTINGS = """kind: Settings
name: Bench Desk
time_zone: Europe/Amsterdam
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
priorities:
  p1: {name: Critical, response: 1 business hours, resolution: 4 business hours}
  p2: {name: High, response: 2 business hours, resolution: 1 business days}
  p3: {name: Medium, response: 4 business hours, resolution: 3 business days}
default_priority: p3
priority_matrix:
  high: {high: p1, low: p2}
  low: {high: p2, low: p3}
"""

WORKFLOW = """kind: Workflow
id: wf-{n}
name: Workflow {n}
start: route
sla: {{response: 4 business hours, resolution: 3 business days}}
states:
  route:
    label: Routing
    decide:
      - {{when: "form.amount > 1000 and form.urgent", goto: director}}
      - {{goto: manager}}
  manager:
    label: Waiting for your manager
    approval: {{approvers: requester.manager, policy: any, timeout: 3 business days, on_timeout: escalate}}
    on: {{approved: fulfil, rejected: rejected}}
  director:
    label: Waiting for the directors
    approval: {{approvers: "group:directors", policy: {{quorum: 2}}}}
    on: {{approved: fulfil, rejected: rejected}}
  fulfil:
    label: Being fulfilled
    task: {{queue: team-{team}, title: "Handle {{{{ form.summary }}}} for {{{{ requester.name }}}}", sla: 2 business days, escalate_to: [team-{team2}]}}
    on: {{done: notify}}
  notify:
    actions:
      - {{notify: requester}}
      - {{set: {{field: handled_by, value: "team-{team}"}}}}
    next: fulfilled
  fulfilled: {{end: fulfilled, actions: [{{create_asset: {{type: thing, name: "{{{{ form.summary }}}}"}}}}]}}
  rejected: {{end: rejected, actions: [{{notify: requester}}]}}
"""

ITEM = """kind: CatalogItem
id: item-{n}
name: Item number {n}
category: Category {cat}
summary: Something people order, number {n}.
keywords: [thing, item{n}, cat{cat}]
owner: team-{team}
visible_to: [everyone]
workflow: wf-{wf}
form:
  - {{name: summary, type: string, required: true, max_length: 120, placeholder: "Short title"}}
  - {{name: amount, type: number, min: 0, max: 100000, default: 10}}
  - {{name: urgent, type: boolean}}
  - {{name: reason, type: textarea, min_length: 10, show_if: "form.urgent", required_if: "form.amount > 500"}}
  - name: kind
    type: choice
    required: true
    choices: [{{value: small, label: Small}}, {{value: medium, label: Medium}}, {{value: large, label: Large}}]
  - {{name: extras, type: multichoice, choices: [a, b, c, d], max_items: 3}}
  - {{name: cost_center, type: string, pattern: "^CC-[0-9]{{4}}$", help: "Four digits after CC-"}}
  - {{name: needed_by, type: date, min: "2026-01-01"}}
  - {{name: contact, type: email, default: "{{{{ requester.email }}}}"}}
  - {{name: for_whom, type: person}}
"""


def make_catalog(root: Path, items: int, workflows: int, teams: int = 20) -> None:
    (root / "items").mkdir(parents=True)
    (root / "workflows").mkdir()
    (root / "deskflow.yaml").write_text(SETTINGS)
    people = [f"  - {{id: p{i}, name: Person {i}, email: p{i}@example.com"
              + (f", manager: p{i // 5}" if i else "") + "}" for i in range(100)]
    groups = ["  - {id: directors, name: Directors, members: [p0, p1, p2]}"] + [
        f"  - {{id: team-{t}, name: Team {t}, members: [p{3 + t}, p{50 + t}]}}" for t in range(teams)]
    (root / "directory.yaml").write_text("kind: Directory\npeople:\n" + "\n".join(people)
                                         + "\ngroups:\n" + "\n".join(groups) + "\n")
    for n in range(workflows):
        (root / "workflows" / f"wf-{n}.yaml").write_text(
            WORKFLOW.format(n=n, team=n % teams, team2=(n + 1) % teams))
    for n in range(items):
        (root / "items" / f"item-{n}.yaml").write_text(
            ITEM.format(n=n, cat=n % 12, team=n % teams, wf=n % workflows))


def parse_only(root: Path) -> int:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    count = 0
    for path in sorted(root.rglob("*.yaml")):
        yaml.load(path.read_bytes(), Loader=loader)  # noqa: S506 - loader is CSafeLoader (or SafeLoader)
        count += 1
    return count


def timed(fn, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def target(name: str, measured: float, op: str, goal: float) -> str:
    ok = measured <= goal if op == "<=" else measured >= goal
    return f"target {name} {measured:.3f} {op} {goal} {'PASS' if ok else 'MISS'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--workflows", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        make_catalog(root, args.items, args.workflows)
        check = load_catalog(root, FileCache())
        assert check.ok, [e.render() for e in check.errors[:5]]
        assert len(check.items) == args.items and len(check.workflows) == args.workflows
        files = parse_only(root)

        # interleaved, so that noise from the rest of the machine hits both alike
        a_runs, b_runs = [], []
        for _ in range(args.rounds):
            a_runs.append(timed(lambda: parse_only(root), 1))
            b_runs.append(timed(lambda: load_catalog(root, FileCache()), 1))
        a, b = statistics.median(a_runs), statistics.median(b_runs)

        cache = FileCache()
        load_catalog(root, cache)
        changed = root / "items" / "item-7.yaml"
        original = changed.read_text()
        flip = [0]

        def reload() -> None:
            flip[0] += 1
            changed.write_text(original.replace("Item number 7", f"Item number 7 ({flip[0]})"))
            load_catalog(root, cache)

        c = timed(reload, args.rounds)

    print(f"catalog: {args.items} items, {args.workflows} workflows, {files} YAML files")
    print(f"(a) PyYAML C loader, parse only       {a * 1000:9.1f} ms")
    print(f"(b) deskflow full load + validation   {b * 1000:9.1f} ms")
    print(f"(c) reload after one file changed     {c * 1000:9.1f} ms")
    print(f"b/a = {b / a:.2f}   c/b = {c / b:.3f}")
    print(target("validate.full_vs_parse", b / a, "<=", 2.5))
    print(target("validate.reload_vs_full", c / b, "<=", 0.1))


if __name__ == "__main__":
    main()
