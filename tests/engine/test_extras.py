"""A PostgreSQL URL or a Redis rate-limit storage without its extra names the extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.db import make_engine, normalize_url
from engine.extras import MissingExtra, is_installed
from web import create_app

ROOT = Path(__file__).resolve().parent.parent.parent
NO_PSYCOPG = ("a postgresql:// database URL needs the psycopg package, which is not installed "
              "(pip install 'deskflow[postgres]')")
NO_REDIS = ("a redis:// rate-limit storage (DESKFLOW_RATELIMIT_STORAGE) needs the redis package, "
            "which is not installed (pip install 'deskflow[redis]')")


@pytest.fixture
def without(monkeypatch):
    """Make modules unimportable, as if their extra were not installed."""
    def hide(*modules: str) -> None:
        for module in modules:
            monkeypatch.setitem(sys.modules, module, None)
    return hide


@pytest.mark.parametrize("url", ["postgresql://deskflow@db.internal/deskflow",
                                 "postgresql+psycopg://deskflow@db.internal/deskflow",
                                 "postgres://deskflow@db.internal/deskflow"])
def test_a_postgresql_url_without_psycopg_names_the_extra(without, url):
    without("psycopg")
    assert not is_installed("psycopg")
    with pytest.raises(MissingExtra) as error:
        make_engine(url)
    assert str(error.value) == NO_PSYCOPG


def test_a_postgresql_url_with_psycopg_is_accepted():
    assert normalize_url("postgresql://deskflow@db.internal/deskflow") == \
        "postgresql+psycopg://deskflow@db.internal/deskflow"


def test_sqlite_needs_no_extra(without):
    without("psycopg", "redis")
    assert normalize_url("sqlite:///deskflow.sqlite") == "sqlite:///deskflow.sqlite"


def test_a_redis_rate_limit_storage_without_redis_names_the_extra(without, tmp_path):
    without("redis")
    with pytest.raises(MissingExtra) as error:
        create_app({"SECRET_KEY": "test", "DESKFLOW_RATELIMIT_STORAGE": "redis://127.0.0.1:6379"},
                   instance_path=str(tmp_path))
    assert str(error.value) == NO_REDIS


def test_the_cli_says_which_extra_to_install_without_a_traceback():
    # a fresh interpreter in which psycopg cannot be imported, as after `pip install deskflow`
    code = ("import sys; sys.modules['psycopg'] = None; from web.cli import main; "
            "main(['db', 'upgrade', '--db', 'postgresql://deskflow@127.0.0.1:1/deskflow'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"deskflow: {NO_PSYCOPG}\n")
