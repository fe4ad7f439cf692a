"""The error report: the file's own header and invalid rows, plus a column saying what is wrong,
so the user fixes the cells in place and uploads the report itself again."""

from __future__ import annotations

import io
from collections import defaultdict

from openpyxl import Workbook as XlsxWorkbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.imports import cells
from domain.imports.models import Import, ImportProblem
from domain.imports.reading import Workbook

MESSAGES = "错误说明 / Problems"
FLAGGED = PatternFill("solid", fgColor="FFF2CC")


def _plain(value: object) -> object:
    """What openpyxl can store; times and durations as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return cells.text(value)  # type: ignore[arg-type]


async def build(session: AsyncSession, imp: Import, workbook: Workbook) -> bytes:
    found = await session.execute(
        select(ImportProblem.row, ImportProblem.column, ImportProblem.message)
        .where(ImportProblem.import_id == imp.id)
        .order_by(ImportProblem.row, ImportProblem.id)
    )
    by_row: dict[int, list[tuple[str | None, str]]] = defaultdict(list)
    for row, column, message in found.all():
        by_row[row].append((column, message))
    out = XlsxWorkbook(write_only=True)
    sheet = out.create_sheet(imp.sheet[:31] or "errors")
    bold = Font(bold=True)
    header = [WriteOnlyCell(sheet, value=h) for h in [*imp.headers, MESSAGES, "原行号 / Row"]]
    for cell in header:
        cell.font = bold
    sheet.append(header)
    for number, values in workbook.rows(imp.sheet):
        if number not in by_row:
            continue
        problems = by_row[number]
        flagged = {column for column, _ in problems}
        row = []
        for index, header_name in enumerate(imp.headers):
            value = _plain(values[index]) if index < len(values) else None
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # the user's text back as text, never as a formula
            if header_name in flagged:
                cell.fill = FLAGGED
            row.append(cell)
        text = "; ".join(f"{column}: {message}" if column else message
                         for column, message in problems)
        row.append(WriteOnlyCell(sheet, value=text))
        row.append(WriteOnlyCell(sheet, value=number))
        sheet.append(row)
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()
