"""What an API call costs in SQL, where benchmarks/api.py found it growing with the catalog.

Listing the catalog asked the database about the viewer once per distinct `visible_to` (18
statements for alice on acme); it now reads the token with its owner (one join), their groups
and their roles once each, however many items there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from engine import tokens


@contextmanager
def selects() -> Iterator[list[str]]:
    """The tables each SELECT run meanwhile reads first (FROM ...)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            found = re.search(r'\bFROM\s+"?(\w+)', statement, re.IGNORECASE)
            seen.append(found.group(1).lower() if found else statement[:60])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("who", ["alice", "oscar"])
def test_the_catalog_listing_reads_the_token_its_owner_and_their_groups_and_roles_once(app, who):
    service = app.extensions["deskflow"].service
    with service.sessions.begin() as s:
        _, secret = tokens.create_token(s, who, "queries", datetime.now(UTC))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    client.get("/api/v1/catalog", headers=headers).close()  # the first call stamps the token's use
    with selects() as seen:
        response = client.get("/api/v1/catalog", headers=headers)
        response.close()
    assert response.status_code == 200 and len(response.json["items"]) > 5
    assert seen == ["api_tokens", "memberships", "person_roles"]
