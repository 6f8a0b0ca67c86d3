"""Mixed workload for benchmarks/load.py: people browsing, ordering, approving and completing.

Run as a script it reads one JSON job on stdin, signs in once as each person through /login
(threads share the session cookies, as tabs of one browser do), then runs `threads` closed-loop
clients for `duration` seconds, each picking an action by weight: browse, search, order,
approve, agents' list, complete, API read, API submit, mail-in (one `deskflow mail-in`
process per message, as an MTA pipes it). It writes every answer as one JSON object (action,
wall-clock start, milliseconds, outcome) to `job["out"]`. Outcomes: ``ok``, ``conflict``
(a 409: someone else decided first), ``empty`` (nothing to approve or complete), ``http NNN``,
or the name of the exception (``ConnectionRefusedError``, ``RemoteDisconnected``, ...).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402

SEARCH_WORDS = ("laptop", "printer", "vpn", "password", "phone", "access", "mail", "monitor")
MAIL_GATE = threading.Semaphore(1)
TASK_VALUES = {"text": "user.one", "number": "0", "textarea": "Completed as planned."}


class Lane:
    """One thread's browsers (one per person) and its record of answers."""

    def __init__(self, job: dict[str, Any], cookies: dict[str, dict[str, str]], seed: int) -> None:
        self.job = job
        self.rng = random.Random(seed)
        self.clients: dict[str, loadgen.Client] = {}
        for user, jar in cookies.items():
            client = loadgen.Client(job["port"])
            client.conn.timeout = 30
            client.cookies = dict(jar)
            self.clients[user] = client
        self.forms: dict[str, str] = {}
        self.records: list[dict[str, Any]] = []
        self.mails = 0

    def note(self, action: str, started: float, ms: float, outcome: str) -> None:
        self.records.append({"action": action, "at": started, "ms": round(ms, 3), "outcome": outcome})

    def http(self, action: str, user: str, method: str, path: str, form: Any = None,
             ok: tuple[int, ...] = (200,), headers: dict[str, str] | None = None,
             body: str | None = None) -> tuple[int, str] | None:
        """One timed request; None when it failed (the failure is recorded)."""
        client = self.clients[user]
        started, t0 = time.time(), time.perf_counter()
        try:
            if headers is not None:
                client.conn.request(method, path, body=body, headers=headers)
                resp = client.conn.getresponse()
                status, html = resp.status, resp.read().decode("utf-8", "replace")
                if resp.will_close:
                    client.conn.close()
            else:
                status, _, html = client.request(method, path, form)
        except Exception as exc:  # noqa: BLE001 - every failure is a figure here
            client.conn.close()
            self.note(action, started, (time.perf_counter() - t0) * 1000, type(exc).__name__)
            return None
        ms = (time.perf_counter() - t0) * 1000
        if status in ok:
            outcome = "ok"
        elif status == 409:
            outcome = "conflict"
        else:
            outcome = f"http {status}"
        self.note(action, started, ms, outcome)
        return (status, html) if outcome == "ok" else None

    # ------------------------------------------------------------ the actions

    def browse(self) -> None:
        self.http("browse", self.job["requester"], "GET", "/")

    def search(self) -> None:
        q = urlencode({"q": self.rng.choice(SEARCH_WORDS)})
        self.http("search", self.job["requester"], "GET", f"/?{q}")

    def order(self) -> None:
        item = self.rng.choice(list(self.job["orders"]))
        path = f"/items/{item}"
        body = self.forms.get(item)
        if body is None:
            got = self.http("item_page", self.job["requester"], "GET", path)
            if got is None:
                return
            forms = [f for f in loadgen.post_forms(got[1])
                     if any(n == "csrf_token" for n, _ in f["fields"]) and f["action"] in ("", path)]
            if not forms:
                self.note("order", time.time(), 0.0, "no order form")
                return
            answers = self.job["orders"][item]
            fields = [(n, v) for n, v in forms[0]["fields"] if n not in answers]
            fields += [(n, str(v)) for n, v in answers.items()]
            body = self.forms[item] = urlencode(fields)
        from urllib.parse import parse_qsl

        self.http("order", self.job["requester"], "POST", path,
                  parse_qsl(body, keep_blank_values=True), ok=(302, 303))

    def _act(self, action: str, user: str, listing: tuple[str, str], link: str, verb: str,
             fill: bool = False) -> None:
        """Open a list, pick one entry, open it, post its `verb` form."""
        got = self.http(listing[0], user, "GET", listing[1])
        if got is None:
            return
        ids = sorted(set(re.findall(rf'href="/{link}/(\d+)"', got[1])))
        if not ids:
            self.note(action, time.time(), 0.0, "empty")
            return
        one = self.rng.choice(ids[:10])
        page = self.http(f"{link}_page", user, "GET", f"/{link}/{one}")
        if page is None:
            return
        target = f"/{link}/{one}/{verb}"
        forms = [f for f in loadgen.post_forms(page[1]) if f["action"] == target]
        if not forms:
            self.note(action, time.time(), 0.0, "empty")  # decided or done meanwhile
            return
        fields = forms[0]["fields"]
        if fill:
            fields = [(n, v or TASK_VALUES["textarea"] if n.endswith("comment") else v)
                      for n, v in fields]
        self.http(action, user, "POST", target, fields, ok=(302, 303))

    def approve(self) -> None:
        self._act("approve", self.job["approver"], ("inbox", "/approvals"), "approvals", "approve")

    def records_list(self) -> None:
        self.http("agents_list", self.job["agent"], "GET", "/records")

    def complete(self) -> None:
        self._act("complete", self.job["fulfiller"], ("queue", f"/queues/{self.job['queue']}"), "tasks",
                  "complete", fill=True)

    def api_read(self) -> None:
        self.http("api_read", self.job["requester"], "GET", "/api/v1/requests?limit=20",
                  headers={"Authorization": f"Bearer {self.job['token']}"})

    def api_submit(self) -> None:
        body = json.dumps({"item": "report-incident", "answers": self.job["incident"]})
        self.http("api_submit", self.job["requester"], "POST", "/api/v1/requests", ok=(200, 201),
                  headers={"Authorization": f"Bearer {self.job['token']}",
                           "Content-Type": "application/json"}, body=body)

    def mail_in(self) -> None:
        if not MAIL_GATE.acquire(blocking=False):  # one message at a time, as a small MTA pipes them
            self.browse()
            return
        try:
            self._mail_in()
        finally:
            MAIL_GATE.release()

    def _mail_in(self) -> None:
        self.mails += 1
        n = f"{threading.get_ident() % 100000}-{self.mails}"
        raw = (f"From: {self.rng.choice(self.job['senders'])}\r\nTo: {self.job['helpdesk']}\r\n"
               f"Subject: The printer on floor 3 jams ({n})\r\n"
               f"Date: {format_datetime(datetime.now(UTC))}\r\n"
               f"Message-ID: <load.{n}.{secrets.token_hex(6)}@mail.example.org>\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               "Hello,\r\n\r\nthe printer jams on every second page.\r\n").encode()
        started, t0 = time.time(), time.perf_counter()
        try:
            out = subprocess.run(self.job["mail_cmd"], input=raw, capture_output=True,
                                 env=self.job["mail_env"], timeout=120)
            outcome = "ok" if out.returncode == 0 else f"exit {out.returncode}"
        except subprocess.TimeoutExpired:
            outcome = "TimeoutExpired"
        self.note("mail_in", started, (time.perf_counter() - t0) * 1000, outcome)

    def run(self, until: float) -> None:
        actions = {"browse": self.browse, "search": self.search, "order": self.order,
                   "approve": self.approve, "agents_list": self.records_list,
                   "complete": self.complete, "api_read": self.api_read,
                   "api_submit": self.api_submit, "mail_in": self.mail_in}
        names = list(self.job["weights"])
        weights = [self.job["weights"][n] for n in names]
        while time.time() < until:
            actions[self.rng.choices(names, weights)[0]]()


def main() -> None:
    job = json.loads(sys.stdin.read())
    cookies = {}
    for user in sorted({job["requester"], job["approver"], job["agent"], job["fulfiller"]}):
        cookies[user] = loadgen.sign_in(job["port"], user, job["password"]).cookies
    lanes = [Lane(job, cookies, job["seed"] + i) for i in range(job["threads"])]
    until = time.time() + job["duration"]
    print(json.dumps({"started": time.time()}), flush=True)
    threads = [threading.Thread(target=lane.run, args=(until,)) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = [r for lane in lanes for r in lane.records]
    Path(job["out"]).write_text(json.dumps(records))
    print(json.dumps({"answers": len(records)}), flush=True)


if __name__ == "__main__":
    main()
