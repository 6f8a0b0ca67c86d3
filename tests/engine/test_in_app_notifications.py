"""In-app notifications: written in the unit of work of their event, as each person prefers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import notifications
from engine.errors import InvalidInput, NotFound
from engine.models import Approval, Notification, OutboxMessage, Person, Request, Task, Timer


def rows(sessions, person_id: str | None = None, kind: str | None = None) -> list[Notification]:
    with sessions() as s:
        query = select(Notification).order_by(Notification.id)
        if person_id:
            query = query.where(Notification.person_id == person_id)
        if kind:
            query = query.where(Notification.kind == kind)
        return list(s.scalars(query))


def emails(sessions, event: str) -> list[list[str]]:
    """Who each `event` email is to, as person ids."""
    with sessions() as s:
        ids = {p.email: p.id for p in s.scalars(select(Person))}
        return [[ids[a] for a in m.payload["to"]] for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.event == event).order_by(OutboxMessage.id))]


def laptop_task(service, sessions, answers) -> tuple[Request, Task]:
    """A laptop request approved by bob: its task waits, unclaimed, in it-hardware."""
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    with sessions() as s:
        approval = s.scalar(select(Approval.id).where(Approval.request_id == req.id))
    service.approve(approval, "bob", "Fine.")
    with sessions() as s:
        task = s.scalar(select(Task).where(Task.request_id == req.id))
    return req, task


# ---------------------------------------------------------------- each kind of event


def test_a_new_approval_notifies_the_approver(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [n] = rows(sessions, "bob")
    assert (n.kind, n.request_id, n.read_at) == ("approval_needed", req.id, None)
    assert n.text == "Your approval is needed (manager_approval)"
    assert rows(sessions, "alice") == []


def test_a_standing_delegate_is_notified_of_a_new_approval(service, sessions, answers, clock):
    from datetime import timedelta

    service.set_delegation("bob", "leo", clock.now - timedelta(hours=1), clock.now + timedelta(days=9))
    service.submit("new-laptop", "alice", answers["new-laptop"])
    assert [n.kind for n in rows(sessions, "leo")] == ["approval_needed"]
    assert [n.kind for n in rows(sessions, "bob")] == ["approval_needed"]


def test_reassigning_a_task_notifies_the_new_assignee(service, sessions, answers):
    req, task = laptop_task(service, sessions, answers)
    assert rows(sessions, kind="assigned") == []  # a queue task is nobody's yet
    service.claim_task(task.id, "frank")
    service.reassign(task.id, "frank", "heidi")
    [n] = rows(sessions, "heidi", "assigned")
    assert n.text == f"Frank Smit assigned you the task “{task.title}”"
    assert n.request_id == req.id
    assert ["heidi"] in emails(sessions, "task_assigned")


def test_taking_a_task_oneself_notifies_nobody_in_app(service, sessions, answers):
    _, task = laptop_task(service, sessions, answers)
    service.reassign(task.id, "frank", "frank")
    assert rows(sessions, kind="assigned") == []


def test_the_callers_answer_notifies_who_holds_the_record(service, sessions, answers):
    req, task = laptop_task(service, sessions, answers)
    service.claim_task(task.id, "frank")
    service.ask_requester(req.number, "frank", "Do you need a dock?")
    service.answer(req.number, "alice", "Yes, a dock please.")
    [n] = rows(sessions, kind="caller_reply")
    assert (n.person_id, n.text) == ("frank", "Alice Jansen answered: Yes, a dock please.")
    assert emails(sessions, "comment_added") == [["frank"]]


def test_a_callers_comment_on_an_unclaimed_task_notifies_its_queue(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    service.comment(req.number, "alice", "Any news?")
    assert sorted(n.person_id for n in rows(sessions, kind="caller_reply")) == ["frank", "heidi"]


def test_an_agents_comment_is_no_caller_reply(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    service.comment(req.number, "frank", "Shipping tomorrow.")
    assert rows(sessions, kind="caller_reply") == []


def test_the_sla_warning_notifies_the_assignee(service, sessions, answers, clock):
    req, task = laptop_task(service, sessions, answers)
    service.claim_task(task.id, "heidi")
    with sessions() as s:
        clock.now = s.scalar(select(Timer.due_at).where(Timer.kind == "sla_warning"))
    service.run_due()
    [n] = rows(sessions, kind="sla_warning")
    assert n.person_id == "heidi"
    assert n.text.startswith("The resolution SLA is at risk (due ")
    assert emails(sessions, "sla_warning") == [["heidi"]]


def test_the_sla_warning_of_an_unclaimed_task_notifies_its_queue(service, sessions, answers, clock):
    laptop_task(service, sessions, answers)
    with sessions() as s:
        clock.now = s.scalar(select(Timer.due_at).where(Timer.kind == "sla_warning"))
    service.run_due()
    assert sorted(n.person_id for n in rows(sessions, kind="sla_warning")) == ["frank", "heidi"]
    assert emails(sessions, "sla_warning") == []  # the email goes to assignees, as before


# ---------------------------------------------------------------- mentions


def test_mentioning_someone_who_may_see_the_record_notifies_them(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    service.comment(req.number, "frank", "@heidi can you image this one?", internal=True)
    [n] = rows(sessions, kind="mentioned")
    assert (n.person_id, n.text) == ("heidi", "Frank Smit mentioned you in an internal note: "
                                              "@heidi can you image this one?")
    assert emails(sessions, "mentioned") == [["heidi"]]


def test_an_unknown_mention_is_ignored_not_an_error(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    comment = service.comment(req.number, "frank", "Ask @nobody about it.", internal=True)
    assert comment.id is not None
    assert rows(sessions, kind="mentioned") == []


def test_someone_who_may_not_see_the_record_is_not_notified(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    service.comment(req.number, "frank", "@peter, @carol and @heidi: see this.", internal=True)
    assert [n.person_id for n in rows(sessions, kind="mentioned")] == ["heidi"]


def test_an_internal_note_mentions_only_agents(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    service.comment(req.number, "frank", "@alice should not read this note.", internal=True)
    service.comment(req.number, "frank", "Thanks @alice.")
    [n] = rows(sessions, kind="mentioned")
    assert (n.person_id, n.text) == ("alice", "Frank Smit mentioned you in a comment: Thanks @alice.")


@pytest.mark.parametrize(("body", "expected"), [
    ("@alice", ["alice"]),
    ("thanks @bob.", ["bob"]),
    ("@bob, @alice and @bob again", ["bob", "alice"]),
    ("mail bob@acme.example or @nobody", []),
    ("no mentions here", []),
    ("(@heidi)", ["heidi"]),
])
def test_mentions_are_read_from_the_text(service, sessions, body, expected):
    with sessions() as s:
        assert notifications.mentioned(s, body) == expected


# ---------------------------------------------------------------- one transaction


def test_a_failing_unit_rolls_its_notifications_back(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    before = len(rows(sessions))

    def work(unit):
        fresh = unit.session.get(Request, req.id)
        notifications.tell(unit, fresh, notifications.MENTIONED, ["heidi"], "You are needed",
                           key="rollback", email="mentioned")
        unit.session.flush()
        raise InvalidInput("refused after the notification was written")

    with pytest.raises(InvalidInput, match="refused after the notification was written"):
        service.unit("frank", work)
    assert len(rows(sessions)) == before
    assert emails(sessions, "mentioned") == []


def test_a_refused_comment_writes_no_mention(service, sessions, answers):
    req, _ = laptop_task(service, sessions, answers)
    with pytest.raises(InvalidInput, match="body is too long"):
        service.comment(req.number, "frank", "@heidi " + "x" * 10_001)
    assert rows(sessions, kind="mentioned") == []


# ---------------------------------------------------------------- preferences


def test_email_only_writes_no_in_app_row(service, sessions, answers):
    _, task = laptop_task(service, sessions, answers)
    service.set_notification_preferences("heidi", {"assigned": "email"})
    service.claim_task(task.id, "frank")
    service.reassign(task.id, "frank", "heidi")
    assert rows(sessions, "heidi", "assigned") == []
    assert ["heidi"] in emails(sessions, "task_assigned")


def test_in_app_only_queues_no_email_for_that_kind(service, sessions, answers):
    _, task = laptop_task(service, sessions, answers)
    service.set_notification_preferences("heidi", {"assigned": "in_app"})
    service.claim_task(task.id, "frank")
    before = emails(sessions, "task_assigned")
    service.reassign(task.id, "frank", "heidi")
    assert emails(sessions, "task_assigned") == before
    assert len(rows(sessions, "heidi", "assigned")) == 1


def test_a_preference_for_one_kind_leaves_the_others_alone(service, sessions, answers):
    service.set_notification_preferences("bob", {"assigned": "in_app"})
    service.submit("new-laptop", "alice", answers["new-laptop"])
    assert emails(sessions, "approval_requested") == [["bob"]]
    assert [n.kind for n in rows(sessions, "bob")] == ["approval_needed"]


def test_preferences_default_to_both(service, sessions):
    with sessions() as s:
        assert notifications.preferences(s, "alice") == {kind: "both" for kind in notifications.KINDS}
    assert service.set_notification_preferences("alice", {"mentioned": "email"})["mentioned"] == "email"
    with sessions() as s:
        assert notifications.preferences(s, "alice")["mentioned"] == "email"


def test_an_unknown_kind_or_channel_is_refused_with_nothing_stored(service, sessions):
    with pytest.raises(InvalidInput) as refused:
        service.set_notification_preferences("alice", {"assigned": "pigeon", "gossip": "email",
                                                       "mentioned": "email"})
    assert refused.value.fields == {"assigned": ["Choose one of: both, email, in_app."],
                                    "gossip": ["Unknown kind of notification: gossip."]}
    assert str(refused.value).startswith("notification preferences: assigned: Choose one of: both, "
                                         "email, in_app.; gossip: Unknown kind of notification: gossip.")
    with sessions() as s:
        assert notifications.preferences(s, "alice")["mentioned"] == "both"


# ---------------------------------------------------------------- reading and marking


def test_opening_a_notification_marks_it_read_and_names_its_record(service, sessions, answers):
    req = service.submit("new-laptop", "alice", answers["new-laptop"])
    [n] = rows(sessions, "bob")
    with sessions() as s:
        assert notifications.unread_count(s, "bob") == 1
    assert service.open_notification("bob", n.id) == req.number
    with sessions() as s:
        assert notifications.unread_count(s, "bob") == 0
        [entry] = notifications.inbox(s, "bob")
    assert (entry.number, entry.title, entry.read_at is not None) == (req.number, "New laptop", True)


def test_someone_elses_notification_is_not_found(service, sessions, answers):
    service.submit("new-laptop", "alice", answers["new-laptop"])
    [n] = rows(sessions, "bob")
    with pytest.raises(NotFound, match=f"no notification {n.id}"):
        service.open_notification("alice", n.id)
    assert rows(sessions, "bob")[0].read_at is None


def test_mark_all_read_reads_only_ones_own(service, sessions, answers, clock):
    service.submit("new-laptop", "alice", answers["new-laptop"])
    clock.advance(minutes=1)
    service.submit("new-laptop", "alice", answers["new-laptop"])
    service.set_delegation("bob", "leo", clock.now, clock.now.replace(year=2027))
    assert service.read_all_notifications("bob") == 2
    assert service.read_all_notifications("bob") == 0
    with sessions() as s:
        assert notifications.unread_count(s, "leo") == 2
        newest_first = [e.created_at for e in notifications.inbox(s, "bob")]
    assert newest_first == sorted(newest_first, reverse=True)
