"""List exports over HTTP: the list's filters and visibility, custom fields, formula injection,
both formats read back as a spreadsheet program would, batches, audit, bad input."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.access import Role
from domain.audit import AuditLog
from domain.customer import Customer
from domain.db import transaction
from domain.deal import Deal
from domain.lead import Lead
from tests.conftest import Login, MakeUser

Sheet = list[list[Any]]
Export = Callable[..., Awaitable[Sheet]]


def _xlsx(content: bytes) -> Sheet:
    book = load_workbook(io.BytesIO(content), read_only=True)
    sheet = book.worksheets[0]
    for row in sheet.iter_rows():
        for cell in row:  # a formula would be data_type "f"; every cell must be a value
            assert cell.data_type != "f", cell.value
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    book.close()
    return rows


def _csv(content: bytes) -> Sheet:
    assert content.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return [row for row in csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))]


@pytest.fixture
def export(client: httpx.AsyncClient) -> Export:
    """GET an export and read it back in its format, header row first."""

    async def get(path: str, headers: dict[str, str], fmt: str = "xlsx", **params: Any) -> Sheet:
        response = await client.get(f"{path}/export", headers=headers,
                                    params={"format": fmt, **params})
        assert response.status_code == 200, response.text
        assert f".{fmt}" in response.headers["content-disposition"]
        return _xlsx(response.content) if fmt == "xlsx" else _csv(response.content)

    return get


async def _customer(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    response = await client.post("/api/customers", json={"kind": "company", **fields},
                                 headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _column(sheet: Sheet, header: str) -> list[Any]:
    index = sheet[0].index(header)
    return [row[index] for row in sheet[1:]]


@pytest.fixture
async def tier(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for field in (
        {"entity": "customer", "key": "tier", "label": "客户等级", "label_en": "Tier",
         "type": "single_select", "options": ["A 级", "B 级"]},
        {"entity": "customer", "key": "quota", "label": "年度额度", "type": "money"},
        {"entity": "customer", "key": "remark", "label": "内部备注", "type": "text"},
    ):
        response = await client.post("/api/custom-fields", json=field, headers=admin)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
async def test_the_customer_list_filters_and_custom_fields_are_exported(
    client: httpx.AsyncClient, admin: dict[str, str], export: Export, tier: None, fmt: str,
) -> None:
    await _customer(client, admin, name="杭州青禾食品有限公司", city="杭州", phone="13800138000",
                    tags=["重点", "华东"], custom={"tier": "A 级", "quota": "12800.5"})
    await _customer(client, admin, name="杭州云杉科技有限公司", city="杭州",
                    custom={"tier": "B 级"})
    await _customer(client, admin, name="宁波海岳贸易有限公司", city="宁波",
                    custom={"tier": "A 级"})

    sheet = await export("/api/customers", admin, fmt, city="杭州", **{"cf.tier": "A 级"})
    assert sheet[0][:3] == ["编号", "客户名称", "客户类型"]
    assert sheet[0][-3:] == ["客户等级", "年度额度", "内部备注"]
    assert _column(sheet, "客户名称") == ["杭州青禾食品有限公司"]
    assert _column(sheet, "客户类型") == ["企业客户"]
    assert _column(sheet, "电话") == ["13800138000"]  # as dialled in China, not +86…
    assert _column(sheet, "标签") == ["华东, 重点"]
    assert _column(sheet, "客户等级") == ["A 级"]
    quota = _column(sheet, "年度额度")[0]
    assert Decimal(str(quota)) == Decimal("12800.50")

    everything = await export("/api/customers", admin, fmt, sort="name")
    assert len(everything) == 4


async def test_headers_and_labels_follow_the_callers_language(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, export: Export, tier: None,
) -> None:
    await make_user("anna", Role.admin, locale="en")
    anna = await login("anna")
    await _customer(client, anna, name="杭州青禾食品有限公司", custom={"tier": "A 级"})
    sheet = await export("/api/customers", anna, "csv")
    assert sheet[0][:3] == ["ID", "Name", "Kind"] and "Tier" in sheet[0]
    assert _column(sheet, "Kind") == ["Company"]
    assert _column(sheet, "Stage") == ["Prospect"]
    assert _column(sheet, "Tier") == ["A 级"]


async def test_a_rep_exports_only_their_own_customers(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, export: Export,
    admin: dict[str, str],
) -> None:
    await make_user("rep1")
    await make_user("rep2")
    rep1, rep2 = await login("rep1"), await login("rep2")
    await _customer(client, rep1, name="甲公司")
    await _customer(client, rep2, name="乙公司")
    for fmt in ("xlsx", "csv"):
        assert _column(await export("/api/customers", rep1, fmt), "客户名称") == ["甲公司"]
        assert _column(await export("/api/customers", rep2, fmt), "负责人") == ["rep2"]
    # A rep asking for someone else's customers gets none of them, not an error.
    me2 = (await client.get("/api/auth/me", headers=rep2)).json()
    assert len(await export("/api/customers", rep1, owner_id=me2["id"])) == 1
    assert len(await export("/api/customers", admin)) == 3


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
async def test_cells_that_would_be_formulas_are_escaped(
    client: httpx.AsyncClient, admin: dict[str, str], export: Export, tier: None, fmt: str,
) -> None:
    dangerous = {
        "industry": "=HYPERLINK(\"http://evil.example\",\"点我\")",
        "source": "+cmd|' /C calc'!A0",
        "notes": "-2+3",
        "registered_address": "@SUM(1+1)*cmd|' /C calc'!A0",
        "member_level": None,
    }
    await _customer(client, admin, name="注入测试有限公司",
                    **{k: v for k, v in dangerous.items() if v},
                    custom={"remark": "\t=1+1"})
    sheet = await export("/api/customers", admin, fmt)
    row = dict(zip(sheet[0], sheet[1], strict=True))
    assert row["行业"] == "'" + dangerous["industry"]
    assert row["来源"] == "'" + dangerous["source"]
    assert row["备注"] == "'-2+3"
    assert row["注册地址"] == "'" + dangerous["registered_address"]
    assert row["内部备注"] == "'=1+1"  # stored trimmed, then escaped
    if fmt == "xlsx":  # a second reader, the one imports use, sees plain text too
        response = await client.get("/api/customers/export?format=xlsx", headers=admin)
        book = CalamineWorkbook.from_filelike(io.BytesIO(response.content))
        cells = book.get_sheet_by_index(0).to_python()
        assert cells[1][cells[0].index("行业")] == "'" + dangerous["industry"]


async def test_bad_format_or_filter_is_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: async_sessionmaker[AsyncSession],
) -> None:
    response = await client.get("/api/customers/export?format=pdf", headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "format"
    response = await client.get("/api/customers/export?format=csv&cf.nope=1", headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["custom", "nope"]
    response = await client.get("/api/leads/export?format=csv&status=sleeping", headers=admin)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "status"
    assert (await client.get("/api/customers/export")).status_code == 401
    async with sessions() as session:
        assert await session.scalar(select(AuditLog).where(AuditLog.action == "export")) is None


async def test_many_rows_stream_in_batches_in_the_lists_order_and_the_export_is_audited(
    client: httpx.AsyncClient, admin: dict[str, str], export: Export,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    count = 2_345  # more than two batches
    async with transaction(sessions) as session:
        await session.execute(insert(Customer), [
            {"kind": "company", "name": f"公司{i:05d}", "name_key": f"公司{i:05d}",
             "city": "上海" if i % 2 else "北京", "custom": {}}
            for i in range(count)
        ])
    for fmt in ("csv", "xlsx"):
        sheet = await export("/api/customers", admin, fmt, sort="-name", city="上海")
        names = _column(sheet, "客户名称")
        assert len(names) == count // 2
        assert names == sorted(names, reverse=True)
    async with sessions() as session:
        entries = (await session.scalars(
            select(AuditLog).where(AuditLog.action == "export").order_by(AuditLog.id))).all()
    assert [e.entity for e in entries] == ["customers", "customers"]
    assert entries[0].changes["_note"] == {
        "format": "csv", "rows": count // 2, "filters": {"city": "上海", "sort": "-name"}}
    assert entries[0].actor_name == "root"


async def test_leads_and_deals_export_with_their_lists_filters(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, export: Export,
    admin: dict[str, str], sessions: async_sessionmaker[AsyncSession],
) -> None:
    rep = await make_user("rep1", display_name="李销售")
    other = await make_user("rep2")
    rep_headers = await login("rep1")
    owned = await _customer(client, rep_headers, name="杭州青禾食品有限公司")
    async with transaction(sessions) as session:
        await session.execute(insert(Lead), [
            {"status": "assigned", "contact_name": "王芳", "phone": "+8613900139000",
             "owner_id": rep.id, "custom": {}, "match": {}},
            {"status": "pooled", "contact_name": "赵强", "custom": {}, "match": {}},
            {"status": "assigned", "contact_name": "别人的", "owner_id": other.id, "custom": {},
             "match": {}},
        ])
        session.add(Deal(name="年度框架合同", customer_id=owned["id"], owner_id=rep.id,
                         amount=Decimal("88000.00"), stage="initial_contact"))
    leads = await export("/api/leads", rep_headers, "csv", sort="created_at")
    assert _column(leads, "姓名") == ["王芳", "赵强"]  # their own and the pool
    assert _column(leads, "状态") == ["已分配", "公海"]
    assigned = await export("/api/leads", admin, "xlsx", status="assigned", sort="created_at")
    assert _column(assigned, "姓名") == ["王芳", "别人的"]
    assert _column(assigned, "负责人") == ["李销售", "rep2"]

    deals = await export("/api/deals", rep_headers, "xlsx")
    assert _column(deals, "客户") == ["杭州青禾食品有限公司"]
    assert Decimal(str(_column(deals, "金额")[0])) == Decimal("88000")
    assert _column(deals, "阶段")[0] not in ("", None, "initial_contact")
    assert await export("/api/deals", await login("rep2"), "csv") == [deals[0]]

