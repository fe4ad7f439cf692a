"""Failures a caller can act on. The API turns each into a 4xx that names the field and problem."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    status = 404


class Invalid(DomainError):
    """A value breaks a rule; `field` is its dotted path, e.g. `custom.budget`."""

    status = 422


class Conflict(DomainError):
    """The write would clash with the state of stored data (a duplicate, a stale transition)."""

    status = 409


class Forbidden(DomainError):
    status = 403
