"""Ticket transitions people ask for, on the dev server with a real worker: refused Updates
(validator rejections need the real server; the time-skipping one stalls after them), a
supervisor's reassignment by hand, reopening after the window, and the complaint notice."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain.access import Role
from domain.audit import AuditLog
from domain.policy import PolicyKind
from domain.task import Task
from tests.conftest import Login, MakeUser, wait_until
from tests.deals import tasks_of
from tests.leads import publish
from tests.tickets import ServiceTeam, open_ticket, ticket_row, ticket_settled


async def _assigned(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
                    team: ServiceTeam, **fields: object) -> int:
    """A ticket dispatched to agent1 with its clocks running."""
    ticket = await open_ticket(client, team.headers["lead"], **fields)
    await ticket_settled(sessions, ticket["id"], lambda r: r.assignee_id == team.ids["agent1"]
                         and r.sla_due_at is not None)
    return ticket["id"]


@pytest.mark.parametrize(
    ("path", "body", "who", "status"),
    [
        ("reopen", None, "agent1", 409),       # only a resolved ticket reopens
        ("close", None, "agent1", 409),        # only a resolved ticket closes
        ("start", None, "agent2", 403),        # agent2 sees the team's ticket but is not on it
        ("resolve", None, "agent2", 403),
        ("reassign", {"assignee_id": 1}, "agent1", 403),  # agents do not reassign
    ],
)
async def test_refused_transitions_name_why_and_change_nothing(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, path: str, body: dict | None, who: str, status: int,
) -> None:
    ticket_id = await _assigned(client, sessions, service_team)
    response = await client.post(f"/api/tickets/{ticket_id}/{path}", json=body,
                                 headers=service_team.headers[who])
    assert response.status_code == status, response.text
    if status == 409:
        assert response.json()["current_status"] == "assigned"
        assert response.json()["detail"][0]["msg"] == f"cannot {path} a ticket that is assigned"
    else:
        assert "supervisor" in response.json()["detail"][0]["msg"]
    row = await ticket_row(sessions, ticket_id)
    assert (row.status, row.assignee_id) == ("assigned", service_team.ids["agent1"])
    started = await client.post(f"/api/tickets/{ticket_id}/start",
                                headers=service_team.headers["agent1"])
    assert started.status_code == 200, started.text  # the workflow goes on after a refusal
    assert started.json()["status"] == "in_progress"


async def test_a_supervisor_reassigns_by_hand_and_the_old_agent_is_then_refused(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, make_user: MakeUser,
) -> None:
    ticket_id = await _assigned(client, sessions, service_team)
    rep = await make_user("rep", Role.sales)
    lead = service_team.headers["lead"]
    url = f"/api/tickets/{ticket_id}/reassign"
    not_agent = await client.post(url, headers=lead, json={"assignee_id": rep.id})
    assert not_agent.status_code == 422, not_agent.text
    assert not_agent.json()["detail"][0]["loc"] == ["assignee_id"]
    nobody = await client.post(url, headers=lead, json={})
    assert nobody.status_code == 422

    agent2 = service_team.ids["agent2"]
    moved = await client.post(url, headers=lead, json={"assignee_id": agent2, "note": "休假"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["assignee_id"], moved.json()["status"]) == (agent2, "assigned")
    assert moved.json()["dispatch_rule"] == "by hand"
    assert [a for a, _s in await tasks_of(sessions, "ticket.assigned")] == [
        service_team.ids["agent1"], agent2]
    async with sessions() as session:
        entry = await session.scalar(select(AuditLog).where(
            AuditLog.entity == "ticket", AuditLog.action == "reassign"))
    assert entry is not None and entry.actor_id == service_team.ids["lead"]

    old = await client.post(f"/api/tickets/{ticket_id}/start",
                            headers=service_team.headers["agent1"])
    assert old.status_code == 403, old.text
    new = await client.post(f"/api/tickets/{ticket_id}/start",
                            headers=service_team.headers["agent2"])
    assert new.status_code == 200, new.text


async def test_reopening_after_the_window_is_refused_naming_the_closed_status(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam,
) -> None:
    await publish(sessions, PolicyKind.ticket, {"reopen_within": "PT2S",
                                                "survey_reminder_after": "PT1H"})
    ticket_id = await _assigned(client, sessions, service_team)
    agent = service_team.headers["agent1"]
    resolved = await client.post(f"/api/tickets/{ticket_id}/resolve", headers=agent, json={})
    assert resolved.status_code == 200, resolved.text
    await ticket_settled(sessions, ticket_id, lambda r: r.status == "closed")

    late = await client.post(f"/api/tickets/{ticket_id}/reopen", headers=agent,
                             json={"reason": "又坏了"})
    assert late.status_code == 409, late.text
    assert late.json()["current_status"] == "closed"
    assert late.json()["detail"][0]["msg"] == "cannot reopen a ticket that is closed"
    row = await ticket_row(sessions, ticket_id)
    assert (row.status, row.reopened) == ("closed", 0)


async def test_a_complaint_is_told_to_the_customer_owner(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, make_user: MakeUser, login: Login,
) -> None:
    rep = await make_user("rep", Role.sales)
    made = await client.post("/api/customers", headers=await login("rep"), json={
        "kind": "person", "name": "赵先生", "phone": "13700137000"})
    assert made.status_code == 201, made.text
    assert made.json()["owner_id"] == rep.id
    complaint = await open_ticket(client, service_team.headers["lead"], type="complaint",
                                  subject="安装师傅迟到", customer_id=made.json()["id"])

    async def told() -> bool:
        return bool(await tasks_of(sessions, "ticket.complaint"))

    await wait_until(told)
    assert await tasks_of(sessions, "ticket.complaint") == [(rep.id, "open")]
    async with sessions() as session:
        task = await session.scalar(select(Task).where(Task.kind == "ticket.complaint"))
    assert task is not None and (task.ref_entity, task.ref_id) == ("ticket", complaint["id"])
