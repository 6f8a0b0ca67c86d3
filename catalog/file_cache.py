"""Parsed files by (path, content hash), shared by reloads of the same catalog.

A reload re-reads and hashes every file (unless its size and times are unchanged) but
re-parses and re-validates only the files whose content changed.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from cachetools import LRUCache

from catalog.errors import SpecError
from catalog.parse import Parsed
from catalog.source import MAX_BYTES

Key = tuple[str, str]


class FileCache:
    """Each file's result (model and problems, or its error) by (relative path, SHA-256)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.entries: LRUCache[Key, Parsed | SpecError] = LRUCache(maxsize=limit)
        #: absolute path -> (mtime_ns, size, ctime_ns, content hash): unchanged files are not read
        self.stats: LRUCache[str, tuple[int, int, int, str]] = LRUCache(maxsize=limit)
        self.limit = limit
        self._lock = threading.Lock()  # an LRU lookup reorders: reloads may run concurrently

    def get(self, key: Key) -> Parsed | SpecError | None:
        with self._lock:
            return self.entries.get(key)

    def put(self, key: Key, value: Parsed | SpecError) -> None:
        with self._lock:
            self.entries[key] = value

    def digest(self, path: Path) -> tuple[str, bytes | None]:
        """The file's content hash, and its bytes when they had to be read."""
        st = path.stat()
        sig = (st.st_mtime_ns, st.st_size, st.st_ctime_ns)
        with self._lock:
            known = self.stats.get(str(path))
        if known is not None and known[:3] == sig:
            return known[3], None
        raw = read_head(path)
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            self.stats[str(path)] = (*sig, digest)
        return digest, raw


def read_head(path: Path) -> bytes:
    """The file's bytes, but no more than one past the size limit: enough to refuse it."""
    with path.open("rb") as fh:
        return fh.read(MAX_BYTES + 1)
