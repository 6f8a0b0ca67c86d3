"""Satisfaction on the record page, in "My requests" and through the emailed link (test client)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from markupsafe import escape
from sqlalchemy import select, update

from engine.models import OutboxMessage, Request, SatisfactionResponse
from tests.acme import ACME_ANSWERS
from tests.web.conftest import csrf_token
from tests.web.world import Browser

NOTES = "Restarted the mail relay."


def resolved(service, actor: str = "alice") -> str:
    req = service.submit("report-incident", actor, dict(ACME_ANSWERS["report-incident"]))
    service.resolve(req.number, "frank", "fixed", NOTES)
    return str(req.number)


def survey(service, number: str) -> SatisfactionResponse:
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        found = s.scalar(select(SatisfactionResponse)
                         .where(SatisfactionResponse.request_id == req.id))
        s.expunge(found)
        return found


def link(service, number: str) -> str:
    """The path of the emailed link (its base URL aside)."""
    with service.sessions() as s:
        req = s.scalar(select(Request).where(Request.number == number))
        [mail] = s.scalars(select(OutboxMessage).where(OutboxMessage.request_id == req.id,
                                                       OutboxMessage.event == "satisfaction"))
        url = mail.payload["context"]["survey"]["url"]
    return "/satisfaction/" + url.rsplit("/satisfaction/", 1)[1]


def test_the_emailed_link_shows_the_question_and_only_a_post_records(app, client, service):
    number = resolved(service)
    url = link(service, number)
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"How satisfied are you with how {number} was handled?" in html
    assert client.get(url).status_code == 200  # a mail scanner's second look records nothing
    assert survey(service, number).answered_at is None
    assert client.post(url, data={"score": "4"}).status_code == 400  # no CSRF token
    response = client.post(url, data={"csrf_token": csrf_token(html), "score": "4",
                                      "comment": "Quick."})
    assert response.status_code == 200
    assert "Your answer is recorded." in response.get_data(as_text=True)
    answered = survey(service, number)
    assert (answered.score, answered.comment) == (4, "Quick.")
    again = client.get(url)
    assert again.status_code == 410
    assert str(escape("This satisfaction link was already used. You already told us how "
                      f"satisfied you are with how {number} was handled.")) \
        in again.get_data(as_text=True)
    assert client.post(url, data={"csrf_token": csrf_token(html), "score": "1"}).status_code == 410
    assert survey(service, number).score == 4


def test_a_forged_or_expired_link_is_a_clear_page(app, client, service):
    number = resolved(service)
    url = link(service, number)
    forged = client.get(url[:-3] + ("abc" if not url.endswith("abc") else "xyz"))
    assert forged.status_code == 400
    assert "This satisfaction link is not valid: it was changed or not made by this service " \
           "desk." in forged.get_data(as_text=True)
    html = client.get(url).get_data(as_text=True)
    with service.sessions.begin() as s:
        s.execute(update(SatisfactionResponse).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    expired = client.post(url, data={"csrf_token": csrf_token(html), "score": "5"})
    assert expired.status_code == 410
    assert "This satisfaction link has expired" in expired.get_data(as_text=True)
    assert survey(service, number).answered_at is None


def test_a_bad_score_on_the_link_page_is_422_and_saves_nothing(app, client, service):
    number = resolved(service)
    url = link(service, number)
    html = client.get(url).get_data(as_text=True)
    response = client.post(url, data={"csrf_token": csrf_token(html), "score": "9"})
    assert response.status_code == 422
    assert '<div id="score-error" class="invalid-feedback d-block" role="alert">Choose a score ' \
           "from 1 to 5.</div>" in response.get_data(as_text=True)
    assert survey(service, number).answered_at is None


def test_the_caller_answers_on_the_record_page_once(app, service):
    number = resolved(service)
    alice = Browser(app, "alice")
    mine = alice.get("/requests").get_data(as_text=True)
    assert f"Tell us about {number}" in mine
    page = alice.get(f"/requests/{number}").get_data(as_text=True)
    assert 'id="satisfaction-heading"' in page and 'name="score"' in page
    bad = alice.post(f"/requests/{number}/satisfaction", {"score": "0"})
    assert bad.status_code == 422
    assert "Choose a score from 1 to 5." in bad.get_data(as_text=True)
    ok = alice.post(f"/requests/{number}/satisfaction", {"score": "5", "comment": "Great."})
    assert ok.status_code == 302
    assert f"Tell us about {number}" not in alice.get("/requests").get_data(as_text=True)
    twice = alice.post(f"/requests/{number}/satisfaction", {"score": "1"})
    assert twice.status_code == 409
    assert "You already told us how satisfied you are with how " \
           f"{number} was handled." in twice.get_data(as_text=True)
    agent_page = Browser(app, "frank").get(f"/requests/{number}").get_data(as_text=True)
    assert '<dd class="col-7 df-satisfaction-score">5 / 5</dd>' in agent_page
    assert '<dd class="col-7 df-satisfaction-comment">Great.</dd>' in agent_page
    assert 'name="score"' not in agent_page


def test_only_the_person_asked_answers_in_the_portal(app, service):
    number = resolved(service)
    frank = Browser(app, "frank")
    assert 'name="score"' not in frank.get(f"/requests/{number}").get_data(as_text=True)
    response = frank.post(f"/requests/{number}/satisfaction", {"score": "5"})
    assert response.status_code == 403
    assert survey(service, number).answered_at is None
