"""The order policy (kind `order`) and the payment-plan clock it sets. Pure functions only."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


class OrderPolicy(BaseModel):
    """When the owner hears of an instalment (回款计划): a reminder before it is due, and one
    escalation once it is overdue. Versioned like every policy; an order pins the version it
    started on."""

    model_config = ConfigDict(extra="forbid")

    remind_before: timedelta = timedelta(days=3)
    """How long before the due day's `remind_at` the owner is reminded."""
    remind_at: time = time(9, 0)
    """Local time of day reminders are sent at (the settings' time zone)."""
    overdue_after: timedelta = timedelta(0)
    """Grace after the end of the due day before the instalment counts as overdue."""
    default_due_days: int = Field(default=0, ge=0, le=3650)
    """A contract without payment terms is due in one instalment this many days after signing."""

    @field_validator("remind_before", "overdue_after")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0) or value > timedelta(days=3650):
            raise ValueError("must be between 0 and 10 years")
        return value


def reminder_at(due_on: date, policy: OrderPolicy, zone: ZoneInfo) -> datetime:
    """The moment the owner is reminded of an instalment due on `due_on`."""
    return datetime.combine(due_on, policy.remind_at, zone) - policy.remind_before


def overdue_at(due_on: date, policy: OrderPolicy, zone: ZoneInfo) -> datetime:
    """The moment an unpaid instalment is overdue: the due day is over, plus the grace."""
    return datetime.combine(due_on + timedelta(days=1), time(0), zone) + policy.overdue_after
