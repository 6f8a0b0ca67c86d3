"""Optional drivers, installed as extras of deskflow: a missing one is named, not an ImportError."""

from __future__ import annotations

import importlib.util

from sqlalchemy.engine import URL

from catalog.errors import DeskflowError


class MissingExtra(DeskflowError):
    """A setting needs a package that one of deskflow's extras installs, and it is not installed."""

    def __init__(self, what: str, package: str, extra: str) -> None:
        super().__init__(f"{what} needs the {package} package, which is not installed "
                         f"(pip install 'deskflow[{extra}]')")
        self.package, self.extra = package, extra


def is_installed(module: str) -> bool:
    """Tell whether a top-level module can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None


def require_database_driver(url: URL) -> None:
    """Raise MissingExtra when the URL's database driver comes with an extra that is not installed."""
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg" \
            and not is_installed("psycopg"):
        raise MissingExtra("a postgresql:// database URL", "psycopg", "postgres")


def require_ratelimit_storage(uri: str) -> None:
    """Raise MissingExtra when a redis rate-limit storage is configured and redis is not installed."""
    scheme = uri.partition("://")[0].lower()
    # redis://, rediss://, redis+sentinel://, redis+cluster://, redis+unix:// all need it
    if scheme.startswith("redis") and not is_installed("redis"):
        raise MissingExtra(f"a {scheme}:// rate-limit storage (DESKFLOW_RATELIMIT_STORAGE)", "redis",
                           "redis")
