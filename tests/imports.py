"""Import helpers: spreadsheets made on the fly, upload, and waiting for a status."""

from __future__ import annotations

import io
from typing import Any

import httpx
from openpyxl import Workbook
from stdnum.cn import uscc

from tests.conftest import wait_until


def code(body: str) -> str:
    """A valid unified social credit code from its first 17 characters."""
    return body + uscc.calc_check_digit(body)


def xlsx(rows: list[list[Any]], *, sheet: str = "客户", extra: dict | None = None) -> bytes:
    book = Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    for name, more in (extra or {}).items():
        book.create_sheet(name)
        for row in more:
            book[name].append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes,
                 entity: str = "customers", name: str = "客户.xlsx", **form: str
                 ) -> httpx.Response:
    return await client.post(
        "/api/imports", headers=headers, data={"entity": entity, **form},
        files={"file": (name, data, "application/octet-stream")},
    )


async def status_of(client: httpx.AsyncClient, headers: dict[str, str], import_id: int,
                    *wanted: str, seconds: float = 60) -> dict:
    """Wait until the import reaches one of `wanted` statuses; its state then."""
    state: dict = {}

    async def reached() -> bool:
        nonlocal state
        state = (await client.get(f"/api/imports/{import_id}", headers=headers)).json()
        return state["status"] in wanted

    await wait_until(reached, seconds=seconds)
    return state
