"""insert_many: rows of different shapes inserted without RETURNING, their ids in input order,
on SQLite and PostgreSQL; insert_rows for rows without ids."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.customer import Customer
from domain.customer.models import CustomerTag
from domain.db import _by_shape, insert_many, insert_rows, transaction

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
TAGS: Table = CustomerTag.__table__  # type: ignore[assignment]


def _company(name: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "company", "name": name, "name_key": name, **fields}


# Shapes interleave, so the groups insert_many makes are not in input order.
FIRST = [
    _company("甲公司", phone="+8613800000001"),
    _company("乙公司", email="b@yi.cn"),
    _company("丙公司", phone=None, email=None),
    _company("丁公司", phone="+8613800000004"),
    {"kind": "person", "name": "林晓", "name_key": "林晓", "email": "x@lin.cn",
     "phone": "+8613900000005"},
    _company("戊公司", email="c@wu.cn"),
    _company("己公司", phone=None, email=None),
    _company("庚公司", phone="+8613800000008", industry=None),
    _company("辛公司", email=None, phone="+8613800000009"),  # same columns, another order
]
SECOND = [
    _company("壬公司", email="r@ren.cn"),
    _company("癸公司", phone="+8613800000011"),
    _company("子公司"),
]


async def _read_back(sessions: async_sessionmaker[AsyncSession], ids: list[int]
                     ) -> dict[int, tuple[Any, ...]]:
    async with sessions() as session:
        found = await session.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.kind, CUSTOMERS.c.name, CUSTOMERS.c.phone,
                   CUSTOMERS.c.email, CUSTOMERS.c.stage, CUSTOMERS.c.created_at)
            .where(CUSTOMERS.c.id.in_(ids))
        )
        return {row[0]: tuple(row[1:]) for row in found.all()}


def _expected(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["kind"], row["name"], row.get("phone"), row.get("email")


async def test_ids_come_back_in_input_order_for_rows_of_different_shapes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        ids = await insert_many(session, CUSTOMERS, FIRST)
    assert len(ids) == len(FIRST) == len(set(ids))
    stored = await _read_back(sessions, ids)
    for row, record_id in zip(FIRST, ids, strict=True):
        kind, name, phone, email, stage, created_at = stored[record_id]
        assert (kind, name, phone, email) == _expected(row)
        assert stage == "prospect" and created_at is not None  # column defaults applied


async def test_a_second_call_continues_with_new_ids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        first = await insert_many(session, CUSTOMERS, FIRST)
    async with transaction(sessions) as session:
        second = await insert_many(session, CUSTOMERS, SECOND)
        third = await insert_many(session, CUSTOMERS, FIRST[:3])  # same transaction again
    assert len(set(first + second + third)) == len(FIRST) + len(SECOND) + 3
    stored = await _read_back(sessions, first + second + third)
    assert len(stored) == len(FIRST) + len(SECOND) + 3
    for row, record_id in zip(FIRST + SECOND + FIRST[:3], first + second + third, strict=True):
        assert stored[record_id][:4] == _expected(row)


async def test_no_rows_insert_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        assert await insert_many(session, CUSTOMERS, []) == []
        await insert_rows(session, TAGS, [])
    async with sessions() as session:
        assert (await session.execute(select(CUSTOMERS.c.id))).all() == []


async def test_insert_rows_writes_customer_tags(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        a, b = await insert_many(session, CUSTOMERS, FIRST[:2])
        await insert_rows(session, TAGS, [
            {"customer_id": a, "tag": "重点"}, {"customer_id": b, "tag": "华东"},
            {"customer_id": a, "tag": "VIP"},
        ])
    async with sessions() as session:
        found = set((await session.execute(select(TAGS.c.customer_id, TAGS.c.tag))).all())
    assert found == {(a, "重点"), (a, "VIP"), (b, "华东")}


def test_a_group_leaves_out_the_columns_none_of_its_rows_fills() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True),
                  Column("a", String), Column("b", String), Column("c", String, default="x"))
    rows = [{"a": "1", "b": None, "c": None}, {"b": None, "a": "2"},
            {"a": None, "b": None, "c": None}, {"a": "3", "b": None, "c": "y"}]
    assert _by_shape(table, rows) == [  # b is never given a value; c has a default
        ([0, 2, 3], [{"a": "1", "c": None}, {"a": None, "c": None}, {"a": "3", "c": "y"}]),
        ([1], [{"a": "2"}]),  # one column left
    ]


async def test_values_of_every_kind_come_back_as_given(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """JSON, decimals, dates and aware datetimes, and defaults for what a row leaves out —
    through executemany on SQLite and COPY on PostgreSQL alike."""
    when = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    rows = [
        _company("甲公司", custom={"评分": 5, "标签": ["重点", "华东"], "备注": "含\t制表符\n换行"},
                 total_amount=Decimal("12345.67"), last_purchase_on=date(2026, 2, 28),
                 created_at=when, industry="it"),
        _company("乙公司", custom={}, industry=None),
    ]
    async with transaction(sessions) as session:
        ids = await insert_many(session, CUSTOMERS, rows)
    async with sessions() as session:
        found = {row.id: row for row in (await session.execute(
            select(CUSTOMERS).where(CUSTOMERS.c.id.in_(ids)))).all()}
    first, second = found[ids[0]], found[ids[1]]
    assert first.custom == rows[0]["custom"]
    assert (first.total_amount, first.last_purchase_on, first.created_at) == (
        Decimal("12345.67"), date(2026, 2, 28), when)
    assert (second.custom, second.industry, second.total_amount, second.stage) == (
        {}, None, Decimal("0"), "prospect")
    assert second.created_at is not None and second.created_at.tzinfo is not None
