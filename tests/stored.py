"""Reading what the engine stored, for tests: a record by number, its audit events of a kind."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import AuditEvent, Request


def reload(sessions, number) -> Request:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        s.expunge(req)
        return req


def events(sessions, number, event) -> list[AuditEvent]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id,
                                                       AuditEvent.event == event)
                              .order_by(AuditEvent.id)))
