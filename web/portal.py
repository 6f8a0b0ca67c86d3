"""The catalog: home with categories and search, item pages with their order forms, articles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import login_required
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select
from wtforms import Field as WTField

from catalog.answers import defaults_for
from catalog.guide_parser import Guide
from catalog.models import Article, CatalogItem
from engine import knowledge, people, permissions, problems, queries, records
from engine.errors import InvalidInput
from engine.knowledge import Knowledge
from engine.models import Person
from engine.problems import KnownError
from engine.versions import workflow_of
from forms.answers import clean_answers
from forms.client import client_rules
from forms.wtf import ItemForm, form_field, has_files, raw_answers
from web.asset_choices import offer_assets
from web.context import catalog, now, order_form, service, session, viewer
from web.pages import state_label
from web.search import MAX_QUERY, Entry, known_error_entry, search_index

bp = Blueprint("portal", __name__)

#: the person picker's field; `requested_for` is a reserved catalog field name
REQUESTED_FOR = "requested_for"

#: Markdown without raw HTML: everything an author writes is escaped; links are vetted by markdown-it
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str) -> Markup:
    """Render catalog Markdown safely (no raw HTML, no javascript: links), headings one level down."""
    tokens = _markdown.parse(text or "")
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
    return Markup(_markdown.renderer.render(tokens, _markdown.options, {}))


# ---------------------------------------------------------------- search


def _can_see(thing: CatalogItem | Article) -> bool:
    """Whether the viewer may see an item or an article (both have `visible_to`)."""
    return permissions.can_see_item(session(), viewer(), thing.visible_to)


def _orderable() -> Callable[[CatalogItem], bool]:
    """can_order for the viewer, asked once per distinct `visible_to` (many items share one)."""
    known: dict[tuple[str, ...], bool] = {}

    def allowed(item: CatalogItem) -> bool:
        answer = known.get(item.visible_to)
        if answer is None:
            answer = known[item.visible_to] = permissions.can_order(session(), viewer(), item)
        return answer

    return allowed


def _searchable(orderable: Callable[[CatalogItem], bool]) -> Callable[[Any], bool]:
    """Items the viewer may order, articles the viewer may read (asked once per `visible_to`)."""
    known: dict[tuple[str, ...], bool] = {}

    def allowed(thing: Any) -> bool:
        if isinstance(thing, CatalogItem):
            return orderable(thing)
        if isinstance(thing, KnownError):
            return True  # only those who may read known errors get them (`_known_errors`)
        if thing.visible_to not in known:
            known[thing.visible_to] = _can_see(thing)
        return known[thing.visible_to]

    return allowed


def _known_errors() -> list[Entry]:
    """Entries for the open known errors, when the viewer may report incidents."""
    s, cat = session(), catalog()
    if not problems.may_read_known_errors(s, cat, viewer()):
        return []
    labels = problems.service_labels(cat)
    return [known_error_entry(k, labels.get(k.service or "", k.service or ""))
            for k in problems.known_errors(s)]


@bp.route("/")
@login_required
def home() -> Any:
    cat = catalog()
    query = " ".join((request.args.get("q") or "").split())[:MAX_QUERY]
    allowed = _orderable()
    if query:
        results = search_index(cat).hits(query, _searchable(allowed), _known_errors())
        return render_template("portal/home.html", query=query, results=results, categories={})
    categories: dict[str, list[CatalogItem | Guide]] = {}
    for item in cat.items:
        if allowed(item):
            categories.setdefault(item.category, []).append(item)
    for guide in cat.guides:  # order guides (web.orders) sit among the items, marked as guides
        if permissions.can_see_item(session(), viewer(), guide.visible_to):
            categories.setdefault(guide.category, []).append(guide)
    ordered = {name: sorted(items, key=lambda i: i.name.casefold())
               for name, items in sorted(categories.items(), key=lambda kv: kv[0].casefold())}
    return render_template("portal/home.html", query="", results=None, categories=ordered)


# ---------------------------------------------------------------- ordering


def _item_or_404(item_id: str) -> CatalogItem:
    item = catalog().item(item_id)
    if item is None or not permissions.can_order(session(), viewer(), item):
        abort(404)
    return item


def _articles_for(item: CatalogItem) -> list[Article]:
    cat = catalog()
    named = [cat.article(a) for a in item.articles]
    linked = [a for a in cat.articles if item.id in a.items]
    unique = {a.id: a for a in [*named, *linked] if a is not None}
    return [a for a in unique.values() if _can_see(a)]


def _people() -> list[tuple[str, str]]:
    """Active people for the person picker: (id, name), the viewer first, then by name."""
    rows = session().execute(select(Person.id, Person.name).where(Person.active.is_(True))
                              .order_by(Person.name, Person.id))
    me = viewer()
    return sorted(((pid, name) for pid, name in rows), key=lambda row: row[0] != me)


def _hidden_names(form: ItemForm, item: CatalogItem, requester: dict[str, Any] | None) -> frozenset[str]:
    if form.answers is not None:
        return form.answers.hidden
    return clean_answers(item, raw_answers(form), catalog(), requester, from_html=True).hidden


def _show_service_errors(form: ItemForm, item: CatalogItem, exc: InvalidInput) -> dict[str, list[str]]:
    """Put the service's per-field messages on the form's fields; return the rest."""
    rest: dict[str, list[str]] = {}
    for name, messages in exc.fields.items():
        if item.get_field(name) is not None:
            bound: WTField = form_field(form, name)
            bound.errors = [*bound.errors, *messages]
        else:
            rest[name] = messages
    if not exc.fields:
        rest["_form"] = [exc.message]
    return rest


@bp.route("/items/<item_id>", methods=["GET", "POST"])
@login_required
def item(item_id: str) -> Any:
    item = _item_or_404(item_id)
    requester = people.person_context(session(), viewer())
    form_class = order_form(item)
    status = 200
    other_errors: dict[str, list[str]] = {}
    chosen = viewer()
    # agents log records for callers: any channel (engine.records.CHANNELS), default the phone
    logger = records.can_log_for_callers(session(), catalog(), viewer(), item)
    channel = (request.values.get("channel") or "").strip() or ("phone" if "log" in request.args
                                                                 else "portal")
    if request.method == "POST":
        form = form_class(requester=requester)
        chosen = (request.form.get(REQUESTED_FOR) or "").strip() or viewer()
        if form.validate():
            assert form.answers is not None
            try:
                req = service().submit(item.id, viewer(), dict(form.answers.values),
                                       requested_for=None if chosen == viewer() else chosen,
                                       channel=channel)
            except InvalidInput as exc:
                other_errors = _show_service_errors(form, item, exc)
            else:
                if knowledge.has_unmarked_reads(session(), viewer(), item.id, now()):
                    Knowledge(service().unit).ordered(item.id, viewer())
                return redirect(url_for("portal.submitted", number=req.number))
        status = 422
    else:
        form = form_class(formdata=None, data=defaults_for(item, requester, catalog()),
                          requester=requester)
    offer_assets(form, item.fields, chosen)
    picker_errors = other_errors.pop(REQUESTED_FOR, [])
    channel_errors = other_errors.pop("channel", [])
    return render_template(
        "portal/item.html", item=item, form=form, rules=client_rules(item), uploads=has_files(item),
        hidden=_hidden_names(form, item, requester), articles=_articles_for(item),
        people=_people() if item.order_for_others else [], chosen=chosen,
        picker_errors=picker_errors, other_errors=other_errors,
        channels=records.CHANNELS if logger else (), channel=channel, channel_errors=channel_errors,
        description=markdown(item.description)), status


@bp.route("/requests/<number>/submitted")
@login_required
def submitted(number: str) -> Any:
    req = service().request(session(), number, viewer(), now())
    label = state_label(workflow_of(req.workflow_version), req.state)
    names = queries.names(session(), {req.requested_for_id})
    return render_template("portal/submitted.html", req=req, state_label=label,
                           closed=req.status == "closed",
                           requested_for=names.get(req.requested_for_id, req.requested_for_id))


# ---------------------------------------------------------------- knowledge


@bp.route("/kb/<article_id>")
@login_required
def article(article_id: str) -> Any:
    found = catalog().article(article_id)
    if found is None or not _can_see(found):
        abort(404)
    cat, allowed = catalog(), _orderable()
    source = cat.item(request.args.get("from") or "")
    if source is not None and allowed(source):
        Knowledge(service().unit).record_view(found.id, source.id, viewer())
    items = [i for i in (cat.item(x) for x in found.items) if i is not None and allowed(i)]
    return render_template("portal/article.html", article=found, body=markdown(found.body),
                           items=items)
