"""Errors raised while running or drawing a workflow."""

from __future__ import annotations

from catalog.errors import DeskflowError


class WorkflowError(DeskflowError):
    """A workflow cannot do what was asked of it."""


class InvalidTrigger(WorkflowError):
    """A trigger does not apply to the state, or no decision route matched."""


class UnknownState(WorkflowError):
    """A state name is not one of the workflow's states."""

