"""Deal and approval fixtures: a sales team with approvers, customers, contracts and quotes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.access import ApproverGroup, Role
from domain.approval import Approval
from domain.contract.models import Contract
from domain.db import transaction
from domain.deal.models import Deal
from domain.quote.models import Quote, QuoteStatus
from domain.task import Task
from tests.conftest import Login, MakeUser, wait_until


@dataclass
class Org:
    ids: dict[str, int]
    headers: dict[str, dict[str, str]]


@pytest.fixture
async def org(
    make_user: MakeUser,
    make_team: Callable[..., Awaitable[int]],
    login: Login,
) -> Org:
    """Sales (a manager, two reps) and approvers (legal, finance, a director who manages them,
    and a second lawyer who stands in for the first)."""
    boss = await make_user("boss", Role.sales_manager, email="boss@example.cn")
    sales = await make_team("华南销售部", manager_id=boss.id)
    rep = await make_user("rep", Role.sales, team_id=sales, email="rep@example.cn")
    rep2 = await make_user("rep2", Role.sales, team_id=sales)
    chief = await make_user(
        "chief", Role.approver, approver_group=ApproverGroup.director, email="chief@example.cn"
    )
    office = await make_team("法务财务部", manager_id=chief.id)
    legal = await make_user(
        "legal", Role.approver, team_id=office, approver_group=ApproverGroup.legal
    )
    finance = await make_user(
        "finance", Role.approver, team_id=office, approver_group=ApproverGroup.finance
    )
    ids = {
        "boss": boss.id, "rep": rep.id, "rep2": rep2.id, "chief": chief.id,
        "legal": legal.id, "finance": finance.id, "sales_team": sales, "office": office,
    }
    names = ("boss", "rep", "rep2", "chief", "legal", "finance")
    return Org(ids, {name: await login(name) for name in names})


async def make_customer(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> int:
    response = await client.post(
        "/api/customers", json={"kind": "company", "name": name}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def make_contract(
    sessions: async_sessionmaker[AsyncSession],
    *,
    customer_id: int,
    owner_id: int,
    amount: str = "200000.00",
    deal_id: int | None = None,
    end_on: date | None = None,
) -> int:
    """A draft contract straight in the database, as the deal's negotiation stage drafts one."""
    async with transaction(sessions) as session:
        row = Contract(
            number=f"HT-TEST-{customer_id}-{amount}",
            title="冷链设备采购合同",
            customer_id=customer_id,
            owner_id=owner_id,
            deal_id=deal_id,
            amount=Decimal(amount),
            start_on=date(2027, 1, 1),
            end_on=end_on or date(2027, 12, 31),
            payment_terms=[{"due_on": "2027-02-01", "amount": amount}],
        )
        session.add(row)
        await session.flush()
        return row.id


async def accept_quote(
    sessions: async_sessionmaker[AsyncSession], *, deal_id: int, total: str = "180000.00"
) -> int:
    """A quote the customer accepted, as the quote routes leave it."""
    async with transaction(sessions) as session:
        deal = await session.get(Deal, deal_id)
        assert deal is not None
        row = Quote(
            number=f"QT-TEST-{deal_id}",
            deal_id=deal_id,
            customer_id=deal.customer_id,
            status=QuoteStatus.accepted.value,
            subtotal=Decimal(total),
            net_total=Decimal(total),
            total=Decimal(total),
            valid_until=date.today() + timedelta(days=30),
        )
        session.add(row)
        await session.flush()
        return row.id


async def approvals(
    sessions: async_sessionmaker[AsyncSession], contract_id: int, *, subject: str = "contract"
) -> list[Approval]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Approval)
            .where(Approval.subject == subject, Approval.subject_id == contract_id)
            .order_by(Approval.id)
        )
        return list(rows.all())


async def pending_for(
    sessions: async_sessionmaker[AsyncSession], contract_id: int, count: int,
    *, subject: str = "contract",
) -> list[Approval]:
    """Wait until `count` rows of the subject are pending, and return them."""
    async def ready() -> bool:
        rows = await approvals(sessions, contract_id, subject=subject)
        return len([r for r in rows if r.status == "pending"]) >= count

    await wait_until(ready)
    return [r for r in await approvals(sessions, contract_id, subject=subject)
            if r.status == "pending"]


async def contract_row(sessions: async_sessionmaker[AsyncSession], contract_id: int) -> Contract:
    async with sessions() as session:
        row = await session.get(Contract, contract_id)
        assert row is not None
        return row


async def tasks_of(
    sessions: async_sessionmaker[AsyncSession], kind: str
) -> list[tuple[int | None, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Task.assignee_id, Task.status).where(Task.kind == kind).order_by(Task.id)
        )
        return [tuple(r) for r in rows.all()]
