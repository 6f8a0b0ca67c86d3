"""url_for for pages that link many rows: each endpoint's URL is built once per request.

A list page links each of its rows to the same few endpoints with another id (25 rows, three
links each), and the nav links the same pages on every page. Building a URL walks the URL map
each time; `url_for` here builds each endpoint's URL once per request with a slot in place of
the id and fills the slot for each row. Only where that gives exactly what Flask's url_for
gives: one value, an int or a string of unreserved characters (which no quoting changes), an
endpoint with one rule and no defaults, the value in the path. Anything else is Flask's url_for.
"""

from __future__ import annotations

import re
from typing import Any

import flask
from flask import Flask, current_app, g
from werkzeug.routing import BuildError

#: what stands for the value while the pattern is built (nothing else in a URL looks like it)
_SLOTS: dict[type, Any] = {int: 918_273_645_546_372_819, str: "df-url-slot-7f3a91"}
#: RFC 3986 unreserved characters: werkzeug leaves them as they are
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")
_KEY = "deskflow_urls"


def url_for(endpoint: str, **values: Any) -> str:
    """Flask's url_for, each endpoint's URL built once per request (see the module)."""
    if len(values) > 1 or not _fillable(values):
        return flask.url_for(endpoint, **values)
    patterns: dict[tuple[str, str, type], str | None] = g.setdefault(_KEY, {})
    name, value = next(iter(values.items()), ("", None))
    key = (endpoint, name, type(value))
    if key not in patterns:
        patterns[key] = _pattern(endpoint, name, type(value))
    pattern = patterns[key]
    if pattern is None:
        return flask.url_for(endpoint, **values)
    return pattern if not name else pattern.replace(str(_SLOTS[type(value)]), str(value))


def _fillable(values: dict[str, Any]) -> bool:
    if not values:
        return True
    name, value = next(iter(values.items()))
    if name.startswith("_"):  # _external, _anchor, _method, _scheme
        return False
    return type(value) is int or (type(value) is str and _PLAIN.fullmatch(value) is not None)


def _pattern(endpoint: str, name: str, kind: type) -> str | None:
    """The endpoint's URL with the slot for `name`, or None where filling it could differ."""
    try:
        rules = list(current_app.url_map.iter_rules(endpoint))
    except KeyError:  # no such endpoint (or ".name", relative to the blueprint): Flask's answer
        return None
    if len(rules) != 1 or rules[0].defaults or (name and name not in rules[0].arguments):
        return None
    if not name:
        return flask.url_for(endpoint)
    slot = str(_SLOTS[kind])
    try:
        built = flask.url_for(endpoint, **{name: _SLOTS[kind]})
    except (BuildError, ValueError):  # a converter that refuses the slot (an id given as text)
        return None
    if built.count(slot) != 1 or slot not in built.split("?", 1)[0]:
        return None
    return built


def init_app(app: Flask) -> None:
    app.jinja_env.globals["url_for"] = url_for
