"""The portal's one search box, below the blueprints (the portal and the API both search):
catalog items, knowledge articles and known errors ranked together."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, cached

from catalog.catalog import Catalog
from catalog.models import Article, CatalogItem
from engine.problems import KnownError

MAX_QUERY = 100
MAX_WORDS = 10
KEEP_INDEXES = 4

#: what the portal's one search box finds, in the order equal matches are listed; another kind
#: (e.g. known errors from problem records) adds its name here and an entry builder below
KINDS = ("item", "article", "known_error")


@dataclass(frozen=True, slots=True)
class Entry:
    """One searchable thing's text, folded once."""

    kind: str
    thing: Any
    name: str
    keywords: str
    summary: str
    category: str
    body: str = ""

    @property
    def item(self) -> Any:
        return self.thing

    @property
    def text(self) -> str:
        return f"{self.name}\n{self.keywords}\n{self.summary}\n{self.category}\n{self.body}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result: what kind of thing it is, and the thing."""

    kind: str
    thing: Any


def item_entry(item: CatalogItem) -> Entry:
    return Entry("item", item, item.name.casefold(), "\n".join(item.keywords).casefold(),
                 item.summary.casefold(), item.category.casefold())


def article_entry(article: Article) -> Entry:
    return Entry("article", article, article.title.casefold(),
                 "\n".join(article.keywords).casefold(), article.summary.casefold(),
                 article.category.casefold(), " ".join(article.body.split()).casefold())


def known_error_entry(known: KnownError, service: str) -> Entry:
    """A known error (runtime data: built per search, there are few), found by its title,
    workaround and service."""
    return Entry("known_error", known, known.title.casefold(), "known error",
                 known.workaround.casefold(), service.casefold())


@dataclass(frozen=True, slots=True)
class SearchIndex:
    """Every item and article of one catalog version, ready to be searched together."""

    entries: tuple[Entry, ...]
    texts: tuple[str, ...]

    @classmethod
    def build(cls, items: Iterable[CatalogItem], articles: Iterable[Article] = ()) -> SearchIndex:
        entries = (*(item_entry(i) for i in items), *(article_entry(a) for a in articles))
        return cls(entries, tuple(e.text for e in entries))

    def hits(self, query: str, allowed: Callable[[Any], bool],
             extra: Iterable[Entry] = ()) -> list[Hit]:
        """Things matching every word of `query`, ranked together with the `extra` entries
        (runtime data such as known errors, which are not in the catalog's index).

        Title hits first, then keywords, then summary (then the body, for articles); on a
        tie items come before articles, then known errors, then by name.
        """
        words = list(dict.fromkeys(query.casefold().split()))[:MAX_WORDS]
        if not words:
            return []
        found: list[tuple[tuple[int, int, int, int, int, str], Hit]] = []
        more = [(e, e.text) for e in extra]
        for entry, text in [*zip(self.entries, self.texts, strict=True), *more]:
            if all(w in text for w in words) and allowed(entry.thing):
                rank = (-sum(w in entry.name for w in words),
                        -sum(w in entry.keywords for w in words),
                        -sum(w in entry.summary for w in words),
                        -sum(w in entry.body for w in words), KINDS.index(entry.kind), entry.name)
                found.append((rank, Hit(entry.kind, entry.thing)))
        found.sort(key=lambda pair: pair[0])
        return [hit for _, hit in found]

    def search(self, query: str, allowed: Callable[[Any], bool]) -> list[Any]:
        """The things of `hits`, without their kinds."""
        return [hit.thing for hit in self.hits(query, allowed)]


@cached(LRUCache(maxsize=KEEP_INDEXES), key=lambda cat: cat.version, lock=threading.Lock())
def search_index(cat: Catalog) -> SearchIndex:
    """The search index of the catalog version, built once (the last few versions are kept)."""
    return SearchIndex.build(cat.items, cat.articles)
