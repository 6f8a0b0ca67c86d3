"""Benchmark: `deskflow migrate --dry-run` of 10,000 open requests on SQLite.

One VPN request is submitted through the request service on acme (its approval, timer and
audit rows as the engine writes them), then copied with Core inserts until `--requests` open
requests wait in manager_approval. A copy of acme whose identity-request workflow has a
renamed state (so every request is mapped and re-entered) is the target; the command users
run is timed in process (click's CliRunner), from loading the catalog to the summary line.
Target: ≤ 20 s.

    python benchmarks/migrate.py [--requests 10000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog.loader import load_valid_catalog  # noqa: E402
from engine.db import create_schema, make_engine, make_sessionmaker  # noqa: E402
from engine.directory import sync_directory  # noqa: E402
from engine.models import Approval, Request  # noqa: E402
from engine.service import RequestService  # noqa: E402
from web.cli import main as cli  # noqa: E402

ACME = Path(__file__).resolve().parents[1] / "examples" / "acme"
WF = "workflows/identity-request.yaml"


def target(name: str, measured: float, op: str, goal: float) -> str:
    ok = measured <= goal if op == "<=" else measured >= goal
    return f"target {name} {measured:.3f} {op} {goal} {'PASS' if ok else 'MISS'}"


def fill(url: str, count: int) -> None:
    """`count` open VPN requests in manager_approval, each with its pending approval."""
    catalog = load_valid_catalog(ACME)
    engine = make_engine(url)
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        sync_directory(s, catalog.directory)
    clock = lambda: datetime(2026, 11, 23, 8, 30, tzinfo=UTC)  # noqa: E731
    service = RequestService(sessions, lambda: catalog, clock)
    first = service.submit("vpn-access", "alice", {"vpn_profile": "standard"})
    skip = {"id", "number"}
    with sessions.begin() as s:
        req = s.scalar(select(Request).where(Request.number == first.number))
        approval = s.scalar(select(Approval).where(Approval.request_id == req.id))
        values = {c.key: getattr(req, c.key) for c in Request.__table__.columns if c.key not in skip}
        avalues = {c.key: getattr(approval, c.key) for c in Approval.__table__.columns
                   if c.key != "id"}
        for start in range(2, count + 1, 1000):
            numbers = range(start, min(start + 1000, count + 1))
            ids = s.scalars(insert(Request).returning(Request.id),
                            [{**values, "number": f"REQ-{n:06d}"} for n in numbers]).all()
            s.execute(insert(Approval), [{**avalues, "request_id": i} for i in ids])
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="deskflow-migrate-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        fill(url, args.requests)
        new = Path(tmp) / "catalog"
        shutil.copytree(ACME, new, ignore=shutil.ignore_patterns("tests"))
        (new / WF).write_text((new / WF).read_text().replace("manager_approval", "manager_ok"))
        started = time.perf_counter()
        result = CliRunner().invoke(cli, ["migrate", "identity-request", "--to", "current",
                                          "--map", "manager_approval=manager_ok", "--dry-run",
                                          "--db", url, "--catalog", str(new)])
        seconds = time.perf_counter() - started
        lines = result.output.splitlines()
        if result.exit_code != 0 or len(lines) != args.requests + 1:
            sys.exit(f"unexpected result ({result.exit_code}): {result.output[-500:]}")
        print(lines[-1])
        print(f"dry run of {args.requests} open requests: {seconds:.2f} s")
        if args.requests == 10_000:
            print(target("migrate.dry_run_10k", seconds, "<=", 20))
        else:
            scaled = seconds * 10_000 / args.requests
            print(f"scaled linearly to 10,000: {scaled:.2f} s")
            print(target("migrate.dry_run_10k", scaled, "<=", 20))


if __name__ == "__main__":
    main()
