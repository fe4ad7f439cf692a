"""Downloaded templates: headers in the chosen language with required columns marked, custom
fields, drop-down lists — and, filled with nothing but their own example row, they import
cleanly for every entity, in both languages."""

from __future__ import annotations

import io

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain.customer import Contact, Customer
from domain.follow_up import FollowUp
from domain.lead import Lead
from domain.purchase import Purchase
from tests.imports import status_of, upload

ENTITIES = [("customers", Customer), ("contacts", Contact), ("leads", Lead),
            ("follow_ups", FollowUp), ("purchases", Purchase)]


async def _template(client: httpx.AsyncClient, admin: dict[str, str], entity: str,
                    lang: str) -> bytes:
    response = await client.get(f"/api/imports/templates/{entity}.xlsx?lang={lang}",
                                headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    return response.content


async def test_a_template_names_its_columns_marks_required_ones_and_offers_choices(
    client: httpx.AsyncClient, admin: dict[str, str],
) -> None:
    field = await client.post("/api/custom-fields", headers=admin, json={
        "entity": "customer", "key": "tier", "label": "客户等级", "label_en": "Tier",
        "type": "single_select", "options": ["A, 重点", "B", "C"]})
    assert field.status_code == 201, field.text
    for lang, name, kind, tier in (("zh-CN", "客户名称 *", "企业", "客户等级"),
                                   ("en", "Name *", "company", "Tier")):
        book = load_workbook(io.BytesIO(await _template(client, admin, "customers", lang)))
        sheet, lists = book.worksheets
        header = [c.value for c in sheet[1]]
        example = dict(zip(header, (c.value for c in sheet[2]), strict=False))
        assert header[0] == name and header[-1] == tier
        assert example[header[1]] == kind and example[tier] == "A, 重点"
        assert lists.sheet_state == "hidden"
        ranges = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
        kind_column = sheet.cell(row=1, column=2).column_letter
        source = ranges[f"{kind_column}2:{kind_column}5001"]
        column = source.split("!")[1].split(":")[0].replace("$", "")[0]
        values = [c.value for c in lists[column] if c.value]
        assert values == (["企业", "个人"] if lang == "zh-CN" else ["company", "person"])
        assert len(ranges) == 5  # kind, size, gender, stage, tier: no free-text column
    refused = await client.get("/api/imports/templates/orders.xlsx", headers=admin)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "entity"
    refused = await client.get("/api/imports/templates/leads.xlsx?lang=fr", headers=admin)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "lang"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_every_template_imports_its_own_example_row(
    worker: Worker, client: httpx.AsyncClient, admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession], lang: str,
) -> None:
    for entity, model in ENTITIES:  # customers first: the other examples name that customer
        data = await _template(client, admin, entity, lang)
        uploaded = await upload(client, admin, data, entity=entity, name=f"{entity}.xlsx")
        assert uploaded.status_code == 201, uploaded.text
        body = uploaded.json()
        assert body["total_rows"] == 1 and "" not in body["mapping"].values()
        assert len(body["mapping"]) == len(body["headers"])  # every column recognised
        response = await client.post(f"/api/imports/{body['id']}/check",
                                     json={"confirm": True}, headers=admin)
        assert response.status_code == 202, response.text
        done = await status_of(client, admin, body["id"], "done", "failed")
        problems = (await client.get(f"/api/imports/{body['id']}/problems",
                                     headers=admin)).json()
        assert (done["status"], done["created_count"], problems) == ("done", 1, []), entity
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(model)) == 1
