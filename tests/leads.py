"""Lead-lifecycle fixtures and helpers: a sales team, published policies, the test clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain import policy
from domain.access import SYSTEM, Role
from domain.db import transaction
from domain.lead import Lead
from domain.policy import PolicyKind
from domain.settings import Settings
from tests.conftest import Login, MakeUser, wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def publish(sessions: async_sessionmaker[AsyncSession], kind: PolicyKind,
                  data: dict[str, Any], name: str = "default") -> None:
    async with transaction(sessions) as session:
        await policy.publish(session, actor=SYSTEM, kind=kind, name=name, data=data)


class SalesTeam:
    def __init__(self, ids: dict[str, int], headers: dict[str, dict[str, str]]) -> None:
        self.ids = ids
        self.headers = headers


@pytest.fixture
async def team(
    make_user: MakeUser, make_team: Callable[..., Awaitable[int]], login: Login,
    sessions: async_sessionmaker[AsyncSession],
) -> SalesTeam:
    """A manager with two reps, a round-robin default rule over the team."""
    boss = await make_user("boss", Role.sales_manager, email="boss@example.cn")
    team_id = await make_team("华东销售部", manager_id=boss.id)
    rep1 = await make_user("rep1", Role.sales, team_id=team_id, email="rep1@example.cn")
    rep2 = await make_user("rep2", Role.sales, team_id=team_id, email="rep2@example.cn")
    await publish(sessions, PolicyKind.assignment, {
        "default": {"name": "华东轮询", "target": {"team_id": team_id}},
    })
    ids = {"boss": boss.id, "rep1": rep1.id, "rep2": rep2.id, "team": team_id}
    headers = {name: await login(name) for name in ("boss", "rep1", "rep2")}
    return SalesTeam(ids, headers)


async def travel_to(env: WorkflowEnvironment, moment: datetime) -> None:
    """Move the test server's clock forward to `moment` (it only ever moves forward)."""
    now = await env.get_current_time()
    assert moment > now, f"{moment} is already past on the test server ({now})"
    await env.sleep(moment - now)


async def next_weekday(env: WorkflowEnvironment, weekday: int, at: time,
                       weeks_ahead: int = 1) -> datetime:
    """A wall-clock moment in Shanghai on the given weekday, at least `weeks_ahead` out."""
    today = (await env.get_current_time()).astimezone(SHANGHAI).date()
    day = today + timedelta(days=7 * weeks_ahead + (weekday - today.weekday()) % 7)
    return datetime.combine(day, at, SHANGHAI)


async def capture(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    response = await client.post("/api/leads", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def lead_row(sessions: async_sessionmaker[AsyncSession], lead_id: int) -> Lead:
    async with sessions() as session:
        row = await session.get(Lead, lead_id)
        assert row is not None
        return row


async def settled(sessions: async_sessionmaker[AsyncSession], lead_id: int,
                  check: Callable[[Lead], bool]) -> Lead:
    """Wait until the lead's row satisfies `check` (activities run in real time)."""
    async def ok() -> bool:
        return check(await lead_row(sessions, lead_id))

    await wait_until(ok)
    return await lead_row(sessions, lead_id)


def handle_for(env: WorkflowEnvironment, settings: Settings, lead_id: int) -> WorkflowHandle:
    return env.client.get_workflow_handle(settings.workflow_id("lead", lead_id))


async def fired_timers(handle: WorkflowHandle) -> list[datetime]:
    """When each timer of the workflow fired, in Shanghai time."""
    history = await handle.fetch_history()
    return [e.event_time.ToDatetime(tzinfo=SHANGHAI) for e in history.events
            if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]


def day_of(moment: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(moment.date() + timedelta(days=days), time(hour, minute), SHANGHAI)


def dates(*days: date) -> list[str]:
    return [d.isoformat() for d in days]
