"""Leads, follow-up history and past purchases imported end to end: judged by their own rules,
matched to customers, written through their own services, audited with the import, and
imported twice without a duplicate — real API, real worker, dev server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from domain.audit import AuditLog
from domain.customer import Customer
from domain.follow_up import FollowUp
from domain.lead import Lead
from domain.purchase import Purchase
from domain.settings import Settings
from domain.timeline import TimelineEvent
from tests.conftest import MakeUser, wait_until
from tests.imports import code, status_of, upload, xlsx

CODE = code("91330106MA2B0C0A1")


async def _imported(client: httpx.AsyncClient, admin: dict[str, str], data: bytes, entity: str,
                    *, confirm: bool = True) -> dict:
    uploaded = await upload(client, admin, data, entity=entity)
    assert uploaded.status_code == 201, uploaded.text
    import_id = uploaded.json()["id"]
    checked = await client.post(f"/api/imports/{import_id}/check", json={"confirm": confirm},
                                headers=admin)
    assert checked.status_code == 202, checked.text
    wanted = ("done", "failed") if confirm else ("checked",)
    return await status_of(client, admin, import_id, *wanted)


async def _problems(client: httpx.AsyncClient, admin: dict[str, str], import_id: int) -> list:
    response = await client.get(f"/api/imports/{import_id}/problems", headers=admin)
    return [(p["row"], p["column"], p["message"]) for p in response.json()]


async def _customers(client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[int, int]:
    company = await client.post("/api/customers", headers=admin, json={
        "kind": "company", "name": "杭州青禾食品有限公司", "credit_code": CODE,
        "phone": "0571-88886666"})
    person = await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "林晓", "phone": "13900139000"})
    assert company.status_code == 201 and person.status_code == 201, (company.text, person.text)
    return company.json()["id"], person.json()["id"]


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


LEADS = [
    ["联系人", "公司名称", "手机", "邮箱", "来源", "优先级", "线索状态", "无效原因"],
    ["王芳", "宁波海岳贸易有限公司", "138 0013 8000", None, "展会", "高", None, None],
    ["赵强", None, None, "zhao@qiang.cn", None, None, "无效", "无预算"],
    ["钱多", None, "13800138000", None, None, None, None, None],  # the first row's phone
    ["孙无", None, None, None, None, None, None, None],
    ["李四", None, "13700137000", None, None, None, "无效", "太贵"],
    ["周五", None, "13600136000", None, None, None, "已转化", None],
]


async def test_leads_go_through_intake_and_new_ones_get_their_workflow(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str], settings: Settings,
    temporal_client: Client, sessions: async_sessionmaker[AsyncSession],
) -> None:
    checked = await _imported(client, admin, xlsx(LEADS), "leads", confirm=False)
    assert (checked["new_rows"], checked["matched_rows"], checked["invalid_rows"]) == (2, 1, 3)
    problems = await _problems(client, admin, checked["id"])
    assert [(row, column) for row, column, _ in problems] == [
        (5, "手机"), (6, "无效原因"), (7, "线索状态")]
    assert "give a phone number" in problems[0][2] and "choose from" in problems[1][2]

    assert (await client.post(f"/api/imports/{checked['id']}/confirm",
                              headers=admin)).status_code == 202
    done = await status_of(client, admin, checked["id"], "done", "failed")
    assert (done["status"], done["created_count"], done["skipped_count"]) == ("done", 2, 1)
    async with sessions() as session:
        fresh, closed = (await session.scalars(select(Lead).order_by(Lead.id))).all()
    assert (fresh.phone, fresh.priority, fresh.company) == (
        "+8613800138000", "high", "宁波海岳贸易有限公司")
    assert (closed.status, closed.disqualify_reason, closed.email) == (
        "disqualified", "无预算", "zhao@qiang.cn")

    async def assigned() -> bool:  # no sales rep to assign to: the workflow pools it
        async with sessions() as session:
            row = await session.get(Lead, fresh.id)
            return row is not None and row.status == "pooled"

    await wait_until(assigned)
    try:
        await temporal_client.get_workflow_handle(
            settings.workflow_id("lead", closed.id)).describe()
        raise AssertionError("a closed lead got a workflow")
    except RPCError as exc:
        assert exc.status is RPCStatusCode.NOT_FOUND
    async with sessions() as session:
        entry = await session.scalar(select(AuditLog).where(
            AuditLog.entity == "lead", AuditLog.entity_id == fresh.id,
            AuditLog.action == "create"))
    assert entry is not None and entry.source == "imports"
    assert entry.changes["_note"] == {"import_id": checked["id"], "row": 2}

    again = await _imported(client, admin, xlsx(LEADS), "leads")
    assert (again["created_count"], again["skipped_count"], again["error_count"]) == (0, 3, 3)
    assert await _count(sessions, Lead) == 2


FOLLOW_UPS = [
    ["客户名称", "客户信用代码", "客户电话", "跟进时间", "跟进方式", "跟进内容", "跟进人"],
    ["杭州青禾食品有限公司", None, None, "2024-03-05 10:30", "电话", "谈年度采购计划", "sales1"],
    [None, CODE, None, datetime(2024, 4, 1, 15, 0), "拜访", "上门拜访采购部", "李销售"],
    [None, None, "139 0013 9000", "2024年5月6日", "微信", "发了新品目录", None],
    ["杭州青禾食品有限公司", None, None, "2024-03-05 10:30", "call", "谈年度采购计划", None],
    ["不存在的公司", None, None, "2024-03-05", "电话", "x", None],
    ["林晓", None, None, "2999-01-01", "电话", "未来", None],
    ["林晓", None, None, None, "吃饭", None, "nobody"],
]


async def test_follow_up_history_joins_its_customers_once(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sales = await make_user("sales1", display_name="李销售")
    company_id, person_id = await _customers(client, admin)
    done = await _imported(client, admin, xlsx(FOLLOW_UPS), "follow_ups")
    assert (done["status"], done["created_count"], done["skipped_count"],
            done["error_count"]) == ("done", 3, 1, 3), done
    problems = await _problems(client, admin, done["id"])
    assert {(row, column) for row, column, _ in problems} == {
        (6, "客户名称"), (7, "跟进时间"), (8, "跟进时间"), (8, "跟进方式"), (8, "跟进内容"),
        (8, "跟进人")}
    async with sessions() as session:
        rows = (await session.scalars(select(FollowUp).order_by(FollowUp.at))).all()
        events = await session.scalar(select(func.count()).select_from(TimelineEvent).where(
            TimelineEvent.kind.startswith("follow_up.")))
    assert [(r.customer_id, r.kind, r.author_id) for r in rows] == [
        (company_id, "call", sales.id), (company_id, "visit", sales.id),
        (person_id, "wechat", None)]
    assert rows[0].at == datetime(2024, 3, 5, 2, 30, tzinfo=UTC)  # 10:30 in Asia/Shanghai
    assert events == 3

    again = await _imported(client, admin, xlsx(FOLLOW_UPS), "follow_ups")
    assert (again["created_count"], again["skipped_count"]) == (0, 4)
    assert await _count(sessions, FollowUp) == 3


PURCHASES = [
    ["客户名称", "客户电话", "交易日期", "金额", "产品", "订单号"],
    ["杭州青禾食品有限公司", None, "2024-01-05", "¥12,800.00", "冷链仓储", "SO-1"],
    ["杭州青禾食品有限公司", None, date(2024, 6, 1), 7200, "冷链运输", "SO-2"],
    ["杭州青禾食品有限公司", None, "2024/6/1", 7200, "冷链运输", "SO-2"],  # the same order
    [None, "13900139000", "2023-12-24", 99.5, "礼盒", None],
    ["林晓", None, "2023-12-24", "99.50", "礼盒", None],  # no order number: date+amount+product
    ["林晓", None, "2024-02-30", "-5", None, None],
]


async def test_past_purchases_fold_into_the_summary_exactly_once(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    company_id, person_id = await _customers(client, admin)
    done = await _imported(client, admin, xlsx(PURCHASES), "purchases")
    assert (done["status"], done["created_count"], done["skipped_count"],
            done["error_count"]) == ("done", 3, 2, 1), done
    problems = await _problems(client, admin, done["id"])
    assert {(row, column) for row, column, _ in problems} == {(7, "交易日期"), (7, "金额")}

    async def summary() -> list[tuple]:
        async with sessions() as session:
            return [(c.purchase_count, c.total_amount, c.first_purchase_on, c.last_purchase_on,
                     c.average_order_value, c.stage)
                    for c in (await session.scalars(select(Customer).order_by(Customer.id)))]

    assert await summary() == [
        (2, Decimal("20000.00"), date(2024, 1, 5), date(2024, 6, 1), Decimal("10000.00"),
         "customer"),
        (1, Decimal("99.50"), date(2023, 12, 24), date(2023, 12, 24), Decimal("99.50"),
         "customer"),
    ]
    async with sessions() as session:
        rows = (await session.scalars(select(Purchase).order_by(Purchase.id))).all()
        entry = await session.scalar(select(AuditLog).where(AuditLog.entity == "purchase"))
    assert [(p.customer_id, p.order_number, p.reference) for p in rows] == [
        (company_id, "SO-1", "order:SO-1"), (company_id, "SO-2", "order:SO-2"),
        (person_id, None, "row:2023-12-24|99.50|礼盒")]
    assert entry is not None and entry.changes["_note"] == {"import_id": done["id"], "row": 2}

    again = await _imported(client, admin, xlsx(PURCHASES), "purchases")
    assert (again["created_count"], again["skipped_count"]) == (0, 5)
    assert await _count(sessions, Purchase) == 3
    assert (await summary())[0][:2] == (2, Decimal("20000.00"))
