"""Email text from Jinja templates, rendered in a sandbox with limits.

Templates live in ``engine/templates/email/<event>.txt`` (first line ``Subject: ...``) and
``<event>.html``; an event without its own template uses ``generic``. Context values are
data: Jinja never re-parses them, so a comment saying ``{{ ''.__class__ }}`` prints as
written, and the HTML part escapes it. `render_text` renders admin-written template source
in the same sandbox, where attribute tricks raise `SecurityError`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cachetools import LRUCache, cached
from jinja2 import ChainableUndefined, FileSystemLoader, Template, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "email"
FALLBACK = "generic"
MAX_RANGE = 1000
MAX_OUTPUT = 100_000  # characters per rendered part
MAX_SECONDS = 1.0
MAX_POWER_BITS = 4096
SUBJECT_MAX = 200
_EVENT = re.compile(r"^[a-z][a-z0-9_]*$")


class RenderLimitExceeded(SecurityError):
    """A template ran too long, looped too far or wrote too much."""


class _Budget:
    """Time and size limits for one render, checked while it streams."""

    def __init__(self) -> None:
        self.seconds = MAX_SECONDS
        self.deadline = time.monotonic() + self.seconds

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"template rendering took longer than {self.seconds:g}s")

    def limited_range(self, *args: int) -> Iterator[int]:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise RenderLimitExceeded(f"range() is limited to {MAX_RANGE} items in templates")
        return self._ticking(numbers)

    def _ticking(self, numbers: range) -> Iterator[int]:
        for n in numbers:
            self.tick()
            yield n


class MailEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, strict about unsafe attributes and huge arithmetic."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # The stock sandbox returns an Undefined that prints as ""; we want the attempt loud.
        raise SecurityError(f"access to attribute {attribute!r} of "
                            f"{type(obj).__name__!r} object is unsafe")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and max(abs(left).bit_length(), 1) * right > MAX_POWER_BITS:
                raise RenderLimitExceeded("power too large in a template")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int):
                    if len(seq) * count > MAX_OUTPUT:
                        raise RenderLimitExceeded("repetition too large in a template")
        return super().call_binop(context, operator, left, right)


def make_environment(template_dir: Path = TEMPLATE_DIR) -> MailEnvironment:
    """Build the sandboxed environment that renders email templates."""
    env = MailEnvironment(loader=FileSystemLoader(str(template_dir)),
                          autoescape=select_autoescape(["html"], default_for_string=False),
                          undefined=ChainableUndefined, keep_trailing_newline=True,
                          trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.globals.pop("range", None)  # replaced per render by the budgeted one
    return env


_env = make_environment()
_html_env = make_environment()
_html_env.autoescape = True  # for `render_text(..., html=True)` strings, which have no .html name


def render_email(event: str, context: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """Render the subject, text and HTML parts of the email for `event`."""
    name = event if _EVENT.match(event) and _exists(f"{event}.txt") else FALLBACK
    subject_template, text_template = _text_templates(name)
    data = {"event": event, "event_label": event.replace("_", " ").capitalize(), **context}
    # The subject is its own template, so a newline in the data cannot spill into the body.
    subject = " ".join(_render(subject_template, data).split())[:SUBJECT_MAX]
    text = _render(text_template, data)
    html = _render(_env.get_template(f"{name}.html"), {**data, "subject": subject}) \
        if _exists(f"{name}.html") else None
    return subject, text, html


def render_text(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render admin-written template source in the mail sandbox, escaping HTML if asked."""
    return _render((_html_env if html else _env).from_string(source), context)


def _exists(name: str) -> bool:
    return (TEMPLATE_DIR / name).is_file()


@cached(LRUCache(maxsize=64), lock=threading.Lock())
def _text_templates(name: str) -> tuple[Template, Template]:
    source = (TEMPLATE_DIR / f"{name}.txt").read_text(encoding="utf-8")
    first, _, body = source.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"{name}.txt: the first line must be 'Subject: ...'")
    return _env.from_string(first.removeprefix("Subject:")), _env.from_string(body.lstrip("\n"))


def _render(template: Any, context: Mapping[str, Any]) -> str:
    budget = _Budget()
    parts: list[str] = []
    size = 0
    for chunk in template.generate({**context, "range": budget.limited_range}):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise RenderLimitExceeded(f"rendered email is longer than {MAX_OUTPUT} characters")
        budget.tick()
        parts.append(chunk)
    return "".join(parts)
