"""The app's catalog (the last good one) and its request service."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.orm import sessionmaker

from catalog.errors import CatalogInvalid, SpecError
from catalog.loader import Catalog, FileCache, load_catalog
from engine.db import configure_sqlite, make_sessionmaker
from engine.service import RequestService, utcnow


@dataclass
class Loaded:
    catalog: Catalog
    loaded_at: datetime
    warnings: tuple[SpecError, ...]


@dataclass
class Deskflow:
    """Per-app state: where the catalog lives, the catalog serving now, the service."""

    path: Path
    current: Loaded
    service: RequestService
    sessions: sessionmaker  # type: ignore[type-arg]
    cache: FileCache = field(default_factory=FileCache)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_refused: tuple[SpecError, ...] = ()

    @property
    def catalog(self) -> Catalog:
        return self.current.catalog

    def reload(self) -> Catalog:
        """Load the catalog again; keep serving the old one when the new one has errors."""
        with self.lock:
            fresh = load_catalog(self.path, self.cache)
            if not fresh.ok:
                self.last_refused = fresh.errors
                raise CatalogInvalid(list(fresh.errors))
            self.current = Loaded(fresh, datetime.now(UTC), fresh.warnings)
            self.last_refused = ()
            return fresh


def init_app(app: Flask, engine: object, catalog_path: Path) -> Deskflow:
    cache = FileCache()
    catalog = load_catalog(catalog_path, cache)
    if not catalog.ok:
        raise CatalogInvalid(list(catalog.errors))
    configure_sqlite(engine)  # type: ignore[arg-type]
    sessions = make_sessionmaker(engine)  # type: ignore[arg-type]
    holder: dict[str, Deskflow] = {}
    service = RequestService(sessions, lambda: holder["d"].catalog, utcnow,
                             base_url=app.config.get("DESKFLOW_BASE_URL", ""))
    state = Deskflow(catalog_path, Loaded(catalog, datetime.now(UTC), catalog.warnings), service,
                     sessions, cache)
    holder["d"] = state
    app.extensions["deskflow"] = state
    return state


def deskflow() -> Deskflow:
    return current_app.extensions["deskflow"]  # type: ignore[no-any-return]
