"""The wheel ships the demo catalog: examples/acme's whole tree as web/acme, byte for byte.

The wheel is built from a copy of the sources (so the shared checkout gets no build/ folder)
without build isolation: setuptools comes from the test extra, and the build needs no network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.acme import ACME, ROOT
from web.demo import bundled_catalog

#: what a build reads besides the packages themselves
BUILD_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
PACKAGED = "web/acme/"


def packages() -> list[str]:
    """The top-level packages pyproject.toml ships (its `packages.find` include patterns)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.rstrip("*").rstrip(".") for pattern in include})


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of Deskflow, built from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, src / name)
    for package in packages():
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    shutil.copytree(ACME, src / "examples" / "acme")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--quiet", "--wheel-dir", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    built, = out.glob("deskflow-*.whl")
    return built


def test_the_wheel_ships_every_file_of_examples_acme_unchanged_and_nothing_else(wheel):
    expected = {path.relative_to(ACME).as_posix(): path.read_bytes()
                for path in sorted(ACME.rglob("*")) if path.is_file()}
    with zipfile.ZipFile(wheel) as whl:
        shipped = {name.removeprefix(PACKAGED): whl.read(name)
                   for name in whl.namelist() if name.startswith(PACKAGED) and not name.endswith("/")}
    assert sorted(shipped) == sorted(expected)
    assert [name for name in expected if shipped[name] != expected[name]] == []


def test_the_acme_catalog_ships_inside_the_package(wheel, tmp_path):
    """Installed from the wheel, Deskflow serves the demo from its own copy, which loads clean."""
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(tmp_path / "site")
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from catalog.loader import load_catalog\n"
            "from web.demo import bundled_catalog\n"
            "assert (bundled_catalog() / 'deskflow.yaml').is_file()\n"
            "assert bundled_catalog().parent.name == 'web'\n"
            "print(bundled_catalog(), load_catalog(bundled_catalog()).ok)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str((tmp_path / "site" / "web" / "acme").resolve()), "True"]


def test_a_checkout_reads_the_demo_catalog_from_examples():
    """No web/acme in the repository (no symlink to break): a checkout reads examples/acme."""
    assert not (ROOT / "web" / "acme").exists()
    assert bundled_catalog() == ACME
