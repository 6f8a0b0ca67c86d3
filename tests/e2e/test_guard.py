"""Where Chromium is missing the browser tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import pytest

from tests.e2e import conftest


@pytest.fixture
def no_chromium(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium-here")


def test_missing_chromium_skips_with_a_reason(no_chromium, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is missing: install Debian's chromium"):
        conftest._require_chromium()


@pytest.mark.parametrize("ci", ["false", "1", ""])
def test_only_ci_true_turns_the_skip_into_a_failure(no_chromium, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception):
        conftest._require_chromium()


def test_missing_chromium_fails_under_ci(no_chromium, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest._require_chromium()
