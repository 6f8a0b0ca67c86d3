"""Where the bundled acme catalog is: a module of its own, so that a command that only needs
the path (every CLI command's `--catalog` default) does not import the demo's machinery."""

from __future__ import annotations

from pathlib import Path


def bundled_catalog() -> Path:
    """The acme example catalog, wherever Deskflow is installed.

    A wheel carries it as web/acme (setup.py copies examples/acme there); a checkout, and an
    editable install of one, reads examples/acme itself.
    """
    here = Path(__file__).resolve().parent
    packaged = here / "acme"
    return packaged if packaged.is_dir() else here.parent / "examples" / "acme"
