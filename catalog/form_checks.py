"""An item's checks across fields, applied to answers that passed the field rules.

The last step of `catalog.answers.check_answers`, the one pipeline every path that
accepts answers runs (the portal's form, the engine's intake, `deskflow simulate`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from catalog.expressions import ExpressionError
from catalog.models import FormCheck

#: where a check without `field` reports (the top of the form)
FORM = "_form"


def failed_checks(checks: Iterable[FormCheck], answers: Mapping[str, Any],
                  requester: Mapping[str, Any] | None,
                  functions: Mapping[str, Callable[..., Any]] | None = None, *,
                  invalid: Collection[str] = (),
                  hidden: Collection[str] = ()) -> dict[str, list[str]]:
    """The messages of the `checks` whose `when` holds, by field (FORM for the form as a whole).

    A check that reads a field in `invalid` is skipped: that field's own message says
    what to fix first. A condition that cannot be evaluated does not hold (as
    `show_if`). A check about a `hidden` field reports at the top of the form, where
    its message can be seen.
    """
    names = {"form": dict(answers),
             "requester": dict(requester) if isinstance(requester, Mapping) else {}}
    out: dict[str, list[str]] = {}
    for check in checks:
        if check.when.fields() & set(invalid):
            continue
        try:
            holds = check.when.test(names, functions)
        except ExpressionError:
            holds = False
        if holds:
            where = check.field if check.field is not None and check.field not in hidden else FORM
            out.setdefault(where, []).append(check.message)
    return out
