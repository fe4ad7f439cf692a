"""The lead lifecycle on the time-skipping server: SLA steps at exact business-time instants."""

from __future__ import annotations

from datetime import time, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.lead import LeadStatus
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.task import Task
from tests.histories import record_history
from tests.leads import (
    SalesTeam,
    capture,
    dates,
    day_of,
    fired_timers,
    handle_for,
    next_weekday,
    publish,
    settled,
    travel_to,
)

CHAIN = {"name": "首次联系", "steps": [
    {"after": "PT30M", "action": "notify_owner"},
    {"after": "PT2H", "action": "notify_manager"},
    {"after": "PT4H", "action": "reassign"},
    {"after": "PT40H", "action": "return_to_pool"},
]}


LATENCY = timedelta(seconds=10)
"""How late a step may fire: the seconds the server and a busy 2-core machine take to run the
capture and each workflow task. Every expected instant is a whole minute, so a wrong business-
time computation (minutes or hours off) still fails."""


def assert_instants(actual: list, expected: list) -> None:
    """Each step fired at its instant: never early, late only by workflow-task latency."""
    assert len(actual) == len(expected), (actual, expected)
    for fired, due in zip(actual, expected, strict=True):
        assert due <= fired < due + LATENCY, (fired, due)


async def _tasks(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, int]]:
    async with sessions() as session:
        rows = await session.execute(select(Task.kind, Task.assignee_id).order_by(Task.id))
        return [tuple(r) for r in rows.all()]


async def test_no_contact_steps_fire_in_business_time_over_weekend_holiday_and_makeup_day(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, team: SalesTeam,
    admin: dict[str, str],
) -> None:
    friday = await next_weekday(temporal_env, 4, time(17, 0))
    holiday, makeup_saturday = friday.date() + timedelta(days=3), friday.date() + timedelta(days=8)
    await publish(sessions, PolicyKind.calendar, {
        "working_hours": [["09:00", "18:00"]], "use_cn_holidays": False,
        "extra_holidays": dates(holiday), "extra_workdays": dates(makeup_saturday),
    })
    await publish(sessions, PolicyKind.lead_sla, {"default_chain": CHAIN})
    await travel_to(temporal_env, friday)

    lead = (await capture(client, admin, contact_name="王女士", phone="13800138000",
                          source="官网"))["lead"]
    first = await settled(sessions, lead["id"], lambda r: r.sla_due_at is not None)
    assert first.owner_id == team.ids["rep1"]
    assert first.assigned_rule == "华东轮询"
    await temporal_env.sleep(timedelta(days=10))
    pooled = await settled(sessions, lead["id"], lambda r: r.status == "pooled")

    assert_instants(await fired_timers(handle_for(temporal_env, settings, lead["id"])), [
        day_of(friday, 0, 17, 30),    # remind rep1 after 30 min
        day_of(friday, 4, 10, 0),     # escalate: 1 h on Friday, Monday is a holiday, 1 h Tuesday
        day_of(friday, 4, 12, 0),     # reassign to rep2 after 4 h; rep2's clock starts
        day_of(friday, 4, 12, 30),    # remind rep2
        day_of(friday, 4, 14, 0),     # escalate again
        day_of(friday, 8, 16, 0),     # 40 h of rep2's time: Tue–Fri, then the make-up Saturday
    ])
    assert pooled.pooled_from_id == team.ids["rep2"] and pooled.owner_id is None
    await record_history(handle_for(temporal_env, settings, lead["id"]), "lead_sla_to_pool")
    rep1, rep2, boss = team.ids["rep1"], team.ids["rep2"], team.ids["boss"]
    assert await _tasks(sessions) == [
        ("lead.assigned", rep1), ("lead.remind_owner", rep1), ("lead.escalate_manager", boss),
        ("lead.reassigned_away", rep1), ("lead.assigned", rep2), ("lead.remind_owner", rep2),
        ("lead.escalate_manager", boss), ("lead.returned_to_pool", rep2),
    ]
    assert pooled.sla_breaches == ["1.0.notify_owner", "1.1.notify_manager", "1.2.reassign",
                                   "2.0.notify_owner", "2.1.notify_manager",
                                   "2.3.return_to_pool"]


async def test_contact_at_minute_ten_stops_every_step(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, team: SalesTeam,
    admin: dict[str, str],
) -> None:
    await publish(sessions, PolicyKind.lead_sla, {"default_chain": CHAIN,
                                                  "cadence": "P30D"})
    tuesday = await next_weekday(temporal_env, 1, time(10, 0))
    await travel_to(temporal_env, tuesday)
    lead = (await capture(client, admin, contact_name="王女士", phone="13800138000"))["lead"]
    await settled(sessions, lead["id"], lambda r: r.sla_due_at is not None)

    await temporal_env.sleep(timedelta(minutes=10))
    done = await client.post(f"/api/leads/{lead['id']}/contact", json={"note": "电话已通"},
                             headers=team.headers["rep1"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "contacted"
    await temporal_env.sleep(timedelta(days=5))

    row = await settled(sessions, lead["id"], lambda r: r.sla_next_action == "return_to_pool")
    assert row.status == LeadStatus.contacted.value and row.sla_breaches == []
    assert row.first_contacted_at is not None
    assert await fired_timers(handle_for(temporal_env, settings, lead["id"])) == []
    assert [kind for kind, _ in await _tasks(sessions)] == ["lead.assigned"]


async def test_reassignment_by_hand_restarts_the_clock_for_the_new_owner(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, team: SalesTeam,
    admin: dict[str, str],
) -> None:
    await publish(sessions, PolicyKind.lead_sla, {"default_chain": CHAIN})
    tuesday = await next_weekday(temporal_env, 1, time(10, 0))
    await travel_to(temporal_env, tuesday)
    lead = (await capture(client, admin, contact_name="王女士", phone="13800138000"))["lead"]
    await settled(sessions, lead["id"], lambda r: r.sla_due_at is not None)

    await temporal_env.sleep(timedelta(minutes=20))
    moved = await client.post(f"/api/leads/{lead['id']}/reassign",
                              json={"owner_id": team.ids["rep2"]}, headers=team.headers["boss"])
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_id"] == team.ids["rep2"]
    await temporal_env.sleep(timedelta(minutes=45))
    await settled(sessions, lead["id"], lambda r: len(r.sla_breaches) == 1)

    timers = await fired_timers(handle_for(temporal_env, settings, lead["id"]))
    assert_instants(timers, [day_of(tuesday, 0, 10, 50)])  # 30 min after the hand-over
    assert ("lead.remind_owner", team.ids["rep2"]) in await _tasks(sessions)
