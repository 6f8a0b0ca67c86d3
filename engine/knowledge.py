"""Knowledge in use: votes on articles, articles read from order forms (deflection), and
canned responses rendered for one request."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from catalog.expressions import ExpressionError
from catalog.models import Response
from engine import people, permissions, table_text
from engine.errors import InvalidInput, NotFound
from engine.models import ArticleFeedback, ArticleView, Request
from engine.unit import Runner, UnitOfWork, audit, context

#: an order placed this long after reading an article from the form is not a deflection
DEFLECTION_WINDOW = timedelta(minutes=30)
VERDICTS = {"helpful": True, "not-helpful": False}


@dataclass(frozen=True, slots=True)
class Feedback:
    helpful: int
    not_helpful: int


@dataclass(frozen=True, slots=True)
class Deflection:
    """Reads of one article from one item's form: how many ended in no order."""

    item_id: str
    article_id: str
    views: int
    deflected: int


@dataclass(frozen=True, slots=True)
class Rendered:
    """A canned response filled in for one request, or why it could not be."""

    id: str
    title: str
    text: str
    error: str = ""


class Knowledge:
    """The knowledge use cases, each one transaction through the unit runner."""

    def __init__(self, unit: Runner) -> None:
        self.unit = unit

    def vote(self, article_id: str, actor: str, verdict: str) -> bool:
        """Record (or change) the actor's verdict on an article; True when it is helpful."""
        def work(unit: UnitOfWork) -> bool:
            s = unit.session
            article = unit.catalog.article(article_id)
            if article is None or not permissions.can_see_item(s, actor, article.visible_to):
                raise NotFound(f"no article {article_id}")
            if verdict not in VERDICTS:
                raise InvalidInput(f"unknown verdict {verdict[:40]!r}",
                                   {"verdict": ["Choose helpful or not-helpful."]})
            helpful = VERDICTS[verdict]
            row = s.scalar(select(ArticleFeedback).where(ArticleFeedback.article_id == article_id,
                                                         ArticleFeedback.person_id == actor))
            if row is None:
                s.add(ArticleFeedback(article_id=article_id, person_id=actor, helpful=helpful,
                                      created_at=unit.now, updated_at=unit.now))
            elif row.helpful != helpful:
                row.helpful, row.updated_at = helpful, unit.now
            else:
                return helpful
            audit(unit, None, "article_feedback", article=article_id, helpful=helpful)
            return helpful

        return self.unit(actor, work)

    def record_view(self, article_id: str, item_id: str, actor: str) -> None:
        """Note that the actor opened an article from an item's order form."""

        def work(unit: UnitOfWork) -> None:
            item, article = unit.catalog.item(item_id), unit.catalog.article(article_id)
            if item is None or article is None:
                return  # a stale or hand-made link: nothing to count
            unit.session.add(ArticleView(person_id=actor, article_id=article_id, item_id=item_id,
                                         viewed_at=unit.now, ordered=False))

        self.unit(actor, work)

    def ordered(self, item_id: str, actor: str) -> int:
        """The actor ordered the item: its recent reads from the form were no deflection."""
        return self.unit(actor, lambda unit: mark_ordered(unit.session, actor, item_id, unit.now))

    def responses(self, number: str, actor: str) -> list[Rendered]:
        """The canned responses the actor may use on the request, filled in for it."""

        def work(unit: UnitOfWork) -> list[Rendered]:
            s = unit.session
            req = s.scalar(select(Request).where(Request.number == number))
            if req is None or not permissions.can_view_request(s, actor, req, unit.now):
                raise NotFound(f"no request {number}")
            if not permissions.is_agent(s, actor, req):
                return []
            admin = people.is_admin(s, actor)
            groups = set(people.groups_of(s, actor))
            agent = unit.person(actor)
            out = []
            for r in sorted(unit.catalog.responses, key=lambda r: r.title.casefold()):
                if offered(r, req.item_id, groups, admin):
                    out.append(_render(unit, req, r, agent.name if agent else actor, actor))
            return out

        return self.unit(actor, work)


def offered(response: Response, item_id: str, groups: set[str], admin: bool) -> bool:
    """Whether a response is offered to an agent in `groups` on a request for `item_id`."""
    if response.items and item_id not in response.items:
        return False
    return admin or not response.visible_to_groups or bool(groups & set(response.visible_to_groups))


def _render(unit: UnitOfWork, req: Request, response: Response, name: str, actor: str) -> Rendered:
    """Fill in a response with the request's names and the agent; a failure is shown, not raised."""
    person = unit.person(actor)
    names = table_text.readable({**context(unit, req), "agent": {
        "id": actor, "name": name, "email": person.email if person else ""}})
    try:
        text = response.body.render(names, unit.functions)
    except ExpressionError as exc:
        return Rendered(response.id, response.title, "", exc.message)
    return Rendered(response.id, response.title, text)


def _unmarked(person_id: str, item_id: str, now: datetime) -> list[ColumnElement[bool]]:
    """The person's recent reads from this item's form not yet marked as followed by an order."""
    return [ArticleView.person_id == person_id, ArticleView.item_id == item_id,
            ArticleView.ordered.is_(False), ArticleView.viewed_at >= now - DEFLECTION_WINDOW,
            ArticleView.viewed_at <= now]


def has_unmarked_reads(session: Session, person_id: str, item_id: str, now: datetime) -> bool:
    """Whether `mark_ordered` would mark anything: a read, so that an order after no article
    (most of them) costs no second write transaction."""
    return bool(session.scalar(select(select(ArticleView.id).where(
        *_unmarked(person_id, item_id, now)).exists())))


def mark_ordered(session: Session, person_id: str, item_id: str, now: datetime) -> int:
    """Mark the person's recent reads from this item's form as followed by an order."""
    result = session.execute(update(ArticleView).where(*_unmarked(person_id, item_id, now))
                             .values(ordered=True, ordered_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def feedback(session: Session, article_id: str) -> Feedback:
    """How many found the article helpful, and how many did not."""
    rows = session.execute(select(ArticleFeedback.helpful, func.count()).where(
        ArticleFeedback.article_id == article_id).group_by(ArticleFeedback.helpful))
    counts = {bool(h): int(n) for h, n in rows}
    return Feedback(counts.get(True, 0), counts.get(False, 0))


def verdict_of(session: Session, article_id: str, person_id: str) -> bool | None:
    """The person's own verdict on the article, if any."""
    return session.scalar(select(ArticleFeedback.helpful).where(
        ArticleFeedback.article_id == article_id, ArticleFeedback.person_id == person_id))


def deflections(session: Session, since: datetime, until: datetime) -> list[Deflection]:
    """Per item and article: reads from the form in [since, until) and how many led to no order.

    A read counts as deflected once its window has passed without an order of that item;
    reads still inside their window count as views only.
    """
    rows = session.execute(select(ArticleView.item_id, ArticleView.article_id,
                                  ArticleView.ordered, ArticleView.viewed_at).where(
        ArticleView.viewed_at >= since, ArticleView.viewed_at < until))
    views: Counter[tuple[str, str]] = Counter()
    deflected: Counter[tuple[str, str]] = Counter()
    for item_id, article_id, ordered, viewed_at in rows:
        views[(item_id, article_id)] += 1
        if not ordered and viewed_at + DEFLECTION_WINDOW <= until:
            deflected[(item_id, article_id)] += 1
    return [Deflection(i, a, n, deflected[(i, a)]) for (i, a), n in sorted(views.items())]
