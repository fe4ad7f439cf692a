"""Business time for SLA deadlines: exact examples in Asia/Shanghai, then properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.calendar import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
    is_working_day,
    next_working_moment,
)

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")

DEFAULT = BusinessCalendar()
LUNCH = BusinessCalendar(working_hours=((time(9), time(12)), (time(13), time(18))))
ALWAYS = BusinessCalendar(always_open=True)


def sh(*args: int) -> datetime:
    """A wall-clock time in Shanghai."""
    return datetime(*args, tzinfo=SH)


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


# --- exact examples --------------------------------------------------------------------------


def test_friday_evening_lead_is_due_monday_morning() -> None:
    # 30 minutes on Friday, 90 minutes on Monday.
    assert add_business_time(DEFAULT, sh(2026, 11, 20, 17, 30), h(2)) == sh(2026, 11, 23, 10, 30)


def test_result_is_in_calendar_zone_whatever_the_input_zone() -> None:
    start = sh(2026, 11, 20, 17, 30).astimezone(UTC)
    due = add_business_time(DEFAULT, start, h(2))
    assert due.tzinfo == SH
    assert (due.year, due.month, due.day, due.hour, due.minute) == (2026, 11, 23, 10, 30)


def test_start_outside_working_time_starts_the_clock_at_next_opening() -> None:
    assert add_business_time(DEFAULT, sh(2026, 11, 17, 7, 0), h(1)) == sh(2026, 11, 17, 10)
    assert add_business_time(DEFAULT, sh(2026, 11, 21, 12, 0), h(1)) == sh(2026, 11, 23, 10)
    assert next_working_moment(DEFAULT, sh(2026, 11, 21, 12)) == sh(2026, 11, 23, 9)
    assert next_working_moment(DEFAULT, sh(2026, 11, 23, 9, 5)) == sh(2026, 11, 23, 9, 5)
    # Spans are half-open: 18:00 is closed.
    assert next_working_moment(DEFAULT, sh(2026, 11, 23, 18)) == sh(2026, 11, 24, 9)


def test_duration_ending_at_closing_time_is_due_at_closing_time() -> None:
    assert add_business_time(DEFAULT, sh(2026, 11, 20, 17), h(1)) == sh(2026, 11, 20, 18)


def test_zero_duration_returns_start_even_outside_working_time() -> None:
    night = sh(2026, 11, 21, 3, 14)
    assert add_business_time(DEFAULT, night, timedelta(0)) == night
    assert add_business_time(DEFAULT, night.astimezone(UTC), timedelta(0)).tzinfo == SH


def test_thirty_business_days() -> None:
    start = sh(2026, 11, 2, 9)  # a Monday; no statutory holiday until New Year
    due = add_business_time(DEFAULT, start, 30 * h(9))
    assert due == sh(2026, 12, 11, 18)
    assert business_time_between(DEFAULT, start, due) == 30 * h(9)


def test_national_day_2026_from_library_data() -> None:
    october = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]
    holidays = [d for d in october if not chinese_calendar.is_workday(d)]
    makeup = [d for d in october if d.weekday() >= 5 and chinese_calendar.is_workday(d)]
    assert holidays[:7] == [date(2026, 10, d) for d in range(1, 8)]  # 国庆 1-7 Oct
    for d in october:
        assert is_working_day(DEFAULT, d) == (d not in holidays)
    for d in makeup:
        assert add_business_time(DEFAULT, datetime.combine(d, time(9), SH), h(1)) == (
            datetime.combine(d, time(10), SH)
        )

    # A 2-hour SLA from the last afternoon before the holiday is due on the first day back.
    first_back = next(d for d in october if d not in holidays)
    due = add_business_time(DEFAULT, sh(2026, 9, 30, 17), h(2))
    assert due == datetime.combine(first_back, time(10), SH)
    assert due == sh(2026, 10, 8, 10)  # verified against chinesecalendar 1.11

    # Working time over two weeks equals 9 hours per working day the library reports.
    start, end = sh(2026, 9, 28), sh(2026, 10, 12)
    workdays = chinese_calendar.get_workdays(date(2026, 9, 28), date(2026, 10, 11))
    assert business_time_between(DEFAULT, start, end) == len(workdays) * h(9)


def test_make_up_weekend_days_2026_count_as_working_time() -> None:
    # 调休: Sat 10 Oct and Sun 20 Sep 2026 are working days (checked in chinesecalendar 1.11).
    assert chinese_calendar.is_workday(date(2026, 10, 10))
    assert add_business_time(DEFAULT, sh(2026, 10, 10, 9), h(1)) == sh(2026, 10, 10, 10)
    assert add_business_time(DEFAULT, sh(2026, 9, 20, 9), h(1)) == sh(2026, 9, 20, 10)
    # ...but Sunday 11 Oct is not: 30 minutes left over run on Monday.
    assert add_business_time(DEFAULT, sh(2026, 10, 10, 17, 30), h(1)) == sh(2026, 10, 12, 9, 30)
    # Without holiday data the make-up Saturday is an ordinary weekend day.
    plain = BusinessCalendar(use_cn_holidays=False)
    assert add_business_time(plain, sh(2026, 10, 10, 9), h(1)) == sh(2026, 10, 12, 10)
    assert is_working_day(plain, date(2026, 10, 1))


def test_lunch_break_is_not_working_time() -> None:
    assert add_business_time(LUNCH, sh(2026, 11, 17, 11, 30), h(1)) == sh(2026, 11, 17, 13, 30)
    assert add_business_time(LUNCH, sh(2026, 11, 17, 12, 15), h(0.5)) == sh(2026, 11, 17, 13, 30)
    assert add_business_time(LUNCH, sh(2026, 11, 17, 9), h(3)) == sh(2026, 11, 17, 12)
    assert next_working_moment(LUNCH, sh(2026, 11, 17, 12, 15)) == sh(2026, 11, 17, 13)
    assert business_time_between(LUNCH, sh(2026, 11, 17, 11), sh(2026, 11, 17, 14)) == h(2)
    assert business_time_between(LUNCH, sh(2026, 11, 17), sh(2026, 11, 18)) == h(8)


def test_always_open_counts_every_hour() -> None:
    start = sh(2026, 10, 3, 3)  # a National Day holiday, at night
    assert add_business_time(ALWAYS, start, h(50)) == sh(2026, 10, 5, 5)
    assert business_time_between(ALWAYS, start, sh(2026, 10, 5, 5)) == h(50)
    assert next_working_moment(ALWAYS, start) == start


def test_always_open_across_dst_counts_real_time() -> None:
    cal = BusinessCalendar(always_open=True, timezone="Europe/Berlin")
    # Clocks go from 02:00 to 03:00 on 29 March 2026: three real hours end at 04:00 CEST.
    due = add_business_time(cal, datetime(2026, 3, 29, 0, tzinfo=BERLIN), h(3))
    assert due == datetime(2026, 3, 29, 4, tzinfo=BERLIN)


def test_berlin_calendar_across_dst_weekend() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Berlin", working_hours=((time(9), time(17)),), use_cn_holidays=False
    )
    due = add_business_time(cal, datetime(2026, 3, 27, 16, tzinfo=BERLIN), h(2))
    assert due == datetime(2026, 3, 30, 10, tzinfo=BERLIN)
    assert due.utcoffset() == h(2)  # CEST


def test_span_inside_a_dst_gap_is_real_time() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        working_hours=((time(1), time(4)),),
        working_weekdays=frozenset(range(7)),
        use_cn_holidays=False,
    )
    day = datetime(2026, 3, 29, tzinfo=BERLIN)
    # 01:00-04:00 wall clock on the day the clocks jump forward lasts two real hours.
    assert business_time_between(cal, day, day + timedelta(days=1)) == h(2)


def test_span_ending_at_midnight_means_end_of_day() -> None:
    cal = BusinessCalendar(working_hours=((time(0), time(0)),), use_cn_holidays=False)
    assert add_business_time(cal, sh(2026, 11, 20, 23), h(2)) == sh(2026, 11, 23, 1)
    assert business_time_between(cal, sh(2026, 11, 16), sh(2026, 11, 23)) == h(5 * 24)


def test_extra_holiday_wins() -> None:
    cal = BusinessCalendar(extra_holidays=frozenset({date(2026, 11, 23), date(2026, 10, 10)}))
    assert add_business_time(cal, sh(2026, 11, 20, 17, 30), h(2)) == sh(2026, 11, 24, 10, 30)
    assert not is_working_day(cal, date(2026, 10, 10))  # make-up day cancelled by the admin


def test_extra_workday_wins() -> None:
    cal = BusinessCalendar(extra_workdays=frozenset({date(2026, 11, 21), date(2026, 10, 2)}))
    assert add_business_time(cal, sh(2026, 11, 20, 17, 30), h(2)) == sh(2026, 11, 21, 10, 30)
    assert is_working_day(cal, date(2026, 10, 2))  # National Day, worked anyway


def test_year_without_library_data_falls_back_to_weekdays() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2031, 1, 1))
    # 1 Jan 2031 is a Wednesday: without data it is an ordinary working day.
    assert is_working_day(DEFAULT, date(2031, 1, 1))
    assert not is_working_day(DEFAULT, date(2031, 1, 4))
    assert add_business_time(DEFAULT, sh(2031, 1, 3, 17), h(2)) == sh(2031, 1, 6, 10)
    # The admin covers the gap with overrides.
    cal = BusinessCalendar(extra_holidays=frozenset({date(2031, 1, 1), date(2031, 1, 6)}))
    assert not is_working_day(cal, date(2031, 1, 1))
    assert add_business_time(cal, sh(2031, 1, 3, 17), h(2)) == sh(2031, 1, 7, 10)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 11, 20, 17, 30)
    with pytest.raises(ValueError, match="aware"):
        add_business_time(DEFAULT, naive, h(1))
    with pytest.raises(ValueError, match="aware"):
        next_working_moment(DEFAULT, naive)
    with pytest.raises(ValueError, match="aware"):
        business_time_between(DEFAULT, sh(2026, 11, 20), naive)
    with pytest.raises(ValueError, match="aware"):
        add_business_time(ALWAYS, naive, h(1))


def test_negative_duration_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_time(DEFAULT, sh(2026, 11, 20, 10), -h(1))


def test_between_is_zero_when_end_not_after_start() -> None:
    assert business_time_between(DEFAULT, sh(2026, 11, 20, 12), sh(2026, 11, 20, 10)) == h(0)
    assert business_time_between(DEFAULT, sh(2026, 11, 20, 12), sh(2026, 11, 20, 12)) == h(0)


def test_calendar_without_working_time_raises_instead_of_looping() -> None:
    cal = BusinessCalendar(working_weekdays=frozenset(), use_cn_holidays=False)
    with pytest.raises(ValueError, match="no working time"):
        add_business_time(cal, sh(2026, 11, 20, 10), h(1))
    with pytest.raises(ValueError, match="no working time"):
        next_working_moment(cal, sh(2026, 11, 20, 10))
    assert business_time_between(cal, sh(2026, 1, 1), sh(2027, 1, 1)) == h(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"working_hours": ((time(18), time(9)),)},
        {"working_hours": ((time(9), time(9)),)},
        {"working_hours": ((time(9), time(13)), (time(12), time(18)))},
        {"working_hours": ((time(13), time(18)), (time(9), time(12)))},
        {"working_hours": ((time(9), time(0)), (time(13), time(18)))},
        {"working_hours": ()},
        {"working_weekdays": frozenset({7})},
        {"timezone": "Mars/Olympus_Mons"},
        {"extra_holidays": {date(2026, 1, 5)}, "extra_workdays": {date(2026, 1, 5)}},
    ],
)
def test_invalid_calendars_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BusinessCalendar.model_validate(kwargs)


def test_calendar_survives_json_and_is_hashable() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        working_hours=((time(8, 30), time(12)), (time(13), time(17, 30))),
        extra_holidays=frozenset({date(2031, 1, 1), date(2030, 12, 31)}),
        extra_workdays=frozenset({date(2031, 1, 4)}),
    )
    data = cal.model_dump_json()
    assert '"extra_holidays":["2030-12-31","2031-01-01"]' in data  # sorted, seed-independent
    assert BusinessCalendar.model_validate_json(data) == cal
    assert hash(BusinessCalendar.model_validate_json(data)) == hash(cal)
    with pytest.raises(ValidationError):
        cal.always_open = True  # type: ignore[misc]


# --- properties ------------------------------------------------------------------------------

CALENDARS = [
    DEFAULT,
    LUNCH,
    ALWAYS,
    BusinessCalendar(use_cn_holidays=False, working_weekdays=frozenset({0, 2, 5})),
    BusinessCalendar(
        extra_holidays=frozenset({date(2026, 11, 23), date(2027, 2, 8)}),
        extra_workdays=frozenset({date(2026, 11, 28)}),
    ),
    # DST in both directions, with a span across the gap and the repeated hour.
    BusinessCalendar(
        timezone="Europe/Berlin",
        working_hours=((time(1, 30), time(3, 30)), (time(9), time(17))),
        working_weekdays=frozenset(range(7)),
        use_cn_holidays=False,
    ),
]

calendars = st.sampled_from(CALENDARS)
# 2026 has holiday data; 2027 falls back to weekdays. Inputs in various zones, real instants
# only (not the wall times a DST gap skips), the repeated hour's second pass included.
starts = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([SH, BERLIN, UTC]),
    allow_imaginary=False,
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=9 * 40))
EPS = timedelta(microseconds=1)
FAST = settings(max_examples=60, deadline=None)


def instant(moment: datetime) -> datetime:
    """The moment in UTC. Python adds and compares datetimes of one zone by wall time (2:30 of
    the repeated hour's second pass equals its first) and calls any ambiguous time unequal to
    another zone's: the properties are about instants."""
    return moment.astimezone(UTC)


@FAST
@given(calendars, starts, durations)
def test_round_trip(cal: BusinessCalendar, start: datetime, d: timedelta) -> None:
    assert business_time_between(cal, start, add_business_time(cal, start, d)) == d


@FAST
@given(calendars, starts, durations, durations)
def test_monotonic(cal: BusinessCalendar, start: datetime, d1: timedelta, d2: timedelta) -> None:
    d1, d2 = sorted((d1, d2))
    assert instant(add_business_time(cal, start, d1)) <= instant(add_business_time(cal, start, d2))


@FAST
@given(calendars, starts, durations)
@example(CALENDARS[-1], datetime(2026, 10, 25, 2, 0, fold=1, tzinfo=BERLIN), EPS)
@example(DEFAULT, datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN), timedelta(0))
def test_result_is_in_working_time(cal: BusinessCalendar, start: datetime, d: timedelta) -> None:
    due = add_business_time(cal, start, d)
    assert due.tzinfo == cal.zone
    if d == timedelta(0):
        assert instant(due) == instant(start)
        return
    assert instant(due) > instant(start)
    # The instant just before the due time was working time...
    assert business_time_between(cal, instant(due) - EPS, due) == EPS
    # ...and on a plain calendar that means a working day, within a span (end inclusive).
    if cal.timezone == "Asia/Shanghai" and not cal.always_open:
        assert is_working_day(cal, due.date())
        assert any(a < due.time() <= b for a, b in cal.working_hours)


@FAST
@given(calendars, starts, durations, durations)
def test_additive(cal: BusinessCalendar, start: datetime, a: timedelta, b: timedelta) -> None:
    assert instant(add_business_time(cal, start, a + b)) == instant(add_business_time(
        cal, add_business_time(cal, start, a), b
    ))


@FAST
@given(calendars, starts)
@example(CALENDARS[-1], datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=BERLIN))
@example(CALENDARS[-1], datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN))
def test_next_working_moment_loses_no_working_time(cal: BusinessCalendar, at: datetime) -> None:
    nxt = instant(next_working_moment(cal, at))
    assert nxt >= instant(at)
    assert business_time_between(cal, at, nxt) == timedelta(0)
    assert business_time_between(cal, nxt, nxt + EPS) == EPS
    assert instant(add_business_time(cal, at, EPS)) == nxt + EPS
