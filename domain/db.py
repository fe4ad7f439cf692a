"""Declarative base, column types and engine/session factories. Nothing connects at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Numeric, Table, event, func, insert, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Money = Numeric(18, 2)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        Decimal: Money,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and a 16 MB page
    cache (SQLite's default 2 MB makes every insert of a bulk write into a table of many
    indexes read its pages back from the file) on every connection."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-16384")
    # Checkpoint every ~40 MB of log instead of 4 MB: a bulk import rewrites the same index
    # pages chunk after chunk, and each checkpoint copies (and syncs) them again.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessions() as session, session.begin():
        yield session


def _by_shape(table: Table, rows: list[dict[str, Any]]
              ) -> list[tuple[list[int], list[dict[str, Any]]]]:
    """The rows grouped by the columns they give, without those no row of a group fills
    (NULL is what they get, unless they have a default): (positions in `rows`, values) per
    group. One executemany per group; the fewer the groups and columns, the cheaper."""
    defaulted = {c.key for c in table.columns if c.default is not None}
    shapes: dict[tuple[str, ...], tuple[list[int], list[dict[str, Any]]]] = {}
    for position, row in enumerate(rows):
        positions, group = shapes.setdefault(tuple(row), ([], []))
        positions.append(position)
        group.append(row)
    out = []
    for positions, group in shapes.values():
        keep = [k for k in group[0] if k in defaulted
                or any(row[k] is not None for row in group)]
        if len(keep) < len(group[0]):
            group = [dict(zip(keep, values, strict=True)) for values in _values(group, keep)]
        out.append((positions, group))
    return out


def _values(rows: list[dict[str, Any]], keys: list[str]) -> Iterator[tuple[Any, ...]]:
    """Each row's values of `keys`, as a tuple (itemgetter gives a bare value for one key)."""
    if len(keys) == 1:
        return ((row[keys[0]],) for row in rows)
    return map(itemgetter(*keys), rows)


async def insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: one executemany per set of columns they fill."""
    for _positions, group in _by_shape(table, rows):
        await session.execute(insert(table), group)


async def insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]
                      ) -> list[int]:
    """Insert many rows into `table` (integer key `id`) and return their new ids, in order.

    INSERT … RETURNING over many rows costs several times a plain executemany, so the ids are
    known another way. PostgreSQL hands them out from the table's sequence first. SQLite gives
    each new row the largest id + 1, and once a transaction has inserted it holds the
    database's only write lock, so the rows it inserts next get consecutive ids from the
    largest one + 1.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        sequence = select(func.nextval(func.pg_get_serial_sequence(table.name, "id")))
        ids = list(await session.scalars(
            sequence.select_from(func.generate_series(1, len(rows)))
        ))
        await insert_rows(session, table,
                          [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
        return ids
    ids = [0] * len(rows)
    last: int | None = None
    for positions, group in _by_shape(table, rows):
        await session.execute(insert(table), group)
        if last is None:
            last = await session.scalar(select(func.max(table.c.id)))
            assert last is not None
        else:
            last += len(positions)
        for offset, position in enumerate(positions, start=1 - len(positions)):
            ids[position] = last + offset
    return ids


async def refresh_statistics(sessions: async_sessionmaker[AsyncSession], table: str) -> None:
    """Have PostgreSQL re-read a table's statistics (SQLite needs none).

    The planner picks index or sequential scans by them; a table a bulk write grows from a few
    rows to many keeps the small table's plans until autovacuum's next analyze, minutes later,
    and each lookup of the write then scans the whole table. A role that may not analyze the
    table leaves it to autovacuum."""
    async with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            return
        try:
            async with session.begin():
                await session.execute(text(f'ANALYZE "{table}"'))
        except DBAPIError as refused:
            logging.getLogger(__name__).warning("cannot analyze %s: %s", table, refused.orig)
