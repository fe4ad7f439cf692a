"""Custom fields: definitions, the value rules every record write applies, and JSON filters.

Runs on a real SQLite file; the filter tests run on PostgreSQL too when it is reachable
(DOSSIER_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import JSON, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import domain.user  # noqa: F401 - the users table (audit_log and user fields point at it)
from domain import audit, custom_field
from domain.access import Actor, Role, Source
from domain.custom_field import (
    CustomField,
    CustomFieldCreate,
    CustomFieldRead,
    CustomFieldUpdate,
    FieldEntity,
    FieldType,
)
from domain.db import Base, create_engine, session_factory
from domain.errors import Conflict, Invalid, NotFound
from domain.user import User

PG_URL = os.environ.get(
    "DOSSIER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_SCHEMA = "cf_test"
ADMIN = Actor(user_id=None, name="admin", role=Role.admin, source=Source.api)


class _RecordBase(DeclarativeBase):
    """A stand-in for customers/contacts, kept out of the app's metadata."""


class Record(_RecordBase):
    __tablename__ = "cf_test_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- fixtures -------------------------------------------------------------------------------


async def _create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(_RecordBase.metadata.create_all)


@asynccontextmanager
async def _sqlite_engine(path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await _create_tables(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def _postgres_engine() -> AsyncIterator[AsyncEngine]:
    """A throw-away schema on the test PostgreSQL, dropped afterwards; skips if unreachable."""
    admin = create_engine(PG_URL, pool_size=1, max_overflow=0, connect_args={"connect_timeout": 3})
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            await conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    except Exception as exc:  # any connection failure means "not available here"
        await admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}")
    engine = create_engine(
        f"{PG_URL}?options=-csearch_path%3D{PG_SCHEMA}", pool_size=2, max_overflow=0
    )
    try:
        await _create_tables(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        await admin.dispose()


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    async with _sqlite_engine(tmp_path / "cf.db") as engine, session_factory(engine)() as s:
        yield s
        await s.rollback()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_session(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncSession]:
    """The same test on SQLite and on PostgreSQL."""
    engines = (
        _sqlite_engine(tmp_path / "cf.db") if request.param == "sqlite" else _postgres_engine()
    )
    async with engines as engine, session_factory(engine)() as s:
        yield s
        await s.rollback()


async def define(
    session: AsyncSession,
    key: str,
    type_: FieldType | str,
    *,
    entity: str = "customer",
    **extra: Any,
) -> CustomField:
    data = CustomFieldCreate(entity=entity, key=key, label=key.upper(), type=type_, **extra)
    return await custom_field.create(session, actor=ADMIN, data=data)


async def add_user(session: AsyncSession, username: str, *, active: bool = True) -> User:
    user = User(
        username=username,
        display_name=username,
        role=Role.sales.value,
        password_hash="not-a-real-hash",
        active=active,
    )
    session.add(user)
    await session.flush()
    return user


async def check(session: AsyncSession, **values: Any) -> dict[str, Any]:
    """Values for a new customer."""
    return await custom_field.validate_values(session, entity="customer", values=values)


def invalid(excinfo: pytest.ExceptionInfo[Invalid]) -> tuple[str | None, str]:
    return excinfo.value.field, excinfo.value.message


# --- definitions: schemas -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["budget", "b", "tier_2", "a" * 64])
def test_create_schema_accepts_keys_of_the_pattern(key: str) -> None:
    assert CustomFieldCreate(entity="customer", key=key, label="x", type="text").key == key


@pytest.mark.parametrize("key", ["Budget", "2tier", "_tier", "tier-2", "预算", "", "a" * 65])
def test_create_schema_refuses_keys_off_the_pattern(key: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        CustomFieldCreate(entity="customer", key=key, label="x", type="text")
    assert excinfo.value.errors()[0]["loc"] == ("key",)


def test_create_schema_refuses_unknown_entity_type_and_extra_fields() -> None:
    for bad in ({"entity": "invoice"}, {"type": "color"}, {"colour": "red"}):
        fields = {"entity": "customer", "key": "k", "label": "x", "type": "text", **bad}
        with pytest.raises(ValidationError):
            CustomFieldCreate(**fields)


@pytest.mark.parametrize("type_", ["single_select", "multi_select"])
def test_select_needs_options(type_: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        CustomFieldCreate(entity="customer", key="k", label="x", type=type_)
    assert excinfo.value.errors()[0]["loc"] == ("options",)


def test_options_are_trimmed_and_must_be_unique_ignoring_case() -> None:
    made = CustomFieldCreate(
        entity="customer", key="k", label="x", type="single_select", options=[" 大型 ", "小型"]
    )
    assert made.options == ["大型", "小型"]
    with pytest.raises(ValidationError, match="duplicate option"):
        CustomFieldCreate(
            entity="customer", key="k", label="x", type="single_select", options=["VIP", "vip"]
        )


def test_options_are_forbidden_for_non_select_types() -> None:
    with pytest.raises(ValidationError) as excinfo:
        CustomFieldCreate(entity="customer", key="k", label="x", type="text", options=["a"])
    assert excinfo.value.errors()[0]["loc"] == ("options",)


def test_min_must_not_exceed_max() -> None:
    with pytest.raises(ValidationError) as excinfo:
        CustomFieldCreate(
            entity="customer", key="k", label="x", type="number", min_value=10, max_value=1
        )
    assert excinfo.value.errors()[0]["loc"] == ("max_value",)


@pytest.mark.parametrize(
    ("type_", "bound"), [("date", 1), ("boolean", 1), ("text", -1), ("text", Decimal("2.5"))]
)
def test_bounds_only_where_they_mean_something(type_: str, bound: Decimal) -> None:
    with pytest.raises(ValidationError) as excinfo:
        CustomFieldCreate(entity="customer", key="k", label="x", type=type_, min_value=bound)
    assert excinfo.value.errors()[0]["loc"] == ("min_value",)


def test_update_schema_cannot_change_type_or_key_and_label_is_not_nullable() -> None:
    for bad in ({"type": "number"}, {"key": "other"}, {"label": None}):
        with pytest.raises(ValidationError):
            CustomFieldUpdate(**bad)
    assert CustomFieldUpdate(label_en=None).model_fields_set == {"label_en"}


# --- definitions: service -----------------------------------------------------------------


async def test_create_stores_definition_and_audits_it(session: AsyncSession) -> None:
    row = await define(session, "tier", "single_select", options=["A", "B"], position=3)
    read = CustomFieldRead.model_validate(row)
    assert (read.entity, read.key, read.type, read.options, read.position) == (
        FieldEntity.customer,
        "tier",
        FieldType.single_select,
        ["A", "B"],
        3,
    )
    [entry] = await audit.history(session, entity="custom_field", entity_id=row.id)
    assert entry.action == "create"
    assert entry.changes["key"] == [None, "tier"]


async def test_duplicate_key_per_entity_is_a_conflict_on_key(session: AsyncSession) -> None:
    await define(session, "budget", "money")
    with pytest.raises(Conflict) as excinfo:
        await define(session, "budget", "text")
    assert excinfo.value.field == "key"
    other = await define(session, "budget", "money", entity="contact")
    assert other.entity == "contact"


async def test_retired_key_is_still_taken(session: AsyncSession) -> None:
    row = await define(session, "budget", "money")
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)
    with pytest.raises(Conflict):
        await define(session, "budget", "money")


async def test_list_fields_in_position_then_id_order_without_retired(
    session: AsyncSession,
) -> None:
    second = await define(session, "b", "text", position=1)
    first = await define(session, "a", "text", position=0)
    third = await define(session, "c", "text", position=1)
    await define(session, "other_entity", "text", entity="contact")
    await custom_field.retire(session, actor=ADMIN, field_id=third.id)
    listed = await custom_field.list_fields(session, entity="customer")
    assert [f.key for f in listed] == [first.key, second.key]
    everything = await custom_field.list_fields(session, entity="customer", include_retired=True)
    assert [f.key for f in everything] == ["a", "b", "c"]


async def test_get_unknown_field_is_not_found(session: AsyncSession) -> None:
    with pytest.raises(NotFound) as excinfo:
        await custom_field.get(session, field_id=999)
    assert excinfo.value.field == "field_id"


async def test_update_relabels_and_audits(session: AsyncSession) -> None:
    row = await define(session, "budget", "money")
    await custom_field.update(
        session, actor=ADMIN, field_id=row.id, data=CustomFieldUpdate(label="年度预算")
    )
    assert CustomFieldRead.model_validate(row).label == "年度预算"  # readable without a reload
    entries = await audit.history(session, entity="custom_field", entity_id=row.id)
    assert entries[0].action == "update"
    assert entries[0].changes == {"label": ["BUDGET", "年度预算"]}


async def test_update_refuses_options_on_non_select_and_inverted_bounds(
    session: AsyncSession,
) -> None:
    row = await define(session, "budget", "money", min_value=10)
    with pytest.raises(Invalid) as excinfo:
        await custom_field.update(
            session, actor=ADMIN, field_id=row.id, data=CustomFieldUpdate(options=["a"])
        )
    assert excinfo.value.field == "options"
    with pytest.raises(Invalid) as excinfo:
        await custom_field.update(
            session, actor=ADMIN, field_id=row.id, data=CustomFieldUpdate(max_value=5)
        )
    assert excinfo.value.field == "max_value"


async def test_rename_keeps_values_keyed_by_key(session: AsyncSession) -> None:
    row = await define(session, "tier", "single_select", options=["A", "B"])
    record = Record(custom=await check(session, tier="A"))
    session.add(record)
    await session.flush()

    await custom_field.update(
        session, actor=ADMIN, field_id=row.id, data=CustomFieldUpdate(label="客户等级")
    )
    stored = await session.scalar(select(Record.custom).where(Record.id == record.id))
    assert stored == {"tier": "A"}
    found = await session.scalars(
        select(Record.id).where(custom_field.filter_clause(Record.custom, row, "A"))
    )
    assert found.all() == [record.id]


async def test_retire_and_restore_are_audited_and_idempotent(session: AsyncSession) -> None:
    row = await define(session, "budget", "money")
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)
    retired_at = row.retired_at
    assert retired_at is not None
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)
    assert row.retired_at == retired_at
    await custom_field.restore(session, actor=ADMIN, field_id=row.id)
    assert CustomFieldRead.model_validate(row).retired_at is None
    actions = [e.action for e in await audit.history(session, entity="custom_field")]
    assert actions == ["restore", "retire", "create"]


# --- values: every type --------------------------------------------------------------------

SHANGHAI = timezone(timedelta(hours=8))

VALID: list[tuple[str, dict[str, Any], Any, Any]] = [
    ("text", {}, "  上海   某某 科技 ", "上海 某某 科技"),
    ("long_text", {}, " 第一行\r\n第二行 ", "第一行\n第二行"),
    ("number", {}, "12.50", "12.5"),
    ("number", {}, 3, "3"),
    ("number", {}, 0.1, "0.1"),
    ("number", {}, "1,234.5", "1234.5"),
    ("number", {}, "１２", "12"),
    ("number", {}, "1e3", "1000"),
    ("number", {}, "-0", "0"),
    ("money", {}, "12.5", "12.50"),
    ("money", {}, 100, "100.00"),
    ("money", {}, Decimal("-3.10"), "-3.10"),
    ("date", {}, "2026-11-23", "2026-11-23"),
    ("date", {}, "2026/1/5", "2026-01-05"),
    ("date", {}, "2026年11月23日", "2026-11-23"),
    ("date", {}, date(2026, 11, 23), "2026-11-23"),
    ("datetime", {}, "2026-11-23T09:30+08:00", "2026-11-23T01:30:00Z"),
    ("datetime", {}, "2026-11-23T01:30:00Z", "2026-11-23T01:30:00Z"),
    (
        "datetime",
        {},
        datetime(2026, 11, 23, 9, 30, 15, 999, tzinfo=SHANGHAI),
        "2026-11-23T01:30:15Z",
    ),
    ("single_select", {"options": ["小微", "中型"]}, " 中型 ", "中型"),
    ("multi_select", {"options": ["b", "a", "c"]}, ["c", "a", "a"], ["a", "c"]),
    ("boolean", {}, True, True),
    ("boolean", {}, False, False),
    ("boolean", {}, "是", True),
    ("boolean", {}, "FALSE", False),
    ("boolean", {}, 0, False),
    ("email", {}, " Zhang.San@QQ.com ", "zhang.san@qq.com"),
    ("phone", {}, "138 0013 8000", "+8613800138000"),
    ("phone", {}, "+86 10 8888 6666", "+861088886666"),
    ("url", {}, "HTTPS://Example.CN/a?b=1", "https://example.cn/a?b=1"),
    ("url", {}, "http://例子.中国", "http://例子.中国"),
]


@pytest.mark.parametrize(("type_", "extra", "raw", "stored"), VALID)
async def test_valid_value_is_stored_in_its_json_form(
    session: AsyncSession, type_: str, extra: dict[str, Any], raw: Any, stored: Any
) -> None:
    await define(session, "f", type_, **extra)
    result = await check(session, f=raw)
    assert result == {"f": stored}
    assert json.loads(json.dumps(result)) == result  # JSON-safe as it is


INVALID: list[tuple[str, dict[str, Any], Any, str]] = [
    ("text", {}, 123, "must be text"),
    ("text", {}, "x" * 501, "at most 500 characters"),
    ("text", {"max_value": 3}, "四个汉字", "at most 3 characters"),
    ("text", {"min_value": 2}, "a", "at least 2 characters"),
    ("long_text", {}, ["x"], "must be text"),
    ("number", {}, "abc", "must be a number"),
    ("number", {}, True, "must be a number"),
    ("number", {}, "NaN", "must be a number"),
    ("number", {}, float("inf"), "finite"),
    ("number", {}, "1.1234567", "at most 6 decimal places"),
    ("number", {}, "1" * 19, "at most 18 digits"),
    ("number", {}, "1,23", "must be a number"),
    ("number", {"min_value": 0, "max_value": 100}, "100.5", "at most 100"),
    ("number", {"min_value": 0}, -1, "at least 0"),
    ("money", {}, "3.456", "at most 2 decimal places"),
    ("money", {"max_value": Decimal("9.99")}, 10, "at most 9.99"),
    ("date", {}, "2026-02-30", "no such date"),
    ("date", {}, "23/11/2026", "must be a date"),
    ("date", {}, datetime(2026, 11, 23, tzinfo=UTC), "must be a date"),
    ("datetime", {}, "2026-11-23T09:30", "time zone"),
    ("datetime", {}, "tomorrow", "date and time"),
    ("datetime", {}, 1700000000, "date and time"),
    ("single_select", {"options": ["小微", "中型"]}, "巨型", "choose from: 小微, 中型"),
    ("single_select", {"options": ["A"]}, ["A"], "must be text"),
    ("multi_select", {"options": ["a", "b"]}, "a", "must be a list"),
    ("multi_select", {"options": ["a", "b"]}, ["a", "z"], "choose from: a, b"),
    (
        "multi_select",
        {"options": ["a", "b", "c"], "max_value": 2},
        ["a", "b", "c"],
        "at most 2 options",
    ),
    ("multi_select", {"options": ["a", "b", "c"], "min_value": 2}, ["a"], "at least 2 options"),
    ("boolean", {}, "maybe", "true or false"),
    ("boolean", {}, 2, "true or false"),
    ("email", {}, "not-an-email", "not a valid email"),
    ("email", {}, 5, "must be an email"),
    ("phone", {}, "12345", "not a valid phone number"),
    ("phone", {}, True, "must be a phone number"),
    ("url", {}, "ftp://example.cn", "http(s)"),
    ("url", {}, "example.cn", "http(s)"),
    ("url", {}, "http://", "http(s)"),
    ("url", {}, "javascript:alert(1)", "http(s)"),
    ("url", {}, "http://exa mple.cn", "web address"),
    ("url", {}, "http://example.cn:99999", "web address"),
    ("user", {}, "abc", "must be a user id"),
    ("user", {}, True, "must be a user id"),
    ("user", {}, 2**31, "must be a user id"),
    ("user", {}, 999, "no such active user"),
]


@pytest.mark.parametrize(("type_", "extra", "raw", "message"), INVALID)
async def test_invalid_value_is_refused_naming_the_field(
    session: AsyncSession, type_: str, extra: dict[str, Any], raw: Any, message: str
) -> None:
    await define(session, "f", type_, **extra)
    with pytest.raises(Invalid) as excinfo:
        await check(session, f=raw)
    field, text_ = invalid(excinfo)
    assert field == "custom.f"
    assert message in text_


async def test_user_value_is_an_existing_active_user_id(session: AsyncSession) -> None:
    await define(session, "engineer", "user")
    active = await add_user(session, "zhang")
    gone = await add_user(session, "li", active=False)
    assert await check(session, engineer=active.id) == {"engineer": active.id}
    assert await check(session, engineer=str(active.id)) == {"engineer": active.id}
    with pytest.raises(Invalid, match="no such active user"):
        await check(session, engineer=gone.id)


@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        places=2,
        min_value=Decimal("-1e12"),
        max_value=Decimal("1e12"),
    )
)
def test_number_and_money_forms_are_exact_and_stable(value: Decimal) -> None:
    for type_ in (FieldType.number, FieldType.money):
        definition = CustomField(key="f", type=type_.value)
        stored = custom_field.parse(definition, value)
        assert Decimal(stored) == value
        assert custom_field.parse(definition, stored) == stored
    assert custom_field.parse(CustomField(key="f", type="money"), value).count(".") == 1


# --- values: required, merge, order ----------------------------------------------------------


async def test_required_field_missing_on_create_is_refused(session: AsyncSession) -> None:
    await define(session, "budget", "money", required=True)
    for values in ({}, {"budget": None}, {"budget": "  "}):
        with pytest.raises(Invalid) as excinfo:
            await check(session, **values)
        assert invalid(excinfo) == ("custom.budget", "required")
    assert await check(session, budget=1) == {"budget": "1.00"}


async def test_required_boolean_false_counts_as_given(session: AsyncSession) -> None:
    await define(session, "signed", "boolean", required=True)
    assert await check(session, signed=False) == {"signed": False}


async def test_partial_update_merges_over_existing_and_none_clears(
    session: AsyncSession,
) -> None:
    await define(session, "tier", "single_select", options=["A", "B"])
    await define(session, "budget", "money")
    await define(session, "note", "text")
    existing = {"tier": "A", "budget": "10.00"}
    merged = await custom_field.validate_values(
        session, entity="customer", values={"budget": None, "note": "hi"}, existing=existing
    )
    assert merged == {"tier": "A", "note": "hi"}
    assert existing == {"tier": "A", "budget": "10.00"}  # the caller's dict is not changed


async def test_update_may_not_clear_a_required_field(session: AsyncSession) -> None:
    await define(session, "budget", "money", required=True)
    with pytest.raises(Invalid) as excinfo:
        await custom_field.validate_values(
            session, entity="customer", values={"budget": ""}, existing={"budget": "5.00"}
        )
    assert invalid(excinfo) == ("custom.budget", "required")


async def test_required_field_added_later_does_not_block_unrelated_updates(
    session: AsyncSession,
) -> None:
    await define(session, "note", "text")
    await define(session, "budget", "money", required=True)  # added after the record was made
    merged = await custom_field.validate_values(
        session, entity="customer", values={"note": "新备注"}, existing={"note": "旧"}
    )
    assert merged == {"note": "新备注"}


async def test_unknown_key_is_refused(session: AsyncSession) -> None:
    await define(session, "budget", "money")
    with pytest.raises(Invalid) as excinfo:
        await check(session, budget=1, nope="x")
    assert invalid(excinfo) == ("custom.nope", "unknown custom field")


async def test_key_of_another_entity_is_unknown(session: AsyncSession) -> None:
    await define(session, "wechat_group", "text", entity="contact")
    with pytest.raises(Invalid, match="unknown custom field"):
        await check(session, wechat_group="x")


async def test_first_problem_in_position_then_id_order_is_raised(session: AsyncSession) -> None:
    await define(session, "late", "number", position=5)
    await define(session, "early_b", "number", position=1)
    await define(session, "early_a", "number", position=1)  # same position, higher id
    with pytest.raises(Invalid) as excinfo:
        await check(session, late="x", early_a="x", early_b="x")
    assert excinfo.value.field == "custom.early_b"


async def test_result_is_in_form_order(session: AsyncSession) -> None:
    await define(session, "second", "text", position=2)
    await define(session, "first", "text", position=1)
    result = await check(session, second="2", first="1")
    assert list(result) == ["first", "second"]


async def test_values_must_be_an_object(session: AsyncSession) -> None:
    with pytest.raises(Invalid) as excinfo:
        await custom_field.validate_values(session, entity="customer", values=["x"])  # type: ignore[arg-type]
    assert excinfo.value.field == "custom"


# --- values: retired fields and removed options ----------------------------------------------


async def test_retire_keeps_values_but_refuses_new_writes(session: AsyncSession) -> None:
    row = await define(session, "budget", "money")
    await define(session, "note", "text")
    existing = await check(session, budget=10)
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)

    kept = await custom_field.validate_values(
        session, entity="customer", values={"note": "x"}, existing=existing
    )
    assert kept == {"budget": "10.00", "note": "x"}
    with pytest.raises(Invalid) as excinfo:
        await custom_field.validate_values(
            session, entity="customer", values={"budget": 20}, existing=existing
        )
    assert excinfo.value.field == "custom.budget"
    assert "retired" in excinfo.value.message
    with pytest.raises(Invalid, match="retired"):
        await check(session, budget=10)


async def test_retired_value_sent_back_unchanged_or_cleared_is_accepted(
    session: AsyncSession,
) -> None:
    row = await define(session, "budget", "money")
    existing = await check(session, budget="10")
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)
    echoed = await custom_field.validate_values(
        session, entity="customer", values={"budget": 10}, existing=existing
    )
    assert echoed == {"budget": "10.00"}
    cleared = await custom_field.validate_values(
        session, entity="customer", values={"budget": None}, existing=existing
    )
    assert cleared == {}


async def test_retired_field_is_no_longer_required(session: AsyncSession) -> None:
    row = await define(session, "budget", "money", required=True)
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)
    assert await check(session) == {}


async def test_restored_field_takes_writes_again(session: AsyncSession) -> None:
    row = await define(session, "budget", "money")
    await custom_field.retire(session, actor=ADMIN, field_id=row.id)
    await custom_field.restore(session, actor=ADMIN, field_id=row.id)
    assert await check(session, budget=3) == {"budget": "3.00"}


async def test_removed_option_is_kept_on_old_records_but_not_chosen_anew(
    session: AsyncSession,
) -> None:
    row = await define(session, "tier", "multi_select", options=["A", "B", "C"])
    existing = await check(session, tier=["A", "C"])
    await custom_field.update(
        session, actor=ADMIN, field_id=row.id, data=CustomFieldUpdate(options=["A", "B"])
    )
    echoed = await custom_field.validate_values(
        session, entity="customer", values={"tier": ["C", "A"]}, existing=existing
    )
    assert echoed == {"tier": ["A", "C"]}
    with pytest.raises(Invalid) as excinfo:
        await check(session, tier=["C"])
    assert "choose from: A, B" in excinfo.value.message


async def test_added_option_can_be_chosen(session: AsyncSession) -> None:
    row = await define(session, "tier", "single_select", options=["A"])
    await custom_field.update(
        session, actor=ADMIN, field_id=row.id, data=CustomFieldUpdate(options=["A", "新"])
    )
    assert await check(session, tier="新") == {"tier": "新"}


# --- filters (SQLite, and PostgreSQL when reachable) -----------------------------------------


async def _records(session: AsyncSession, *rows: dict[str, Any]) -> list[int]:
    """Store records as a service would: each custom dict through validate_values."""
    ids = []
    for values in rows:
        record = Record(custom=await check(session, **values))
        session.add(record)
        await session.flush()
        ids.append(record.id)
    return ids


async def _matching(session: AsyncSession, definition: CustomField, value: str) -> list[int]:
    clause = custom_field.filter_clause(Record.custom, definition, value)
    return list((await session.scalars(select(Record.id).where(clause).order_by(Record.id))).all())


async def test_filter_single_select(any_session: AsyncSession) -> None:
    s = any_session
    tier = await define(s, "tier", "single_select", options=["大型", "中型", "100%_off"])
    big, mid, odd, _none = await _records(
        s, {"tier": "大型"}, {"tier": "中型"}, {"tier": "100%_off"}, {}
    )
    assert await _matching(s, tier, "大型") == [big]
    assert await _matching(s, tier, " 中型 ") == [mid]
    assert await _matching(s, tier, "100%_off") == [odd]
    assert await _matching(s, tier, "小型") == []


async def test_filter_multi_select_contains_option(any_session: AsyncSession) -> None:
    s = any_session
    tags = await define(s, "tags", "multi_select", options=["A", "AB", "渠道", 'say "hi"', "50%"])
    a_only, ab_only, both, quoted, _none = await _records(
        s,
        {"tags": ["A", "渠道"]},
        {"tags": ["AB"]},
        {"tags": ["AB", "A"]},
        {"tags": ['say "hi"', "50%"]},
        {},
    )
    assert await _matching(s, tags, "A") == [a_only, both]
    assert await _matching(s, tags, "AB") == [ab_only, both]
    assert await _matching(s, tags, "渠道") == [a_only]
    assert await _matching(s, tags, 'say "hi"') == [quoted]
    assert await _matching(s, tags, "50%") == [quoted]
    assert await _matching(s, tags, "%") == []


async def test_filter_boolean(any_session: AsyncSession) -> None:
    s = any_session
    signed = await define(s, "signed", "boolean")
    yes, no, _unset = await _records(s, {"signed": True}, {"signed": False}, {})
    assert await _matching(s, signed, "true") == [yes]
    assert await _matching(s, signed, "false") == [no]


async def test_filter_number_by_normalised_form(any_session: AsyncSession) -> None:
    s = any_session
    size = await define(s, "size", "number")
    ten, ten_half, _ = await _records(s, {"size": 10}, {"size": "10.50"}, {"size": 100})
    assert await _matching(s, size, "10") == [ten]
    assert await _matching(s, size, "10.5") == [ten_half]
    assert await _matching(s, size, "10.500") == [ten_half]


async def test_filter_money_by_normalised_form(any_session: AsyncSession) -> None:
    s = any_session
    budget = await define(s, "budget", "money")
    first, _ = await _records(s, {"budget": "12.5"}, {"budget": "125"})
    assert await _matching(s, budget, "12.50") == [first]
    assert await _matching(s, budget, "12.5") == [first]


async def test_filter_text_is_exact(any_session: AsyncSession) -> None:
    s = any_session
    city = await define(s, "city", "text")
    sh, _ = await _records(s, {"city": "上海"}, {"city": "上海浦东"})
    assert await _matching(s, city, "上海") == [sh]
    assert await _matching(s, city, "浦东") == []


async def test_filter_date_and_datetime(any_session: AsyncSession) -> None:
    s = any_session
    due = await define(s, "due", "date")
    met = await define(s, "met", "datetime")
    first, _ = await _records(
        s,
        {"due": "2026-11-23", "met": "2026-11-23T09:30+08:00"},
        {"due": "2026-11-24", "met": "2026-11-23T09:30Z"},
    )
    assert await _matching(s, due, "2026/11/23") == [first]
    assert await _matching(s, met, "2026-11-23T01:30:00+00:00") == [first]


async def test_filter_user_and_phone(any_session: AsyncSession) -> None:
    s = any_session
    engineer = await define(s, "engineer", "user")
    mobile = await define(s, "mobile", "phone")
    zhang = await add_user(s, "zhang")
    li = await add_user(s, "li")
    first, _ = await _records(
        s, {"engineer": zhang.id, "mobile": "13800138000"}, {"engineer": li.id}
    )
    assert await _matching(s, engineer, str(zhang.id)) == [first]
    assert await _matching(s, mobile, "138 0013 8000") == [first]


@pytest.mark.parametrize(
    ("type_", "value"), [("number", "abc"), ("boolean", "maybe"), ("date", "soon"), ("text", " ")]
)
async def test_filter_value_that_does_not_parse_is_invalid(
    session: AsyncSession, type_: str, value: str
) -> None:
    definition = await define(session, "f", type_)
    with pytest.raises(Invalid) as excinfo:
        custom_field.filter_clause(Record.custom, definition, value)
    assert excinfo.value.field == "custom.f"
