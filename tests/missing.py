"""A tool a test needs is missing: skip with the reason, except under CI=true, where a skip
would hide a broken pipeline, so the test fails (browser tests, the Dovecot IMAP test)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str, what: str) -> NoReturn:
    """Skip for `reason`; fail instead under CI=true (`what`: the kind of test skipped)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}; a skipped {what} would hide a broken pipeline")
    pytest.skip(reason)
