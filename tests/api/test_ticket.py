"""Ticket API without a worker: bad input answers 4xx by field and stores nothing;
attachments are sniffed and guarded; call records; the public support form; the survey page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.access import Role
from domain.db import transaction
from domain.settings import Settings
from domain.ticket import CallRecord, Ticket, TicketSurvey, survey
from tests.conftest import Login, MakeUser
from tests.tickets import ServiceTeam, open_ticket

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def _count(sessions: async_sessionmaker[AsyncSession], table: type) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(table)) or 0


async def test_bad_input_is_refused_by_field_and_nothing_is_stored(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam,
) -> None:
    agent = service_team.headers["agent1"]
    for body, field in (
        ({"type": "wish", "subject": "x"}, "type"),
        ({"type": "repair", "subject": ""}, "subject"),
        ({"type": "repair", "subject": "x", "priority": "P9"}, "priority"),
        ({"type": "repair", "subject": "x", "customer_id": 999}, "customer_id"),
        ({"type": "repair", "subject": "x", "requester_email": "not-mail"}, "requester_email"),
        ({"type": "repair", "subject": "x", "colour": "red"}, "colour"),
        ({"type": "repair", "subject": "x", "custom": {"nope": 1}}, "custom"),
    ):
        response = await client.post("/api/tickets", json=body, headers=agent)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["detail"][0]["loc"], (body, response.json())
    assert await _count(sessions, Ticket) == 0
    missing = await client.get("/api/tickets/999", headers=agent)
    assert missing.status_code == 404


async def test_attachments_are_sniffed_sized_and_only_for_those_who_see_the_ticket(
    client: httpx.AsyncClient, service_team: ServiceTeam, make_user: MakeUser, login: Login,
) -> None:
    agent = service_team.headers["lead"]  # no worker here: the ticket stays undispatched
    ticket = await open_ticket(client, agent)
    url = f"/api/tickets/{ticket['id']}/attachments"
    stored = await client.post(url, headers=agent,
                               files={"file": ("../../etc/shot.txt", PNG, "text/plain")})
    assert stored.status_code == 201, stored.text
    assert stored.json()["content_type"] == "image/png"  # the bytes, not the client's claim
    assert stored.json()["filename"] == "shot.txt"
    for content, why in ((b"MZ\x90\x00\x03\x00\x00\x00", "unknown"), (b"", "empty"),
                         (b"a" * 1_000_001, "larger")):
        refused = await client.post(url, headers=agent, files={"file": ("x.png", content)})
        assert refused.status_code in (413, 422), refused.text
        if refused.status_code == 422:
            assert refused.json()["detail"][0]["loc"] == ["file"]
            assert why in refused.json()["detail"][0]["msg"]
    got = await client.get(f"{url}/{stored.json()['id']}", headers=agent)
    assert got.status_code == 200 and got.content == PNG
    await make_user("stranger", Role.service)
    other = await login("stranger")
    assert (await client.get(f"{url}/{stored.json()['id']}", headers=other)).status_code == 404


async def test_a_call_is_matched_by_phone_kept_once_and_opens_a_ticket_for_its_intent(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, admin: dict[str, str],
) -> None:
    customer = await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "李先生", "phone": "13900139000"})
    assert customer.status_code == 201, customer.text
    call = {"call_id": "cc-1", "caller": "+86 139 0013 9000", "direction": "inbound",
            "duration_seconds": 95, "intent": "repair", "started_at": "2026-12-01T10:00:00+08:00",
            "recording_url": "https://cc.example.cn/rec/1.mp3"}
    agent = service_team.headers["agent1"]
    first = await client.post("/api/calls", json=call, headers=agent)
    assert first.status_code == 201, first.text
    assert first.json()["customer_id"] == customer.json()["id"]
    assert first.json()["ticket_id"] is not None
    again = await client.post("/api/calls", json=call, headers=agent)
    assert again.json()["id"] == first.json()["id"]
    assert await _count(sessions, CallRecord) == 1 and await _count(sessions, Ticket) == 1
    for bad, field in (({**call, "call_id": "cc-2", "caller": "abc"}, "caller"),
                       ({**call, "call_id": "cc-3", "started_at": "2026-12-01T10:00:00"},
                        "started_at"),
                       ({**call, "call_id": "cc-4", "ticket_id": 999}, "ticket_id")):
        response = await client.post("/api/calls", json=bad, headers=agent)
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"][0]["loc"]
    assert await _count(sessions, CallRecord) == 1


async def test_support_form_opens_a_ticket_and_tells_bots_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam,
) -> None:
    page = await client.get("/support")
    assert page.status_code == 200 and 'name="website"' in page.text
    form = {"requester_email": "zhao@example.cn", "type": "complaint", "subject": "送货太慢"}
    bot = await client.post("/support", data={**form, "website": "http://spam"})
    assert bot.status_code == 200 and "已收到" in bot.text  # the same thanks a person gets
    assert await _count(sessions, Ticket) == 0
    made = await client.post("/support", json=form)
    assert made.status_code == 201 and made.json() == {"ok": True}
    nobody = await client.post("/support", json={"type": "complaint", "subject": "x"})
    assert nobody.status_code == 422
    assert nobody.json()["detail"][0]["loc"] == ["requester_email"]
    unknown = await client.post("/support", json={**form, "admin": True})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["admin"]
    async with sessions() as session:
        ticket = await session.scalar(select(Ticket))
    assert ticket is not None and (ticket.channel, ticket.type) == ("form", "complaint")
    for _ in range(4):
        await client.post("/support", json={**form, "website": "x"})
    limited = await client.post("/support", json=form)
    assert limited.status_code == 429 and limited.headers["retry-after"]


async def test_survey_page_get_changes_nothing_post_records_once_then_409(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, settings: Settings,
) -> None:
    ticket = await open_ticket(client, service_team.headers["lead"], requester_email="q@example.cn")
    async with transaction(sessions) as session:  # as the workflow's send_survey stores it
        row = TicketSurvey(ticket_id=ticket["id"], key="ticket-x/survey/1", sent_to="q@example.cn",
                           expires_at=datetime.now(UTC) + timedelta(days=14))
        session.add(row)
        await session.flush()
        survey_id, expires = row.id, row.expires_at
    path = "/surveys/" + survey.link_token(settings.signing_key(), survey_id=survey_id,
                                           expires_at=expires)

    async def stored() -> tuple[int | None, bool]:
        async with sessions() as session:
            answer = await session.get(TicketSurvey, survey_id)
            mark = await session.get(Ticket, ticket["id"])
            assert answer is not None and mark is not None
            return mark.csat, answer.answered_at is not None

    shown = await client.get(path)
    assert shown.status_code == 200 and 'name="score"' in shown.text
    assert "打印机卡纸" in shown.text
    assert await stored() == (None, False)  # looking at the page answers nothing
    bad = await client.post(path, data={"score": "9"})
    assert bad.status_code == 422 and await stored() == (None, False)
    answered = await client.post(path, data={"score": "4", "comment": "很快"})
    assert answered.status_code == 200 and "感谢" in answered.text
    assert answered.headers["content-type"].startswith("text/html")
    assert await stored() == (4, True)
    again = await client.post(path, data={"score": "1"})
    assert again.status_code == 409 and "already been answered" in again.text
    assert await stored() == (4, True)  # the second answer changed nothing
    assert (await client.get(path)).status_code == 409
    forged = await client.post(path[:-3] + "abc", data={"score": "5"})
    assert forged.status_code == 403
