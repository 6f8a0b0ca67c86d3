"""web/gunicorn_conf.py: the settings module for `gunicorn -c python:web.gunicorn_conf`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from web import gunicorn_conf

#: a gunicorn worker's metrics: a counter (kept after it dies) and a live gauge (dropped)
WORKER = """
from prometheus_client import Counter, Gauge
Counter("deskflow_test_requests", "x").inc()
Gauge("deskflow_test_busy", "x", multiprocess_mode="livesum").set(1)
print(__import__("os").getpid())
"""


def test_gunicorn_reads_the_child_exit_hook_from_the_module(monkeypatch):
    from gunicorn.app.wsgiapp import WSGIApplication

    monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", "python:web.gunicorn_conf", "web:create_app()"])
    app = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]")
    assert app.cfg.child_exit is gunicorn_conf.child_exit


def test_child_exit_drops_a_dead_workers_live_gauges_and_keeps_its_counts(tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pid = int(subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, capture_output=True,
                             text=True, timeout=60).stdout)
    assert {p.name for p in tmp_path.iterdir()} == {f"counter_{pid}.db", f"gauge_livesum_{pid}.db"}
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_conf.child_exit(None, SimpleNamespace(pid=pid))
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{pid}.db"]


def test_child_exit_does_nothing_without_multiprocess_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    gunicorn_conf.child_exit(None, SimpleNamespace(pid=4242))
    assert Path("gauge_livesum_4242.db").exists()
