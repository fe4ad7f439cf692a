"""Start an export (count, audit) and stream it: CSV row batch by row batch, or an .xlsx built
in openpyxl's write-only mode (rows go to a temporary file, never all in memory) and then sent.

The rows are the list's own query (each list's `listed`), read through a server-side cursor in
batches of BATCH, so 100,000 rows never load at once. The export is audited before its first
byte leaves: who, which list, which filters, which format, how many rows matched.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import audit, custom_field, user
from domain.access import Actor
from domain.customer import Customer
from domain.deal import service as deals
from domain.export import cells
from domain.export.columns import (
    COLUMNS,
    FIELD_ENTITY,
    TITLES,
    Column,
    Entity,
    Lookups,
    custom_column,
)

BATCH = 1_000
BOM = "\ufeff"
"""Excel opens a CSV as UTF-8 (and so shows Chinese) only when it starts with this mark."""
READ_CHUNK = 1 << 16
NARROW, WIDE = 14, 28
WIDE_COLUMNS = frozenset({"客户名称", "Name", "公司", "Company", "商机名称", "Deal", "主题",
                          "Subject", "注册地址", "Registered address", "留言", "Message",
                          "备注", "Notes"})


class Format(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


@dataclass(frozen=True)
class Labels:
    """The caller's language and how enum values read in it (the API's translations)."""

    lang: str
    choice: Callable[[str, Any], str]


@dataclass
class Export:
    """One export, ready to stream: what to read, how to write each row, in which format."""

    entity: Entity
    format: Format
    statement: Select[Any]
    columns: list[Column]
    lookups: Lookups
    lang: str
    zone: ZoneInfo
    rows: int

    @property
    def headers(self) -> list[str]:
        return [c.header(self.lang) for c in self.columns]

    @property
    def sheet_title(self) -> str:
        zh, en = TITLES[self.entity]
        return en if self.lang == "en" else zh

    def row(self, record: Any) -> list[cells.Cell]:
        return [cells.cell(c.value(record, self.lookups), self.zone) for c in self.columns]


async def start(
    session: AsyncSession,
    *,
    actor: Actor,
    entity: Entity,
    statement: Select[Any],
    filters: dict[str, Any],
    format: Format,
    labels: Labels,
    timezone: str,
) -> Export:
    """Count the rows, load the names the cells need, and audit the export in `session`
    (the caller commits it before streaming)."""
    matching = statement.order_by(None).subquery()
    rows = await session.scalar(select(func.count()).select_from(matching)) or 0
    definitions = await custom_field.list_fields(session, entity=FIELD_ENTITY[entity])
    lookups = Lookups(choice=labels.choice)
    names = await session.execute(select(user.User.id, user.User.display_name))
    lookups.users = dict(names.all())
    if entity is Entity.tickets:
        lookups.teams = dict((await session.execute(select(user.Team.id, user.Team.name))).all())
    if entity is Entity.deals:
        for name in await deals.pipeline_names(session):
            _version, rules = await deals.pipeline(session, name)
            for stage in rules.stages:
                label = stage.name_en if labels.lang == "en" else stage.name
                lookups.stages[(name, stage.key)] = label
    audit.record(
        session, actor=actor, action="export", entity=entity.value, entity_id=None,
        note={"format": format.value, "filters": filters, "rows": rows},
    )
    return Export(
        entity=entity, format=format, statement=statement,
        columns=[*COLUMNS[entity], *(custom_column(d) for d in definitions)],
        lookups=lookups, lang=labels.lang, zone=ZoneInfo(timezone), rows=rows,
    )


async def _batches(
    sessions: async_sessionmaker[AsyncSession], export: Export
) -> AsyncIterator[list[list[cells.Cell]]]:
    """The rows as cells, BATCH at a time, from one read-only session and a server-side cursor."""
    needs_customers = export.entity in (Entity.leads, Entity.deals, Entity.tickets)
    async with sessions() as session:
        result = await session.stream_scalars(export.statement.execution_options(yield_per=BATCH))
        async for records in result.partitions():
            if needs_customers:
                known = export.lookups.customers
                ids = {r.customer_id for r in records if r.customer_id} - set(known)
                if ids:
                    found = await session.execute(
                        select(Customer.id, Customer.name).where(Customer.id.in_(sorted(ids)))
                    )
                    known.update(found.all())
            yield [export.row(r) for r in records]


async def _csv(sessions: async_sessionmaker[AsyncSession], export: Export) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([cells.escape(h) for h in export.headers])
    yield (BOM + buffer.getvalue()).encode("utf-8")
    async for rows in _batches(sessions, export):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([cells.csv_text(c) for c in row] for row in rows)
        yield buffer.getvalue().encode("utf-8")


async def _xlsx(sessions: async_sessionmaker[AsyncSession], export: Export) -> AsyncIterator[bytes]:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(export.sheet_title)
    headers = export.headers
    for index, header in enumerate(headers, start=1):  # widths go before the first row
        width = WIDE if header in WIDE_COLUMNS else NARROW
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.append([cells.escape(h) for h in headers])
    async for rows in _batches(sessions, export):
        for row in rows:
            sheet.append(row)
    with tempfile.TemporaryDirectory(prefix="dossier-export-") as folder:
        path = Path(folder) / "export.xlsx"
        await asyncio.to_thread(book.save, path)
        with path.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                yield chunk


def stream(sessions: async_sessionmaker[AsyncSession], export: Export) -> AsyncIterator[bytes]:
    """The file's bytes, as they are made."""
    return _xlsx(sessions, export) if export.format is Format.xlsx else _csv(sessions, export)
