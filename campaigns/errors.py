"""Errors the engine raises for callers to show: what went wrong and where."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input from a user: `where` names the field, row or line."""

    def __init__(self, message: str, where: str = "", details: Any = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where
        self.details = details


def all_at_once(problems: list[InputError]) -> InputError:
    """The first problem, carrying every one in `details` ([{"where", "error"}], as the API answers)."""
    first = problems[0]
    return InputError(
        first.message, where=first.where, details=[{"where": p.where, "error": p.message} for p in problems]
    )


class StateError(RuntimeError):
    """An action not allowed in the current state (an invalid rollout transition, a sent campaign...)."""


class NotFound(LookupError):
    pass
