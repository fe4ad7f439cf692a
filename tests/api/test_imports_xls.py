"""An old Excel 97-2003 (.xls) file, written here with xlwt (skipped when it is not
installed): recognised by content, its dates, numbers and Chinese text read as typed."""

from __future__ import annotations

import io
from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.imports.reading import Format, Limits, Workbook
from tests.imports import upload

xlwt = pytest.importorskip("xlwt", reason="xlwt writes the .xls under test")

LIMITS = Limits(max_bytes=10_000_000, max_unpacked_bytes=100_000_000, max_rows=1_000)


def _xls() -> bytes:
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("客户名单")
    dated = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for column, header in enumerate(["客户名称", "手机", "生日", "客户类型"]):
        sheet.write(0, column, header)
    sheet.write(1, 0, "林晓")
    sheet.write(1, 1, 13900139000)
    sheet.write(1, 2, date(1990, 5, 6), dated)
    sheet.write(1, 3, "个人")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xls_file_is_read_as_typed() -> None:
    workbook = Workbook(_xls(), LIMITS)
    try:
        assert workbook.format is Format.xls and workbook.sheet_names == ["客户名单"]
        rows = list(workbook.rows())
    finally:
        workbook.close()
    assert rows[0] == (1, ["客户名称", "手机", "生日", "客户类型"])
    number, cells = rows[1]
    assert number == 2 and cells[0] == "林晓" and cells[1] == 13900139000.0
    assert str(cells[2])[:10] == "1990-05-06"


async def test_an_xls_upload_proposes_its_mapping(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: async_sessionmaker[AsyncSession],
) -> None:
    response = await upload(client, admin, _xls(), name="old.xls")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["sheet"], body["total_rows"]) == ("xls", "客户名单", 1)
    assert body["mapping"] == {"客户名称": "name", "手机": "phone", "生日": "birthday",
                               "客户类型": "kind"}
