"""Uploads that are not a usable spreadsheet get a clear 4xx, and nothing is stored."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.imports import Import
from domain.settings import Settings
from tests.conftest import Login, MakeUser
from tests.imports import upload, xlsx


async def _imports(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Import)) or 0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (b"%PDF-1.4 hello", "file", "not a spreadsheet: this is a PDF"),
        (xlsx([]), "sheet", "is empty"),
        (xlsx([["甲", "乙"], ["1", "2"]]), "sheet", "no recognisable header"),
        (xlsx([["客户名称", "手机"]]), "sheet", "no rows under it"),
    ],
)
async def test_unusable_uploads_are_422_and_store_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: async_sessionmaker[AsyncSession],
    settings: Settings, data: bytes, field: str, message: str | None,
) -> None:
    response = await upload(client, admin, data)
    if message is None:  # GB18030 reads almost any bytes: this one is a header with no rows
        assert response.status_code == 422, response.text
        return
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == [field] and message in detail["msg"]
    assert await _imports(sessions) == 0
    assert not (settings.var_dir / "imports").exists() or not any(
        (settings.var_dir / "imports").iterdir()
    )


async def test_upload_larger_than_the_import_limit_is_413(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    big = b"x" * (settings.import_max_bytes + 100_000)
    response = await upload(client, admin, big)
    assert response.status_code == 413


async def test_upload_larger_than_the_api_limit_but_within_the_import_limit_is_taken(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    rows = [["客户名称", "备注"]] + [[f"公司{i}", "x" * 200] for i in range(800)]
    data = xlsx(rows)
    csv = "\n".join(",".join(map(str, r)) for r in rows).encode()
    assert len(csv) > settings.max_body_bytes  # the JSON API would refuse this size
    response = await upload(client, admin, csv, name="big.csv")
    assert response.status_code == 201, response.text
    assert response.json()["total_rows"] == 800
    assert (await upload(client, admin, data)).status_code == 201


async def test_uploads_propose_a_mapping_and_list_the_sheets(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    data = xlsx([["说明"]], sheet="说明",
                extra={"名单": [["导出自旧系统"], [], ["公司名称", "手机号", "Email", "其它"],
                                ["青禾", "13800138000", "a@b.cn", "x"]]})
    response = await upload(client, admin, data, sheet="名单")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sheets"] == ["说明", "名单"] and body["sheet"] == "名单"
    assert body["header_row"] == 3 and body["total_rows"] == 1
    assert body["mapping"] == {"公司名称": "name", "手机号": "phone", "Email": "email"}
    missing = await upload(client, admin, data, sheet="订单")
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["sheet"]


async def test_only_admins_import(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login
) -> None:
    await make_user("rep1")
    response = await upload(client, await login("rep1"), xlsx([["客户名称"], ["青禾"]]))
    assert response.status_code == 403
