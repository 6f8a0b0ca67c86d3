"""engine.memo: a page's repeated permission checks cost one read per transaction, and a
write in the same session is never answered from before it."""

from __future__ import annotations

from sqlalchemy import event

from engine import permissions
from engine.models import Membership, Request


def counting(engine) -> list[str]:
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: sent.append(statement))
    return sent


def test_is_agent_is_read_once_per_transaction(service, sessions, engine, answers):
    req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    with sessions() as s:
        record = s.get(Request, req.id)
        sent = counting(engine)
        first = [permissions.is_agent(s, who, record) for who in ("alice", "frank")]
        asked = len(sent)
        again = [permissions.is_agent(s, who, record) for who in ("alice", "frank")] * 3
        assert again == first * 3
        assert len(sent) == asked  # no statement for the repeats
    with sessions() as s:  # a new transaction reads again
        record = s.get(Request, req.id)
        before = len(sent)
        assert permissions.is_agent(s, "alice", record) is first[0]
        assert len(sent) > before


def test_a_write_in_the_same_session_is_never_answered_from_before_it(
        service, sessions, answers):
    req = service.submit("mobile-phone", "alice", answers["mobile-phone"])
    with sessions() as s:
        record = s.get(Request, req.id)
        record.assignment_group_id = "it-hardware"
        s.flush()
        assert permissions.is_agent(s, "alice", record) is False
        s.add(Membership(group_id="it-hardware", person_id="alice"))
        s.flush()  # the flush forgets what was remembered
        assert permissions.is_agent(s, "alice", record) is True
        s.rollback()
        record = s.get(Request, req.id)
        assert permissions.is_agent(s, "alice", record) is False
