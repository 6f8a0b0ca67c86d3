"""Pruning the attachment store: files that no live attachment row names any more.

Deleting an attachment removes its file when no other live row names the same content
(engine.attachments); what is left behind is what a crash or a rolled-back unit of work
wrote — a message whose record failed, a deletion that died before its file went — and the
thumbnails of such files. `prune_store` finds them by walking the store and asking the
database which content hashes live rows name. A file younger than `min_age` is left alone:
its row may not be committed yet (the store writes the bytes before the row, and refreshes
the time of a file it is asked to keep again).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.attachment_store import AttachmentStore
from engine.models import Attachment

_HASH = re.compile(r"^[0-9a-f]{64}$")
_THUMB = re.compile(r"^([0-9a-f]{64})\.png$")


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune removed (or, in a dry run, would remove): paths relative to the store
    and their sizes in bytes."""

    files: tuple[tuple[str, int], ...]

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.files)


def prune_store(session: Session, store: AttachmentStore, min_age: float = 3600.0,
                dry_run: bool = False) -> Pruned:
    """Remove stored files, thumbnails and half-written temporary files that no live
    attachment row names and that are older than `min_age` seconds."""
    if not store.root.is_dir():
        return Pruned(())
    cutoff = time.time() - min_age
    live = set(session.scalars(select(Attachment.stored_name).where(
        Attachment.deleted_at.is_(None)).distinct()))
    found: list[tuple[str, int]] = []
    for path in sorted(_candidates(store.root, live)):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile (a deletion in the portal)
            continue
        if stat.st_mtime > cutoff:
            continue
        found.append((path.relative_to(store.root).as_posix(), stat.st_size))
        if not dry_run:
            path.unlink(missing_ok=True)
    if not dry_run:
        _remove_empty_folders(store.root)
    return Pruned(tuple(found))


def _candidates(root: Path, live: set[str]) -> list[Path]:
    """Files of the store's layout (`ab/cd/<sha256>`, `thumbs/ab/<sha256>.png`, `.part-*`)
    that no live row names; anything else in the folder is not ours and is left alone."""
    out: list[Path] = []
    for dirpath, _dirs, names in os.walk(root):
        here = Path(dirpath)
        parts = here.relative_to(root).parts
        for name in names:
            if name.startswith(".part-"):
                out.append(here / name)
            elif len(parts) == 2 and parts[0] != "thumbs" and _HASH.match(name):
                if name not in live and name[:2] == parts[0] and name[2:4] == parts[1]:
                    out.append(here / name)
            elif len(parts) == 2 and parts[0] == "thumbs" and (m := _THUMB.match(name)):
                if m.group(1) not in live:
                    out.append(here / name)
    return out


def _remove_empty_folders(root: Path) -> None:
    for dirpath, _dirs, _names in sorted(os.walk(root), key=lambda w: -len(w[0])):
        path = Path(dirpath)
        if path != root:
            try:
                path.rmdir()  # only succeeds when empty
            except OSError:
                pass
