"""`deskflow backup` and `deskflow restore` (engine.backup): dump, wipe, restore — every request,
audit row, approval and attachment file back — on SQLite while the app writes, and on PostgreSQL;
a damaged archive or a database that is not empty is refused and left as it was."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import Engine, make_url

from engine.attachment_store import AttachmentStore
from engine.db import make_engine, make_sessionmaker
from engine.directory import sync_directory
from engine.migrate import head, upgrade
from engine.models import Approval
from engine.service import RequestService
from tests.engine.conftest import PG_URL
from tests.missing import missing
from web.cli import main

#: what must come back row for row
TABLES = ("requests", "audit_events", "approvals", "tasks", "comments", "attachments", "outbox")
NOTE = b"Error 0x80070005 at 09:12\n"


def png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("L", (64, 32), bytes(range(256)) * 8).save(out, "PNG")
    return out.getvalue()


BINARY = png()


@pytest.fixture
def new_pg_database() -> Iterator[Callable[[], str]]:
    """Make empty PostgreSQL databases on DESKFLOW_TEST_DATABASE_URL's server; drop them after."""
    if not PG_URL:
        missing("PostgreSQL tests need DESKFLOW_TEST_DATABASE_URL", "PostgreSQL test")
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new() -> str:
        name = f"deskflow_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    yield new
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migrated(url: str, acme) -> str:
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        sync_directory(s, acme.directory)
    engine.dispose()
    return url


def desk_on(url: str, acme, clock, files: Path) -> tuple[RequestService, Engine]:
    engine = make_engine(url)
    return RequestService(make_sessionmaker(engine), lambda: acme, clock,
                          attachments=AttachmentStore(files)), engine


def fill(desk: RequestService, answers) -> list[str]:
    """Two laptops (one approved, files attached to it) and a VPN request."""
    first = desk.submit("new-laptop", "alice", answers["new-laptop"]).number
    desk.attach(first, "alice", "error.log", NOTE)
    desk.comment(first, "alice", "The old one is attached.", files=[("screen.png", BINARY)])
    with desk.sessions() as s:
        approval = s.scalar(select(Approval.id).where(Approval.approver_id == "bob"))
    desk.approve(approval, "bob", "Fine.")
    second = desk.submit("new-laptop", "alice", answers["new-laptop"]).number
    third = desk.submit("vpn-access", "alice", answers["vpn-access"]).number
    return [first, second, third]


def rows(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
                 for t in TABLES}
    engine.dispose()
    return found


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_sqlite_round_trip_while_the_app_writes(tmp_path, runner, acme, clock, answers):
    url = migrated(sqlite_url(tmp_path / "live" / "deskflow.sqlite"), acme)
    files = tmp_path / "files"
    desk, engine = desk_on(url, acme, clock, files)
    numbers = fill(desk, answers)
    before = rows(url)
    stored = files_of(files)
    assert len(before["attachments"]) == 2 and len(stored) == 2
    assert (len(before["approvals"]), len(before["tasks"])) == (3, 1)

    started, stop, written = threading.Event(), threading.Event(), []

    def write() -> None:  # a second connection writing all along
        while not stop.is_set():
            written.append(desk.comment(numbers[1], "alice", f"Still waiting ({len(written)}).").id)
            started.set()

    writer = threading.Thread(target=write)
    writer.start()
    started.wait(10)
    archive = tmp_path / "deskflow.tar.gz"
    result = runner.invoke(main, ["backup", "--db", url, "--to", str(archive),
                                  "--attachments", str(files)])
    stop.set()
    writer.join()
    engine.dispose()
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["alembic_revision"] == head()
    assert manifest["database"] == "sqlite"
    assert result.output == (f"backed up {url} at revision {head()} to {archive}: "
                             f"3 requests, {manifest['counts']['audit_events']} audit events, "
                             f"{len(before['approvals'])} approvals, {len(before['tasks'])} tasks, "
                             f"2 attachments, {manifest['counts']['outbox']} outbox, "
                             "2 attachment files\n")
    after = rows(url)

    # the disaster: the database and the attachments are gone
    for p in (tmp_path / "live").iterdir():
        p.unlink()
    shutil.rmtree(files)

    result = runner.invoke(main, ["restore", "--db", url, "--from", str(archive),
                                  "--attachments", str(files)])
    assert result.exit_code == 0, result.output
    restored = rows(url)
    counts = {t: len(restored[t]) for t in ("requests", "audit_events", "approvals", "tasks",
                                            "attachments", "outbox")}
    assert result.output.splitlines()[1] == (
        f"counts match the manifest: 3 requests, {counts['audit_events']} audit events, "
        f"{counts['approvals']} approvals, {counts['tasks']} tasks, 2 attachments, "
        f"{counts['outbox']} outbox")
    assert {k: v for k, v in manifest["counts"].items() if k != "attachment_files"} == counts
    assert files_of(files) == stored  # byte for byte
    for table in TABLES:
        # all from before the backup, and a consistent part of what was written during it
        ids = [r[0] for r in restored[table]]
        assert {r[0] for r in before[table]} <= set(ids) <= {r[0] for r in after[table]}, table
        if table != "requests":  # rows written once, never changed by the writer
            assert restored[table] == [r for r in after[table] if r[0] in ids], table
    assert [r for r in restored["requests"] if r[1] != numbers[1]] == \
        [r for r in before["requests"] if r[1] != numbers[1]]
    assert len(written) > 1


def test_a_damaged_archive_is_refused_and_the_target_left_as_it_was(tmp_path, runner, acme, clock,
                                                                     answers):
    url = migrated(sqlite_url(tmp_path / "deskflow.sqlite"), acme)
    files = tmp_path / "files"
    desk, engine = desk_on(url, acme, clock, files)
    fill(desk, answers)
    engine.dispose()
    archive = tmp_path / "good.tar.gz"
    assert runner.invoke(main, ["backup", "--db", url, "--to", str(archive),
                                "--attachments", str(files)]).exit_code == 0
    target = tmp_path / "target.sqlite"
    other = migrated(sqlite_url(target), acme)
    desk, engine = desk_on(other, acme, clock, tmp_path / "other-files")
    desk.submit("vpn-access", "alice", answers["vpn-access"])
    engine.dispose()
    untouched = hashlib.sha256(target.read_bytes()).hexdigest()

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    # one byte of the database changed, in an archive that is otherwise well formed
    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(altered, "w:gz") as dst:
        for member in src:
            data = bytearray(src.extractfile(member).read())
            if member.name == "deskflow.sqlite":
                data[5000] ^= 0xFF
            dst.addfile(member, io.BytesIO(bytes(data)))

    for bad, message in ((truncated, f"deskflow: {truncated} is damaged or truncated ("),
                         (altered, f"deskflow: {altered} is damaged: deskflow.sqlite does not "
                          "match its SHA-256 in the manifest; nothing was restored\n")):
        result = runner.invoke(main, ["restore", "--db", other, "--from", str(bad), "--force",
                                      "--attachments", str(tmp_path / "other-files")])
        assert result.exit_code == 2
        assert result.output.startswith(message)
        assert result.output.endswith("; nothing was restored\n")
        assert hashlib.sha256(target.read_bytes()).hexdigest() == untouched
        assert not (tmp_path / "other-files").exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_database_that_is_not_empty_is_replaced_only_with_force(tmp_path, runner, acme, clock,
                                                                   answers):
    url = migrated(sqlite_url(tmp_path / "deskflow.sqlite"), acme)
    desk, engine = desk_on(url, acme, clock, tmp_path / "files")
    fill(desk, answers)
    engine.dispose()
    archive = tmp_path / "deskflow.tar.gz"
    assert runner.invoke(main, ["backup", "--db", url, "--to", str(archive),
                                "--attachments", str(tmp_path / "files")]).exit_code == 0
    target = tmp_path / "target.sqlite"
    other = migrated(sqlite_url(target), acme)
    desk, engine = desk_on(other, acme, clock, tmp_path / "other-files")
    desk.submit("vpn-access", "alice", answers["vpn-access"])
    engine.dispose()
    untouched = target.read_bytes()

    result = runner.invoke(main, ["restore", "--db", other, "--from", str(archive)])
    assert result.exit_code == 2
    engine = make_engine(other)
    with engine.connect() as conn:
        tables = len(inspect(conn).get_table_names())
    engine.dispose()
    assert result.output == (f"deskflow: the database at {other} is not empty ({tables} tables, "
                             "1 requests); restoring would replace it: add --force to do so\n")
    assert target.read_bytes() == untouched

    result = runner.invoke(main, ["restore", "--db", other, "--from", str(archive), "--force",
                                  "--attachments", str(tmp_path / "other-files")])
    assert result.exit_code == 0, result.output
    assert rows(other) == rows(url)
    assert files_of(tmp_path / "other-files") == files_of(tmp_path / "files")


def test_backup_refuses_to_overwrite_an_archive(tmp_path, runner, acme):
    url = migrated(sqlite_url(tmp_path / "deskflow.sqlite"), acme)
    archive = tmp_path / "deskflow.tar.gz"
    archive.write_bytes(b"yesterday's")
    result = runner.invoke(main, ["backup", "--db", url, "--to", str(archive)])
    assert (result.exit_code, result.output) == \
        (2, f"deskflow: {archive} exists already; name a new file\n")
    assert archive.read_bytes() == b"yesterday's"


def test_postgresql_round_trip(tmp_path, runner, acme, clock, answers, new_pg_database):
    url = migrated(new_pg_database(), acme)
    files = tmp_path / "files"
    desk, engine = desk_on(url, acme, clock, files)
    fill(desk, answers)
    engine.dispose()
    before, stored = rows(url), files_of(files)
    archive = tmp_path / "deskflow.tar.gz"
    result = runner.invoke(main, ["backup", "--db", url, "--to", str(archive),
                                  "--attachments", str(files)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"backed up {make_url(url).render_as_string()} at revision "
                                    f"{head()} to {archive}: 3 requests, ")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames())[:2] == ["attachments/" + sorted(stored)[0], "attachments/"
                                              + sorted(stored)[1]]
        assert "deskflow.pgdump" in tar.getnames()

    shutil.rmtree(files)
    target = new_pg_database()  # the server is gone: a new, empty database
    result = runner.invoke(main, ["restore", "--db", target, "--from", str(archive),
                                  "--attachments", str(files)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith("counts match the manifest: 3 requests, ")
    assert rows(target) == before
    assert files_of(files) == stored

    # restoring again over it needs --force, and then gives the same
    assert runner.invoke(main, ["restore", "--db", target, "--from", str(archive)]).exit_code == 2
    result = runner.invoke(main, ["restore", "--db", target, "--from", str(archive), "--force",
                                  "--attachments", str(files)])
    assert result.exit_code == 0, result.output
    assert rows(target) == before
    desk, engine = desk_on(target, acme, clock, files)
    with desk.sessions() as s:  # the restored database works: ids go on from where they were
        pending = s.scalar(select(Approval.id).where(Approval.decision == "pending"))
    desk.approve(pending, "bob", "Fine.")
    engine.dispose()


def test_without_pg_dump_the_package_to_install_is_named(tmp_path, runner):
    result = runner.invoke(main, ["backup", "--db", "postgresql://deskflow:s3cret@127.0.0.1:1/x",
                                  "--to", str(tmp_path / "b.tar.gz")], env={"PATH": str(tmp_path)})
    assert (result.exit_code, result.output) == (2, (
        "deskflow: pg_dump is not installed; install the postgresql-client package (apt-get "
        "install postgresql-client) of the server's major version\n"))
    assert list(tmp_path.iterdir()) == []
