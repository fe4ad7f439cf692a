"""The ticket's SLA clock: promises that run in business time and stand still while the ticket
waits on the customer. Pure (no I/O, no clock): the workflow computes its timers with these, and
replays to the same result.

A target's deadline is `add_business_time(start, duration + paused)`, where `paused` is the
business time the clock stood still while the target ran: a pause moves the deadline by
exactly the paused business time, never more (nights and holidays inside the pause do not
count, as they would not have counted anyway).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from domain.calendar import BusinessCalendar, add_business_time, business_time_between
from domain.ticket.rules import SlaTarget


class Promise(BaseModel):
    target: SlaTarget
    started_at: datetime
    duration_seconds: float
    paused_seconds: float = 0.0
    met_at: datetime | None = None
    warned: bool = False
    breached: bool = False

    @property
    def running(self) -> bool:
        return self.met_at is None


class SlaClock(BaseModel):
    promises: dict[SlaTarget, Promise] = {}
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    """All business time spent waiting on the customer, for the ticket's report columns."""


class SlaEvent(BaseModel):
    at: datetime
    target: SlaTarget
    kind: Literal["warn", "breach"]


def start(clock: SlaClock, target: SlaTarget, at: datetime, duration: timedelta) -> SlaClock:
    """(Re)start a promise at `at`: a reopened ticket owes a whole new resolution."""
    promise = Promise(target=target, started_at=at, duration_seconds=duration.total_seconds())
    return clock.model_copy(update={"promises": {**clock.promises, target: promise}})


def meet(clock: SlaClock, target: SlaTarget, at: datetime) -> SlaClock:
    """The promise is kept (or, if breached, at least ended): it raises no further events."""
    promise = clock.promises.get(target)
    if promise is None or not promise.running:
        return clock
    done = promise.model_copy(update={"met_at": at})
    return clock.model_copy(update={"promises": {**clock.promises, target: done}})


def pause(clock: SlaClock, at: datetime) -> SlaClock:
    if clock.paused_at is not None:
        return clock
    return clock.model_copy(update={"paused_at": at})


def resume(clock: SlaClock, calendar: BusinessCalendar, at: datetime) -> SlaClock:
    """Every running promise moves out by the business time the clock stood still."""
    if clock.paused_at is None:
        return clock
    stood = business_time_between(calendar, clock.paused_at, at).total_seconds()
    promises = {
        target: p.model_copy(update={"paused_seconds": p.paused_seconds + stood})
        if p.running
        else p
        for target, p in clock.promises.items()
    }
    return SlaClock(promises=promises, paused_at=None, paused_seconds=clock.paused_seconds + stood)


def due(clock: SlaClock, calendar: BusinessCalendar, target: SlaTarget) -> datetime | None:
    """When the running promise falls due; None if it is met, absent, or the clock is paused."""
    promise = clock.promises.get(target)
    if promise is None or not promise.running or clock.paused_at is not None:
        return None
    return _after(calendar, promise, promise.duration_seconds)


def _after(calendar: BusinessCalendar, promise: Promise, seconds: float) -> datetime:
    return add_business_time(
        calendar, promise.started_at, timedelta(seconds=seconds + promise.paused_seconds)
    )


def remaining(
    clock: SlaClock, calendar: BusinessCalendar, target: SlaTarget, at: datetime
) -> timedelta | None:
    """Business time left on a running promise at `at` (negative once breached)."""
    promise = clock.promises.get(target)
    if promise is None or not promise.running:
        return None
    until = clock.paused_at if clock.paused_at is not None and clock.paused_at < at else at
    used = business_time_between(calendar, promise.started_at, until).total_seconds()
    return timedelta(seconds=promise.duration_seconds - (used - promise.paused_seconds))


def next_event(clock: SlaClock, calendar: BusinessCalendar, warn_at: float) -> SlaEvent | None:
    """The next warning or breach the workflow must wait for; None while paused."""
    if clock.paused_at is not None:
        return None
    events: list[SlaEvent] = []
    for target, p in clock.promises.items():
        if not p.running or p.breached:
            continue
        if not p.warned:
            at = _after(calendar, p, p.duration_seconds * warn_at)
            events.append(SlaEvent(at=at, target=target, kind="warn"))
        else:
            at = _after(calendar, p, p.duration_seconds)
            events.append(SlaEvent(at=at, target=target, kind="breach"))
    return min(events, key=lambda e: (e.at, e.kind != "breach"), default=None)


def mark(clock: SlaClock, event: SlaEvent) -> SlaClock:
    """Record that `event` fired, so it is not waited for again."""
    promise = clock.promises[event.target]
    flag = {"warned": True} if event.kind == "warn" else {"warned": True, "breached": True}
    changed = promise.model_copy(update=flag)
    return clock.model_copy(update={"promises": {**clock.promises, event.target: changed}})
