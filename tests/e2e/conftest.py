"""Browser tests: the app served in-process on 127.0.0.1, driven by Debian's Chromium.

Never a downloaded browser (`playwright install` is not used): Chromium comes from apt
(`/usr/bin/chromium`). Where it is missing the tests skip, except under CI=true, where a
skipped browser test would hide a broken pipeline, so they fail.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from werkzeug.serving import make_server

from tests.missing import missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: Chrome reports a page answered with a 4xx (e.g. a 422 form) as a console error; those are expected
EXPECTED_4XX = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
#: injected through the DevTools protocol, so it runs under the page's CSP without weakening it
REPORT_CSP = """document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});"""


def _require_chromium() -> Path:
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    missing(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)",
            "browser test")


@dataclass
class Live:
    """The served app: its URL and what the demo seed created (description -> number)."""

    url: str
    app: Any
    seeded: dict[str, str]


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Iterator[Live]:
    """A demo-like database (migrations, acme directory, demo passwords, seeded requests),
    served by werkzeug on a free port of 127.0.0.1 in a daemon thread."""
    _require_chromium()
    from engine.directory import sync_directory
    from engine.migrate import upgrade
    from engine.models import Person
    from web import create_app
    from web.demo import DEMO_PASSWORD, bundled_catalog, demo_database, seed_demo
    from web.passwords import FAST_HASHER, hash_password
    from web.state import portal_state

    instance = tmp_path_factory.mktemp("e2e")
    url = demo_database(instance)
    upgrade(url)
    app = create_app({
        "SECRET_KEY": "e2e",
        "DESKFLOW_DATABASE_URL": url,
        "DESKFLOW_CATALOG": str(bundled_catalog()),
        "DESKFLOW_SECURE_COOKIES": False,
        "DESKFLOW_PASSWORD_HASHING": "fast",
    })
    app.instance_path = str(instance)
    with app.app_context():
        state = portal_state()
        with state.sessions.begin() as session:
            sync_directory(session, state.catalog.directory)
            session.execute(update(Person).values(
                password_hash=hash_password(DEMO_PASSWORD, using=FAST_HASHER)))
        seeded = seed_demo(state.service, state.sessions)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", app, seeded)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            from web.extensions import db

            db.engine.dispose()


@pytest.fixture(scope="session")
def browser(live) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = _require_chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Console:
    """Console errors and CSP violations seen by one browser context's pages."""

    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def listen(self, page: Any) -> None:
        page.on("console", self._message)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _message(self, msg: Any) -> None:
        if msg.type not in ("error", "warning"):
            return
        text = f"{msg.type}: {msg.text} ({page_url(msg)})"
        if msg.type == "error" and EXPECTED_4XX.search(msg.text):
            self.expected.append(text)
        elif msg.type == "error" or "Content Security Policy" in msg.text:
            self.errors.append(text)


def page_url(msg: Any) -> str:
    try:
        return str(msg.location.get("url", ""))
    except Exception:  # noqa: BLE001 - the location is only for the message
        return ""


class Screens:
    """Numbered screenshots of one test in tests/e2e/artifacts/ (git-ignored)."""

    def __init__(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.name, self.count = name, 0
        for old in ARTIFACTS.glob(f"{name}-*.png"):
            old.unlink()

    def shot(self, page: Any, step: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.name}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screens(request) -> Screens:
    return Screens(request.node.name.removeprefix("test_"))


@pytest.fixture
def open_context(browser, live) -> Iterator[Any]:
    """Make browser contexts (one per person) whose pages report console errors; all closed after."""
    made: list[tuple[Any, Console]] = []

    def make(**options: Any) -> tuple[Any, Console]:
        context = browser.new_context(base_url=live.url, **options)
        context.set_default_timeout(10_000)
        context.add_init_script(REPORT_CSP)
        console = Console()
        context.on("page", console.listen)
        made.append((context, console))
        return context, console

    yield make
    for context, _ in made:
        context.close()
