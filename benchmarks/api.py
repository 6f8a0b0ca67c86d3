"""Benchmark: the JSON API under gunicorn against hand-written views doing the same work, and mail-in.

Prints, measured in one run on SQLite:
  (a) the instance: examples/acme copied to a temporary folder (its deskflow.yaml with
      `mail_in.rate_limit` raised to `--messages`, so one hour's mail from acme's 17 people is
      not throttled), a database made with `deskflow db upgrade` and `deskflow directory sync`,
      and a personal API token for alice made with `deskflow token create`;
  (b) two gunicorns with the same settings (2 sync workers, 127.0.0.1): Deskflow
      ('web:create_app(...)', the API's rate limit raised out of the way) and the hand-written
      floor (benchmarks/web_support/api_floor.py), both on that database. Closed-loop clients
      in another process (`--concurrency` keep-alive connections, benchmarks/web_support/
      loadgen.py) load each for `--seconds` after a warm-up, alternating which goes first,
      `--rounds` times, for
        GET /api/v1/catalog  against  the floor's GET /catalog (token lookup, the items as JSON);
        POST /api/v1/requests (report-incident, valid answers, no Idempotency-Key)  against
          the floor's POST /requests, which writes the same rows with SQLAlchemy Core in one
          transaction (checked: one submit through each writes the same number of rows to the
          same tables);
      requests/s, p50 and p99 per round and their medians, and what the clients themselves
      cost (CPU per request, share of the machine);
  (c) `deskflow mail-in` fed `--messages` new messages to helpdesk@ (each opens an incident,
      as acme routes it), one process per message as an MTA's pipe runs it, `--concurrency`
      at a time: messages/s. Then `--messages` more through engine.mail_in.receive in this
      process (no start-up, one thread), for comparison only.
Targets: the API's requests/s >= 0.6x the floor's for reads and >= 0.5x for submits, its p99
<= 3x the floor's for each; piped mail-in messages/s >= 0.5x the API's submits/s (the
per-process figure: an MTA starts one process per message, so start-up counts).

    python benchmarks/api.py [--seconds 10] [--rounds 3] [--concurrency 4] [--messages 1000]
                             [--quick]

--quick runs tiny phases (a smoke run: it proves the benchmark works, its figures mean little).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "web_support"
# Run as a script, this file's folder heads sys.path, and benchmarks/web.py would shadow the
# `web` package measured here.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(1, str(SUPPORT))

from click.testing import CliRunner  # noqa: E402
from sqlalchemy import inspect, select, text  # noqa: E402

from benchmarks.web import Server, gunicorn, percentile, server_errors, target  # noqa: E402
from catalog.loader import load_valid_catalog  # noqa: E402
from engine.db import make_engine, make_sessionmaker  # noqa: E402
from engine.models import Person  # noqa: E402
from web.cli import main as cli  # noqa: E402

ACME = ROOT / "examples" / "acme"
ITEM = "report-incident"
ORDER_AS = "alice"
ANSWERS = {"short_description": "Mail is down", "affected_service": "email",
           "description": "Nobody on the third floor can send or receive mail.",
           "impact": "low", "urgency": "medium", "contact_email": "alice.jansen@acme.example"}
HELPDESK = "helpdesk@acme.example"
SECRET_KEY = "deskflow-api-benchmark-not-a-secret"
#: out of the way: the API allows 600 calls a minute per token by default
API_RATE_LIMIT = "100000000/minute"
GOALS = {"catalog_throughput_ratio": (">=", 0.6), "catalog_p99_ratio": ("<=", 3.0),
         "submit_throughput_ratio": (">=", 0.5), "submit_p99_ratio": ("<=", 3.0),
         "mail_in_vs_submit": (">=", 0.5)}


# ---------------------------------------------------------------- the instance


def run_cli(*args: str) -> str:
    """Run a `deskflow` command in process; its standard output."""
    result = CliRunner().invoke(cli, list(args))
    if result.exit_code != 0:
        raise SystemExit(f"deskflow {' '.join(args[:2])} failed ({result.exit_code}): "
                         f"{result.output[-2000:]}")
    return result.stdout


def make_instance(tmp: Path, messages: int) -> tuple[Path, str, str]:
    """The catalog folder, the database URL and alice's API token."""
    catalog = tmp / "catalog"
    shutil.copytree(ACME, catalog)
    settings = catalog / "deskflow.yaml"
    changed, n = re.subn(r"(?m)^([ \t]+rate_limit:)[ \t]*\d+[ \t]*$", rf"\1 {max(20, messages)}",
                         settings.read_text())
    if n != 1:
        raise SystemExit(f"{settings}: no mail_in.rate_limit to raise")
    settings.write_text(changed)
    url = f"sqlite:///{tmp / 'deskflow.sqlite'}"
    run_cli("db", "upgrade", "--db", url)
    print("  " + run_cli("directory", "sync", "--db", url, "--catalog", str(catalog)).strip())
    out = run_cli("token", "create", "--user", ORDER_AS, "--name", "benchmark", "--db", url)
    token = next(line for line in out.splitlines() if line.startswith("dft_"))
    return catalog, url, token


def server_env(url: str, catalog: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKFLOW_")}
    env.update(DESKFLOW_DATABASE_URL=url, DESKFLOW_CATALOG=str(catalog),
               DESKFLOW_SECRET_KEY=SECRET_KEY, DESKFLOW_SECURE_COOKIES="false",
               DESKFLOW_RATELIMIT_STORAGE="memory://", PYTHONPATH=str(ROOT))
    return env


def row_counts(url: str) -> Counter[str]:
    """Rows per table (the full-text index's own tables left out: a trigger keeps them)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = [t for t in inspect(conn).get_table_names() if not t.startswith("record_search")]
            return Counter({t: conn.scalar(text(f'SELECT count(*) FROM "{t}"')) or 0 for t in names})
    finally:
        engine.dispose()


# ---------------------------------------------------------------- HTTP


def call(port: int, method: str, path: str, headers: dict[str, str],
         body: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def load(server: Server, method: str, path: str, headers: dict[str, str], body: str | None,
         ok: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    """Closed-loop clients in another process; what they measured and what they cost."""
    job = {"port": server.port, "method": method, "paths": [path], "headers": headers,
           "body": body, "ok": list(ok), "concurrency": args.concurrency,
           "duration": args.seconds, "warmup": args.warmup}
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run([sys.executable, str(SUPPORT / "loadgen.py")], input=json.dumps(job),
                         capture_output=True, text=True, cwd=ROOT,
                         timeout=args.seconds + args.warmup + 120)
    if out.returncode:
        raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sent = result["count"] * (args.seconds + args.warmup) / max(args.seconds, 1e-9)
    lat = result["latencies"]
    result.update(p50=percentile(lat, 50), p99=percentile(lat, 99),
                  client_ms=cpu * 1000 / max(sent, 1),
                  client_share=cpu / (wall * (os.cpu_count() or 1)))
    return result


def show(label: str, r: dict[str, Any], ok: tuple[int, ...]) -> None:
    bad = {k: v for k, v in r["statuses"].items() if int(k) not in ok}
    print(f"    {label:<30} {r['ok_per_second']:7.1f} ok/s  p50 {r['p50']:6.2f} ms  "
          f"p99 {r['p99']:6.2f} ms  (n={r['count']:,}{f', other answers {bad}' if bad else ''}; "
          f"clients {r['client_ms']:.2f} ms CPU per request, {r['client_share'] * 100:.0f}% "
          "of the CPUs)")
    if r["first_error"]:
        print(f"      first unexpected answer: {r['first_error'][:300]!r}")


def compare(name: str, real: tuple[Server, str], hand: tuple[Server, str], method: str,
            headers: dict[str, str], body: str | None, ok: tuple[int, ...],
            args: argparse.Namespace) -> tuple[float, float, float]:
    """`--rounds` rounds of both, alternating which goes first: the ratios of the medians
    (throughput, p99) and the API's median ok/s."""
    runs: dict[str, list[dict[str, Any]]] = {"api": [], "floor": []}
    sides = {"api": real, "floor": hand}
    for n in range(args.rounds):
        print(f"  {name}, round {n + 1} of {args.rounds}")
        for side in (("api", "floor") if n % 2 == 0 else ("floor", "api")):
            server, path = sides[side]
            r = load(server, method, path, headers, body, ok, args)
            runs[side].append(r)
            show(f"{side} {method} {path}", r, ok)
    med = {side: (statistics.median(r["ok_per_second"] for r in rs),
                  statistics.median(r["p99"] for r in rs),
                  statistics.median(r["p50"] for r in rs),
                  statistics.median(r["client_share"] for r in rs)) for side, rs in runs.items()}
    throughput = med["api"][0] / med["floor"][0] if med["floor"][0] else float("nan")
    p99 = med["api"][1] / med["floor"][1] if med["floor"][1] else float("nan")
    print(f"  {name} medians: api {med['api'][0]:.1f} ok/s, p50 {med['api'][2]:.2f} ms, "
          f"p99 {med['api'][1]:.2f} ms; floor {med['floor'][0]:.1f} ok/s, p50 "
          f"{med['floor'][2]:.2f} ms, p99 {med['floor'][1]:.2f} ms; throughput ratio "
          f"{throughput:.3f}, p99 ratio {p99:.2f}")
    busiest = max(med["api"][3], med["floor"][3])
    if busiest > 0.3:
        print(f"  note: the clients used up to {busiest * 100:.0f}% of the CPUs: they compete "
              "with the servers; fewer --concurrency may be fairer")
    return throughput, p99, med["api"][0]


def check_same_rows(url: str, real: Server, hand: Server, headers: dict[str, str],
                    body: str) -> None:
    """One submit through each: the same tables get the same number of rows."""
    status, answer = call(real.port, "POST", "/api/v1/requests", headers, body)  # pins the version
    if status != 201:
        raise SystemExit(f"POST /api/v1/requests answered {status}: {answer[:500]}")
    deltas = []
    for server, path in ((real, "/api/v1/requests"), (hand, "/requests")):
        before = row_counts(url)
        status, answer = call(server.port, "POST", path, headers, body)
        if status != 201:
            raise SystemExit(f"POST {path} answered {status}: {answer[:500]}")
        after = row_counts(url)
        deltas.append({t: after[t] - before[t] for t in after if after[t] != before[t]})
    print(f"  rows one submit writes: api {deltas[0]}; floor {deltas[1]}")
    real_rows = {t: n for t, n in deltas[0].items() if t != "api_tokens"}  # last use, once a minute
    if real_rows != deltas[1]:
        raise SystemExit("the floor does not write the rows the API writes: fix "
                         "benchmarks/web_support/api_floor.py")


# ---------------------------------------------------------------- mail-in


def senders(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as s:
            return [e for e in s.scalars(select(Person.email).where(Person.active.is_(True),
                                                                    Person.email.is_not(None))
                                         .order_by(Person.id)) if e]
    finally:
        engine.dispose()


def message(n: int, sender: str, run: str) -> bytes:
    """A plain new message to the helpdesk, as a mail client sends it."""
    return (f"From: {sender}\r\nTo: {HELPDESK}\r\n"
            f"Subject: The printer on floor {n % 7 + 1} jams ({run}-{n})\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: <{run}.{n}.{secrets.token_hex(6)}@mail.example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Hello,\r\n\r\nthe printer jams on every second page since this morning; the "
            f"display says paper jam in tray 2. Ticket {n} of this run.\r\n\r\nThanks\r\n").encode()


def deskflow_command() -> list[str]:
    exe = Path(sys.executable).with_name("deskflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from web.cli import main; main()"]


def mail_in_piped(mails: list[bytes], url: str, catalog: Path, concurrency: int) -> dict[str, Any]:
    """One `deskflow mail-in` process per message, `concurrency` at a time."""
    cmd = [*deskflow_command(), "mail-in", "--db", url, "--catalog", str(catalog)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKFLOW_")}

    def pipe(raw: bytes) -> tuple[float, int, str]:
        started = time.perf_counter()
        out = subprocess.run(cmd, input=raw, capture_output=True, env=env, cwd=ROOT, timeout=300)
        return (time.perf_counter() - started) * 1000, out.returncode, out.stderr.decode(errors="replace")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(pipe, mails))
    seconds = time.perf_counter() - started
    opened = sum(1 for _, code, err in done if code == 0 and "deskflow mail-in: opened" in err)
    failed = next((f"exit {code}: {err.strip()[-300:]}" for _, code, err in done
                   if code != 0 or "opened" not in err), "")
    lat = sorted(ms for ms, _, _ in done)
    return {"seconds": seconds, "opened": opened, "per_second": opened / seconds,
            "p50": percentile(lat, 50), "p99": percentile(lat, 99), "failed": failed}


def mail_in_service(mails: list[bytes], url: str, catalog_path: Path) -> dict[str, Any]:
    """The same work without start-up: engine.mail_in.receive in this process, one thread."""
    from engine.delivery_config import DeliveryConfig
    from engine.mail_in import receive
    from engine.mail_text import parse
    from engine.service import RequestService, utcnow

    catalog = load_valid_catalog(catalog_path)
    engine = make_engine(url)
    service = RequestService(make_sessionmaker(engine), lambda: catalog, utcnow)
    own = [DeliveryConfig.from_env().mail_from.rpartition("<")[2].strip(" >")]
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        for raw in mails:
            outcomes[receive(service, parse(raw), own).action] += 1
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "opened": outcomes["opened"],
            "per_second": outcomes["opened"] / seconds, "outcomes": dict(outcomes)}


# ---------------------------------------------------------------- main


def bench(args: argparse.Namespace, tmp: Path) -> list[str]:
    print(f"\n== instance in a temporary folder (SQLite), gunicorn 2 sync workers each, "
          f"{args.concurrency} clients, {args.seconds:g} s per run after {args.warmup:g} s "
          f"warm-up, {args.rounds} rounds")
    catalog, url, token = make_instance(tmp, args.messages)
    env = server_env(url, catalog)
    auth = {"Authorization": f"Bearer {token}"}
    body = json.dumps({"item": ITEM, "answers": ANSWERS})
    post = {**auth, "Content-Type": "application/json"}
    app = (f"web:create_app({{'DESKFLOW_API_RATE_LIMIT': {API_RATE_LIMIT!r}}}, "
           f"instance_path={str(tmp / 'instance')!r})")
    ratios: dict[str, float | None] = dict.fromkeys(GOALS)
    with gunicorn(app, env, tmp / "deskflow.log", "/api/v1/openapi.json") as real, \
            gunicorn("benchmarks.web_support.api_floor:create_app()", env, tmp / "floor.log",
                     "/health") as hand:
        status, listing = call(real.port, "GET", "/api/v1/catalog", auth)
        status_hand, listing_hand = call(hand.port, "GET", "/catalog", auth)
        if status != 200 or status_hand != 200 or json.loads(listing) != json.loads(listing_hand):
            raise SystemExit(f"the two catalogs differ: {status} {listing[:300]} / "
                             f"{status_hand} {listing_hand[:300]}")
        print(f"\n  GET /api/v1/catalog lists {len(json.loads(listing)['items'])} items for "
              f"{ORDER_AS}; the floor lists the same")
        ratios["catalog_throughput_ratio"], ratios["catalog_p99_ratio"], _ = compare(
            "reads", (real, "/api/v1/catalog"), (hand, "/catalog"), "GET", auth, None, (200,), args)
        check_same_rows(url, real, hand, post, body)
        before = row_counts(url)["requests"]
        ratios["submit_throughput_ratio"], ratios["submit_p99_ratio"], api_submits = compare(
            "submits", (real, "/api/v1/requests"), (hand, "/requests"), "POST", post, body,
            (201,), args)
        print(f"  requests stored during the submit runs (warm-ups included): "
              f"{row_counts(url)['requests'] - before:,}")
    server_errors(tmp / "deskflow.log")
    server_errors(tmp / "floor.log")

    people = senders(url)
    run = secrets.token_hex(3)
    mails = [message(n, people[n % len(people)], run) for n in range(2 * args.messages)]
    print(f"\n  mail-in: {args.messages} new messages to {HELPDESK} from {len(people)} people")
    piped = mail_in_piped(mails[:args.messages], url, catalog, args.concurrency)
    print(f"    piped, one process each, {args.concurrency} at a time: {piped['opened']} opened in "
          f"{piped['seconds']:.1f} s = {piped['per_second']:.2f} messages/s (per process p50 "
          f"{piped['p50']:.0f} ms, p99 {piped['p99']:.0f} ms)")
    if piped["failed"]:
        print(f"    not opened: {piped['failed']}")
    inproc = mail_in_service(mails[args.messages:], url, catalog)
    print(f"    in process (engine.mail_in.receive, one thread, no start-up): {inproc['opened']} "
          f"opened in {inproc['seconds']:.1f} s = {inproc['per_second']:.2f} messages/s "
          f"{inproc['outcomes']}")
    if inproc["opened"]:
        startup = piped["p50"] - inproc["seconds"] * 1000 / inproc["opened"]
        print(f"    start-up per process (piped p50 minus in-process time per message): about "
              f"{startup:.0f} ms: imports and loading the catalog, before the message is read")
    if api_submits:
        ratios["mail_in_vs_submit"] = piped["per_second"] / api_submits
        print(f"    piped / API submits = {piped['per_second']:.2f} / {api_submits:.1f} = "
              f"{ratios['mail_in_vs_submit']:.3f}; in process / API submits = "
              f"{inproc['per_second'] / api_submits:.3f} (for comparison, not the target)")
    return [target(f"api.{name}", ratios[name], op, goal, 3) for name, (op, goal) in GOALS.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per measured run")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side per phase")
    ap.add_argument("--concurrency", type=int, default=4, help="closed-loop clients")
    ap.add_argument("--messages", type=int, default=1000, help="messages piped to mail-in")
    ap.add_argument("--quick", action="store_true", help="tiny phases: a smoke run")
    args = ap.parse_args()
    args.warmup = 2.0
    if args.quick:
        args.seconds, args.rounds, args.concurrency, args.messages, args.warmup = 1.0, 1, 2, 6, 0.3
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deskflow-apibench-") as tmp:
        lines = bench(args, Path(tmp))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
