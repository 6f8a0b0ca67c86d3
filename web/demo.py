"""The demo: the acme catalog shipped inside the package."""

from __future__ import annotations

from pathlib import Path


def bundled_catalog() -> Path:
    """The acme example catalog, wherever Deskflow is installed."""
    return Path(__file__).resolve().parent / "acme"
