"""Errors the request service raises; the web layer maps each to one HTTP status."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.errors import DeskflowError


class EngineError(DeskflowError):
    """Base of the request service's errors."""

    status = 400


class NotAllowed(EngineError):
    """The person may not do this (403)."""

    status = 403


@dataclass(frozen=True, slots=True)
class Denial:
    """What a refusal on grounds of segregation of duties is recorded with (`security_denied`)."""

    request_id: int
    reason: str  # self-approval, self-delegation
    approval: int


class SecurityDenied(NotAllowed):
    """A party to a request tried to decide it or choose who does (403, and audited)."""

    def __init__(self, message: str, denial: Denial) -> None:
        super().__init__(message)
        self.denial = denial


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


class StoredWorkflowBroken(DeskflowError):
    """A workflow version stored in the database no longer loads."""


class BusinessTimeError(DeskflowError):
    """Business hours or a business-time computation make no sense (an end before its start)."""


class DeliveryFailed(DeskflowError):
    """Sending an outbox message failed; `permanent` sends it to the dead letters at once."""

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent, self.retry_after = permanent, retry_after


class BlockedDestination(DeliveryFailed):
    """A webhook URL points somewhere Deskflow must not call."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class DatabaseUnreadable(DeskflowError):
    """The database cannot be reached or read (a wrong URL, a server that is down)."""


class SchemaOutOfDate(DeskflowError):
    """The database's schema is not the one this Deskflow's migrations lead to."""
