"""Spreadsheet cells into the values a write expects: text, dates, and choices by their label.

Excel hands over floats for phone numbers (13800138000.0), dates as date objects or as text in
whatever form the user typed; these turn such cells into what the API would have received, so
the normal write rules (schemas, normalisers, custom-field rules) then decide.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from domain.errors import Invalid
from domain.imports.reading import Cell

EXCEL_EPOCH = date(1899, 12, 30)
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TIME_PART = re.compile(r"^(.+?)[ T]\d{1,2}:\d{2}(:\d{2})?(\.\d+)?$")
_CLOCK = re.compile(r"^(.+?)[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")

CHOICES: dict[str, dict[str, str]] = {
    "kind": {"企业": "company", "公司": "company", "单位": "company", "企业客户": "company",
             "个人": "person", "个人客户": "person", "自然人": "person"},
    "size": {"1-9人": "1-9", "10-49人": "10-49", "50-199人": "50-199", "200-999人": "200-999",
             "1000人以上": "1000+", "1000+人": "1000+"},
    "gender": {"男": "male", "女": "female", "其他": "other", "m": "male", "f": "female"},
    "stage": {"线索": "lead", "潜在客户": "prospect", "潜客": "prospect", "成交客户": "customer",
              "客户": "customer", "已成交": "customer", "流失": "churned", "流失客户": "churned"},
    "decision_role": {"决策者": "decision_maker", "关键决策人": "decision_maker",
                      "影响者": "influencer", "使用者": "user", "把关者": "gatekeeper"},
    "priority": {"高": "high", "紧急": "high", "普通": "normal", "中": "normal", "一般": "normal",
                 "低": "low"},
    "status": {"新线索": "new", "新": "new", "待跟进": "new", "无效": "disqualified",
               "无效线索": "disqualified", "已关闭": "disqualified"},
}
"""Chinese labels (and short forms) of enum values; the English values pass as they are."""
ENTITY_CHOICES: dict[str, dict[str, dict[str, str]]] = {
    "follow_ups": {"kind": {"电话": "call", "通话": "call", "拜访": "visit", "上门": "visit",
                            "会议": "meeting", "邮件": "email", "电子邮件": "email",
                            "微信": "wechat", "备注": "note", "笔记": "note"}},
}
"""Where an import entity's field of the same name means something else (a follow-up's kind)."""


def text(cell: Cell) -> str | None:
    """The cell as the user sees it: whole floats without ".0", dates in ISO form."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        if cell.is_integer() and abs(cell) < 1e15:
            return str(int(cell))
        return str(Decimal(str(cell)))
    if isinstance(cell, datetime):
        return cell.isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, time | timedelta):
        return str(cell)
    s = str(cell).strip()
    return s or None


def choices_of(entity: str) -> dict[str, dict[str, str]]:
    """The Chinese labels of the choice fields an import entity's rows carry."""
    return {**CHOICES, **ENTITY_CHOICES.get(entity, {})}


def choice(field: str, value: str, choices: dict[str, dict[str, str]] = CHOICES) -> str:
    """An enum value from its Chinese label or its own (any case) spelling."""
    s = unicodedata.normalize("NFKC", value).strip()
    labels = choices.get(field, {})
    return labels.get(s) or labels.get(s.casefold()) or s.casefold()


def to_date(cell: Cell, *, field: str) -> str | None:
    """An ISO date from a date cell, an Excel serial number or 2024-01-05, 2024/1/5,
    2024.1.5, 2024年1月5日, 20240105 (a time after the date is ignored)."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        if 1 <= cell < 2_958_466:  # Excel's serial day numbers, 1900-01-01 … 9999-12-31
            return (EXCEL_EPOCH + timedelta(days=int(cell))).isoformat()
        raise Invalid("not a date", field=field)
    s = unicodedata.normalize("NFKC", str(cell)).strip()
    if not s:
        return None
    if found := _TIME_PART.match(s):
        s = found.group(1).strip()
    match = _DATE.match(s) or _COMPACT.match(s)
    if match is None:
        raise Invalid("not a date: write it like 2024-01-05 or 2024年1月5日", field=field)
    try:
        return date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        raise Invalid("no such day in the calendar", field=field) from None


def to_datetime(cell: Cell, *, field: str, zone: tzinfo) -> datetime | None:
    """A moment from a date-time cell, an Excel serial number (its fraction is the time of day)
    or text such as 2024-01-05 14:30, 2024/1/5 14:30:05, 2024年1月5日 14:30; a time zone
    offset in the text is kept, anything else is read in `zone`. A bare date is midnight."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, datetime):
        moment = cell
    elif isinstance(cell, date):
        moment = datetime.combine(cell, time())
    elif isinstance(cell, int | float) and not isinstance(cell, bool):
        if not 1 <= cell < 2_958_466:
            raise Invalid("not a date", field=field)
        moment = datetime.combine(EXCEL_EPOCH, time()) + timedelta(days=float(cell))
        moment = moment.replace(microsecond=0)
    else:
        s = unicodedata.normalize("NFKC", str(cell)).strip()
        if not s:
            return None
        try:
            moment = datetime.fromisoformat(s)
        except ValueError:
            found = _CLOCK.match(s)
            day = to_date(found.group(1).strip() if found else s, field=field)
            assert day is not None
            try:
                clock = time(*(int(g) for g in found.groups()[1:] if g)) if found else time()
            except ValueError:
                raise Invalid("no such time of day", field=field) from None
            moment = datetime.combine(date.fromisoformat(day), clock)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def amount(cell: Cell, *, field: str) -> str | None:
    """A money amount as written in a sheet (¥12,800.00, 12800元), as the schema reads it."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return text(cell)
    value = text(cell)
    if value is None:
        return None
    cleaned = re.sub(r"[¥￥,，\s]|元$|^CNY|^RMB", "", unicodedata.normalize("NFKC", value))
    if not re.fullmatch(r"-?\d+(\.\d+)?", cleaned):
        raise Invalid("not an amount: write it like 12800.00", field=field)
    return cleaned


def tags(value: str) -> list[str]:
    """Tags separated by commas, 、, semicolons or line breaks, as people list them."""
    return [t.strip() for t in re.split(r"[,，、;；\n]+", value) if t.strip()]
