"""gunicorn for the benchmarks: sync workers on 127.0.0.1 at a free port, stopped afterwards."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import loadgen

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: str, env: dict[str, str], log: Path, ready: str, workers: int,
          timeout: int = 120) -> Iterator[tuple[int, int]]:
    """Start gunicorn on `app` (a WSGI factory spec); yield (port, master pid) once `ready`
    answers 200; stop it afterwards. Its output goes to `log`."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
           "--bind", f"127.0.0.1:{port}", "--timeout", str(timeout), "--log-level", "warning", app]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn {app} exited with {proc.returncode}:\n"
                                   + log.read_text()[-3000:])
            try:
                if loadgen.Client(port).request("GET", ready)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn {app} did not answer in 90 s:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
