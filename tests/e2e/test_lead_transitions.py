"""Lead transitions people ask for, on the dev server: refused updates (validator rejections)
need the real server; the time-skipping one stalls its clock after them."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from domain.access import Actor
from domain.lead import Lead
from domain.lead import service as lead_service
from domain.settings import Settings
from tests.leads import SalesTeam, capture, settled


@pytest.mark.parametrize(
    ("path", "body", "who", "status"),
    [
        ("qualify", None, "rep1", 409),         # assigned: not contacted yet
        ("convert", None, "rep1", 409),         # only qualified leads convert
        ("reassign", {"owner_id": 1}, "rep1", 403),  # reps do not reassign
        ("disqualify", {"reason": "不喜欢"}, "rep1", 422),  # not a configured reason
        ("contact", None, "rep2", 404),         # not rep2's lead: not even visible
    ],
)
async def test_invalid_transitions_are_refused_naming_why(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str], path: str, body: dict | None, who: str, status: int,
) -> None:
    lead = (await capture(client, admin, contact_name="王女士", phone="13800138000"))["lead"]
    await settled(sessions, lead["id"], lambda r: r.owner_id == team.ids["rep1"])
    response = await client.post(f"/api/leads/{lead['id']}/{path}", json=body,
                                 headers=team.headers[who])
    assert response.status_code == status, response.text
    if status == 409:
        assert response.json()["current_status"] == "assigned"
        assert "assigned" in response.json()["detail"][0]["msg"]
    row = await settled(sessions, lead["id"], lambda r: True)
    assert row.status == "assigned" and row.owner_id == team.ids["rep1"]


async def test_a_closed_lead_refuses_further_transitions_with_409(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str],
) -> None:
    """Its workflow has ended with it, so the API answers what the validator would have."""
    lead = (await capture(client, admin, contact_name="王女士", phone="13800138000"))["lead"]
    await settled(sessions, lead["id"], lambda r: r.owner_id == team.ids["rep1"])
    closed = await client.post(f"/api/leads/{lead['id']}/disqualify", json={"reason": "无需求"},
                               headers=team.headers["rep1"])
    assert closed.status_code == 200, closed.text
    again = await client.post(f"/api/leads/{lead['id']}/contact", headers=team.headers["rep1"])
    assert again.status_code == 409, again.text
    assert again.json()["current_status"] == "disqualified"
    assert "disqualified" in again.json()["detail"][0]["msg"]
    note = await client.post(f"/api/leads/{lead['id']}/follow-ups",
                             json={"kind": "call", "summary": "回访"},
                             headers=team.headers["rep1"])
    assert note.status_code == 409, note.text
    assert note.json()["current_status"] == "disqualified"
    assert "log a follow-up on a lead that is disqualified" in note.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("path", "body", "action"), [
    ("contact", None, "contact"),
    ("follow-ups", {"kind": "call", "summary": "回访"}, "log a follow-up on"),
])
async def test_a_lead_closed_while_the_request_is_on_its_way_answers_409(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str], temporal_client: Client, settings: Settings,
    monkeypatch: pytest.MonkeyPatch, path: str, body: dict | None, action: str,
) -> None:
    """The request read the lead while it was open; its workflow ended before the update
    arrived, so Temporal no longer finds it: a 409 naming the status, not a 503."""
    lead = (await capture(client, admin, contact_name="王女士", phone="13800138000"))["lead"]
    read_while_open = await settled(sessions, lead["id"],
                                    lambda r: r.owner_id == team.ids["rep1"])
    closed = await client.post(f"/api/leads/{lead['id']}/disqualify", json={"reason": "无需求"},
                               headers=team.headers["rep1"])
    assert closed.status_code == 200, closed.text
    handle = temporal_client.get_workflow_handle(settings.workflow_id("lead", lead["id"]))
    assert await handle.result() == "disqualified"

    async def as_read_before(session: AsyncSession, *, actor: Actor, lead_id: int) -> Lead:
        return read_while_open

    monkeypatch.setattr(lead_service, "get", as_read_before)
    late = await client.post(f"/api/leads/{lead['id']}/{path}", json=body,
                             headers=team.headers["rep1"])
    assert late.status_code == 409, late.text
    assert late.json()["current_status"] == "disqualified"
    assert late.json()["detail"][0]["msg"] == f"cannot {action} a lead that is disqualified"
