"""A PostgreSQL server of the benchmark's own: initdb in a temporary folder, run as the
`postgres` user on 127.0.0.1 at a free port, so its settings and restarts disturb no one else.

benchmarks/load.py restarts it mid-run (fsync off: it measures recovery, not durability);
benchmarks/web.py runs it with the settings docs/operations.md recommends (PRODUCTION).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gunicorn_run import free_port

#: docs/operations.md, "PostgreSQL settings", for a machine of 24 GiB that also runs the app
PRODUCTION = {"shared_buffers": "4GB", "effective_cache_size": "12GB", "work_mem": "32MB",
              "maintenance_work_mem": "1GB", "random_page_cost": "1.1", "jit": "off",
              "max_connections": "200"}
#: benchmarks/load.py: quick to start and restart
DISPOSABLE = {"fsync": "off", "full_page_writes": "off", "max_connections": "200"}


class Postgres:
    """A PostgreSQL server of our own in a temporary folder, which we may restart at will."""

    def __init__(self, tmp: Path, settings: dict[str, str]) -> None:
        self.dir = tmp / "pg"
        self.port = free_port()
        self.settings = settings
        self.bin = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                       check=True).stdout.strip())

    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        """Make and start the server; its URL (database `postgres`)."""
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        out = self._as_postgres(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                                "-U", "postgres", "--no-sync")
        if out.returncode:
            raise RuntimeError(f"initdb failed: {out.stderr[-1000:]}")
        self._ctl("start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, verb: str, *extra: str) -> None:
        opts = " ".join([f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                         *(f"-c {k}={v}" for k, v in self.settings.items())])
        out = self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-w",
                                "-l", str(self.dir / "server.log"), "-o", opts, *extra, verb)
        if out.returncode:
            raise RuntimeError(f"pg_ctl {verb} failed: {out.stderr[-1000:]} "
                               f"{(self.dir / 'server.log').read_text()[-1000:]}")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")
