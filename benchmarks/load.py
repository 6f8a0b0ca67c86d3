"""Benchmark: load and faults, measured: the whole product on PostgreSQL, with things breaking.

Everything on 127.0.0.1:
  * a PostgreSQL server of its own (initdb in a temporary folder, run as the `postgres` user,
    fsync off), so restarting it disturbs no one else; with --pg-url an existing server is
    used instead and the "restart" becomes terminating every backend of the benchmark's database;
  * gunicorn with 4 sync workers serving the acme catalog (webhook URLs pointed at the local
    receiver), 2 `deskflow worker` processes (a supervisor here restarts one that dies);
  * an SMTP sink and a webhook receiver (stdlib servers) that can be stopped and slowed;
  * a mixed workload from a second process (benchmarks/web_support/mixload.py): browse,
    search, order, approve, the agents' list, complete, API reads and submits, mail-in.
During the run: SIGKILL of a gunicorn worker, SIGKILL of a `deskflow worker`, the SMTP sink
and the webhook receiver down then slow, and PostgreSQL restarted. Afterwards the workers
drain the outbox (at most `--drain` seconds), and the checks read the audit log and the outbox:
no transition lost or applied twice, every message delivered at least once or dead-lettered,
none stuck sending after its lease.

Prints per action: count, throughput, p50/p95/p99, outcomes; errors by kind and by window;
the faults with their times; the checks; and the targets
  target load.5xx_outside_restart N <= 0 PASS|MISS
  target load.lost_or_doubled N <= 0 PASS|MISS
  target load.undelivered N <= 0 PASS|MISS
Writes the figures to `--out` (JSON); benchmarks/reliability_doc.py renders docs/reliability.md's
table from it.

    python benchmarks/load.py [--seconds 60] [--threads 6] [--drain 180] [--out load.json]
                              [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "web_support"
# Run as a script, this file's folder heads sys.path, and benchmarks/web.py would shadow `web`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(1, str(SUPPORT))

import gunicorn_run  # noqa: E402
from pg_server import DISPOSABLE, Postgres  # noqa: E402
from sqlalchemy import text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.db import make_engine  # noqa: E402

ACME = ROOT / "examples" / "acme"
PASSWORD = "correct horse battery staple"
SECRET_KEY = "deskflow-load-benchmark-not-a-secret"
HOOK_SECRET = "deskflow-load-benchmark-hook-secret"
API_RATE_LIMIT = "100000000/minute"
GUNICORN_WORKERS = 4
DESKFLOW_WORKERS = 2
HELPDESK = "helpdesk@acme.example"
ORDERS = {"mobile-phone": {"device": "pixel", "data_plan": "10gb", "cost_center": "CC-1234",
                           "building": "ams-hq", "floor": 3},
          "password-unlock": {"account": "acme"}}
INCIDENT = {"short_description": "Mail is down", "affected_service": "email",
            "description": "Nobody on the third floor can send or receive mail.",
            "impact": "low", "urgency": "medium", "contact_email": "alice.jansen@acme.example"}
WEIGHTS = {"browse": 16, "search": 8, "order": 16, "approve": 14, "agents_list": 8,
           "complete": 14, "api_read": 8, "api_submit": 6, "mail_in": 3}
SMTP_SLOW_S = 1.5
HOOK_SLOW_S = 3.0
#: the statuses that are answers, not errors: redirects, and a 409 when someone decided first
EXPECTED = ("ok", "conflict", "empty")
#: seconds after PostgreSQL accepts connections again that still count as its restart window
RECOVERY_GRACE_S = 2.0


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


free_port = gunicorn_run.free_port


# ---------------------------------------------------------------- the receivers


class Mode:
    """up | down | slow, shared with a server's handler threads."""

    def __init__(self) -> None:
        self.value = "up"


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: SmtpSink.Server

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())
        self.wfile.flush()

    def handle(self) -> None:
        sink = self.server.sink
        self.reply("220 127.0.0.1 load-benchmark sink")
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            verb = raw.decode("utf-8", "replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-127.0.0.1\r\n250 SIZE 10485760" if verb == "EHLO" else "250 127.0.0.1")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    line = self.rfile.readline(1 << 20)
                    if not line or line in (b".\r\n", b".\n"):
                        break
                    lines.append(line)
                if sink.mode.value == "slow":
                    time.sleep(SMTP_SLOW_S)
                found = re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", b"".join(lines))
                sink.received(found.group(1).decode() if found else "")
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SmtpSink:
    """An SMTP server on a fixed port that counts Message-IDs and can be stopped and slowed."""

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        sink: SmtpSink

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = Mode()
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server: SmtpSink.Server | None = None

    def received(self, message_id: str) -> None:
        with self.lock:
            self.ids[message_id] += 1

    def start(self) -> None:
        self.server = self.Server(("127.0.0.1", self.port), SmtpHandler)
        self.server.sink = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class HookSink:
    """A webhook receiver counting Idempotency-Keys; it can be stopped and slowed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = Mode()
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if sink.mode.value == "slow":
                    time.sleep(HOOK_SLOW_S)
                with sink.lock:
                    sink.keys[self.headers.get("Idempotency-Key", "")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# ---------------------------------------------------------------- the instance


def deskflow_command() -> list[str]:
    exe = Path(sys.executable).with_name("deskflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from web.cli import main; main()"]


def run_cli(*args: str) -> str:
    out = subprocess.run([*deskflow_command(), *args], capture_output=True, text=True, cwd=ROOT,
                         env=clean_env(), timeout=300)
    if out.returncode:
        raise SystemExit(f"deskflow {' '.join(args[:2])} failed ({out.returncode}): "
                         f"{out.stderr[-2000:]}")
    return out.stdout


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DESKFLOW_")}


def make_catalog(tmp: Path, hook_port: int) -> Path:
    """acme, its webhooks pointed at the local receiver and its mail-in limit out of the way."""
    catalog = tmp / "catalog"
    shutil.copytree(ACME, catalog)
    for path in (catalog / "workflows").glob("*.yaml"):
        body = path.read_text()
        moved = re.sub(r"https://iam\.acme\.example/", f"http://127.0.0.1:{hook_port}/", body)
        if moved != body:
            path.write_text(moved)
    settings = catalog / "deskflow.yaml"
    raised, n = re.subn(r"(?m)^([ \t]+rate_limit:)[ \t]*\d+[ \t]*$", r"\1 10000", settings.read_text())
    if n != 1:
        raise SystemExit(f"{settings}: no mail_in.rate_limit to raise")
    settings.write_text(raised)
    return catalog


def make_database(server_url: str, name: str, catalog: Path) -> tuple[str, str]:
    """Create `name` on the server, migrate it, sync the directory; (its URL, alice's API token)."""
    from web.passwords import hash_password

    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    run_cli("db", "upgrade", "--db", url)
    run_cli("directory", "sync", "--db", url, "--catalog", str(catalog))
    from engine.models import Person

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(Person).values(password_hash=hash_password(PASSWORD)))
    engine.dispose()
    out = run_cli("token", "create", "--user", "alice", "--name", "load", "--db", url)
    return url, next(line for line in out.splitlines() if line.startswith("dft_"))


def drop_database(server_url: str, name: str) -> None:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def service_env(url: str, catalog: Path, smtp: SmtpSink) -> dict[str, str]:
    env = clean_env()
    env.update(DESKFLOW_DATABASE_URL=url, DESKFLOW_CATALOG=str(catalog),
               DESKFLOW_SECRET_KEY=SECRET_KEY, DESKFLOW_SECURE_COOKIES="false",
               DESKFLOW_RATELIMIT_STORAGE="memory://", DESKFLOW_SMTP_HOST="127.0.0.1",
               DESKFLOW_SMTP_PORT=str(smtp.port), DESKFLOW_WEBHOOK_ALLOW_PRIVATE="true",
               ACME_IAM_SECRET=HOOK_SECRET, PYTHONPATH=str(ROOT))
    return env


# ---------------------------------------------------------------- processes


@dataclass
class Faults:
    """What was broken when, in seconds from the start of the load."""

    t0: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    pg_window: tuple[float, float] | None = None

    def note(self, what: str, start: float, end: float | None = None, detail: str = "") -> None:
        entry: dict[str, Any] = {"fault": what, "from_s": round(start - self.t0, 2),
                                 "detail": detail}
        if end is not None:
            entry["to_s"] = round(end - self.t0, 2)
        self.events.append(entry)
        span = f"{entry['from_s']:6.1f} s" + (f" .. {entry['to_s']:6.1f} s" if end is not None else "")
        print(f"  fault at {span}: {what}{' (' + detail + ')' if detail else ''}", flush=True)


@contextmanager
def gunicorn(env: dict[str, str], tmp: Path) -> Iterator[tuple[int, int]]:
    """The app under gunicorn with GUNICORN_WORKERS workers: (port, master pid)."""
    app = f"web:create_app({{'DESKFLOW_API_RATE_LIMIT': {API_RATE_LIMIT!r}}}, " \
          f"instance_path={str(tmp / 'instance')!r})"
    with gunicorn_run.serve(app, env, tmp / "gunicorn.log", "/login", GUNICORN_WORKERS,
                            timeout=60) as started:
        yield started


class Workers:
    """`deskflow worker` processes under a small supervisor that restarts one that dies."""

    def __init__(self, env: dict[str, str], url: str, catalog: Path, tmp: Path) -> None:
        self.cmd = [*deskflow_command(), "worker", "--db", url, "--catalog", str(catalog),
                    "--interval", "0.5"]
        self.env, self.tmp = env, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True)

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        with (self.tmp / f"worker-{i}.log").open("ab") as out:
            return subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.procs = [self._spawn(i) for i in range(DESKFLOW_WORKERS)]
        self.thread.start()

    def _supervise(self) -> None:
        while not self.stopping.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stopping.is_set():
                    self.procs[i] = self._spawn(i)
                    self.restarts += 1

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def inject(faults: Faults, seconds: float, app_pid: int, workers: Workers,
           smtp: SmtpSink, hooks: HookSink, restart_db: Callable[[], str]) -> None:
    """The fault schedule, scaled to the run's length."""
    def at(share: float) -> None:
        delay = faults.t0 + share * seconds - time.time()
        if delay > 0:
            time.sleep(delay)

    at(0.15)
    victim = children(app_pid)[0]
    now = time.time()
    os.kill(victim, signal.SIGKILL)
    faults.note("SIGKILL of a gunicorn worker", now, detail=f"pid {victim}; the arbiter forks another")
    at(0.25)
    proc = workers.procs[0]
    now = time.time()
    proc.send_signal(signal.SIGKILL)
    faults.note("SIGKILL of a deskflow worker", now,
                detail=f"pid {proc.pid}; the supervisor starts another; rows it held wait for their lease")
    at(0.35)
    down = time.time()
    smtp.stop()
    hooks.stop()
    at(0.45)
    slow = time.time()
    smtp.mode.value = hooks.mode.value = "slow"
    smtp.start()
    hooks.start()
    faults.note("SMTP sink and webhook receiver down (connection refused)", down, slow)
    at(0.55)
    up = time.time()
    smtp.mode.value = hooks.mode.value = "up"
    faults.note(f"SMTP sink slow ({SMTP_SLOW_S:g} s per message), webhook receiver slow "
                f"({HOOK_SLOW_S:g} s per call)", slow, up)
    at(0.65)
    begin = time.time()
    how = restart_db()
    ready = time.time()
    faults.pg_window = (begin - faults.t0, ready + RECOVERY_GRACE_S - faults.t0)
    faults.note(how, begin, ready, detail=f"window counted until {RECOVERY_GRACE_S:g} s after")


# ---------------------------------------------------------------- checks


def outbox_state(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT status, count(*), count(*) FILTER (WHERE locked_until < now()) "
                "FROM outbox GROUP BY status")).all()
    finally:
        engine.dispose()
    out = {str(s): int(n) for s, n, _ in rows}
    out["sending_past_lease"] = sum(int(x) for s, _, x in rows if s == "sending")
    return out


def drain(url: str, limit: float) -> tuple[float, dict[str, int]]:
    """Wait until nothing is pending or sending, or `limit` seconds; how long it took."""
    started = time.monotonic()
    while True:
        state = outbox_state(url)
        if not state.get("pending") and not state.get("sending"):
            return time.monotonic() - started, state
        if time.monotonic() - started > limit:
            return time.monotonic() - started, state
        time.sleep(1.0)


def consistency(url: str, smtp: SmtpSink, hooks: HookSink) -> dict[str, Any]:
    """Transitions against the audit log; the outbox against what the receivers saw."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            requests = conn.execute(text("SELECT id, state FROM requests")).all()
            audit = conn.execute(text(
                "SELECT request_id, event, from_state, to_state, detail FROM audit_events "
                "WHERE request_id IS NOT NULL AND to_state IS NOT NULL ORDER BY id")).all()
            decided = conn.execute(text(
                "SELECT a.id, count(e.id) FROM approvals a LEFT JOIN audit_events e "
                "ON e.request_id = a.request_id AND e.event IN ('approval_approved', "
                "'approval_rejected') AND (e.detail ->> 'approval')::int = a.id "
                "WHERE a.decision IN ('approved', 'rejected') GROUP BY a.id")).all()
            outbox = conn.execute(text(
                "SELECT kind, status, idempotency_key, message_digest FROM outbox")).all()
            retried = conn.scalar(text("SELECT count(*) FROM outbox WHERE attempts > 1")) or 0
    finally:
        engine.dispose()
    # Each request's audited changes of state form a chain (each starts where the last one
    # ended) that ends in its stored state: a break where a row repeats the previous row's
    # step is a transition applied twice; any other break, or a wrong end, is a lost one.
    last: dict[int, tuple[str | None, str, str]] = {}
    lost_ids: set[int] = set()
    doubled = 0
    for rid, event, frm, to, detail in audit:
        step = (frm, to, f"{event}:{(detail or {}).get('trigger', '')}")
        prev = last.get(rid)
        if prev is not None and frm != prev[1]:
            if step == prev:
                doubled += 1
            else:
                lost_ids.add(rid)
        last[rid] = step
    lost_ids |= {rid for rid, state in requests if rid not in last or last[rid][1] != state}
    lost = sorted(lost_ids)
    approvals_audited = [row for row in decided if row[1] > 0]
    approvals_doubled = sum(1 for row in decided if row[1] > 1)
    lost += [-row[0] for row in decided if row[1] == 0]  # negative: an approval's id
    by_status: Counter[str] = Counter(f"{k}:{s}" for k, s, _, _ in outbox)
    mail_ids = {m.split(".", 1)[0] for m in smtp.ids if m}
    undelivered_seen = 0
    for kind, status, key, digest in outbox:
        if status != "delivered":
            continue
        if kind == "email" and digest and digest not in mail_ids:
            undelivered_seen += 1
        elif kind == "webhook" and key not in hooks.keys:
            undelivered_seen += 1
    return {"requests": len(requests), "transitions": len(audit), "lost": len(lost),
            "lost_examples": lost[:5], "doubled": doubled + approvals_doubled,
            "approvals_decided": len(decided), "approvals_with_audit": len(approvals_audited),
            "outbox": dict(sorted(by_status.items())),
            "delivered_not_received": undelivered_seen, "retried": int(retried),
            "emails_received": sum(smtp.ids.values()), "emails_unique": len(smtp.ids),
            "webhooks_received": sum(hooks.keys.values()), "webhooks_unique": len(hooks.keys)}


# ---------------------------------------------------------------- figures


def server_errors(log: Path, t0: float) -> list[str]:
    """The exceptions gunicorn's workers logged (the last line of each traceback), with the
    second of the run they were logged at when the line carries a timestamp."""
    found: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        entry: Any = None
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
        if isinstance(entry, dict) and entry.get("levelname", entry.get("level", "")) in ("ERROR",
                                                                                       "CRITICAL"):
            info = str(entry.get("exc_info") or "").strip().splitlines()
            found.append(f"{entry.get('asctime', entry.get('time', ''))} {entry.get('message', '')}"
                         f" {info[-1] if info else ''}".strip())
        elif re.match(r"^\w+(\.\w+)*(Error|Exception|Timeout)\b", line) or "[CRITICAL]" in line:
            found.append(line.strip())
    return found[:50]


def summarize(records: list[dict[str, Any]], faults: Faults, seconds: float) -> dict[str, Any]:
    by_action: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_action[r["action"]].append(r)
    actions: dict[str, dict[str, Any]] = {}
    for name, rows in sorted(by_action.items()):
        lat = sorted(r["ms"] for r in rows if r["outcome"] == "ok")
        actions[name] = {"count": len(rows), "ok": len(lat), "per_second": len(lat) / seconds,
                         "p50": percentile(lat, 50), "p95": percentile(lat, 95),
                         "p99": percentile(lat, 99),
                         "outcomes": dict(Counter(r["outcome"] for r in rows))}
    window = faults.pg_window or (float("inf"), float("inf"))
    errors: Counter[str] = Counter()
    times: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r["outcome"] in EXPECTED:
            continue
        # a request in flight when the server went away counts as inside the window
        t, end = r["at"] - faults.t0, r["at"] - faults.t0 + r["ms"] / 1000
        where = "during PostgreSQL restart" if t <= window[1] and end >= window[0] else \
            "after PostgreSQL restart" if t > window[1] else "before PostgreSQL restart"
        # other failures are named after the fault they overlap (a killed worker's request)
        hit = [f["fault"] for f in faults.events
               if t <= f.get("to_s", f["from_s"]) + 0.5 and end >= f["from_s"]]
        if where != "during PostgreSQL restart" and hit:
            where += f", in flight at: {hit[0]}"
        if where != "during PostgreSQL restart":
            times[f"{r['outcome']} | {r['action']} | {where}"].append(round(t, 1))
        errors[f"{r['outcome']} | {r['action']} | {where}"] += 1
    five = {k: v for k, v in errors.items() if k.startswith("http 5")}
    outside = sum(v for k, v in five.items() if not k.endswith("during PostgreSQL restart"))
    after = sum(v for k, v in five.items() if "after PostgreSQL restart" in k)
    done = sum(a["ok"] for a in actions.values())
    return {"actions": actions, "errors": dict(sorted(errors.items())), "error_times_s": times,
            "answers": len(records), "ok": done, "per_second": done / seconds,
            "5xx_outside_restart": outside, "5xx_after_restart": after,
            "5xx_total": sum(five.values())}


def report(fig: dict[str, Any]) -> None:
    print(f"\n== {fig['seconds']:g} s, {fig['threads']} client threads: {fig['answers']:,} answers, "
          f"{fig['ok']:,} ok, {fig['per_second']:.1f} ok/s")
    print(f"  {'action':<14}{'count':>7}{'ok':>7}{'ok/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          "  outcomes")
    for name, a in fig["actions"].items():
        print(f"  {name:<14}{a['count']:>7}{a['ok']:>7}{a['per_second']:>8.1f}{a['p50']:>9.1f}"
              f"{a['p95']:>9.1f}{a['p99']:>9.1f}  {a['outcomes']}")
    print("\n== errors by kind | action | window")
    for k, v in fig["errors"].items() or {"none": 0}.items():
        at = fig["error_times_s"].get(k)
        print(f"  {v:>5}  {k}" + (f" (at {', '.join(f'{t:g}' for t in at[:8])} s)" if at else ""))
    c = fig["checks"]
    print(f"\n== checks after a {fig['drain_s']:.0f} s drain")
    print(f"  {c['requests']:,} requests, {c['transitions']:,} transitions in the audit log: "
          f"{c['lost']} whose state is not their last audited transition {c['lost_examples']}, "
          f"{c['doubled']} transitions applied twice")
    print(f"  {c['approvals_decided']} approvals decided, {c['approvals_with_audit']} with their audit row")
    print(f"  outbox: {c['outbox']}; {c['retried']} needed more than one attempt; "
          f"{c['delivered_not_received']} marked delivered but never "
          f"received; stuck sending past lease: {fig['outbox_after_drain'].get('sending_past_lease', 0)}")
    print(f"  received: {c['emails_received']} emails ({c['emails_unique']} unique Message-IDs), "
          f"{c['webhooks_received']} webhook calls ({c['webhooks_unique']} unique Idempotency-Keys); "
          f"duplicates share their key")
    print(f"  deskflow worker restarts by the supervisor: {fig['worker_restarts']}")
    if fig["server_errors"]:
        print(f"  gunicorn logged {len(fig['server_errors'])} errors; the first ones:")
        for line in fig["server_errors"][:8]:
            print(f"    {line[:300]}")
    print()
    for name, value in fig["targets"].items():
        print(f"target load.{name} {value} <= 0 {'PASS' if value <= 0 else 'MISS'}")


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    smtp, hooks = SmtpSink(), HookSink()
    smtp.start()
    hooks.start()
    pg: Postgres | None = None
    if args.pg_url:
        server_url = args.pg_url
    else:
        pg = Postgres(tmp, DISPOSABLE)
        server_url = pg.start()
    name = f"deskflow_load_{os.getpid()}"
    catalog = make_catalog(tmp, hooks.port)
    try:
        url, token = make_database(server_url, name, catalog)
        print(f"== PostgreSQL {'of our own on port ' + str(pg.port) if pg else server_url}, "
              f"database {name}; gunicorn {GUNICORN_WORKERS} workers, {DESKFLOW_WORKERS} deskflow "
              f"workers; SMTP :{smtp.port}, webhooks :{hooks.port}", flush=True)
        env = service_env(url, catalog, smtp)

        def restart_db() -> str:
            if pg is not None:
                pg.restart()
                return "PostgreSQL restarted (pg_ctl restart -m fast)"
            engine = make_engine(server_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                n = conn.scalar(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE datname = :d"), {"d": name})
            engine.dispose()
            return f"every backend of the database terminated ({n}; no server restart here)"

        workers = Workers(env, url, catalog, tmp)
        with gunicorn(env, tmp) as (port, app_pid):
            workers.start()
            senders = ["alice.jansen@acme.example", "bob.devries@acme.example"]
            job = {"port": port, "duration": args.seconds, "threads": args.threads, "seed": 13,
                   "password": PASSWORD, "token": token, "requester": "alice", "approver": "bob",
                   "agent": "frank", "fulfiller": "frank", "queue": "it-hardware",
                   "orders": ORDERS, "incident": INCIDENT, "weights": WEIGHTS,
                   "senders": senders, "helpdesk": HELPDESK, "out": str(tmp / "answers.json"),
                   "mail_cmd": [*deskflow_command(), "mail-in", "--db", url, "--catalog",
                                str(catalog)], "mail_env": clean_env()}
            faults = Faults()
            client = subprocess.Popen([sys.executable, str(SUPPORT / "mixload.py")], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert client.stdin is not None and client.stdout is not None
            client.stdin.write(json.dumps(job))
            client.stdin.close()
            faults.t0 = json.loads(client.stdout.readline())["started"]
            chaos = threading.Thread(target=inject, args=(faults, args.seconds, app_pid, workers, smtp,
                                                          hooks, restart_db))
            chaos.start()
            client.wait(timeout=args.seconds + 300)
            chaos.join()
            if client.returncode:
                raise SystemExit(f"the load client failed ({client.returncode})")
            records = json.loads((tmp / "answers.json").read_text())
            drained, after = drain(url, args.drain)
            workers.stop()
        logged = server_errors(tmp / "gunicorn.log", faults.t0)
        checks = consistency(url, smtp, hooks)
        fig = {"seconds": args.seconds, "threads": args.threads, "drain_s": drained,
               "faults": faults.events, "pg_window_s": faults.pg_window,
               "worker_restarts": workers.restarts, "outbox_after_drain": after,
               "checks": checks, "server_errors": logged, **summarize(records, faults, args.seconds)}
        undelivered = after.get("pending", 0) + after.get("sending", 0) + checks["delivered_not_received"]
        fig["targets"] = {"5xx_outside_restart": fig["5xx_outside_restart"],
                          "lost_or_doubled": checks["lost"] + checks["doubled"],
                          "undelivered": undelivered}
        return fig
    finally:
        smtp.stop()
        hooks.stop()
        if pg is not None:
            pg.stop()
        else:
            drop_database(server_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--drain", type=float, default=180.0,
                        help="at most this long for the workers to empty the outbox afterwards")
    parser.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    parser.add_argument("--pg-url", default="", help="use this server (its backends are "
                        "terminated instead of a restart)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deskflow-load-") as tmp:
        fig = run(args, Path(tmp))
    fig["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    fig["median_p95_ms"] = statistics.median([a["p95"] for a in fig["actions"].values()] or [0.0])
    report(fig)
    if args.out:
        args.out.write_text(json.dumps(fig, indent=1, sort_keys=True, default=str))
        print(f"\nfigures written to {args.out}")


if __name__ == "__main__":
    main()
