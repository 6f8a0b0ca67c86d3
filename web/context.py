"""What every view reads: the service, the catalog, the viewer, the clock; and what every
template gets (site name, nav counts, the `when` filter)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache, cached
from flask import Flask, current_app, g, request
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import Form

from catalog.catalog import Catalog
from catalog.models import CatalogItem
from engine import queries
from engine.service import RequestService
from forms.wtf import form_class_for
from web.extensions import db
from web.state import portal_state


def session() -> Session:
    """The request's database session (Flask-SQLAlchemy's scoped session, called)."""
    return db.session()


def service() -> RequestService:
    return portal_state().service


def catalog() -> Catalog:
    return portal_state().catalog


def now() -> datetime:
    """The service's clock, so pages and actions agree on the time."""
    state = portal_state()
    return state.service.clock() if hasattr(state.service, "clock") else datetime.now(UTC)


def link_secret() -> str:
    """What signs the links in emails (surveys, email actions): the service's key, else the app's."""
    return service().secret_key or str(current_app.config["SECRET_KEY"])


def viewer() -> str:
    return str(current_user.id)


def order_form(item: CatalogItem) -> type[Form]:
    """The item's order form class, with CSRF; built once per catalog version."""
    return form_class_for(item, catalog(), base=FlaskForm)


def catalog_queues() -> frozenset[str]:
    """Groups some workflow sends tasks to (every tier), per catalog version."""
    return queues_of(catalog())


@cached(LRUCache(maxsize=4), key=lambda cat: cat.version, lock=threading.Lock())
def queues_of(cat: Catalog) -> frozenset[str]:
    """Groups some workflow of `cat` sends tasks to (every tier)."""
    return frozenset(q for wf in cat.workflows for s in wf.states for t in s.tasks for q in t.groups)


def page_now() -> datetime:
    """The service's clock read once for this request: what the page's lists and its nav count
    "right now" (delegations in force), so the nav reuses what the page counted."""
    if "page_now" not in g:
        g.page_now = now()
    return g.page_now  # type: ignore[no-any-return]


@cached(LRUCache(maxsize=4), key=lambda cat: cat.version, lock=threading.Lock())
def owner_groups(cat: Catalog) -> frozenset[str]:
    """Groups that own some catalog item of `cat` (their managers are service owners)."""
    return frozenset(i.owner for i in cat.items if i.owner)


def nav() -> queries.Nav:
    """The nav's figures for the signed-in viewer (engine.queries.nav: one statement)."""
    return queries.nav(db.session(), viewer(), page_now(), owner_groups(catalog()))


def inbox_count() -> int:
    return nav().inbox if current_user.is_authenticated else 0


def init_app(app: Flask) -> None:
    @app.before_request
    def follow_catalog() -> None:
        if request.blueprint == "health":  # /healthz never touches the database; /readyz reports it
            return
        portal_state().follow()

    @app.context_processor
    def shared() -> dict[str, Any]:
        return {"site_name": catalog().settings.name, "inbox_count": inbox_count}

    @app.template_filter("when")
    def when(value: datetime | None) -> str:
        if value is None:
            return ""
        from zoneinfo import ZoneInfo

        local = value.astimezone(ZoneInfo(catalog().settings.time_zone))
        return local.strftime("%d %b %Y %H:%M")
