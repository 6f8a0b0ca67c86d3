"""The app's catalog (the last good one) and its request service."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.orm import sessionmaker

from catalog.catalog import Catalog
from catalog.errors import CatalogInvalid, DeskflowError, SpecError
from catalog.file_cache import FileCache
from catalog.loader import load_catalog
from catalog.revisions import CatalogCommit, catalog_commit
from engine.db import configure_sqlite, make_sessionmaker
from engine.models import AppState
from engine.service import RequestService, utcnow
from web.config import attachment_store

CATALOG_KEY = "catalog_version"
FOLLOW_SECONDS = 3.0


class CatalogMoved(DeskflowError):
    """The catalog files changed between a reload's preview and its confirmation."""

    def __init__(self, expected: str, fresh: Catalog) -> None:
        super().__init__(f"the catalog files changed since version {expected} was previewed "
                         f"(they are version {fresh.version} now); nothing was switched")
        self.expected, self.fresh = expected, fresh


@dataclass
class LoadedCatalog:
    """A catalog version the app serves, when it was loaded and what it warned about."""

    catalog: Catalog
    loaded_at: datetime
    warnings: tuple[SpecError, ...]
    #: the git commit the files were checked out at, read once at load (None: not in git)
    commit: CatalogCommit | None = None


@dataclass
class PortalState:
    """Per-app state: where the catalog lives, the catalog serving now, the service."""

    path: Path
    current: LoadedCatalog
    service: RequestService
    sessions: sessionmaker  # type: ignore[type-arg]
    cache: FileCache = field(default_factory=FileCache)
    #: sessions that only read: plain BEGIN, so on SQLite they never queue behind a writer
    readers: sessionmaker | None = None  # type: ignore[type-arg]
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_refused: tuple[SpecError, ...] = ()

    @property
    def catalog(self) -> Catalog:
        return self.current.catalog

    checked_at: float = 0.0

    def preview(self) -> Catalog:
        """The catalog on disk now, through the file cache; nothing switches.

        Errors are remembered as the last refused reload, as a reload would.
        """
        fresh = load_catalog(self.path, self.cache)
        if not fresh.ok:
            self.last_refused = fresh.errors
        return fresh

    def reload(self, expected: str | None = None) -> Catalog:
        """Load the catalog again; keep serving the old one when the new one has errors.

        With `expected` (a previewed version), switch only if the files on disk are still
        that version; otherwise raise `CatalogMoved` with what is there now.
        The version that should serve is recorded in the database, so every other
        process (gunicorn worker) follows within a few seconds (see `follow`).
        """
        with self.lock:
            fresh = load_catalog(self.path, self.cache)
            if expected is not None and fresh.version != expected:
                raise CatalogMoved(expected, fresh)
            if not fresh.ok:
                self.last_refused = fresh.errors
                raise CatalogInvalid(list(fresh.errors))
            self.current = LoadedCatalog(fresh, datetime.now(UTC), fresh.warnings,
                                         catalog_commit(self.path))
            self.last_refused = ()
            with self.sessions.begin() as session:
                row = session.get(AppState, CATALOG_KEY) or AppState(key=CATALOG_KEY)
                row.value, row.updated_at = fresh.version, datetime.now(UTC)
                session.add(row)
            return fresh

    def follow(self, every: float = FOLLOW_SECONDS) -> None:
        """Reload when another process reloaded a catalog version this one does not serve."""
        now = time.monotonic()
        if now - self.checked_at < every:
            return
        self.checked_at = now
        with (self.readers or self.sessions)() as session:
            row = session.get(AppState, CATALOG_KEY)
            wanted = row.value if row is not None else None
        if wanted is None or wanted == self.catalog.version:
            return
        with self.lock:
            fresh = load_catalog(self.path, self.cache)
            if fresh.ok and fresh.version == wanted:
                self.current = LoadedCatalog(fresh, datetime.now(UTC), fresh.warnings,
                                             catalog_commit(self.path))


def init_app(app: Flask, engine: object, catalog_path: Path) -> PortalState:
    cache = FileCache()
    catalog = load_catalog(catalog_path, cache)
    if not catalog.ok:
        raise CatalogInvalid(list(catalog.errors))
    configure_sqlite(engine)  # type: ignore[arg-type]
    sessions = make_sessionmaker(engine)  # type: ignore[arg-type]
    holder: dict[str, PortalState] = {}
    service = RequestService(sessions, lambda: holder["d"].catalog, utcnow,
                             base_url=app.config.get("DESKFLOW_BASE_URL", ""),
                             secret_key=app.config.get("SECRET_KEY") or "",
                             attachments=attachment_store(app))
    state = PortalState(catalog_path, LoadedCatalog(catalog, datetime.now(UTC), catalog.warnings,
                                                   catalog_commit(catalog_path)), service,
                     sessions, cache, readers=make_sessionmaker(engine, writes=False))  # type: ignore[arg-type]
    holder["d"] = state
    app.extensions["deskflow"] = state
    return state


def portal_state() -> PortalState:
    """The current app's state."""
    return current_app.extensions["deskflow"]  # type: ignore[no-any-return]
