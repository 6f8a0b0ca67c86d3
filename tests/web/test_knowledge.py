"""The knowledge base in the portal: browsing, one search for items and articles, votes,
deflection from order forms, canned responses and related articles on the request page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from engine import knowledge
from engine.knowledge import Deflection
from tests.acme import ACME_ANSWERS
from tests.web.conftest import csrf_token


def text(response) -> str:
    return response.get_data(as_text=True)


def vote(client, article_id: str, verdict: str):
    token = csrf_token(text(client.get(f"/kb/{article_id}")))
    return client.post(f"/kb/{article_id}/feedback", data={"csrf_token": token, "verdict": verdict})


def categories(page: str) -> list[tuple[str, str]]:
    return re.findall(r'href="/kb\?category=[^"]+"[^>]*>([^<]+)<span class="badge[^"]*">(\d+)</span>',
                      page)


# ---------------------------------------------------------------- browsing


def test_the_knowledge_base_lists_categories_with_counts(client, auth):
    auth.login("alice")
    page = text(client.get("/kb"))
    assert categories(page) == [("Accounts", "2"), ("Hardware", "1"), ("Network", "1"),
                                ("People", "2"), ("Support", "1")]
    assert '<a class="nav-link" href="/kb">Knowledge</a>' in page
    assert 'href="/kb/vpn-setup">Setting up the VPN</a>' in page


def test_staff_also_see_the_articles_only_they_may_read(client, auth):
    auth.login("frank")
    assert ("IT", "1") in categories(text(client.get("/kb")))
    auth.logout()
    auth.login("alice")
    assert "change-management-guide" not in text(client.get("/kb"))


def test_one_category_lists_only_its_articles(client, auth):
    auth.login("alice")
    page = text(client.get("/kb?category=Accounts"))
    assert re.findall(r'<li class="mb-2"><a href="/kb/([a-z-]+)">', page) == [
        "requesting-system-access", "reset-your-password"]
    # an unknown category shows them all rather than an empty page
    assert len(re.findall(r'<li class="mb-2"><a href="/kb/', text(client.get("/kb?category=Nope")))) == 7


# ---------------------------------------------------------------- search


def hits(page: str) -> list[tuple[str, str]]:
    found = re.findall(r'class="stretched-link" href="/(items|kb)/([a-z0-9-]+)"', page)
    return [("article" if kind == "kb" else "item", ident) for kind, ident in found]


def test_one_search_finds_items_and_articles_ranked_together(client, auth):
    auth.login("alice")
    page = text(client.get("/?q=vpn"))
    # both have vpn in the title and keywords; the article's summary mentions it too
    assert hits(page) == [("article", "vpn-setup"), ("item", "vpn-access")]
    assert "2 results for “vpn”" in page
    assert '<span class="badge text-bg-info df-kind">Article</span>' in page
    assert '<span class="badge text-bg-primary df-kind">Request</span>' in page


def test_an_article_title_hit_ranks_above_an_item_keyword_hit(client, auth):
    auth.login("alice")
    assert hits(text(client.get("/?q=password")))[0] == ("article", "reset-your-password")


def test_search_reads_article_bodies_and_respects_visibility(client, auth):
    auth.login("alice")
    assert hits(text(client.get("/?q=gateway+shield")))[-1] == ("article", "vpn-setup")
    assert ("article", "change-management-guide") not in hits(text(client.get("/?q=rollback")))
    auth.logout()
    auth.login("frank")
    assert ("article", "change-management-guide") in hits(text(client.get("/?q=rollback")))


# ---------------------------------------------------------------- feedback


def test_a_vote_is_kept_once_per_person_and_can_be_changed(client, auth, app):
    auth.login("alice")
    response = vote(client, "vpn-setup", "helpful")
    assert response.status_code == 302
    assert 'aria-pressed="true">This solved my problem</button>' in text(client.get("/kb/vpn-setup"))
    vote(client, "vpn-setup", "not-helpful")
    page = text(client.get("/kb/vpn-setup"))
    assert 'aria-pressed="true">Not helpful</button>' in page
    assert "df-feedback-counts" not in page  # a requester does not see the counts
    with app.app_context():
        from web.extensions import db

        assert knowledge.feedback(db.session, "vpn-setup") == knowledge.Feedback(0, 1)


def test_agents_see_the_counts_on_the_article(client, auth):
    for person, verdict in (("alice", "helpful"), ("peter", "helpful"), ("bob", "not-helpful")):
        auth.login(person)
        vote(client, "vpn-setup", verdict)
        auth.logout()
    auth.login("grace")
    assert "Solved the problem for 2; not helpful for 1." in text(client.get("/kb/vpn-setup"))


def test_a_bad_verdict_is_a_clear_error(client, auth):
    auth.login("alice")
    response = vote(client, "vpn-setup", "meh")
    assert response.status_code == 422
    assert response.get_json() == {"error": "unknown verdict 'meh'",
                                   "fields": {"verdict": ["Choose helpful or not-helpful."]}}


# ---------------------------------------------------------------- deflection


def test_reading_from_a_form_and_not_ordering_counts_as_a_deflection(client, auth, app, service):
    auth.login("alice")
    form = text(client.get("/items/vpn-access"))
    assert 'href="/kb/vpn-setup?from=vpn-access"' in form
    client.get("/kb/vpn-setup?from=vpn-access")
    client.get("/kb/vpn-setup")                       # not from a form: not counted
    client.get("/kb/vpn-setup?from=no-such-item")     # a hand-made link: not counted
    auth.logout()
    auth.login("peter")
    client.get("/kb/vpn-setup?from=vpn-access")
    token = csrf_token(text(client.get("/items/vpn-access")))
    ordered = client.post("/items/vpn-access",
                          data={"csrf_token": token, **ACME_ANSWERS["vpn-access"]})
    assert ordered.status_code == 302
    now = service.clock()
    with app.app_context():
        from web.extensions import db

        assert knowledge.deflections(db.session, now - timedelta(hours=1), now + timedelta(hours=1)) == [
            Deflection("vpn-access", "vpn-setup", views=2, deflected=1)]


# ---------------------------------------------------------------- the request page


def test_an_agent_picks_from_responses_rendered_for_this_request(client, auth, service):
    number = service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"])).number
    auth.login("grace")
    page = text(client.get(f"/requests/{number}"))
    options = re.findall(r'<option value="([a-z-]+)" data-text="([^"]*)"', page)
    assert [o[0] for o in options] == ["ask-for-screenshot", "working-on-it"]
    assert html.unescape(options[0][1]).startswith(f"Hello Alice Jansen,\n\nthank you for {number}.")
    assert 'data-df-insert="body"' in page
    assert 'href="/kb/how-to-report-an-incident">How to report an incident</a>' in page


def test_the_requester_sees_neither_responses_nor_related_articles(client, auth, service):
    number = service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"])).number
    auth.login("alice")
    page = text(client.get(f"/requests/{number}"))
    assert "canned-response" not in page
    assert "Related articles" not in page
