"""Quotes over HTTP: pricing from the catalogue, versions, the discount threshold and approval,
sending and the customer's answer, expiry, bad input by field, and who may see or change them.

Money values are computed by hand: they are the spec.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain import policy
from domain.access import SYSTEM, Role
from domain.audit import AuditLog
from domain.db import transaction
from domain.deal import Deal
from domain.errors import Conflict
from domain.policy import PolicyKind
from domain.quote import Quote, service
from domain.settings import Settings
from domain.timeline import TimelineEvent
from tests.conftest import Login, MakeUser

Sessions = async_sessionmaker[AsyncSession]
Headers = dict[str, str]


@pytest.fixture
async def people(make_user: MakeUser, make_team, login: Login) -> dict[str, Any]:
    """rep1 in the manager's team owns the deal; rep2 is in no team; an agent sees all customers."""
    manager = await make_user("mgr", Role.sales_manager)
    team_id = await make_team("华东销售", manager_id=manager.id)
    rep1 = await make_user("rep1", Role.sales, team_id=team_id)
    await make_user("rep2", Role.sales)
    await make_user("agent", Role.service)
    return {
        "rep1_id": rep1.id,
        "rep1": await login("rep1"),
        "rep2": await login("rep2"),
        "mgr": await login("mgr"),
        "agent": await login("agent"),
    }


@pytest.fixture
async def catalogue(client: httpx.AsyncClient, admin: Headers) -> dict[str, int]:
    """A server at 100.00 list price, 90.00 in the 2026 dealer price list."""
    server = await client.post(
        "/api/products",
        json={"sku": "SRV-1", "name": "机架服务器", "unit": "台", "list_price": "100.00"},
        headers=admin,
    )
    assert server.status_code == 201, server.text
    dealer = await client.post(
        "/api/price-lists",
        json={
            "name": "经销商价 2026",
            "items": [{"product_id": server.json()["id"], "unit_price": "90.00"}],
        },
        headers=admin,
    )
    assert dealer.status_code == 201, dealer.text
    return {"server": server.json()["id"], "dealer": dealer.json()["id"]}


@pytest.fixture
async def deal_id(client: httpx.AsyncClient, people: dict[str, Any], sessions: Sessions) -> int:
    """A customer made through the API by rep1, and rep1's open deal with it."""
    made = await client.post(
        "/api/customers",
        json={"kind": "company", "name": "云杉科技有限公司"},
        headers=people["rep1"],
    )
    assert made.status_code == 201, made.text
    async with transaction(sessions) as session:
        deal = Deal(name="服务器采购", customer_id=made.json()["id"], owner_id=people["rep1_id"])
        session.add(deal)
        await session.flush()
        return deal.id


async def _quote(
    client: httpx.AsyncClient, headers: Headers, deal_id: int, **body: Any
) -> dict[str, Any]:
    body.setdefault(
        "lines", [{"description": "实施服务", "quantity": "1", "unit_price": "1000.00"}]
    )
    response = await client.post(f"/api/deals/{deal_id}/quotes", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _act(
    client: httpx.AsyncClient, headers: Headers, quote_id: int, action: str, status: int = 200
) -> dict[str, Any]:
    response = await client.post(f"/api/quotes/{quote_id}/{action}", headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def _error(body: dict[str, Any]) -> tuple[list[Any], str]:
    return body["detail"][0]["loc"], body["detail"][0]["msg"]


async def test_lines_are_priced_from_the_price_list_and_totalled_in_decimal(
    client: httpx.AsyncClient,
    people: dict[str, Any],
    catalogue: dict[str, int],
    deal_id: int,
    settings: Settings,
) -> None:
    quote = await _quote(
        client,
        people["rep1"],
        deal_id,
        price_list_id=catalogue["dealer"],
        lines=[
            {"product_id": catalogue["server"], "quantity": "10", "discount_pct": "5"},
            {"description": "上门安装", "quantity": "3", "unit_price": "33.33"},
        ],
    )
    server, install = quote["lines"]
    assert (server["description"], server["unit"], server["unit_price"]) == (
        "机架服务器",
        "台",
        "90.00",
    )
    assert server["line_total"] == "855.00"  # 900.00 less 5 %
    assert (install["unit"], install["line_total"]) == ("件", "99.99")
    assert quote["subtotal"] == "999.99"
    assert quote["discount_total"] == "45.00"
    assert quote["net_total"] == "954.99"
    assert quote["tax_rate"] == "13.00"
    assert quote["tax_amount"] == "124.15"  # 124.1487
    assert quote["total"] == "1079.14"
    assert quote["discount_pct"] == "4.50"  # 45 / 999.99 = 4.50004 %
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    assert quote["number"] == f"QT-{today.year}-{deal_id:06d}-v1"
    assert quote["valid_until"] == (today + timedelta(days=30)).isoformat()
    assert quote["status"] == "draft"
    again = await client.get(f"/api/quotes/{quote['id']}", headers=people["rep1"])
    assert again.json()["total"] == "1079.14"
    assert again.json()["lines"][0]["quantity"] == "10.000"


async def test_without_a_price_list_the_list_price_applies_and_a_sent_price_wins(
    client: httpx.AsyncClient, people: dict[str, Any], catalogue: dict[str, int], deal_id: int
) -> None:
    quote = await _quote(
        client,
        people["rep1"],
        deal_id,
        tax_rate="6",
        lines=[
            {"product_id": catalogue["server"], "quantity": "2"},
            {
                "product_id": catalogue["server"],
                "quantity": "1",
                "unit_price": "80.50",
                "description": "机架服务器(展机)",
            },
        ],
    )
    assert [line["unit_price"] for line in quote["lines"]] == ["100.00", "80.50"]
    assert quote["lines"][1]["description"] == "机架服务器(展机)"
    assert quote["net_total"] == "280.50"
    assert quote["tax_amount"] == "16.83"  # 16.83
    assert quote["total"] == "297.33"


async def test_a_small_discount_is_approved_on_submit_then_sent_and_accepted(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, sessions: Sessions
) -> None:
    rep = people["rep1"]
    quote = await _quote(
        client,
        rep,
        deal_id,
        lines=[
            {
                "description": "年度订阅",
                "quantity": "1",
                "unit_price": "1000.00",
                "discount_pct": "10",
            }
        ],
    )
    approved = await _act(client, rep, quote["id"], "submit")
    assert approved["status"] == "approved"  # 10 % is not above the 10 % threshold
    assert approved["approved_at"] is not None
    sent = await _act(client, rep, quote["id"], "send")
    assert sent["status"] == "sent" and sent["sent_at"] is not None
    accepted = await _act(client, rep, quote["id"], "accept")
    assert accepted["status"] == "accepted" and accepted["accepted_at"] is not None
    async with sessions() as session:
        found = await service.accepted_for_deal(session, deal_id=deal_id)
        kinds = list(
            await session.scalars(
                select(TimelineEvent.kind)
                .where(TimelineEvent.ref_entity == "quote")
                .order_by(TimelineEvent.id)
            )
        )
        actions = list(
            await session.scalars(
                select(AuditLog.action).where(AuditLog.entity == "quote").order_by(AuditLog.id)
            )
        )
    assert found is not None and found.id == quote["id"]
    assert kinds == ["quote.sent", "quote.accepted"]
    assert actions == ["create", "submit", "send", "accept"]


async def test_a_deep_discount_waits_for_approval_and_cannot_be_sent_before(
    client: httpx.AsyncClient,
    people: dict[str, Any],
    deal_id: int,
    sessions: Sessions,
    settings: Settings,
    temporal_client: Client,
) -> None:
    rep = people["rep1"]
    quote = await _quote(
        client,
        rep,
        deal_id,
        lines=[
            {
                "description": "年度订阅",
                "quantity": "1",
                "unit_price": "1000.00",
                "discount_pct": "10.01",
            }
        ],
    )
    pending = await _act(client, rep, quote["id"], "submit")
    assert pending["status"] == "pending_approval" and pending["approved_at"] is None
    handle = temporal_client.get_workflow_handle(settings.workflow_id("quote", quote["id"]))
    assert (await handle.describe()).workflow_type == "Approval"

    refused = await _act(client, rep, quote["id"], "send", status=409)
    loc, msg = _error(refused)
    assert loc == ["status"] and "needs approval first" in msg
    assert refused["current_status"] == "pending_approval"

    async with transaction(sessions) as session:
        await service.conclude_approval(session, quote_id=quote["id"], approved=True)
    async with sessions() as session:
        actor = await session.scalar(
            select(AuditLog.actor_name).where(AuditLog.action == "approve")
        )
    assert actor == "workflow"
    assert (await _act(client, rep, quote["id"], "send"))["status"] == "sent"


async def test_one_deep_line_discount_needs_approval_and_the_threshold_is_policy(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, sessions: Sessions
) -> None:
    rep = people["rep1"]
    lines = [
        {"description": "硬件", "quantity": "1", "unit_price": "100.00", "discount_pct": "15"},
        {"description": "服务", "quantity": "1", "unit_price": "900.00"},
    ]
    quote = await _quote(client, rep, deal_id, lines=lines)
    assert quote["discount_pct"] == "1.50"  # 15.00 / 1000.00
    assert (await _act(client, rep, quote["id"], "submit"))["status"] == "pending_approval"

    async with transaction(sessions) as session:
        await service.conclude_approval(session, quote_id=quote["id"], approved=False)
        await policy.publish(
            session,
            actor=SYSTEM,
            kind=PolicyKind.quote,
            data={"discount_approval_threshold_pct": "20"},
        )
    rejected = await client.get(f"/api/quotes/{quote['id']}", headers=rep)
    assert rejected.json()["status"] == "rejected"
    second = await _act(client, rep, quote["id"], "new-version", status=201)
    assert (await _act(client, rep, second["id"], "submit"))["status"] == "approved"


async def test_send_without_submitting_is_refused(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int
) -> None:
    quote = await _quote(client, people["rep1"], deal_id)
    refused = await _act(client, people["rep1"], quote["id"], "send", status=409)
    loc, msg = _error(refused)
    assert loc == ["status"] and "needs approval first" in msg


async def test_only_a_draft_can_be_edited(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int
) -> None:
    rep = people["rep1"]
    quote = await _quote(client, rep, deal_id)
    edited = await client.patch(
        f"/api/quotes/{quote['id']}",
        json={
            "lines": [{"description": "实施服务", "quantity": "2", "unit_price": "1000.00"}],
            "tax_rate": "0",
            "note": "含两次培训",
        },
        headers=rep,
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["total"], edited.json()["note"]) == ("2000.00", "含两次培训")
    await _act(client, rep, quote["id"], "submit")
    refused = await client.patch(f"/api/quotes/{quote['id']}", json={"note": "改"}, headers=rep)
    assert refused.status_code == 409
    assert _error(refused.json())[0] == ["status"]
    assert refused.json()["current_status"] == "approved"


async def test_a_new_price_list_comes_with_the_lines_it_prices(
    client: httpx.AsyncClient, people: dict[str, Any], catalogue: dict[str, int], deal_id: int
) -> None:
    rep = people["rep1"]
    lines = [{"product_id": catalogue["server"], "quantity": "2"}]
    quote = await _quote(client, rep, deal_id, lines=lines)
    assert quote["lines"][0]["unit_price"] == "100.00"
    url = f"/api/quotes/{quote['id']}"
    alone = await client.patch(url, json={"price_list_id": catalogue["dealer"]}, headers=rep)
    assert alone.status_code == 422 and _error(alone.json())[0] == ["price_list_id"]
    unknown = await client.patch(url, json={"price_list_id": 999999, "lines": lines}, headers=rep)
    assert unknown.status_code == 422 and _error(unknown.json())[0] == ["price_list_id"]
    repriced = await client.patch(
        url, json={"price_list_id": catalogue["dealer"], "lines": lines}, headers=rep
    )
    assert repriced.status_code == 200, repriced.text
    assert repriced.json()["lines"][0]["unit_price"] == "90.00"
    assert repriced.json()["net_total"] == "180.00"


async def test_a_new_version_copies_the_latest_and_supersedes_it(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, settings: Settings
) -> None:
    rep = people["rep1"]
    first = await _quote(client, rep, deal_id, note="首版")
    await _act(client, rep, first["id"], "submit")
    await _act(client, rep, first["id"], "send")
    second = await _act(client, rep, first["id"], "new-version", status=201)
    year = datetime.now(ZoneInfo(settings.timezone)).year
    assert second["number"] == f"QT-{year}-{deal_id:06d}-v2"
    assert (second["version"], second["status"], second["note"]) == (2, "draft", "首版")
    assert second["lines"] == first["lines"] and second["total"] == first["total"]

    listed = await client.get(f"/api/deals/{deal_id}/quotes", headers=rep)
    assert [(q["version"], q["status"]) for q in listed.json()] == [(2, "draft"), (1, "superseded")]
    stale = await _act(client, rep, first["id"], "new-version", status=409)
    assert _error(stale)[0] == ["version"]
    assert (await _act(client, rep, first["id"], "accept", status=409))["current_status"] == (
        "superseded"
    )


async def test_a_version_waiting_for_approval_or_an_accepted_one_cannot_be_replaced(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, sessions: Sessions
) -> None:
    rep = people["rep1"]
    quote = await _quote(
        client,
        rep,
        deal_id,
        lines=[
            {"description": "订阅", "quantity": "1", "unit_price": "100.00", "discount_pct": "50"}
        ],
    )
    await _act(client, rep, quote["id"], "submit")
    waiting = await _act(client, rep, quote["id"], "new-version", status=409)
    assert waiting["current_status"] == "pending_approval"
    also = await client.post(f"/api/deals/{deal_id}/quotes", json={}, headers=rep)
    assert also.status_code == 409

    async with transaction(sessions) as session:
        await service.conclude_approval(session, quote_id=quote["id"], approved=True)
    await _act(client, rep, quote["id"], "send")
    await _act(client, rep, quote["id"], "accept")
    locked = await client.post(f"/api/deals/{deal_id}/quotes", json={}, headers=rep)
    assert locked.status_code == 409 and locked.json()["current_status"] == "accepted"
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(Quote))
    assert count == 1


async def test_a_customer_can_decline_a_sent_quote(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, sessions: Sessions
) -> None:
    rep = people["rep1"]
    quote = await _quote(client, rep, deal_id)
    await _act(client, rep, quote["id"], "submit")
    early = await _act(client, rep, quote["id"], "reject", status=409)
    assert early["current_status"] == "approved"
    await _act(client, rep, quote["id"], "send")
    assert (await _act(client, rep, quote["id"], "reject"))["status"] == "rejected"
    async with sessions() as session:
        assert await service.accepted_for_deal(session, deal_id=deal_id) is None


async def test_conclude_approval_is_idempotent_and_only_answers_a_waiting_quote(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, sessions: Sessions
) -> None:
    quote = await _quote(client, people["rep1"], deal_id)
    async with transaction(sessions) as session:
        with pytest.raises(Conflict) as draft:
            await service.conclude_approval(session, quote_id=quote["id"], approved=True)
    assert draft.value.field == "status"
    await client.patch(
        f"/api/quotes/{quote['id']}",
        headers=people["rep1"],
        json={
            "lines": [
                {
                    "description": "订阅",
                    "quantity": "1",
                    "unit_price": "100.00",
                    "discount_pct": "30",
                }
            ]
        },
    )
    await _act(client, people["rep1"], quote["id"], "submit")
    for _ in range(2):
        async with transaction(sessions) as session:
            row = await service.conclude_approval(session, quote_id=quote["id"], approved=True)
            assert row.status == "approved"
    async with sessions() as session:
        answers = await session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "approve")
        )
    assert answers == 1


async def _expire(sessions: Sessions, quote_id: int, settings: Settings) -> None:
    yesterday = datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1)
    async with transaction(sessions) as session:
        await session.execute(
            update(Quote).where(Quote.id == quote_id).values(valid_until=yesterday)
        )


async def test_an_expired_quote_cannot_be_sent_or_accepted(
    client: httpx.AsyncClient,
    people: dict[str, Any],
    deal_id: int,
    sessions: Sessions,
    settings: Settings,
) -> None:
    rep = people["rep1"]
    unsent = await _quote(client, rep, deal_id)
    await _act(client, rep, unsent["id"], "submit")
    await _expire(sessions, unsent["id"], settings)
    refused = await _act(client, rep, unsent["id"], "send", status=409)
    assert _error(refused)[0] == ["valid_until"]

    renewed = await _act(client, rep, unsent["id"], "new-version", status=201)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    assert renewed["valid_until"] == (today + timedelta(days=30)).isoformat()
    await _act(client, rep, renewed["id"], "submit")
    await _act(client, rep, renewed["id"], "send")
    await _expire(sessions, renewed["id"], settings)
    late = await _act(client, rep, renewed["id"], "accept", status=409)
    assert _error(late)[0] == ["valid_until"]


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        (
            {"lines": [{"description": "x", "quantity": "-1", "unit_price": "1"}]},
            422,
            ["body", "lines", 0, "quantity"],
        ),
        (
            {"lines": [{"description": "x", "quantity": "0", "unit_price": "1"}]},
            422,
            ["body", "lines", 0, "quantity"],
        ),
        (
            {"lines": [{"description": "x", "quantity": "1.0005", "unit_price": "1"}]},
            422,
            ["body", "lines", 0, "quantity"],
        ),
        (
            {"lines": [{"description": "x", "quantity": "1", "unit_price": "1.2345"}]},
            422,
            ["body", "lines", 0, "unit_price"],
        ),
        (
            {"lines": [{"description": "x", "quantity": "1", "unit_price": "-1"}]},
            422,
            ["body", "lines", 0, "unit_price"],
        ),
        (
            {
                "lines": [
                    {"description": "x", "quantity": "1", "unit_price": "1", "discount_pct": "120"}
                ]
            },
            422,
            ["body", "lines", 0, "discount_pct"],
        ),
        (
            {"lines": [{"description": "x", "quantity": "1", "unit_price": "NaN"}]},
            422,
            ["body", "lines", 0, "unit_price"],
        ),
        ({"lines": [{"product_id": 999999, "quantity": "1"}]}, 422, ["lines", "0", "product_id"]),
        ({"lines": [{"quantity": "1", "unit_price": "5"}]}, 422, ["lines", "0", "description"]),
        ({"lines": [{"description": "x", "quantity": "1"}]}, 422, ["lines", "0", "unit_price"]),
        (
            {"lines": [{"description": "x", "quantity": "1", "unit_price": "1", "colour": "red"}]},
            422,
            ["body", "lines", 0, "colour"],
        ),
        ({"colour": "red"}, 422, ["body", "colour"]),
        ({"tax_rate": "101"}, 422, ["body", "tax_rate"]),
        ({"valid_until": "2000-01-01"}, 422, ["valid_until"]),
        ({"price_list_id": 999999}, 422, ["price_list_id"]),
        (
            {
                "lines": [
                    {
                        "description": "x",
                        "quantity": "999999999.999",
                        "unit_price": "99999999999999.99",
                    }
                ]
            },
            422,
            ["lines", "0"],
        ),
    ],
)
async def test_bad_input_is_4xx_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient,
    people: dict[str, Any],
    deal_id: int,
    sessions: Sessions,
    body: dict[str, Any],
    status: int,
    loc: list[Any],
) -> None:
    response = await client.post(f"/api/deals/{deal_id}/quotes", json=body, headers=people["rep1"])
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["loc"] == loc
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Quote)) == 0


async def test_an_inactive_product_cannot_be_quoted(
    client: httpx.AsyncClient,
    admin: Headers,
    people: dict[str, Any],
    catalogue: dict[str, int],
    deal_id: int,
) -> None:
    retired = await client.delete(f"/api/products/{catalogue['server']}", headers=admin)
    assert retired.status_code == 204
    response = await client.post(
        f"/api/deals/{deal_id}/quotes",
        json={"lines": [{"product_id": catalogue["server"], "quantity": "1"}]},
        headers=people["rep1"],
    )
    assert response.status_code == 422
    assert _error(response.json())[0] == ["lines", "0", "product_id"]


async def test_another_rep_sees_nothing_and_readers_cannot_write(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int
) -> None:
    quote = await _quote(client, people["rep1"], deal_id)
    stranger = people["rep2"]
    assert (await client.get(f"/api/quotes/{quote['id']}", headers=stranger)).status_code == 404
    assert (await client.get(f"/api/deals/{deal_id}/quotes", headers=stranger)).status_code == 404
    assert (
        await client.post(f"/api/deals/{deal_id}/quotes", json={}, headers=stranger)
    ).status_code == 404
    assert (
        await client.patch(f"/api/quotes/{quote['id']}", json={"note": "x"}, headers=stranger)
    ).status_code == 404
    await _act(client, stranger, quote["id"], "submit", status=404)

    agent = people["agent"]
    assert (await client.get(f"/api/quotes/{quote['id']}", headers=agent)).status_code == 200
    forbidden = await client.patch(f"/api/quotes/{quote['id']}", json={"note": "x"}, headers=agent)
    assert forbidden.status_code == 403
    assert _error(forbidden.json())[0] == ["deal_id"]

    managed = await client.patch(
        f"/api/quotes/{quote['id']}", json={"note": "经理批注"}, headers=people["mgr"]
    )
    assert managed.status_code == 200 and managed.json()["note"] == "经理批注"


async def test_quotes_are_only_made_for_open_deals(
    client: httpx.AsyncClient, people: dict[str, Any], deal_id: int, sessions: Sessions
) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Deal).where(Deal.id == deal_id).values(status="lost"))
    response = await client.post(f"/api/deals/{deal_id}/quotes", json={}, headers=people["rep1"])
    assert response.status_code == 409
    assert _error(response.json())[0] == ["deal_id"]
    missing = await client.get("/api/deals/999999/quotes", headers=people["rep1"])
    assert missing.status_code == 404
