"""Where attachments' bytes live: a folder of files named by the SHA-256 of their content.

The same content is kept once however often it is attached. Files are written whole (a
temporary file, then a rename), so a reader never sees half a file. Thumbnails of images are
made once and kept beside them (`thumbs/`).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
#: the defaults of the per-file and per-record limits (DESKFLOW_ATTACHMENT_MAX_FILE, ..._RECORD)
MAX_FILE = 10 * MB
MAX_RECORD = 50 * MB
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class AttachmentStore:
    """The storage folder and the size limits (bytes)."""

    root: Path
    max_file: int = MAX_FILE
    max_record: int = MAX_RECORD

    def path(self, digest: str) -> Path:
        """The file of a content hash (two levels of folders keep each folder small)."""
        if not _HASH.match(digest):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / digest[:2] / digest[2:4] / digest

    def thumbnail_path(self, digest: str) -> Path:
        return self.root / "thumbs" / digest[:2] / f"{self.path(digest).name}.png"

    def keep(self, digest: str, data: bytes) -> None:
        """Write `data` under its hash unless it is there already (then only its time is
        refreshed, so a prune does not take it while its new row commits)."""
        target = self.path(digest)
        try:
            os.utime(target)
        except FileNotFoundError:
            write_whole(target, data)
        except PermissionError:  # there already, written by another user (the portal's)
            pass

    def forget(self, digest: str) -> None:
        """Remove a file and its thumbnail (no row names the content any more)."""
        for p in (self.path(digest), self.thumbnail_path(digest)):
            p.unlink(missing_ok=True)


def write_whole(target: Path, data: bytes) -> None:
    """Write a file whole: a temporary file in the same folder, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
