"""`deskflow mail-in`: inbound email from an MTA's pipe or an IMAP mailbox (docs/email.md).

Exit codes follow the sendmail/Postfix pipe convention: 0 handled or deliberately ignored,
65 (EX_DATAERR) unreadable input (the MTA bounces it), 75 (EX_TEMPFAIL) the database is busy
or down (the MTA retries later).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]


def mail_command(friendly: Decorator, db_option: Decorator,
                 catalog_option: Decorator) -> click.Command:
    """The `deskflow mail-in` command, with web.cli's error handling and options."""

    @click.command("mail-in")
    @db_option
    @catalog_option
    @click.option("--imap", "imap_url", metavar="URL",
                  help="Poll this mailbox instead of reading standard input: "
                  "imaps://user:password@host:port/INBOX.")
    @click.option("--insecure", is_flag=True,
                  help="Allow plain imap:// to 127.0.0.1 (tests only).")
    @click.option("--once", is_flag=True, help="With --imap: poll once and exit.")
    @click.option("--interval", default=60.0, show_default=True,
                  type=click.FloatRange(min=1.0), help="With --imap: seconds between polls.")
    @friendly
    def mail_in(db_url: str, catalog_path: Path, imap_url: str | None, insecure: bool,
                once: bool, interval: float) -> None:
        """Read one email from standard input (an MTA pipe), or poll a mailbox with --imap."""
        import os

        from flask import Flask
        from sqlalchemy.exc import OperationalError

        from catalog.loader import load_valid_catalog
        from engine.db import make_engine, make_sessionmaker
        from engine.delivery_config import DeliveryConfig
        from engine.errors import Unavailable
        from engine.mail_imap import Mailbox, MailboxError, poll
        from engine.mail_in import Outcome, receive
        from engine.mail_text import EX_TEMPFAIL, parse, read_limited
        from engine.service import RequestService, utcnow
        from web.config import store_for

        catalog = load_valid_catalog(catalog_path)
        limit = catalog.settings.mail_in.max_megabytes * 1024 * 1024
        own = [DeliveryConfig.from_env().mail_from.rpartition("<")[2].strip(" >")]
        # the portal's attachment folder and limits (DESKFLOW_ATTACHMENTS_DIR, else the instance
        # folder), so the files a message carries are served by the portal
        store = store_for(os.environ, Flask("web").instance_path)
        engine = make_engine(db_url)
        service = RequestService(make_sessionmaker(engine), lambda: catalog, utcnow,
                                 attachments=store)

        def report(outcome: Outcome) -> None:
            click.echo(f"deskflow mail-in: {outcome.message}", err=True)

        try:
            if imap_url is None:
                report(receive(service, parse(read_limited(sys.stdin.buffer, limit)), own))
                return
            box = Mailbox.from_url(imap_url, insecure)
            while True:
                try:
                    poll(service, box, own, report, limit)
                except MailboxError as exc:
                    if once:
                        raise
                    # a polling daemon outlives a server restart or a network outage
                    click.echo(f"deskflow mail-in: {exc}; trying again in {interval:g}s", err=True)
                if once:
                    return
                time.sleep(interval)
        except (Unavailable, OperationalError) as exc:
            why = "busy" if isinstance(exc, Unavailable) else "unavailable"
            click.echo(f"deskflow: the database is {why}; the MTA should try again later", err=True)
            sys.exit(EX_TEMPFAIL)
        finally:
            engine.dispose()

    return mail_in
