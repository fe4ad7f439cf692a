"""GET /api/orders: the orders of customers the caller may see, with plan and payments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.db import transaction
from domain.errors import Invalid
from domain.order.models import Order
from domain.order.rules import OrderPolicy
from domain.order.service import open_from_contract
from tests.conftest import Login, MakeUser
from tests.erp import signed_contract


async def test_a_rep_reads_their_orders_and_no_one_elses(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser,
    login: Login,
) -> None:
    rep = await make_user("rep1")
    await make_user("rep2")
    terms = [(date(2026, 6, 1), "3000.00"), (date(2026, 7, 1), "7000.00")]
    contract = await signed_contract(sessions, owner_id=rep.id, terms=terms)
    async with transaction(sessions) as session:
        order = await open_from_contract(session, contract_id=contract.id, policy=OrderPolicy(),
                                         today=date(2026, 5, 20), signed_on=date(2026, 5, 20))

    mine = await client.get("/api/orders", headers=await login("rep1"))
    detail = await client.get(f"/api/orders/{order.id}", headers=await login("rep1"))
    theirs = await client.get(f"/api/orders/{order.id}", headers=await login("rep2"))
    none = await client.get("/api/orders", headers=await login("rep2"))

    assert mine.status_code == 200 and [o["number"] for o in mine.json()["items"]] == [
        f"SO-2026-{order.id:06d}"
    ]
    body = detail.json()
    assert Decimal(body["amount"]) == Decimal("10000.00") and body["status"] == "pending"
    assert [(i["seq"], i["due_on"], Decimal(i["amount"]), i["status"])
            for i in body["instalments"]] == [
        (1, "2026-06-01", Decimal("3000.00"), "open"), (2, "2026-07-01", Decimal("7000.00"), "open")
    ]
    assert body["payments"] == []
    assert theirs.status_code == 404 and theirs.json()["detail"][0]["loc"] == ["order_id"]
    assert none.json()["total"] == 0


async def test_payment_terms_that_do_not_add_up_open_no_order(
    sessions: async_sessionmaker[AsyncSession], make_user: MakeUser,
) -> None:
    rep = await make_user("rep1")
    contract = await signed_contract(sessions, owner_id=rep.id, amount="10000.00",
                                     terms=[(date(2026, 6, 1), "3000.00")])
    with pytest.raises(Invalid) as refused:
        async with transaction(sessions) as session:
            await open_from_contract(session, contract_id=contract.id, policy=OrderPolicy(),
                                     today=date(2026, 5, 20), signed_on=date(2026, 5, 20))
    assert refused.value.field == "payment_terms"
    async with sessions() as session:
        assert await session.scalar(select(func.count(Order.id))) == 0
