"""Record values as spreadsheet cells: local time, plain numbers, and no formulas ever.

A cell whose text begins with = + - @ (or a tab or carriage return, which Excel skips before
looking) is a formula to Excel, LibreOffice and WPS. A customer name such as
`=HYPERLINK("http://evil", "点击")` typed into a web form would run on the exporting manager's
machine, so such text gets a leading single quote, in both formats: it then shows as text.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | Decimal | date | datetime | None


def escape(text: str) -> str:
    """`text`, made inert if a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """A stored instant as the wall-clock time of `zone`, without offset (Excel has none)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).replace(tzinfo=None)


def phone(value: str | None) -> str | None:
    """Chinese numbers as dialled in China (13800138000, 02168888888), so a spreadsheet keeps
    them as they are and an import reads them back; other countries' in E.164."""
    if value is None or not value.startswith("+86"):
        return value
    national = value[3:]
    return national if national.startswith("1") else "0" + national


def cell(value: Any, zone: ZoneInfo) -> Cell:
    """Any record value as a cell: text escaped, times local, lists joined, enums by value."""
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return local(value, zone)
    if isinstance(value, int | float | Decimal | date):
        return value
    if isinstance(value, list | tuple):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def csv_text(value: Cell) -> str:
    """A cell as CSV text: times to the second, numbers as written, empty for nothing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
