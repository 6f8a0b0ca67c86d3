"""Knowledge in use: votes, reads from order forms and deflections, canned responses per request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import knowledge
from engine.errors import InvalidInput, NotFound
from engine.knowledge import Deflection, Feedback, Knowledge
from engine.models import ArticleFeedback, AuditEvent


@pytest.fixture
def kb(service) -> Knowledge:
    return Knowledge(service.unit)


def test_one_vote_per_person_per_article_and_it_can_change(kb, sessions):
    assert kb.vote("vpn-setup", "alice", "helpful") is True
    assert kb.vote("vpn-setup", "alice", "helpful") is True
    assert kb.vote("vpn-setup", "bob", "helpful") is True
    assert kb.vote("vpn-setup", "alice", "not-helpful") is False
    with sessions() as s:
        assert knowledge.feedback(s, "vpn-setup") == Feedback(helpful=1, not_helpful=1)
        assert knowledge.verdict_of(s, "vpn-setup", "alice") is False
        assert s.scalar(select(func.count()).select_from(ArticleFeedback)) == 2
        # three changes audited; the repeated vote changed nothing
        assert s.scalar(select(func.count()).where(AuditEvent.event == "article_feedback")) == 3


def test_a_vote_on_an_article_one_may_not_read_is_not_found(kb):
    with pytest.raises(NotFound, match="no article change-management-guide"):
        kb.vote("change-management-guide", "alice", "helpful")
    with pytest.raises(NotFound, match="no article nope"):
        kb.vote("nope", "alice", "helpful")


def test_an_unknown_verdict_is_invalid_input(kb, sessions):
    with pytest.raises(InvalidInput, match="unknown verdict 'great'") as caught:
        kb.vote("vpn-setup", "alice", "great")
    assert caught.value.fields == {"verdict": ["Choose helpful or not-helpful."]}
    with sessions() as s:
        assert knowledge.feedback(s, "vpn-setup") == Feedback(0, 0)


def test_a_read_not_followed_by_an_order_within_the_window_is_a_deflection(
        kb, service, sessions, clock, answers):
    start = clock.now
    kb.record_view("vpn-setup", "vpn-access", "alice")      # alice reads, never orders
    kb.record_view("vpn-setup", "vpn-access", "bob")        # bob reads, orders ten minutes later
    clock.advance(minutes=10)
    service.submit("vpn-access", "bob", answers["vpn-access"])
    assert kb.ordered("vpn-access", "bob") == 1
    kb.record_view("vpn-setup", "vpn-access", "carol")      # carol reads, orders after the window
    clock.advance(minutes=31)
    service.submit("vpn-access", "carol", answers["vpn-access"])
    assert kb.ordered("vpn-access", "carol") == 0
    with sessions() as s:
        assert knowledge.deflections(s, start, clock.now) == [
            Deflection("vpn-access", "vpn-setup", views=3, deflected=2)]
        # a read still inside its window is not counted as deflected yet
        assert knowledge.deflections(s, start, start + timedelta(minutes=20)) == [
            Deflection("vpn-access", "vpn-setup", views=3, deflected=0)]
        assert knowledge.deflections(s, clock.now, clock.now + timedelta(hours=1)) == []


def test_a_read_from_an_unknown_item_or_article_is_not_recorded(kb, sessions, clock):
    kb.record_view("vpn-setup", "no-such-item", "alice")
    kb.record_view("no-such-article", "vpn-access", "alice")
    with sessions() as s:
        assert knowledge.deflections(s, clock.now - timedelta(days=1), clock.now + timedelta(days=1)) == []


def test_responses_are_rendered_for_the_request_and_the_agent(kb, service, answers):
    req = service.submit("report-incident", "alice", answers["report-incident"])
    shown = kb.responses(req.number, "grace")
    assert [r.id for r in shown] == ["ask-for-screenshot", "working-on-it"]
    assert shown[0].text.startswith(f"Hello Alice Jansen,\n\nthank you for {req.number}.")
    assert shown[0].text.endswith("Regards,\nGrace Meijer, Acme Service Desk\n")
    assert shown[1].title == "We are working on it"


def test_responses_follow_groups_and_items(kb, service, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    # heidi (it-hardware) gets its laptop response, not the service desk's; an admin gets all
    assert [r.id for r in kb.responses(req.number, "heidi")] == ["laptop-collection", "working-on-it"]
    assert [r.id for r in kb.responses(req.number, "oscar")] == [
        "ask-for-screenshot", "laptop-collection", "working-on-it"]


def test_requesters_get_no_responses_and_strangers_not_the_request(kb, service, answers):
    req = service.submit("report-incident", "alice", answers["report-incident"])
    assert kb.responses(req.number, "alice") == []
    with pytest.raises(NotFound):
        kb.responses(req.number, "peter")
