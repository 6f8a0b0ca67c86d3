"""Satisfaction surveys through the request service: asked once, answered once, links checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from catalog.loader import load_catalog
from catalog.models import Duration
from engine import satisfaction
from engine.errors import Conflict, InvalidInput, NotAllowed
from engine.mail import render_email
from engine.models import Approval, AuditEvent, OutboxMessage, Request, SatisfactionResponse, Task
from engine.satisfaction import LinkGone, LinkRefused
from engine.service import RequestService

KEY = "the-desk-secret"
BASE = "https://desk.example.com"


@pytest.fixture
def desk(service, sessions, acme, clock) -> RequestService:
    """The service (its directory synced) with a secret key and a base URL for links."""
    return RequestService(sessions, lambda: acme, clock, base_url=BASE, secret_key=KEY)


@pytest.fixture
def resolved(desk, answers, clock) -> str:
    """Alice's incident, resolved by Frank an hour later."""
    req = desk.submit("report-incident", "alice", answers["report-incident"])
    clock.advance(hours=1)
    desk.resolve(req.number, "frank", "fixed", "Restarted the relay.")
    return str(req.number)


def surveys(sessions, number) -> list[SatisfactionResponse]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(SatisfactionResponse)
                              .where(SatisfactionResponse.request_id == req.id)))


def emails(sessions, number) -> list[OutboxMessage]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.request_id == req.id,
                                                          OutboxMessage.event == "satisfaction")))


def link_token(sessions, number) -> str:
    [mail] = emails(sessions, number)
    url = mail.payload["context"]["survey"]["url"]
    assert url.startswith(f"{BASE}/satisfaction/")
    return str(url.rsplit("/", 1)[1])


def audit_events(sessions, number) -> list[dict]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return [e.detail for e in s.scalars(select(AuditEvent).where(
            AuditEvent.request_id == req.id, AuditEvent.event == "satisfaction")
            .order_by(AuditEvent.id))]


def test_resolving_asks_the_caller_once_and_emails_a_link(desk, sessions, resolved, clock):
    [survey] = surveys(sessions, resolved)
    assert (survey.person_id, survey.score, survey.comment, survey.answered_at) == (
        "alice", None, None, None)
    assert survey.expires_at == survey.sent_at + timedelta(days=14)
    [mail] = emails(sessions, resolved)
    assert len(mail.payload["to"]) == 1
    assert mail.payload["context"]["survey"]["question"] == (
        f"How satisfied are you with how {resolved} was handled?")
    assert audit_events(sessions, resolved) == [{"asked": "alice"}]
    subject, text, html = render_email("satisfaction", mail.payload["context"])
    url = mail.payload["context"]["survey"]["url"]
    assert subject == f"[{resolved}] How did we do? Report an incident"
    assert f"How satisfied are you with how {resolved} was handled?" in text
    assert url in text and f'href="{url}"' in (html or "")


def test_reopening_and_resolving_again_does_not_ask_twice(desk, sessions, resolved, clock):
    desk.reopen(resolved, "alice", "Mail is down again.")
    clock.advance(hours=1)
    desk.resolve(resolved, "frank", "fixed", "Replaced the relay.")
    assert len(surveys(sessions, resolved)) == 1
    assert len(emails(sessions, resolved)) == 1


def test_reading_the_link_records_nothing_and_answering_records_once(desk, sessions, resolved,
                                                                    clock):
    token = link_token(sessions, resolved)
    with sessions() as s:
        req, survey = desk.survey_by_token(s, KEY, token, clock())
        assert (req.number, survey.answered_at) == (resolved, None)
    assert surveys(sessions, resolved)[0].answered_at is None
    desk.answer_by_token(KEY, token, "4", "  Quick, thanks.  ")
    [survey] = surveys(sessions, resolved)
    assert (survey.score, survey.comment, survey.answered_at) == (4, "Quick, thanks.", clock())
    assert audit_events(sessions, resolved)[-1] == {"score": 4, "comment": "Quick, thanks.",
                                                    "via": "email"}
    with pytest.raises(LinkGone, match="This satisfaction link was already used. You already "
                                       f"told us how satisfied you are with how {resolved} was "
                                       "handled."):
        desk.answer_by_token(KEY, token, "5")
    with pytest.raises(Conflict, match="You already told us"):
        desk.answer_survey(resolved, "alice", 2)
    assert surveys(sessions, resolved)[0].score == 4


def test_an_expired_link_is_refused(desk, sessions, resolved, clock):
    token = link_token(sessions, resolved)
    clock.advance(days=14)
    with pytest.raises(LinkGone, match="This satisfaction link has expired: it was valid until "):
        desk.answer_by_token(KEY, token, 5)
    assert surveys(sessions, resolved)[0].answered_at is None


FORGED = ("This satisfaction link is not valid: it was changed or not made by this service "
          "desk.")


def test_forged_links_are_refused(desk, sessions, resolved, answers, clock):
    token = link_token(sessions, resolved)
    [survey] = surveys(sessions, resolved)
    changed = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    other_key = URLSafeSerializer("another-key", salt=satisfaction.SALT).dumps(
        {"s": survey.id, "n": survey.nonce})
    other = desk.submit("report-incident", "bob", answers["report-incident"])
    desk.resolve(other.number, "frank", "fixed", "Restarted the relay.")
    [theirs] = surveys(sessions, other.number)
    # a properly signed token naming the other survey with this survey's nonce
    crossed = URLSafeSerializer(KEY, salt=satisfaction.SALT).dumps(
        {"s": theirs.id, "n": survey.nonce})
    for bad in (changed, other_key, crossed, "", "x" * 600, "bm90IGEgdG9rZW4"):
        with pytest.raises(LinkRefused, match=FORGED):
            desk.answer_by_token(KEY, bad, 5)
    assert [s.answered_at for s in surveys(sessions, resolved) + surveys(sessions, other.number)] \
        == [None, None]


def test_answering_in_the_portal(desk, sessions, resolved):
    with pytest.raises(NotAllowed, match=f"only the person asked can answer about {resolved}"):
        desk.answer_survey(resolved, "frank", 5)
    desk.answer_survey(resolved, "alice", 5)
    [survey] = surveys(sessions, resolved)
    assert (survey.score, survey.comment) == (5, None)
    with sessions() as s:
        assert desk.surveys_to_answer(s, "alice") == []


@pytest.mark.parametrize("score", [0, 6, "6", "", "x", "4.5", None, True, "-1", "٣"])
def test_scores_outside_one_to_five_are_refused(desk, sessions, resolved, score):
    with pytest.raises(InvalidInput, match="the score must be a whole number from 1 to 5"):
        desk.answer_survey(resolved, "alice", score)
    token = link_token(sessions, resolved)
    with pytest.raises(InvalidInput, match="the score must be a whole number from 1 to 5"):
        desk.answer_by_token(KEY, token, score)
    assert surveys(sessions, resolved)[0].answered_at is None


def approvals(sessions, number) -> list[Approval]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(Approval).where(Approval.request_id == req.id,
                                                     Approval.decision == "pending")))


def open_tasks(sessions, number) -> list[Task]:
    with sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        return list(s.scalars(select(Task).where(Task.request_id == req.id,
                                                 Task.status == "open")))


def test_a_fulfilled_request_is_asked_and_a_rejected_one_is_not(desk, sessions, answers):
    req = desk.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = approvals(sessions, req.number)
    desk.approve(appr.id, "bob", "fine")
    [task] = open_tasks(sessions, req.number)
    desk.claim_task(task.id, "frank")
    desk.complete_task(task.id, "frank", answers={"serial_number": "SN123"})
    [survey] = surveys(sessions, req.number)
    assert survey.person_id == "alice"
    no = desk.submit("new-laptop", "alice", answers["new-laptop"])
    [appr] = approvals(sessions, no.number)
    desk.reject(appr.id, "bob", "Not this year")
    with sessions() as s:
        assert s.get(Request, no.id).outcome == "rejected"
    assert surveys(sessions, no.number) == []


# ---------------------------------------------------------------- deskflow.yaml `satisfaction`

SETTINGS = ("kind: Settings\nname: T\ntime_zone: UTC\n"
            "business_hours: {days: [mon], start: '09:00', end: '17:00'}\n")
WORKFLOW = ("kind: Workflow\nid: wf\nstart: work\nstates:\n"
            "  work: {task: {queue: team}, on: {done: done}}\n  done: {end: fulfilled}\n")
DIRECTORY = ("people:\n  - {id: ann, name: Ann, email: ann@example.com}\n"
             "groups:\n  - {id: team, name: Team, members: [ann]}\n")


@pytest.mark.parametrize(("line", "expected"), [
    ("satisfaction: {expires: 2 business days}\n", []),
    ("satisfaction: {expires: soon}\n",
     ["deskflow.yaml:5:25: satisfaction.expires: 'soon' does not match "
      "'^[1-9][0-9]{0,5} (business )?(minute|hour|day|week)s?$'"]),
    ("satisfaction: {expire: 2 days}\n",
     ["deskflow.yaml:5:16: satisfaction.expire: unknown key expire (did you mean expires?)"]),
])
def test_the_expiry_setting_is_checked_where_it_is_written(tmp_path, line, expected):
    (tmp_path / "deskflow.yaml").write_text(SETTINGS + line)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    (tmp_path / "items").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "wf.yaml").write_text(WORKFLOW)
    loaded = load_catalog(tmp_path)
    assert [e.render() for e in loaded.errors] == expected
    if not expected:
        assert loaded.settings.satisfaction_expires == Duration(2, "day", True)


def test_the_link_expires_when_deskflow_yaml_says(service, sessions, acme, clock, answers):
    assert acme.settings.satisfaction_expires == Duration(14, "day", False)
    short = replace(acme, settings=replace(acme.settings,
                                           satisfaction_expires=Duration(2, "hour", False)))
    desk = RequestService(sessions, lambda: short, clock, base_url=BASE, secret_key=KEY)
    req = desk.submit("report-incident", "alice", answers["report-incident"])
    desk.resolve(req.number, "frank", "fixed", "Restarted the relay.")
    [survey] = surveys(sessions, req.number)
    assert survey.expires_at == survey.sent_at + timedelta(hours=2)
    token = link_token(sessions, req.number)
    clock.advance(hours=2)
    with pytest.raises(LinkGone, match="has expired"):
        desk.answer_by_token(KEY, token, 3)
