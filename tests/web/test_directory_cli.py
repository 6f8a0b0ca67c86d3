"""Getting people into a production database: directory sync and passwords."""

from __future__ import annotations

from sqlalchemy import select

from engine.db import make_engine, make_sessionmaker
from engine.models import Person
from tests.acme import ACME
from web.cli import main
from web.passwords import check_password


def test_sync_then_set_a_password(tmp_path, runner):
    url = f"sqlite:///{tmp_path}/d.sqlite"
    assert runner.invoke(main, ["db", "upgrade", "--db", url]).exit_code == 0
    result = runner.invoke(main, ["directory", "sync", "--db", url, "--catalog", str(ACME)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("directory: 17 people, 14 groups")
    short = runner.invoke(main, ["password", "alice", "--db", url], input="short\nshort\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    result = runner.invoke(main, ["password", "alice", "--db", url],
                           input="a long enough secret\na long enough secret\n")
    assert result.exit_code == 0 and "password set for alice" in result.output
    with make_sessionmaker(make_engine(url))() as s:
        alice = s.scalar(select(Person).where(Person.id == "alice"))
        assert check_password(alice, "a long enough secret")
    unknown = runner.invoke(main, ["password", "nobody", "--db", url, "--password", "x" * 12])
    assert unknown.exit_code == 1 and "no person nobody" in unknown.output
