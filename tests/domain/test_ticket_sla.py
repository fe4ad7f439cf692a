"""The SLA clock's pure arithmetic: a pause moves a deadline by exactly the paused business
time; warnings come at their share; dispatch by skills."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.assignment import Candidate
from domain.calendar import BusinessCalendar
from domain.ticket import sla
from domain.ticket.dispatch import Agent, choose
from domain.ticket.rules import DispatchPolicy, SlaTarget, TicketFacts

SH = ZoneInfo("Asia/Shanghai")
OFFICE = BusinessCalendar(use_cn_holidays=False, extra_holidays=frozenset({date(2026, 3, 2)}))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(date(2026, 2, day) if day >= 20 else date(2026, 3, day),
                            time(hour, minute), SH)


def test_a_pause_over_a_night_and_a_holiday_moves_the_deadline_by_business_time_only() -> None:
    clock = sla.start(sla.SlaClock(), SlaTarget.resolution, at(27, 10), timedelta(hours=4))
    assert sla.due(clock, OFFICE, SlaTarget.resolution) == at(27, 14)
    paused = sla.pause(clock, at(27, 11))          # Friday 11:00, 3 h left
    assert sla.due(paused, OFFICE, SlaTarget.resolution) is None
    assert sla.next_event(paused, OFFICE, 0.75) is None
    resumed = sla.resume(paused, OFFICE, at(3, 10))  # Tuesday 10:00; Monday 2 March is off
    assert resumed.paused_seconds == timedelta(hours=8).total_seconds()  # 7 h Fri + 1 h Tue
    assert sla.due(resumed, OFFICE, SlaTarget.resolution) == at(3, 13)
    assert sla.remaining(resumed, OFFICE, SlaTarget.resolution, at(3, 10)) == timedelta(hours=3)


def test_warning_then_breach_then_nothing_once_met() -> None:
    clock = sla.start(sla.SlaClock(), SlaTarget.first_response, at(27, 10), timedelta(hours=1))
    warn = sla.next_event(clock, OFFICE, 0.75)
    assert warn is not None and (warn.at, warn.kind) == (at(27, 10, 45), "warn")
    clock = sla.mark(clock, warn)
    breach = sla.next_event(clock, OFFICE, 0.75)
    assert breach is not None and (breach.at, breach.kind) == (at(27, 11), "breach")
    assert sla.next_event(sla.meet(clock, SlaTarget.first_response, at(27, 10, 50)),
                          OFFICE, 0.75) is None


def test_skills_dispatch_prefers_the_best_match_then_fewest_open_tickets() -> None:
    policy = DispatchPolicy.model_validate(
        {"rules": [{"name": "维修", "team_id": 1, "strategy": "skills"}]})
    agents = {1: [
        Agent(candidate=Candidate(user_id=1, team_id=1, open_leads=0), skills=frozenset()),
        Agent(candidate=Candidate(user_id=2, team_id=1, open_leads=5),
              skills=frozenset({"打印机"})),
        Agent(candidate=Candidate(user_id=3, team_id=1, open_leads=2, on_leave=True),
              skills=frozenset({"打印机"})),
    ]}
    facts = TicketFacts(type="repair", priority="P3", channel="api", product="打印机")
    chosen = choose(policy, facts, agents, cursor={})
    assert chosen is not None and (chosen.user_id, chosen.rule) == (2, "维修")
    nobody = choose(policy, facts, agents, cursor={}, exclude={1, 2})
    assert nobody is not None and (nobody.team_id, nobody.user_id) == (1, None)
