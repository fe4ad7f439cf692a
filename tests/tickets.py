"""Ticket fixtures and helpers: a service team with a supervisor and two agents, dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.access import Role
from domain.policy import PolicyKind
from domain.ticket import Ticket
from tests.conftest import Login, MakeUser, wait_until
from tests.leads import publish


class ServiceTeam:
    def __init__(self, ids: dict[str, int], headers: dict[str, dict[str, str]]) -> None:
        self.ids = ids
        self.headers = headers


@pytest.fixture
async def service_team(
    make_user: MakeUser, make_team: Callable[..., Awaitable[int]], login: Login,
    sessions: async_sessionmaker[AsyncSession],
) -> ServiceTeam:
    """A supervisor with two agents; every ticket goes to the team by round robin."""
    lead = await make_user("lead", Role.service_manager, email="lead@example.cn")
    team_id = await make_team("客服一组", manager_id=lead.id)
    agent1 = await make_user("agent1", Role.service, team_id=team_id, email="a1@example.cn",
                             skills=["打印机"])
    agent2 = await make_user("agent2", Role.service, team_id=team_id, email="a2@example.cn",
                             skills=["路由器"])
    await publish(sessions, PolicyKind.dispatch, {
        "default": {"name": "客服轮询", "team_id": team_id},
    })
    ids = {"lead": lead.id, "agent1": agent1.id, "agent2": agent2.id, "team": team_id}
    headers = {name: await login(name) for name in ("lead", "agent1", "agent2")}
    return ServiceTeam(ids, headers)


async def open_ticket(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    body = {"type": "repair", "subject": "打印机卡纸", **fields}
    response = await client.post("/api/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def ticket_row(sessions: async_sessionmaker[AsyncSession], ticket_id: int) -> Ticket:
    async with sessions() as session:
        row = await session.get(Ticket, ticket_id)
        assert row is not None
        return row


async def ticket_settled(sessions: async_sessionmaker[AsyncSession], ticket_id: int,
                         check: Callable[[Ticket], bool]) -> Ticket:
    """Wait until the ticket's row satisfies `check` (activities run in real time)."""
    async def ok() -> bool:
        return check(await ticket_row(sessions, ticket_id))

    await wait_until(ok)
    return await ticket_row(sessions, ticket_id)
