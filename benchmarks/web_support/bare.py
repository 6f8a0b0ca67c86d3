"""The floor for benchmarks/web.py: a bare Flask handler doing one INSERT, nothing else.

    gunicorn -w 2 'benchmarks.web_support.bare:create_app()'   (DESKFLOW_DATABASE_URL set)

It talks to the same database as Deskflow with the same engine settings (engine.db:
WAL, synchronous=NORMAL, busy timeout and BEGIN IMMEDIATE on SQLite; the same pool on
PostgreSQL), reads the same form body, and stores it as one row of its own table.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert

from engine.db import make_engine, writer

metadata = MetaData()
orders = Table("bench_bare_orders", metadata,
               Column("id", Integer, primary_key=True),
               Column("item_id", String(64), nullable=False),
               Column("body", Text, nullable=False),
               Column("created_at", DateTime(timezone=True), nullable=False))


def create_table(url: str) -> None:
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> Flask:
    engine = writer(make_engine(os.environ["DESKFLOW_DATABASE_URL"]))
    app = Flask(__name__)

    @app.get("/health")
    def health() -> Any:
        return "ok"

    @app.post("/items/<item_id>")
    def order(item_id: str) -> Any:
        body = json.dumps(request.form.to_dict())
        with engine.begin() as conn:
            conn.execute(insert(orders).values(item_id=item_id[:64], body=body,
                                               created_at=datetime.now(UTC)))
        return "ok"

    return app
