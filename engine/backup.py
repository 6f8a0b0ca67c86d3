"""Backups: one `.tar.gz` with the database, the attachments and a manifest (docs/operations.md).

SQLite is copied with SQLite's online backup API (a consistent copy while the app writes);
PostgreSQL with `pg_dump --format=custom` on a snapshot the counts are read in. A restore checks
every member against the manifest's SHA-256 before it touches anything, then writes the database
whole (a temporary file and a rename; `pg_restore --single-transaction`) and the attachments, and
compares what it restored with the manifest's counts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from catalog.errors import DeskflowError
from engine.db import absolute_sqlite, make_engine

MANIFEST = "manifest.json"
MEMBERS = {"sqlite": "deskflow.sqlite", "postgresql": "deskflow.pgdump"}
#: what the manifest counts, table by table (attachment files are counted apart)
COUNTED = ("requests", "audit_events", "approvals", "tasks", "attachments", "outbox")
FORMAT = 1
_ATTACHMENT = re.compile(r"^attachments/(?:[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}"
                         r"|thumbs/[0-9a-f]{2}/[0-9a-f]{64}\.png)$")
_CHUNK = 1 << 20


class BackupError(DeskflowError):
    """A backup or restore cannot be made (a bad archive, a refused target, a missing tool)."""

    exit_code = 2


class RestoreMismatch(DeskflowError):
    """The restored database does not hold what the manifest says was backed up."""


@dataclass(frozen=True, slots=True)
class Manifest:
    deskflow: str
    database: str                    # sqlite | postgresql
    alembic_revision: str | None
    created_at: str
    counts: dict[str, int]
    members: dict[str, str]          # archive name -> sha256

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "deskflow": self.deskflow, "database": self.database,
                           "alembic_revision": self.alembic_revision,
                           "created_at": self.created_at, "counts": self.counts,
                           "members": self.members}, indent=2, sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class Restored:
    manifest: Manifest
    counts: dict[str, int]
    files_written: int


def shown(url: str) -> str:
    """The URL as it may be printed (never the password)."""
    return make_url(url).render_as_string(hide_password=True)


def counts_of(conn: Connection) -> dict[str, int]:
    """Rows of the counted tables (a table this schema lacks counts 0)."""
    tables = set(inspect(conn).get_table_names())
    return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) if t in tables
            else 0 for t in COUNTED}


def _revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in MEMBERS:
        raise BackupError(f"cannot back up a {backend} database (SQLite or PostgreSQL only)")
    return backend


def _sqlite_path(url: str) -> Path:
    name = make_url(absolute_sqlite(url)).database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError(f"{url}: back up and restore an SQLite database by its file path")
    return Path(name)


# ------------------------------------------------------------------ backup

def backup(url: str, to: Path, attachments: Path, now: datetime) -> Manifest:
    """Write the database at `url` and the attachment files under `attachments` to `to`."""
    kind = _kind(url)
    if to.exists():
        raise BackupError(f"{to} exists already; name a new file")
    if not to.parent.is_dir():
        raise BackupError(f"{to.parent} is not a folder")
    with tempfile.TemporaryDirectory(dir=to.parent, prefix=".deskflow-backup-") as tmp:
        dump = Path(tmp) / MEMBERS[kind]
        revision, counts = (_dump_sqlite if kind == "sqlite" else _dump_postgresql)(url, dump)
        files = _attachment_files(attachments)
        counts["attachment_files"] = sum(1 for name, _ in files if "/thumbs/" not in name)
        part = Path(tmp) / "archive.tar.gz"
        members: dict[str, str] = {}
        with tarfile.open(part, "w:gz") as tar:
            members[dump.name] = _sha256(dump)
            tar.add(dump, arcname=dump.name, recursive=False)
            for name, path in files:
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # pruned since it was listed: no row names it
                    continue
                members[name] = hashlib.sha256(data).hexdigest()
                _add_bytes(tar, name, data, now)
            manifest = Manifest(version("deskflow"), kind, revision, now.isoformat(), counts,
                                members)
            _add_bytes(tar, MANIFEST, manifest.to_json(), now)
        os.replace(part, to)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, now: datetime) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _attachment_files(root: Path) -> list[tuple[str, Path]]:
    """The store's files as archive names (half-written `.part-` files are left out)."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        name = "attachments/" + path.relative_to(root).as_posix()
        if path.is_file() and _ATTACHMENT.match(name):
            found.append((name, path))
    return found


def _dump_sqlite(url: str, dump: Path) -> tuple[str | None, dict[str, int]]:
    path = _sqlite_path(url)
    if not path.is_file():
        raise BackupError(f"there is no database at {path}")
    src = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=15)
    dst = sqlite3.connect(dump)
    try:
        src.backup(dst)  # one step: a consistent copy even while the app writes (WAL)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot read the database at {path}: {exc}") from None
    finally:
        dst.close()
        src.close()
    engine = make_engine(f"sqlite:///{dump}")
    try:
        with engine.connect() as conn:
            return _revision(conn), counts_of(conn)
    finally:
        engine.dispose()


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed; install the postgresql-client package "
                          f"(apt-get install postgresql-client) of the server's major version")
    return found


def _pg_connection(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump/pg_restore; the password only in PGPASSWORD."""
    u = make_url(url)
    args = ["--no-password"]
    if u.host:
        args += ["--host", u.host]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    args += ["--dbname", u.database or "postgres"]
    env = dict(os.environ)
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"),
                     ("application_name", "PGAPPNAME")):
        if isinstance(u.query.get(key), str):
            env[var] = str(u.query[key])
    return args, env


def _run(tool: str, args: list[str], url: str, env: dict[str, str]) -> None:
    done = subprocess.run([_pg_tool(tool), *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        message = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
        password = make_url(url).password
        detail = "; ".join(message[:5])
        if password:
            detail = detail.replace(str(password), "***")
        raise BackupError(f"{tool} failed for {shown(url)}: {detail}")


def _dump_postgresql(url: str, dump: Path) -> tuple[str | None, dict[str, int]]:
    args, env = _pg_connection(url)
    _pg_tool("pg_dump")
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            # the counts and the dump read one snapshot, so they agree however busy the app is
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision, counts = _revision(conn), counts_of(conn)
            _run("pg_dump", ["--format=custom", f"--snapshot={snapshot}", "--file", str(dump),
                             *args], url, env)
            conn.rollback()
    except BackupError:
        raise
    except Exception as exc:  # noqa: BLE001 - any driver error: say which database, not a traceback
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupError(f"cannot read the database at {shown(url)}: {reason}") from None
    finally:
        engine.dispose()
    return revision, counts


# ------------------------------------------------------------------ restore

def restore(url: str, source: Path, attachments: Path, force: bool) -> Restored:
    """Put the backup `source` into the database at `url` and `attachments`."""
    kind = _kind(url)
    held = _tables_held(url)
    if held and not force:
        raise BackupError(f"the database at {shown(url)} is not empty ({held}); restoring would "
                          "replace it: add --force to do so")
    parent = _sqlite_path(url).parent if kind == "sqlite" else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".deskflow-restore-") as tmp:
        manifest = _unpack(source, Path(tmp))
        if manifest.database != kind:
            raise BackupError(f"{source} is a backup of a {manifest.database} database; restore "
                              f"it into a {manifest.database} URL, not {shown(url)}")
        dump = Path(tmp) / MEMBERS[kind]
        if kind == "sqlite":
            _restore_sqlite(url, dump)
        else:
            args, env = _pg_connection(url)
            _run("pg_restore", ["--clean", "--if-exists", "--no-owner", "--single-transaction",
                                *args, str(dump)], url, env)
        written = _restore_files(Path(tmp) / "attachments", attachments)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            counts = counts_of(conn)
    finally:
        engine.dispose()
    wanted = {k: v for k, v in manifest.counts.items() if k in COUNTED}
    if counts != wanted:
        differ = ", ".join(f"{k} {counts.get(k)} (backup {v})" for k, v in wanted.items()
                           if counts.get(k) != v)
        raise RestoreMismatch(f"restored into {shown(url)}, but the counts differ from the "
                              f"manifest: {differ}")
    return Restored(manifest, counts, written)


def _tables_held(url: str) -> str:
    """What the target holds already ('' when nothing: no file, or no tables)."""
    if make_url(url).get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return ""
        # read-only: looking must not change the target (the app's engine would switch it to WAL)
        probe = f"sqlite:///{path.as_uri()}?mode=ro&uri=true"
    else:
        probe = url
    engine = make_engine(probe)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            if not tables:
                return ""
            requests = counts_of(conn)["requests"]
    except Exception as exc:  # noqa: BLE001 - unreadable target: say so, no traceback
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupError(f"cannot read the database at {shown(url)}: {reason}") from None
    finally:
        engine.dispose()
    return f"{len(tables)} tables, {requests} requests"


def _unpack(source: Path, into: Path) -> Manifest:
    """Extract the archive's members into `into`, checked against the manifest."""
    if not source.is_file():
        raise BackupError(f"there is no backup at {source}")
    seen: dict[str, str] = {}
    manifest_data = b""
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:
                name = member.name
                if not member.isreg() or not (name in MEMBERS.values() or name == MANIFEST
                                              or _ATTACHMENT.match(name)) or name in seen:
                    raise BackupError(f"{source} is not a Deskflow backup: unexpected member "
                                      f"{name!s}")
                fh = tar.extractfile(member)
                assert fh is not None  # a regular file
                if name == MANIFEST:
                    manifest_data = fh.read(_CHUNK)
                    seen[name] = ""
                    continue
                seen[name] = _copy_hashed(fh, into.joinpath(*PurePosixPath(name).parts))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(f"{source} is damaged or truncated ({exc}); nothing was restored") \
            from None
    if not manifest_data:
        raise BackupError(f"{source} is not a Deskflow backup: it has no {MANIFEST}")
    manifest = _read_manifest(source, manifest_data)
    seen.pop(MANIFEST)
    bad = sorted(n for n in set(seen) | set(manifest.members)
                 if seen.get(n) != manifest.members.get(n))
    if bad:
        raise BackupError(f"{source} is damaged: {', '.join(bad[:5])} does not match its "
                          "SHA-256 in the manifest; nothing was restored")
    if MEMBERS[manifest.database] not in seen:
        raise BackupError(f"{source} is not a Deskflow backup: it holds no database")
    return manifest


def _copy_hashed(fh: IO[bytes], target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def _read_manifest(source: Path, data: bytes) -> Manifest:
    try:
        raw: Any = json.loads(data)
        if raw.get("format") != FORMAT:
            raise BackupError(f"{source}: backup format {raw.get('format')} is not one this "
                              f"Deskflow reads ({FORMAT})")
        manifest = Manifest(str(raw["deskflow"]), str(raw["database"]), raw["alembic_revision"],
                            str(raw["created_at"]), {str(k): int(v) for k, v in raw["counts"].items()},
                            {str(k): str(v) for k, v in raw["members"].items()})
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BackupError(f"{source} is not a Deskflow backup: its {MANIFEST} is unreadable") \
            from None
    if manifest.database not in MEMBERS:
        raise BackupError(f"{source}: a backup of a {manifest.database} database")
    return manifest


def _restore_sqlite(url: str, dump: Path) -> None:
    target = _sqlite_path(url)
    if target.exists():
        # fold the write-ahead log in and drop it, so no stale -wal is replayed over the new file
        conn = sqlite3.connect(target, timeout=15)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot replace the database at {target}: {exc} (stop the app "
                              "and its workers first)") from None
        finally:
            conn.close()
    part = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(dump, part)
    os.replace(part, target)


def _restore_files(staged: Path, root: Path) -> int:
    """Move the staged attachment files into the store (each whole); return how many."""
    written = 0
    for path in sorted(staged.rglob("*")) if staged.is_dir() else []:
        if not path.is_file():
            continue
        target = root / path.relative_to(staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _part(target) as part:
            shutil.copyfile(path, part)
        written += 1
    return written


@contextmanager
def _part(target: Path) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
