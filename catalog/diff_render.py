"""A `CatalogDiff` as text for a terminal, Markdown for a pull request, or JSON for tools."""

from __future__ import annotations

import json
import re
from typing import Any

from catalog.diff_model import SUBJECTS, Affected, CatalogDiff, Change

#: bump when the JSON shape changes incompatibly (docs/changing-the-catalog.md)
JSON_SHAPE = 1
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")
_HEADINGS = {"settings": "Settings (deskflow.yaml)", "directory": "Directory (directory.yaml)"}


def render(diff: CatalogDiff, fmt: str) -> str:
    """The diff in `fmt`: text, markdown or json."""
    if fmt == "json":
        return render_json(diff)
    if fmt == "markdown":
        return render_markdown(diff)
    return render_text(diff)


def impact(change: Change) -> str | None:
    """The open requests a change touches, in words; None when unknown or not applicable."""
    if change.affected is None:
        return None
    if not change.affected:
        return "no open requests affected"
    n = change.open_requests
    what = _plural(n, "open request")
    what_scope = change.scope[0]
    if what_scope == "state":
        verb = "is" if n == 1 else "are"
        head = f"{what} {verb} in {'it' if change.kind == 'state_removed' else change.scope[2]}"
    elif what_scope == "item":
        head = f"{what} of item {change.scope[1]}"
    else:
        head = f"{what} run{'s' if n == 1 else ''} on it"
    return f"{head}, on {_versions(change.affected)}"


def render_text(diff: CatalogDiff) -> str:
    lines = []
    for c in diff.changes:
        subject = c.subject if not c.subject_id else f"{c.subject} {c.subject_id}"
        lines.append(f"{c.sign} {c.where}: {subject}: {c.message}")
        said = impact(c)
        if said:
            lines.append(f"    {said}")
    lines.append(summary(diff))
    return "\n".join(lines)


def render_markdown(diff: CatalogDiff) -> str:
    out = [f"### Catalog changes: `{_code(diff.old)}` → `{_code(diff.new)}`", "",
           summary(diff), ""]
    heading = None
    for c in diff.changes:
        here = (c.subject, c.subject_id)
        if here != heading:
            heading = here
            title = _HEADINGS.get(c.subject) or f"{c.subject.replace('_', ' ')} `{_code(c.subject_id)}`"
            out += ["", f"#### {title}", ""] if out[-1] else [f"#### {title}", ""]
        side = " (before)" if c.side == "old" else ""
        out.append(f"- {_escape(c.message)} — `{_code(c.where)}`{side}")
        said = impact(c)
        if said:
            mark = "⚠️ " if c.affected else ""
            out.append(f"  - {mark}{_escape(said)}")
    return "\n".join(out).rstrip() + "\n"


def render_json(diff: CatalogDiff) -> str:
    return json.dumps(json_data(diff), indent=2, ensure_ascii=False)


def json_data(diff: CatalogDiff) -> dict[str, Any]:
    """The JSON output as data (the API's catalog reload answer carries it)."""
    return {"shape": JSON_SHAPE, "old": diff.old, "new": diff.new,
            "changes": [_change_json(c) for c in diff.changes]}


def sections(diff: CatalogDiff) -> list[tuple[str, tuple[Change, ...]]]:
    """The changes under the Markdown output's headings, as plain text (Admin → Reload)."""
    out: list[tuple[str, list[Change]]] = []
    heading = None
    for c in diff.changes:
        if (c.subject, c.subject_id) != heading:
            heading = (c.subject, c.subject_id)
            out.append((_HEADINGS.get(c.subject) or f"{c.subject.replace('_', ' ')} {c.subject_id}",
                        []))
        out[-1][1].append(c)
    return [(title, tuple(changes)) for title, changes in out]


def _change_json(c: Change) -> dict[str, Any]:
    return {"kind": c.kind, "sign": c.sign, "subject": c.subject, "id": c.subject_id,
            "message": c.message, "file": str(c.file), "line": c.line, "side": c.side,
            "before": c.before, "after": c.after,
            "open_requests": None if c.affected is None else [
                {"version": a.version, "count": a.count} for a in c.affected]}


def summary(diff: CatalogDiff) -> str:
    """One line: how many changes, in what, and how many touch open requests."""
    if not diff.changes:
        return f"no changes between {diff.old} and {diff.new}"
    touched = {(c.subject, c.subject_id) for c in diff.changes}
    parts = []
    for subject in SUBJECTS:
        n = sum(1 for s, _ in touched if s == subject)
        if n:
            parts.append(subject if subject in ("settings", "directory") else
                         _plural(n, subject.replace("_", " ")))
    total = len(diff.changes)
    touching = sum(1 for c in diff.changes if c.affected)
    extra = f"; {touching} touch{'es' if touching == 1 else ''} open requests" if touching else ""
    return (f"{_plural(total, 'change')} between {diff.old} and {diff.new} "
            f"in {', '.join(parts)}{extra}")


def _versions(affected: tuple[Affected, ...]) -> str:
    if len(affected) == 1:
        return f"version {affected[0].version[:8]}"
    return "versions " + ", ".join(f"{a.version[:8]} ({a.count})" for a in affected)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(text: str) -> str:
    return text.replace("`", "'")
