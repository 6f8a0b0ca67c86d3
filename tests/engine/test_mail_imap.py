"""`deskflow mail-in --imap` against a real IMAP server: pymap, in process, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import imaplib
import socket
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.mail_imap import Mailbox, MailboxError
from engine.models import MailReceipt, Request
from tests.stored import reload
from web.cli import main

pymap_main = pytest.importorskip("pymap.main", reason="pymap is in the test extra")

MAIL = Path(__file__).resolve().parent.parent / "data" / "mail"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def imap_port() -> Iterator[int]:
    """pymap's in-memory backend serving IMAP (no TLS) on a free loopback port."""
    from pymap.backend import backends
    from pymap.service import services

    port = _free_port()
    parser = pymap_main._PymapArgumentParser()
    sub = parser.add_subparsers(dest="backend", required=True)
    for name, backend in backends.items():
        backend.add_subparser(name, sub).set_defaults(backend_type=backend)
    for service_type in services.values():
        service_type.add_arguments(parser)
    parser.set_defaults(skip_services=[], passlib_cfg=None, debug=False)
    args = parser.parse_args(["--host", "127.0.0.1", "--port", str(port), "--no-tls", "dict",
                              "--demo-user", "helpdesk", "--demo-password", "s3cret"])
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), asyncio.Event()

    async def serve() -> None:
        backend, config = await args.backend_type.init(args)
        config.apply_context()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            await services["imap"](backend, config).start(stack)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "pymap did not start"
    yield port
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def _append(port: int, *names: str) -> None:
    conn = imaplib.IMAP4("127.0.0.1", port)
    conn.login("helpdesk", "s3cret")
    for name in names:
        conn.append("INBOX", None, None, (MAIL / name).read_bytes())
    conn.logout()


def test_imap_poll_handles_each_message_once(runner, db_url, service, sessions, acme_path,
                                             imap_port):
    _append(imap_port, "new_incident.eml", "auto_reply.eml")
    url = f"imap://helpdesk:s3cret@127.0.0.1:{imap_port}/INBOX"
    args = ["mail-in", "--db", db_url, "--catalog", str(acme_path), "--imap", url,
            "--insecure", "--once"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.stderr.splitlines() == [
        "deskflow mail-in: opened REQ-000001 from alice.jansen@acme.example "
        "(<CAF7x1Qm9Vh2kq@mail.acme.example>)",
        "deskflow mail-in: ignored <ooo-20261123120000@acme.example> from "
        "alice.jansen@acme.example: auto-reply (Auto-Submitted: auto-replied)"]
    assert reload(sessions, "REQ-000001").channel == "email"

    _append(imap_port, "html_only.eml", "new_incident.eml")  # a copy of the first one too
    second = runner.invoke(main, args)
    assert second.exit_code == 0, second.output
    assert second.stderr.splitlines() == [
        "deskflow mail-in: opened REQ-000002 from bob.bakker@acme.example "
        "(<20261123094000.1234@acme.example>)",
        "deskflow mail-in: ignored <CAF7x1Qm9Vh2kq@mail.acme.example>: already handled"]

    third = runner.invoke(main, args)
    assert (third.exit_code, third.stderr) == (0, "")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 2
        assert s.scalar(select(func.count()).select_from(MailReceipt)) == 4  # one per UID


def test_imap_wrong_password_is_a_clear_error(runner, db_url, acme_path, imap_port):
    url = f"imap://helpdesk:wrong@127.0.0.1:{imap_port}/INBOX"
    result = runner.invoke(main, ["mail-in", "--db", db_url, "--catalog", str(acme_path),
                                  "--imap", url, "--insecure", "--once"])
    assert result.exit_code == 65
    assert result.stderr.startswith("deskflow: 127.0.0.1: ")


@pytest.mark.parametrize(("url", "insecure", "message"), [
    ("imap://u:p@mail.example.com/INBOX", True,
     "--imap: plain imap:// is allowed only with --insecure to 127.0.0.1 (tests); use imaps://"),
    ("imap://u:p@127.0.0.1/INBOX", False,
     "--imap: plain imap:// is allowed only with --insecure to 127.0.0.1 (tests); use imaps://"),
    ("https://u:p@mail.example.com/", False,
     "--imap: use imaps://user:password@host:port/INBOX, not https scheme"),
    ("imaps://mail.example.com/INBOX", False,
     "--imap: the URL needs a user, a password and a host"),
])
def test_mailbox_urls(url, insecure, message):
    with pytest.raises(MailboxError) as caught:
        Mailbox.from_url(url, insecure)
    assert str(caught.value) == message


def test_mailbox_url_parts():
    box = Mailbox.from_url("imaps://help%40acme.example:p%2Fw@mail.acme.example/Support")
    assert box == Mailbox("mail.acme.example", 993, "help@acme.example", "p/w", "Support", True)
