"""web.urls.url_for (templates' url_for): each endpoint's URL built once per request gives what
Flask's url_for gives, for every route of the app."""

from __future__ import annotations

import flask
import pytest
from werkzeug.routing import BuildError

from web import urls

VALUES = (7, 123456789, "REQ-000042", "it-hardware", "a.b_c~d", "has space", "ümlaut", "a/b",
          "0012", "")


def test_every_route_with_one_value_gets_flasks_url(app):
    checked = 0
    with app.test_request_context("/"):
        for rule in app.url_map.iter_rules():
            names = sorted(rule.arguments)
            if len(names) > 1:
                continue
            for value in VALUES if names else (None,):
                values = {names[0]: value} if names else {}
                try:
                    expected = flask.url_for(rule.endpoint, **values)
                except (BuildError, ValueError):
                    with pytest.raises((BuildError, ValueError)):
                        urls.url_for(rule.endpoint, **values)
                    continue
                assert urls.url_for(rule.endpoint, **values) == expected, (rule.rule, value)
                assert urls.url_for(rule.endpoint, **values) == expected, (rule.rule, value)
                checked += 1
    assert checked > 200


def test_extra_values_go_to_the_query_string_as_flask_puts_them(app):
    with app.test_request_context("/"):
        for values in ({"group_id": "it-hardware", "sort": "due"}, {"page": 2},
                       {"group_id": "it-hardware", "_anchor": "top"}):
            try:
                expected = flask.url_for("tasks.queue", **values)
            except BuildError:
                with pytest.raises(BuildError):
                    urls.url_for("tasks.queue", **values)
                continue
            assert urls.url_for("tasks.queue", **values) == expected


def test_the_script_root_of_each_request_is_kept(app):
    with app.test_request_context("/", base_url="http://localhost/desk"):
        assert urls.url_for("requests.detail", number="REQ-000001") == \
            "/desk/requests/REQ-000001"
    with app.test_request_context("/"):
        assert urls.url_for("requests.detail", number="REQ-000001") == "/requests/REQ-000001"


def test_templates_use_it(app):
    assert app.jinja_env.globals["url_for"] is urls.url_for
