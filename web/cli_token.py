"""`deskflow token`: personal API tokens from the command line (engine.tokens, docs/api.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

Decorator = Callable[[Any], Any]


def token_commands(friendly: Decorator, db_option: Decorator) -> click.Group:
    """The `deskflow token` group, with web.cli's error handling and options."""

    @click.group("token")
    def token() -> None:
        """Personal API tokens: create (shown once), list, revoke."""

    @token.command("create")
    @click.option("--user", "person_id", required=True, help="The person the token acts as.")
    @click.option("--name", required=True, help="What the token is for.")
    @db_option
    @friendly
    def create(person_id: str, name: str, db_url: str) -> None:
        """Create a token and print it (only this once: it is stored hashed)."""
        from engine.db import transaction
        from engine.tokens import create_token

        with transaction(db_url) as session:
            row, secret = create_token(session, person_id, name, datetime.now(UTC))
            token_id = row.id
        click.echo(f"token {token_id} for {person_id}; copy it now, it is not shown again:", err=True)
        click.echo(secret)

    @token.command("list")
    @click.option("--user", "person_id", required=True, help="Whose tokens.")
    @db_option
    @friendly
    def list_(person_id: str, db_url: str) -> None:
        """List a person's tokens (never the tokens themselves)."""
        from engine.db import transaction
        from engine.tokens import tokens_of

        with transaction(db_url) as session:
            rows = [(t.id, t.prefix, t.name, t.created_at, t.last_used_at, t.revoked_at)
                    for t in tokens_of(session, person_id)]
        if not rows:
            click.echo(f"{person_id} has no tokens")
        for token_id, prefix, name, created, used, revoked in rows:
            state = f"revoked {_when(revoked)}" if revoked else "active"
            click.echo(f"{token_id}\t{prefix}…\t{name}\tcreated {_when(created)}\t"
                       f"last used {_when(used) or 'never'}\t{state}")

    @token.command("revoke")
    @click.argument("token_id", type=click.IntRange(min=1, max=2**63 - 1))
    @db_option
    @friendly
    def revoke(token_id: int, db_url: str) -> None:
        """Revoke token TOKEN_ID (from `deskflow token list`); it stops working at once."""
        from engine.db import transaction
        from engine.tokens import revoke_token

        with transaction(db_url) as session:
            row = revoke_token(session, token_id, datetime.now(UTC))
            owner, name = row.person_id, row.name
        click.echo(f"token {token_id} ({name}) of {owner} is revoked")

    return token


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""
