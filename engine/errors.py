"""Errors the request service raises; the web layer maps each to one HTTP status."""

from __future__ import annotations

from catalog.errors import DeskflowError


class EngineError(DeskflowError):
    """Base of the request service's errors."""

    status = 400


class NotAllowed(EngineError):
    """The person may not do this (403)."""

    status = 403


class NotFound(EngineError):
    """No such request, approval or task — or none this person may see (404)."""

    status = 404


class Conflict(EngineError):
    """The request moved on (or someone acted first); reload and try again (409)."""

    status = 409


class InvalidInput(EngineError):
    """The input is wrong; `fields` says what is wrong with which field (422)."""

    status = 422

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        self.fields = fields or {}
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items())
        super().__init__(f"{message} ({details})" if details else message)
        self.message = message


class StepFailed(EngineError):
    """A workflow step failed at runtime: the request halts there, flagged for an admin.

    Raised inside the engine and turned into the request's "needs attention" condition
    (`runtime.flag`); it never reaches a caller of the request service.
    """

    status = 500

    def __init__(self, state: str, step: str, what: str, message: str) -> None:
        super().__init__(f"{state}: {what}: {message}")
        #: `step` says what to re-run (engine.attention); `what` says it in words
        self.state, self.step, self.what, self.message = state, step, what, message


class Unavailable(EngineError):
    """The database is busy; try again shortly (503)."""

    status = 503
