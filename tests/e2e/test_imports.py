"""Imports end to end: upload, dry run report, confirm, dedupe and merge strategies, re-import,
all-or-nothing, cancel, error report — real API, real worker, dev server."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from api import cli
from domain.audit import AuditLog
from domain.customer import Contact, Customer
from domain.settings import Settings
from tests.conftest import MakeUser
from tests.imports import code, status_of, upload, xlsx

CODE_A = code("91330106MA2B0C0A1")
CODE_B = code("91330106MA2B0C0B2")
HEADER = ["客户名称", "统一社会信用代码", "手机号", "邮箱", "负责人", "标签", "生日", "客户类型"]
ROWS = [
    ["杭州青禾食品有限公司", CODE_A, "138 0013 8000", "Info@QingHe.cn", "sales1", "重点,华东", None,
     "企业"],
    ["宁波海岳贸易有限公司", CODE_B, None, None, "李销售", None, None, None],
    ["林晓", None, "13900139000", None, None, None, "1990年5月6日", "个人"],
    ["坏电话公司", None, "12345", "not-an-email", "nobody", None, None, None],
    ["杭州青禾食品有限公司", None, "13800138000", None, None, "新客户", None, None],
]


async def _customers(sessions: async_sessionmaker[AsyncSession]) -> list[Customer]:
    async with sessions() as session:
        return list((await session.scalars(select(Customer).order_by(Customer.id))).all())


async def _run(client: httpx.AsyncClient, admin: dict[str, str], data: bytes,
               **options: object) -> dict:
    uploaded = await upload(client, admin, data)
    assert uploaded.status_code == 201, uploaded.text
    import_id = uploaded.json()["id"]
    checked = await client.post(f"/api/imports/{import_id}/check", json=options, headers=admin)
    assert checked.status_code == 202, checked.text
    # Confirmed with the check, an import passes through `checked` on its way to the end.
    ends = ("done", "failed") if options.get("confirm") else ("checked", "done", "failed")
    return await status_of(client, admin, import_id, *ends)


async def test_dry_run_reports_every_problem_then_confirm_writes_the_valid_rows(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sales = await make_user("sales1", display_name="李销售")
    state = await _run(client, admin, xlsx([HEADER, *ROWS]))
    assert state["status"] == "checked"
    assert (state["total_rows"], state["new_rows"], state["matched_rows"],
            state["invalid_rows"]) == (5, 3, 1, 1)
    assert await _customers(sessions) == []  # the dry run writes nothing

    problems = (await client.get(f"/api/imports/{state['id']}/problems", headers=admin)).json()
    assert {(p["row"], p["column"]) for p in problems} == {
        (5, "手机号"), (5, "邮箱"), (5, "负责人")
    }
    assert any("no active user" in p["message"] and p["value"] == "nobody" for p in problems)

    report = await client.get(f"/api/imports/{state['id']}/report.xlsx", headers=admin)
    assert report.status_code == 200
    sheet = load_workbook(io.BytesIO(report.content)).active
    lines = list(sheet.values)
    assert lines[0][: len(HEADER)] == tuple(HEADER) and len(lines) == 2
    assert lines[1][0] == "坏电话公司" and "手机号" in lines[1][len(HEADER)]

    confirmed = await client.post(f"/api/imports/{state['id']}/confirm", headers=admin)
    assert confirmed.status_code == 202, confirmed.text
    done = await status_of(client, admin, state["id"], "done", "failed")
    assert done["status"] == "done", done
    assert (done["created_count"], done["skipped_count"], done["error_count"]) == (3, 1, 1)

    rows = await _customers(sessions)
    assert [c.name for c in rows] == ["杭州青禾食品有限公司", "宁波海岳贸易有限公司", "林晓"]
    qinghe, haiyue, lin = rows
    assert qinghe.phone == "+8613800138000" and qinghe.email == "info@qinghe.cn"
    assert qinghe.owner_id == sales.id and haiyue.owner_id == sales.id  # by login, by name
    assert qinghe.tags == ["华东", "重点"]
    assert lin.kind == "person" and str(lin.birthday) == "1990-05-06"
    async with sessions() as session:
        entry = await session.scalar(
            select(AuditLog).where(AuditLog.entity == "customer", AuditLog.entity_id == qinghe.id)
        )
    assert entry is not None and entry.source == "imports"
    assert entry.changes["_note"] == {"import_id": state["id"], "row": 2}

    records = (await client.get(f"/api/imports/{state['id']}/records?outcome=created",
                                headers=admin)).json()
    assert sorted(r["entity_id"] for r in records) == sorted(c.id for c in rows)

    # The same file again: every row matches what the first import made.
    again = await _run(client, admin, xlsx([HEADER, *ROWS]), confirm=True)
    again = await status_of(client, admin, again["id"], "done", "failed")
    assert (again["created_count"], again["skipped_count"]) == (0, 4)
    assert len(await _customers(sessions)) == 3


async def test_fill_empty_and_overwrite_merge_strategies(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = [["客户名称", "统一社会信用代码", "行业", "城市"],
             ["杭州青禾食品有限公司", CODE_A, None, "杭州"]]
    state = await _run(client, admin, xlsx(first), confirm=True)
    await status_of(client, admin, state["id"], "done")
    second = [["客户名称", "统一社会信用代码", "行业", "城市"],
              ["青禾食品(杭州)", CODE_A, "食品", "宁波"]]
    state = await _run(client, admin, xlsx(second), strategy="fill_empty", confirm=True)
    done = await status_of(client, admin, state["id"], "done")
    assert done["updated_count"] == 1
    (row,) = await _customers(sessions)
    assert (row.name, row.industry, row.city) == ("杭州青禾食品有限公司", "食品", "杭州")
    state = await _run(client, admin, xlsx(second), strategy="overwrite", confirm=True)
    await status_of(client, admin, state["id"], "done")
    (row,) = await _customers(sessions)
    assert (row.name, row.industry, row.city) == ("青禾食品(杭州)", "食品", "宁波")
    async with sessions() as session:
        updates = (await session.scalars(select(AuditLog).where(
            AuditLog.entity == "customer", AuditLog.action == "update"))).all()
    assert [u.changes["city"] for u in updates if "city" in u.changes] == [["杭州", "宁波"]]


async def test_all_or_nothing_with_an_invalid_row_writes_nothing(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = [["客户名称", "邮箱"], ["甲公司", "a@jia.cn"], ["乙公司", "broken"]]
    state = await _run(client, admin, xlsx(rows), all_or_nothing=True)
    assert state["status"] == "checked" and state["invalid_rows"] == 1
    refused = await client.post(f"/api/imports/{state['id']}/confirm", headers=admin)
    assert refused.status_code == 422 and "all-or-nothing" in refused.json()["detail"][0]["msg"]
    state = await _run(client, admin, xlsx(rows), all_or_nothing=True, confirm=True)
    assert state["status"] == "failed" and "nothing was written" in state["error"]
    assert await _customers(sessions) == []


async def test_contacts_join_their_company_and_dedupe_within_it(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    state = await _run(client, admin, xlsx([["客户名称", "统一社会信用代码"],
                                            ["杭州青禾食品有限公司", CODE_A]]), confirm=True)
    await status_of(client, admin, state["id"], "done")
    contacts = xlsx([["公司名称", "联系人", "手机", "职位", "决策角色"],
                     ["杭州青禾食品有限公司", "王芳", "13900139000", "采购经理", "决策者"],
                     ["青禾食品", "赵强", "13700137000", None, None],
                     ["杭州青禾食品有限公司", "王芳", "139-0013-9000", "采购总监", None]])
    uploaded = await upload(client, admin, contacts, entity="contacts")
    assert uploaded.status_code == 201, uploaded.text
    import_id = uploaded.json()["id"]
    response = await client.post(f"/api/imports/{import_id}/check",
                                 json={"strategy": "overwrite", "confirm": True}, headers=admin)
    assert response.status_code == 202, response.text
    done = await status_of(client, admin, import_id, "done", "failed")
    assert (done["created_count"], done["error_count"]) == (1, 1), done
    async with sessions() as session:
        (wang,) = (await session.scalars(select(Contact))).all()
    assert (wang.name, wang.mobile, wang.title, wang.decision_role) == (
        "王芳", "+8613900139000", "采购总监", "decision_maker")
    problems = (await client.get(f"/api/imports/{import_id}/problems", headers=admin)).json()
    assert [(p["row"], p["column"]) for p in problems] == [(3, "公司名称")]


async def test_cancel_before_confirming_writes_nothing(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    state = await _run(client, admin, xlsx([["客户名称"], ["甲公司"]]))
    cancelled = await client.post(f"/api/imports/{state['id']}/cancel", headers=admin)
    assert cancelled.status_code == 202
    final = await status_of(client, admin, state["id"], "cancelled")
    assert final["created_count"] == 0 and await _customers(sessions) == []
    again = await client.post(f"/api/imports/{state['id']}/confirm", headers=admin)
    assert again.status_code == 409
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0


async def test_the_admin_command_line_imports_with_a_progress_bar(
    worker: Worker, admin: dict[str, str], settings: Settings, temporal_client: Client,
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    settings.temporal_address = temporal_client.service_client.config.target_host
    monkeypatch.setattr(cli, "settings", settings)
    data = xlsx([HEADER[:2], ["杭州青禾食品有限公司", CODE_A], ["坏公司", "123"]])
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"客户名称": "name", "统一社会信用代码": "credit_code"}))
    args = argparse.Namespace(file="x.xlsx", entity="customers", dry_run=False, sheet=None,
                              strategy="skip", all_or_nothing=False, as_user=None,
                              mapping=str(mapping))
    assert await cli._import(args, data, json.loads(mapping.read_text()), None) == 0
    out = capsys.readouterr()
    assert "[" + "#" * 30 + "] 2/2 rows, 1 errors" in out.err
    assert "created 1" in out.out and "row 3 统一社会信用代码" in out.out
    assert [c.name for c in await _customers(sessions)] == ["杭州青禾食品有限公司"]
