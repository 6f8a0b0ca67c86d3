"""A catalog as it was at a git revision, read with the git command line into a directory; and
the commit a catalog directory is checked out at."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from catalog.errors import UsageError

GIT_TIMEOUT = 120


def repository_of(path: Path) -> tuple[Path, str]:
    """The top of the git work tree holding `path`, and `path`'s prefix in it (`""` or `sub/`)."""
    out = _git(path, "rev-parse", "--show-toplevel", "--show-prefix")
    if out is None:
        raise UsageError(f"{path}: not in a git repository "
                         "(compare two catalog directories instead: deskflow diff OLD_DIR NEW_DIR)")
    top, _, prefix = out.partition("\n")
    return Path(top.strip()), prefix.strip()


def extract(path: Path, revision: str, into: Path) -> Path:
    """Write the catalog at `path` as it was at `revision` under `into`; return `into`.

    Files are read with `git ls-tree` and `git cat-file` rather than `git archive`, so the
    files are those committed (no export-ignore, no export-subst). Symbolic links are
    written as links: the loader refuses those leading out of the catalog, as it does in a
    working tree. Submodules are left out.
    """
    top, prefix = repository_of(path)
    commit = None if revision.startswith("-") else _git(
        top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    if not commit:
        raise UsageError(f"unknown revision {revision!r} in {top.name}")
    commit = commit.strip()
    if _git(top, "cat-file", "-e", f"{commit}:{prefix}deskflow.yaml") is None:
        where = prefix.rstrip("/") or "the repository's top"
        raise UsageError(f"{revision}: {where} is not a catalog at that revision (no deskflow.yaml)")
    listing = _git(top, "ls-tree", "-r", "-z", f"{commit}:{prefix}" if prefix else commit) or ""
    entries: list[tuple[str, str, PurePosixPath]] = []
    for line in filter(None, listing.split("\0")):
        meta, _, name = line.partition("\t")
        mode, kind, sha = meta.split()
        rel = PurePosixPath(name)
        if kind != "blob" or rel.is_absolute() or ".." in rel.parts:
            continue
        entries.append((mode, sha, rel))
    for (mode, _, rel), content in zip(entries, _blobs(top, [sha for _, sha, _ in entries]),
                                       strict=True):
        target = into.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            os.symlink(content.decode("utf-8", errors="replace"), target)
        else:
            target.write_bytes(content)
    return into


def _blobs(top: Path, shas: list[str]) -> list[bytes]:
    """The contents of these blobs, in order, from one `git cat-file --batch`."""
    if not shas:
        return []
    done = subprocess.run(["git", "-C", str(top), "cat-file", "--batch"], capture_output=True,
                          input="".join(f"{sha}\n" for sha in shas).encode(),
                          timeout=GIT_TIMEOUT, check=False)
    if done.returncode != 0:
        raise UsageError(f"cannot read files from git: {_first_line(done.stderr)}")
    out, at, blobs = done.stdout, 0, []
    for _ in shas:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].split()
        if len(header) != 3:
            raise UsageError(f"cannot read files from git: {header[0].decode(errors='replace')} "
                             "is missing")
        size = int(header[2])
        blobs.append(out[header_end + 1:header_end + 1 + size])
        at = header_end + 1 + size + 1
    return blobs


def _git(cwd: Path, *args: str) -> str | None:
    """git's output, or None when it fails (not a repository, unknown revision...)."""
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed: it is needed to read revisions") from None
    return done.stdout if done.returncode == 0 else None


def _first_line(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0] if text else "no reason given"


#: reading the commit a loaded catalog came from must never hold up a reload for long
COMMIT_TIMEOUT = 5


@dataclass(frozen=True, slots=True)
class CatalogCommit:
    """The git commit checked out where a catalog was loaded from, and whether it was edited."""

    hash: str
    subject: str
    dirty: bool

    @property
    def short(self) -> str:
        return self.hash[:10]


def catalog_commit(path: Path) -> CatalogCommit | None:
    """HEAD of the git repository holding `path`, and whether files under `path` differ from it.

    None when git is not installed, `path` is not in a repository (or one without commits,
    or one git refuses to read), or git takes too long: the commit is information, never a
    reason for a load to fail.
    """
    head = _quiet_git(path, "log", "-1", "--format=%H%x00%s", "HEAD")
    if not head or "\0" not in head:
        return None
    status = _quiet_git(path, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    if status is None:
        return None
    commit, _, subject = head.rstrip("\n").partition("\0")
    return CatalogCommit(commit, subject, bool(status.strip()))


def _quiet_git(cwd: Path, *args: str) -> str | None:
    """git's output; None on any failure, a missing git or a timeout included."""
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=COMMIT_TIMEOUT, check=False,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
