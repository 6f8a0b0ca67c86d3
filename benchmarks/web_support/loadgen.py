"""Load generator for benchmarks/web.py: closed-loop HTTP clients on 127.0.0.1, stdlib only.

Run as a script it reads one JSON job on stdin, forks `concurrency` client processes (safe:
this process holds no database connection), lets each send requests back to back for
`warmup + duration` seconds, and prints one JSON line: latencies of the requests started
inside the measured window, status counts, throughput. Imported, it gives the harness a
small cookie-keeping client for signing in and reading CSRF tokens.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import re
import sys
import time
from collections import Counter
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

HOST = "127.0.0.1"


class Client:
    """One browser: a cookie jar and a connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, form: Any = None) -> tuple[int, Any, str]:
        headers = {"Cookie": self.cookie_header()} if self.cookies else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        for raw in resp.headers.get_all("Set-Cookie") or ():
            jar = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if resp.will_close:
            self.conn.close()
        return resp.status, resp.headers, data


def csrf_token(html: str) -> str | None:
    found = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*?name="csrf_token"', html)
    return found.group(1) if found else None


def sign_in(port: int, username: str, password: str) -> Client:
    """A client signed in through the real form (GET /login for the token, POST /login)."""
    client = Client(port)
    status, _, html = client.request("GET", "/login")
    if status != 200:
        raise RuntimeError(f"GET /login answered {status}")
    form = {"username": username, "password": password}
    token = csrf_token(html)
    if token:
        form["csrf_token"] = token
    status, headers, html = client.request("POST", "/login", form)
    if status not in (302, 303):
        raise RuntimeError(f"signing in as {username} answered {status}: {html[:300]!r}")
    return client


class FormFields(HTMLParser):
    """The successful controls of the POST forms on a page, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "fields": []})
            return
        if not self.forms:
            return
        fields = self.forms[-1]["fields"]
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a and not self._select_chosen:
                fields.append((self._select, value))
                self._select_chosen = True
        elif tag == "textarea" and name:
            self._textarea = name
            fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            fields = self.forms[-1]["fields"]
            fields[-1] = (fields[-1][0], fields[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select:
            if not self._select_chosen and self._select_first is not None and self.forms:
                self.forms[-1]["fields"].append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def post_forms(html: str) -> list[dict[str, Any]]:
    parser = FormFields()
    parser.feed(html)
    return [f for f in parser.forms if f["method"] == "post"]


# ---------------------------------------------------------------- the load

def _loop(job: dict[str, Any], index: int) -> dict[str, Any]:
    """One client: requests back to back until the window closes."""
    paths: list[str] = job["paths"]
    body = job.get("body")
    headers = {"Cookie": job["cookie"]} if job.get("cookie") else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers.update(job.get("headers") or {})  # an API client's Authorization, Content-Type
    begin = job["begin"]
    window_start = begin + job["warmup"]
    window_end = window_start + job["duration"]
    conn = http.client.HTTPConnection(HOST, job["port"], timeout=60)
    i = index * max(1, len(paths) // job["concurrency"])
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    sizes: list[int] = []
    first_error = ""
    last_done = window_start
    while time.monotonic() < begin:
        time.sleep(0.001)
    while True:
        started = time.monotonic()
        if started >= window_end:
            break
        path = paths[i % len(paths)]
        i += 1
        try:
            conn.request(job["method"], path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            status, data = 599, repr(exc).encode()
        done = time.monotonic()
        if started >= window_start:
            latencies.append((done - started) * 1e3)
            statuses[status] += 1
            sizes.append(len(data))
            last_done = done
            if status not in job["ok"] and not first_error:
                first_error = f"{status} {path}: {data[:400].decode('utf-8', 'replace')}"
    conn.close()
    return {"latencies": latencies, "statuses": dict(statuses), "sizes": sizes,
            "window": last_done - window_start, "first_error": first_error}


def _run_one(args: tuple[dict[str, Any], int]) -> dict[str, Any]:
    return _loop(*args)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run the job's clients in parallel processes; merge what they measured."""
    n = job["concurrency"]
    job = dict(job, begin=time.monotonic() + 0.5)
    with multiprocessing.get_context("fork").Pool(n) as pool:
        parts = pool.map(_run_one, [(job, k) for k in range(n)])
    latencies = sorted(x for p in parts for x in p["latencies"])
    statuses: Counter[int] = Counter()
    for p in parts:
        statuses.update({int(k): v for k, v in p["statuses"].items()})
    sizes = sorted(x for p in parts for x in p["sizes"])
    window = max(p["window"] for p in parts) or job["duration"]
    ok = sum(v for k, v in statuses.items() if k in job["ok"])
    return {"latencies": latencies, "statuses": dict(statuses), "count": len(latencies),
            "ok": ok, "per_second": len(latencies) / window,
            "ok_per_second": ok / window, "window": window,
            "median_bytes": sizes[len(sizes) // 2] if sizes else 0,
            "first_error": next((p["first_error"] for p in parts if p["first_error"]), "")}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.stdin.read()))))
