"""Behaviour events over HTTP: attach by key, rescore, one upsell task per burst, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api import behaviour as behaviour_api
from api import lead_form as lead_form_api
from api.main import create_app
from domain import policy
from domain.access import SYSTEM, Role
from domain.behaviour import BehaviourEvent
from domain.db import transaction
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.task import Task
from tests.conftest import Login, MakeUser, wait_until

PHONE = "+8613800138000"


def with_routers(application: FastAPI) -> FastAPI:
    """Our routers, unless api.main already includes them."""
    paths = {getattr(r, "path", None) for r in application.router.routes}
    if "/api/events" not in paths:
        application.include_router(behaviour_api.router)
    if "/forms/{slug}" not in paths:
        application.include_router(lead_form_api.router)
    return application


@pytest.fixture
async def app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], temporal_client: Client
) -> AsyncIterator[FastAPI]:
    application = with_routers(create_app(settings, temporal=temporal_client))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def rep(make_user: MakeUser, login: Login) -> dict[str, str]:
    await make_user("rep1", Role.sales)
    return await login("rep1")


@pytest.fixture
async def events_key(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    issued = await client.post(
        "/api/api-keys", json={"name": "website", "scopes": ["events:write"]}, headers=admin
    )
    assert issued.status_code == 201, issued.text
    return {"X-API-Key": issued.json()["key"]}


async def _post(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict:
    response = await client.post("/api/events", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _owned_lead(
    client: httpx.AsyncClient, admin: dict[str, str], rep: dict[str, str], **extra: Any
) -> dict:
    """A lead rep1 owns: it matches rep1's customer by phone, so the workflow assigns rep1."""
    made = await client.post(
        "/api/customers",
        json={"kind": "company", "name": "云杉科技有限公司", "phone": PHONE},
        headers=rep,
    )
    assert made.status_code == 201, made.text
    captured = await client.post(
        "/api/leads",
        json={
            "contact_name": "王芳",
            "phone": "138 0013 8000",
            "email": "wf@yunshan.cn",
            "company": "云杉科技",
            **extra,
        },
        headers=admin,
    )
    assert captured.status_code == 201, captured.text
    lead_id = captured.json()["lead"]["id"]

    async def assigned() -> bool:
        body = (await client.get(f"/api/leads/{lead_id}", headers=admin)).json()
        return body["owner_id"] is not None

    await wait_until(assigned)
    body = (await client.get(f"/api/leads/{lead_id}", headers=admin)).json()
    assert body["customer_id"] == made.json()["id"]
    return body


async def test_event_by_phone_attaches_to_the_open_lead_and_raises_its_score(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    rep: dict[str, str],
    events_key: dict[str, str],
    worker: Any,
) -> None:
    lead = await _owned_lead(client, admin, rep)
    result = await _post(
        client, events_key, kind="page_view", phone="138-0013-8000", url="HTTPS://Yunshan.CN/docs"
    )
    # phone 10 + email 5 + company 10 under the default policy, + 1 for the view
    assert result["matched"] == "lead" and result["matched_by"] == "phone"
    assert (result["lead_id"], result["customer_id"]) == (lead["id"], lead["customer_id"])
    assert result["score"] == 26 and result["alerts"] == []
    again = await _post(
        client, events_key, kind="email_click", email="WF@yunshan.cn", url="https://yunshan.cn/m/1"
    )
    assert again["matched_by"] == "email" and again["score"] == 31
    stored = (await client.get(f"/api/leads/{lead['id']}", headers=admin)).json()
    assert stored["score"] == 31
    timeline = (
        await client.get(
            f"/api/customers/{lead['customer_id']}/timeline?kind=behaviour.", headers=rep
        )
    ).json()
    assert [e["kind"] for e in timeline["items"]] == [
        "behaviour.email_click",
        "behaviour.page_view",
    ]
    assert timeline["items"][1]["summary"] == "https://yunshan.cn/docs"


async def test_pricing_viewed_three_times_in_seven_days_raises_one_task_for_the_owner(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    rep: dict[str, str],
    events_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    worker: Any,
) -> None:
    lead = await _owned_lead(client, admin, rep)
    now = datetime.now(UTC)

    async def view(days_ago: float) -> dict:
        at = (now - timedelta(days=days_ago)).isoformat()
        return await _post(
            client,
            events_key,
            kind="page_view",
            lead_id=lead["id"],
            url="https://yunshan.cn/pricing?plan=pro",
            at=at,
        )

    assert (await view(10))["alerts"] == []  # outside the 7 days: never counts
    assert (await view(2))["alerts"] == []
    assert (await view(1))["alerts"] == []  # two in the window (plus the old one): not yet
    third = await view(0)
    assert [(a["rule"], a["created"]) for a in third["alerts"]] == [("pricing-interest", True)]
    fourth = await view(0)
    assert [(a["task_id"], a["created"]) for a in fourth["alerts"]] == [
        (third["alerts"][0]["task_id"], False)
    ]
    async with sessions() as session:
        tasks = (await session.scalars(select(Task).where(Task.kind == "lead.upsell_alert"))).all()
    assert len(tasks) == 1
    assert tasks[0].assignee_id == lead["owner_id"]
    assert (tasks[0].ref_entity, tasks[0].ref_id) == ("lead", lead["id"])
    assert tasks[0].customer_id == lead["customer_id"]
    inbox = (await client.get("/api/tasks?assignee=me", headers=rep)).json()
    assert [t["id"] for t in inbox["items"] if t["kind"] == "lead.upsell_alert"] == [tasks[0].id]
    # another kind of event does not touch the pricing rule
    click = await _post(
        client, events_key, kind="email_click", lead_id=lead["id"], url="https://yunshan.cn/pricing"
    )
    assert click["alerts"] == []


async def test_unknown_visitor_is_kept_and_counts_once_their_lead_arrives(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    events_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    worker: Any,
) -> None:
    for path in ("/", "/docs", "/pricing"):
        kept = await _post(
            client, events_key, kind="page_view", visitor_id="v-42", url=f"https://yunshan.cn{path}"
        )
        assert (kept["matched"], kept["lead_id"], kept["score"]) == ("none", None, None)
    captured = await client.post(
        "/api/leads", json={"phone": "13900139000", "visitor_id": "v-42"}, headers=admin
    )
    assert captured.status_code == 201, captured.text
    lead_id = captured.json()["lead"]["id"]
    assert captured.json()["lead"]["score"] == 10 + 3  # intake scores: phone + three views
    more = await _post(client, events_key, kind="form_view", visitor_id="v-42")
    assert (more["matched"], more["matched_by"], more["lead_id"]) == ("lead", "visitor_id", lead_id)
    assert more["score"] == 10 + 3 + 2
    async with sessions() as session:
        unattached = await session.scalar(
            select(func.count()).select_from(BehaviourEvent).where(BehaviourEvent.lead_id.is_(None))
        )
    assert unattached == 3  # history stays where it was; it is counted, not moved


async def test_customer_events_and_a_published_alert_rule(
    client: httpx.AsyncClient,
    rep: dict[str, str],
    events_key: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = await client.post(
        "/api/customers",
        json={"kind": "person", "name": "李雷", "email": "lilei@example.cn"},
        headers=rep,
    )
    assert made.status_code == 201, made.text
    async with transaction(sessions) as session:
        await policy.publish(
            session,
            actor=SYSTEM,
            kind=PolicyKind.scoring,
            data={
                "alerts": [
                    {
                        "name": "webinar",
                        "kind": "event_attendance",
                        "count": 1,
                        "within": "P30D",
                        "title": "参加了线上研讨会",
                    }
                ],
            },
        )
    seen = await _post(
        client,
        events_key,
        kind="event_attendance",
        email="LiLei@example.cn",
        props={"event": "2026 春季研讨会"},
    )
    assert (seen["matched"], seen["matched_by"], seen["customer_id"]) == (
        "customer",
        "email",
        made.json()["id"],
    )
    assert seen["score"] is None
    assert [a["title"] for a in seen["alerts"]] == ["参加了线上研讨会"]
    inbox = (await client.get("/api/tasks?assignee=me", headers=rep)).json()
    assert [t["title"] for t in inbox["items"]] == ["参加了线上研讨会"]
    assert inbox["items"][0]["ref_entity"] == "customer"


async def test_bad_events_name_the_field(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    rep: dict[str, str],
    events_key: dict[str, str],
) -> None:
    async def refused(body: dict, headers: dict[str, str] = events_key) -> tuple[int, list, str]:
        response = await client.post("/api/events", json=body, headers=headers)
        assert 400 <= response.status_code < 500, response.text
        detail = response.json()["detail"][0]
        return response.status_code, detail["loc"], detail["msg"]

    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    assert await refused({"kind": "form_view"}) == (
        422,
        ["phone"],
        "give lead_id, customer_id, phone, email or visitor_id",
    )
    assert (await refused({"kind": "page_view", "visitor_id": "v"}))[:2] == (422, ["url"])
    assert (await refused({"kind": "page_view", "visitor_id": "v", "url": "javascript:alert(1)"}))[
        :2
    ] == (422, ["url"])
    assert (await refused({"kind": "form_view", "visitor_id": "v", "at": future}))[:2] == (
        422,
        ["at"],
    )
    assert (await refused({"kind": "form_view", "visitor_id": "v", "at": "2026-01-01T10:00:00"}))[
        :2
    ] == (422, ["body", "at"])
    assert (await refused({"kind": "sneeze", "visitor_id": "v"}))[:2] == (422, ["body", "kind"])
    assert (
        await refused({"kind": "form_view", "visitor_id": "v", "at": "0001-01-01T00:00:00+08:00"})
    )[:2] == (422, ["at"])
    assert (await refused({"kind": "form_view", "phone": "12345"}))[:2] == (422, ["phone"])
    assert (await refused({"kind": "form_view", "visitor_id": "v", "props": {"x": "y" * 3000}}))[
        :2
    ] == (422, ["props"])
    assert (await refused({"kind": "form_view", "lead_id": 999}))[:2] == (404, ["lead_id"])
    assert (await refused({"kind": "form_view", "customer_id": 999}))[:2] == (404, ["customer_id"])
    assert (await refused({"kind": "form_view", "visitor_id": "v", "owner": 1}))[:2] == (
        422,
        ["body", "owner"],
    )
    response = await client.post("/api/events", json={"kind": "form_view", "visitor_id": "v"})
    assert response.status_code == 401
    issued = await client.post(
        "/api/api-keys", json={"name": "crm", "scopes": ["customers:read"]}, headers=admin
    )
    other = {"X-API-Key": issued.json()["key"]}
    assert (await refused({"kind": "form_view", "visitor_id": "v"}, other))[0] == 403
    # a signed-in rep may record events too, but only on what they can see
    mine = await client.post(
        "/api/events", json={"kind": "form_view", "visitor_id": "v"}, headers=rep
    )
    assert mine.status_code == 201
    hidden = await client.post(
        "/api/customers", json={"kind": "person", "name": "韩梅梅"}, headers=admin
    )
    assert (await refused({"kind": "form_view", "customer_id": hidden.json()["id"]}, rep))[:2] == (
        404,
        ["customer_id"],
    )
