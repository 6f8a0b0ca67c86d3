"""Gunicorn settings for Deskflow: `gunicorn -c python:web.gunicorn_conf -w 4 'web:create_app()'`.

Only hooks live here; workers, binding and logs stay on gunicorn's command line.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from web.metrics import multiprocess_dir


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from /metrics' sums (multiprocess mode only)."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(worker.pid, path)
