"""Build hook: ship the acme example catalog inside the wheel as `web/acme`.

Everything else is in pyproject.toml. The demo catalog lives once, in examples/acme; a wheel
gets a copy of its whole tree (any file, any depth), so `deskflow demo` works wherever Deskflow
is installed. An editable install gets no copy: `web.bundled.bundled_catalog()` reads
examples/acme from the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ACME = Path(__file__).resolve().parent / "examples" / "acme"


class BuildWithDemoCatalog(build_py):
    """Build the packages, then copy examples/acme to web/acme in the build directory."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "web" / "acme"
        shutil.rmtree(target, ignore_errors=True)  # a file deleted from examples/acme goes too
        shutil.copytree(ACME, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithDemoCatalog})
