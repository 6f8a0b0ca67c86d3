"""Benchmark: importing the ServiceNow log, and the dashboards and CSV export at 100,000 records.

Prints, measured in one run, on SQLite and on PostgreSQL:
  (a) the floor: the same zipped CSV read with the csv module and every row inserted (as
      text, one column per CSV column) into a throwaway table with SQLAlchemy Core
      executemany, in one transaction;
  (b) `deskflow import servicenow FILE --no-progress` (the command users run, in process)
      into a migrated database holding acme's directory: records, timeline events,
      directory entries, configuration items, the dashboards' facts rows; the ratio b/a;
  (c) generated history (engine.history.generate, scaled) through the importer's own bulk
      path until about `--records` records;
  (d) /reports signed in as an admin through Flask's test client (the page: every figure's
      SVG chart and table): `--views` views each unfiltered, for one quarter, one priority
      and one assignment group, after two warm-up views; p50/p95 per view and over all;
  (e) /reports/records.csv streamed: every record, then the records of about a tenth of
      the time range; rows, seconds, and the peak of memory allocated while streaming
      (tracemalloc): flat memory means the whole export peaks about where the tenth does.
Targets: import ≤ 3× its floor on each database; the dashboards p95 ≤ 300 ms on each
database; the full CSV export's peak memory ≤ 1.5× the tenth's.

    python benchmarks/history.py [--db sqlite|postgresql|both] [--records 100000] [--views 20]
                                 [--log PATH]

The log: ../shared/data/servicenow-incident-event-log.csv.zip (or --log).
PostgreSQL: DESKFLOW_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
names the server; the benchmark creates a database deskflow_histbench_<random> and drops it.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

from click.testing import CliRunner  # noqa: E402
from sqlalchemy import Column, MetaData, Table, Text, create_engine, func, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from catalog.loader import load_catalog  # noqa: E402
from engine.db import make_engine, make_sessionmaker  # noqa: E402
from engine.directory import sync_directory  # noqa: E402
from engine.history.generate import generate, generated_mapping  # noqa: E402
from engine.history.importer import run_import  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Person, RecordFact, Request  # noqa: E402
from web import create_app  # noqa: E402
from web.cli import main as cli  # noqa: E402
from web.passwords import FAST_HASHER, hash_password  # noqa: E402

ACME = ROOT / "examples" / "acme"
LOG = ROOT.parent / "shared" / "data" / "servicenow-incident-event-log.csv.zip"
PG_URL = os.environ.get("DESKFLOW_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery staple"
ADMIN = "oscar"
#: generated incidents per unit of `generate`'s scale (its default year)
GENERATED_PER_SCALE = 2870


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'histbench-{secrets.token_hex(3)}.sqlite'}"
        return
    name = f"deskflow_histbench_{secrets.token_hex(5)}"
    server = make_url(PG_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def prepare(url: str) -> None:
    """Migrate, and load acme's directory with one password (the admin signs in)."""
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        sync_directory(s, load_catalog(ACME).directory)
        s.execute(update(Person).where(Person.id == ADMIN).values(
            password_hash=hash_password(PASSWORD, using=FAST_HASHER)))
    engine.dispose()


def floor(url: str, log: Path) -> tuple[float, int]:
    """Seconds to read the CSV and insert every row with Core in one transaction; rows."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    started = time.perf_counter()
    with zipfile.ZipFile(log) as z, z.open(z.namelist()[0]) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(reader)
        table = Table("floor_rows", MetaData(), *(Column(f"c{i}", Text) for i in range(len(header))))
        rows = [{f"c{i}": v for i, v in enumerate(row)} for row in reader]
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(insert(table), rows)
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        table.drop(conn)
    engine.dispose()
    return seconds, len(rows)


def import_log(url: str, log: Path) -> float:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["import", "servicenow", str(log), "--no-progress",
                                      "--db", url, "--catalog", str(ACME)])
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"deskflow import failed ({result.exit_code}): {result.output[-2000:]}")
    return seconds


def fill(url: str, records: int) -> tuple[int, float]:
    """Generated history until about `records` records; the count and the seconds."""
    engine = make_engine(url)
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(Request)) or 0
    started = time.perf_counter()
    if records > have:
        now = datetime.now(UTC)
        run_import(engine, generated_mapping(), generate(now, scale=(records - have) / GENERATED_PER_SCALE),
                   now)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(Request)) or 0
        facts = conn.scalar(select(func.count()).select_from(RecordFact)) or 0
    engine.dispose()
    if facts != total:
        raise SystemExit(f"{total} records but {facts} facts rows")
    return total, time.perf_counter() - started


def signed_in(url: str, tmp: Path) -> Any:
    app = create_app({"SECRET_KEY": secrets.token_hex(16), "DESKFLOW_DATABASE_URL": url,
                      "DESKFLOW_CATALOG": str(ACME), "DESKFLOW_SECURE_COOKIES": False,
                      "RATELIMIT_ENABLED": False, "DESKFLOW_PASSWORD_HASHING": "fast"})
    app.instance_path = str(tmp / "instance")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on /login"
    answer = client.post("/login", data={"csrf_token": token.group(1), "username": ADMIN,
                                         "password": PASSWORD})
    assert answer.status_code == 302, answer.status_code
    return client


def variants(url: str) -> dict[str, str]:
    """The views measured: unfiltered, the quarter from the median opening, the commonest
    priority, the busiest group."""
    engine = make_engine(url)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(RecordFact)) or 0
        mid = conn.scalar(select(RecordFact.opened_at).order_by(RecordFact.opened_at)
                          .offset(total // 2).limit(1))
        priority = conn.scalar(select(RecordFact.priority).group_by(RecordFact.priority)
                               .order_by(func.count().desc()).limit(1))
        group = conn.scalar(select(RecordFact.group_id).where(RecordFact.group_id.is_not(None))
                            .group_by(RecordFact.group_id).order_by(func.count().desc()).limit(1))
    engine.dispose()
    quarter = f"from={mid.date().isoformat()}&to={(mid + timedelta(days=91)).date().isoformat()}"
    return {"all": "/reports", "quarter": f"/reports?{quarter}",
            "priority": f"/reports?priority={priority}", "group": f"/reports?group={group}"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def bench_reports(client: Any, views: dict[str, str], n: int) -> list[float]:
    every: list[float] = []
    for name, path in views.items():
        for _ in range(2):
            assert client.get(path).status_code == 200
        times = []
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        every += times
        print(f"  /reports {name:9} p50 {statistics.median(times):7.1f} ms  p95 {pct(times, 95):7.1f} ms"
              f"  ({path})")
    return every


def stream(client: Any, path: str) -> tuple[int, float, float]:
    """Rows, seconds, and the peak MiB allocated while streaming one CSV export."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    response = client.get(path, buffered=False)
    assert response.status_code == 200, response.status_code
    lines = 0
    for chunk in response.response:
        lines += (chunk if isinstance(chunk, bytes) else chunk.encode()).count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return lines - 1, seconds, peak / 2**20


def target(name: str, measured: float | None, op: str, goal: float, digits: int = 2) -> str:
    if measured is None or measured != measured:
        return f"target {name} n/a {op} {goal:g} MISS"
    ok = measured <= goal if op == "<=" else measured >= goal
    return f"target {name} {measured:.{digits}f} {op} {goal:g} {'PASS' if ok else 'MISS'}"


def bench_database(kind: str, args: argparse.Namespace, tmp: Path) -> list[str]:
    print(f"\n== {kind}")
    with database(kind, tmp) as url:
        prepare(url)
        floor_s, rows = floor(url, args.log)
        import_s = import_log(url, args.log)
        print(f"  floor: {rows} CSV rows read and inserted with Core in {floor_s:.2f} s")
        print(f"  deskflow import servicenow: {import_s:.2f} s  ({import_s / floor_s:.2f}x the floor)")
        total, fill_s = fill(url, args.records)
        print(f"  generated history: {total} records in all after {fill_s:.1f} s")
        client = signed_in(url, tmp)
        views = variants(url)
        every = bench_reports(client, views, args.views)
        p95 = pct(every, 95)
        print(f"  /reports over all views: p50 {statistics.median(every):.1f} ms, p95 {p95:.1f} ms")
        first, last = views["quarter"].split("?")[1].split("&")
        all_rows, all_s, all_peak = stream(client, "/reports/records.csv")
        tenth_from = datetime.fromisoformat(first.split("=")[1])
        tenth = f"/reports/records.csv?from={tenth_from.date()}&to={(tenth_from + timedelta(days=36)).date()}"
        part_rows, part_s, part_peak = stream(client, tenth)
        print(f"  records.csv: {all_rows} rows in {all_s:.2f} s, peak {all_peak:.2f} MiB; "
              f"{part_rows} rows in {part_s:.2f} s, peak {part_peak:.2f} MiB")
        assert all_rows == total, (all_rows, total)
        return [target(f"history.import_vs_floor_{kind}", import_s / floor_s, "<=", 3),
                target(f"history.reports_p95_ms_{kind}", p95, "<=", 300),
                target(f"history.records_csv_peak_ratio_{kind}", all_peak / part_peak, "<=", 1.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--log", type=Path, default=LOG)
    args = parser.parse_args()
    if not args.log.is_file():
        raise SystemExit(f"{args.log} is missing (see ../shared/data/README.md)")
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            lines += bench_database(kind, args, Path(tmp))
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
