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


def has_nul(value: Any) -> bool:
    """A NUL byte anywhere in a string, or in a dict's keys and values or a list's items, nested:
    refused at every door (the API's models and the flow definitions)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False
