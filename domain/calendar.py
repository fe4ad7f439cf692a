"""Business time: when is somebody at work, and when does an SLA of N working hours fall due.

Pure and deterministic (no I/O, no clock), so Temporal workflows can call these functions to
set SLA timers and replay to the same result.

Conventions:
- All results are aware datetimes in the calendar's time zone; inputs may be in any zone but
  must be aware (a naive datetime is ambiguous, so it is rejected with ValueError).
- Working time is measured in real elapsed time: arithmetic is done in UTC, so a day on which
  the clocks go forward really has one hour less (relevant for zones such as Europe/Berlin;
  Asia/Shanghai has no DST).
- Working spans are half-open wall-clock intervals [start, end) of one day. An end of 00:00
  means midnight at the end of that day; spans across midnight are not supported.
- Wall-clock times that fall in a DST gap are resolved the PEP 495 way (fold=0, i.e. shifted
  forward by the gap) and ambiguous ones take their first occurrence; spans that come to
  overlap through this are clipped so working time is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer, model_validator

__all__ = [
    "BusinessCalendar",
    "add_business_time",
    "business_time_between",
    "is_working_day",
    "next_working_moment",
]

# add_business_time / next_working_moment give up when they find no working day in this many
# days: the calendar has no working time at all (or practically none).
_MAX_GAP_DAYS = 3653
# ...and when a result would lie further out than this; such a duration is a bug, not an SLA.
_MAX_HORIZON_DAYS = 36525

_MIDNIGHT = time(0)


def _check_timezone(key: str) -> str:
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {key!r}") from exc
    return key


def _check_weekdays(days: frozenset[int]) -> frozenset[int]:
    bad = sorted(d for d in days if not 0 <= d <= 6)
    if bad:
        raise ValueError(f"weekdays are 0 (Monday) to 6 (Sunday), got {bad}")
    return days


class BusinessCalendar(BaseModel):
    """When a team works: spans per day, working weekdays, Chinese holidays and admin overrides.

    Frozen and hashable so it can be passed through Temporal's pydantic converter and used as
    a cache key. `working_hours` is a tuple (not a list) for the same reason.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: Annotated[str, AfterValidator(_check_timezone)] = "Asia/Shanghai"
    # 24x7: every instant is working time; all the other fields are then ignored.
    always_open: bool = False
    # Sorted, non-overlapping wall-clock spans of a working day, e.g. a lunch break as
    # ((09:00, 12:00), (13:00, 18:00)). End 00:00 means end of day.
    working_hours: tuple[tuple[time, time], ...] = ((time(9), time(18)),)
    # Mon=0 ... Sun=6; used when the Chinese holiday data is off or does not cover the year.
    working_weekdays: Annotated[frozenset[int], AfterValidator(_check_weekdays)] = Field(
        default=frozenset({0, 1, 2, 3, 4})
    )
    # Statutory holidays and make-up working days (调休) from the chinese_calendar package.
    use_cn_holidays: bool = True
    # Admin overrides; they win over everything else. Also the way to cover a year the
    # chinese_calendar package has no data for yet.
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    @model_validator(mode="after")
    def _check(self) -> Self:
        """Reject spans that would make the arithmetic ambiguous, and contradictory overrides."""
        previous_end: time | None = None
        for start, end in self.working_hours:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working hours are wall-clock times without a time zone")
            if end != _MIDNIGHT and start >= end:
                raise ValueError(f"working span {start}-{end} must start before it ends")
            if previous_end is not None and (previous_end == _MIDNIGHT or start < previous_end):
                raise ValueError("working spans must be sorted and must not overlap")
            previous_end = end
        if not self.always_open and not self.working_hours:
            raise ValueError("a calendar that is not always open needs working hours")
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise ValueError(f"dates both extra holiday and extra workday: {sorted(both)}")
        return self

    @field_serializer("working_weekdays", "extra_holidays", "extra_workdays")
    def _sorted(self, value: frozenset[Any]) -> list[Any]:
        """Sets come out sorted: set order depends on the hash seed, payloads should not."""
        return sorted(value)

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone (ZoneInfo caches instances, so this is cheap)."""
        return ZoneInfo(self.timezone)


ALWAYS_OPEN = BusinessCalendar(always_open=True)
"""Every hour counts: the calendar of 24×7 SLAs and of limits that ignore business hours."""


def is_working_day(cal: BusinessCalendar, day: date) -> bool:
    """Whether `day` (a date in the calendar's zone) has working time.

    Order: admin overrides, then chinese_calendar (which knows holidays and make-up Saturdays
    and Sundays), then the weekday rule. chinese_calendar raises NotImplementedError for
    years it has no data for (1.11 covers 2004-2026); those years fall back to the weekday
    rule, so holidays there must be entered as `extra_holidays` until the package catches up.
    """
    if cal.always_open:
        return True
    if day in cal.extra_workdays:
        return True
    if day in cal.extra_holidays:
        return False
    if cal.use_cn_holidays:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            pass
    return day.weekday() in cal.working_weekdays


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _wall_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time of `day` as a UTC instant (fold=0 for gaps and repeated hours)."""
    return datetime.combine(day, at.replace(fold=0), tzinfo=zone).astimezone(UTC)


def _day_spans(cal: BusinessCalendar, zone: ZoneInfo, day: date) -> list[tuple[datetime, datetime]]:
    """The working intervals of one day as UTC instants, empty on a non-working day."""
    if not is_working_day(cal, day):
        return []
    spans: list[tuple[datetime, datetime]] = []
    for start, end in cal.working_hours:
        end_day = day + timedelta(days=1) if end == _MIDNIGHT else day  # 00:00 = end of day
        spans.append((_wall_to_utc(day, start, zone), _wall_to_utc(end_day, end, zone)))
    return spans


def _intervals(
    cal: BusinessCalendar, first_day: date, *, last_day: date | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals in UTC from `first_day` on, sorted, disjoint and non-empty.

    Without `last_day` the walk is open-ended and raises ValueError once no working day has
    turned up for _MAX_GAP_DAYS, or once it has gone _MAX_HORIZON_DAYS past `first_day`.
    """
    zone = cal.zone
    previous_end: datetime | None = None
    day = first_day
    idle_days = 0
    while last_day is None or day <= last_day:
        if last_day is None:
            if idle_days > _MAX_GAP_DAYS:
                raise ValueError(
                    f"calendar has no working time in {_MAX_GAP_DAYS} days in a row (up to {day})"
                )
            if (day - first_day).days > _MAX_HORIZON_DAYS:
                raise ValueError(f"business time runs past {_MAX_HORIZON_DAYS} days")
        found = False
        for a, b in _day_spans(cal, zone, day):
            if previous_end is not None and a < previous_end:
                a = previous_end  # DST can push one span into the next; never count twice
            if a >= b:
                continue
            found = True
            previous_end = b
            yield a, b
        idle_days = 0 if found else idle_days + 1
        if day == date.max:
            return
        day += timedelta(days=1)


def _start_day(cal: BusinessCalendar, at_utc: datetime) -> date:
    """The first day whose spans can still hold working time at or after `at_utc`.

    Spans stay within their day, so that is the local date of `at`; one day earlier is walked
    too because a DST gap just before midnight can push a late span past midnight.
    """
    day = at_utc.astimezone(cal.zone).date()
    return day if day == date.min else day - timedelta(days=1)


def next_working_moment(cal: BusinessCalendar, at: datetime) -> datetime:
    """`at` itself if it is working time, else the next moment working time begins.

    A span end is not working time (spans are half-open), so 18:00 moves to the next opening.
    """
    _require_aware(at, "at")
    at_utc = at.astimezone(UTC)
    if cal.always_open:
        return at_utc.astimezone(cal.zone)
    for a, b in _intervals(cal, _start_day(cal, at_utc)):
        if b > at_utc:
            return max(a, at_utc).astimezone(cal.zone)
    raise AssertionError("unreachable: _intervals is open-ended or raises")  # pragma: no cover


def add_business_time(cal: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The moment `duration` of working time has elapsed after `start` (an SLA due time).

    The clock only runs inside working spans; from outside working time it starts at the next
    opening. A duration that ends exactly at the end of a span returns that span end (18:00
    on Friday, not 09:00 on Monday). A zero duration returns `start` unchanged (the same
    instant, expressed in the calendar's zone): something due "immediately" is due now, even
    at night. Loops day by day, so long durations are cheap.
    """
    _require_aware(start, "start")
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    start_utc = start.astimezone(UTC)
    zone = cal.zone
    if duration == timedelta(0):
        return start_utc.astimezone(zone)
    if cal.always_open:
        # Add in UTC: adding to a zoned datetime would add wall-clock time across DST.
        return (start_utc + duration).astimezone(zone)
    remaining = duration
    for a, b in _intervals(cal, _start_day(cal, start_utc)):
        if b <= start_utc:
            continue
        a = max(a, start_utc)
        available = b - a
        if remaining <= available:
            return (a + remaining).astimezone(zone)
        remaining -= available
    raise AssertionError("unreachable: _intervals is open-ended or raises")  # pragma: no cover


def business_time_between(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Working time in [start, end); zero when end <= start.

    The inverse of add_business_time: business_time_between(c, s, add_business_time(c, s, d))
    == d. Used to pause and resume SLA clocks and to show the remaining time.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    start_utc = start.astimezone(UTC)
    end_utc = end.astimezone(UTC)
    if end_utc <= start_utc:
        return timedelta(0)
    if cal.always_open:
        return end_utc - start_utc
    total = timedelta(0)
    last_day = end_utc.astimezone(cal.zone).date()
    for a, b in _intervals(cal, _start_day(cal, start_utc), last_day=last_day):
        if a >= end_utc:
            break
        lo = max(a, start_utc)
        hi = min(b, end_utc)
        if hi > lo:
            total += hi - lo
    return total
