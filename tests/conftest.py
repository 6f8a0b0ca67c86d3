"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def acme_path() -> Path:
    return EXAMPLES / "acme"


@pytest.fixture(scope="session")
def broken_path() -> Path:
    return EXAMPLES / "broken"
