"""The import write (domain/imports/bulk.py and service.write) driven directly, without Temporal,
in chunks of two rows: duplicates inside a chunk and across chunks, merges into stored records,
the dry run's judged file, a resumed write and contacts — on SQLite and PostgreSQL."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import custom_field, user
from domain.access import SYSTEM, Actor, Role, Source
from domain.audit import AuditLog
from domain.custom_field import CustomFieldCreate
from domain.customer import Contact, Customer, CustomerCreate, Kind
from domain.customer import service as customer_service
from domain.customer.models import CustomerTag
from domain.db import transaction
from domain.imports import Entity, judged, service
from domain.imports.dedupe import Index
from domain.imports.models import Import, ImportProblem, ImportRow, Status, Strategy
from domain.imports.schemas import ImportOptions
from domain.settings import Settings
from domain.timeline import TimelineEvent
from tests.conftest import MakeUser
from tests.imports import xlsx

Sessions = async_sessionmaker[AsyncSession]


def noop(_done: int) -> None:
    return None


@pytest.fixture
def small(settings: Settings) -> Settings:
    """Chunks of two rows, so a handful of rows spans several chunks."""
    return settings.model_copy(update={"import_chunk_rows": 2})


@pytest.fixture
async def admin(make_user: MakeUser, sessions: Sessions) -> Actor:
    made = await make_user("root", Role.admin)
    await make_user("sales1", display_name="李销售")
    async with sessions() as session:
        return await user.actor_for(session, user=made, source=Source.page)


async def _custom_field(sessions: Sessions, key: str, label: str, type_: str) -> None:
    async with transaction(sessions) as session:
        await custom_field.create(session, actor=SYSTEM, data=CustomFieldCreate(
            entity="customer", key=key, label=label, type=type_))


async def _upload(sessions: Sessions, settings: Settings, actor: Actor, data: bytes, *,
                  entity: Entity = Entity.customers, strategy: Strategy = Strategy.skip) -> int:
    async with transaction(sessions) as session:
        imp = await service.upload(session, actor=actor, settings=settings, entity=entity,
                                   filename="导入.xlsx", data=data)
        await service.configure(session, actor=actor, settings=settings, import_id=imp.id,
                                options=ImportOptions(strategy=strategy))
        return imp.id


async def _write(sessions: Sessions, settings: Settings, import_id: int) -> Import:
    """Write until done, as the workflow's activities do, then finish."""
    while not (await service.write(sessions, settings, import_id=import_id,
                                   heartbeat=noop)).done:
        pass
    assert gc.get_freeze_count() == 0  # the pass froze the heap between chunks, and let go
    await service.finish(sessions, settings, import_id=import_id, status=Status.done, error=None)
    return await _import_row(sessions, import_id)


async def _run(sessions: Sessions, settings: Settings, actor: Actor, rows: list[list[Any]], *,
               entity: Entity = Entity.customers, strategy: Strategy = Strategy.skip) -> Import:
    """Upload, dry run and write a sheet."""
    import_id = await _upload(sessions, settings, actor, xlsx(rows), entity=entity,
                              strategy=strategy)
    await service.check(sessions, settings, import_id=import_id, heartbeat=noop)
    return await _write(sessions, settings, import_id)


async def _import_row(sessions: Sessions, import_id: int) -> Import:
    async with sessions() as session:
        imp = await session.get(Import, import_id)
        assert imp is not None
        return imp


def _counts(imp: Import) -> tuple[int, int, int, int]:
    return imp.created_count, imp.updated_count, imp.skipped_count, imp.error_count


async def _customers(sessions: Sessions) -> dict[str, Customer]:
    async with sessions() as session:
        found = (await session.scalars(select(Customer).order_by(Customer.id))).all()
    return {c.name: c for c in found}


Outcomes = dict[int, tuple[str, int | None, str | None]]
"""Ledger row → (outcome, record id, matched by)."""


async def _ledger(sessions: Sessions, import_id: int) -> Outcomes:
    async with sessions() as session:
        found = await session.scalars(select(ImportRow).where(ImportRow.import_id == import_id))
        return {r.row: (r.outcome, r.entity_id, r.matched_by) for r in found.all()}


async def _audit(sessions: Sessions, entity: str, action: str) -> list[AuditLog]:
    async with sessions() as session:
        found = await session.scalars(select(AuditLog).where(
            AuditLog.entity == entity, AuditLog.action == action).order_by(AuditLog.id))
        return list(found.all())


async def _events(sessions: Sessions, kind: str) -> list[TimelineEvent]:
    async with sessions() as session:
        found = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == kind).order_by(TimelineEvent.id))
        return list(found.all())


# --- a. duplicates inside one chunk and across chunks -----------------------------------------

HEADER = ["客户名称", "手机号", "邮箱", "行业", "城市", "来源", "标签", "区域代码"]
DUPLICATES = [
    HEADER,
    # chunk 1: row 3 is row 2's company (by name), merged before it is written
    ["杭州青禾食品有限公司", "13800138000", None, None, "杭州", None, "重点", None],
    ["杭州青禾食品有限公司", None, "info@qinghe.cn", "食品", "宁波", None, "华东", "A1"],
    # chunk 2
    ["宁波海岳贸易有限公司", "13900139000", None, None, "宁波", None, None, None],
    ["温州金达机械有限公司", "13700137000", None, "机械", "温州", None, "老客户", None],
    # chunk 3: rows 6 and 7 are records chunks 1 and 2 wrote (by phone)
    ["宁波海岳贸易有限公司", "139 0013 9000", None, "贸易", "舟山", None, "新客户", "B2"],
    ["杭州青禾食品有限公司", "+86 138 0013 8000", None, None, "上海", "展会", "VIP", "C3"],
    # chunk 4
    ["坏电话公司", "12345", None, None, None, None, None, None],
]
MERGED = {
    Strategy.fill_empty: {
        "杭州青禾食品有限公司": ("info@qinghe.cn", "食品", "杭州", "展会", ["重点"],
                                 {"region": "A1"}),
        "宁波海岳贸易有限公司": (None, "贸易", "宁波", None, ["新客户"], {"region": "B2"}),
        "温州金达机械有限公司": (None, "机械", "温州", None, ["老客户"], {}),
    },
    Strategy.overwrite: {
        "杭州青禾食品有限公司": ("info@qinghe.cn", "食品", "上海", "展会", ["VIP"],
                                 {"region": "C3"}),
        "宁波海岳贸易有限公司": (None, "贸易", "舟山", None, ["新客户"], {"region": "B2"}),
        "温州金达机械有限公司": (None, "机械", "温州", None, ["老客户"], {}),
    },
}


@pytest.mark.parametrize("strategy", [Strategy.fill_empty, Strategy.overwrite])
async def test_duplicates_in_and_across_chunks_merge_into_the_record_the_first_row_creates(
    sessions: Sessions, small: Settings, admin: Actor, strategy: Strategy,
) -> None:
    await _custom_field(sessions, "region", "区域代码", "text")
    imp = await _run(sessions, small, admin, DUPLICATES, strategy=strategy)

    customers = await _customers(sessions)
    assert {name: (c.email, c.industry, c.city, c.source, c.tags, c.custom)
            for name, c in customers.items()} == MERGED[strategy]
    qinghe, haiyue, jinda = (customers[n].id for n in MERGED[strategy])
    assert _counts(imp) == (3, 2, 1, 1)  # created, updated, skipped (unchanged), errors
    assert await _ledger(sessions, imp.id) == {
        2: ("created", qinghe, None),
        3: ("unchanged", qinghe, "name"),  # merged into the record row 2 creates
        4: ("created", haiyue, None),
        5: ("created", jinda, None),
        6: ("updated", haiyue, "phone"),
        7: ("updated", qinghe, "phone"),
        8: ("invalid", None, None),
    }


@pytest.mark.parametrize("strategy", [Strategy.fill_empty, Strategy.overwrite])
async def test_each_created_customer_has_one_create_entry_and_one_created_event(
    sessions: Sessions, small: Settings, admin: Actor, strategy: Strategy,
) -> None:
    await _custom_field(sessions, "region", "区域代码", "text")
    imp = await _run(sessions, small, admin, DUPLICATES, strategy=strategy)
    customers = await _customers(sessions)
    ids = {c.id: name for name, c in customers.items()}

    creates = await _audit(sessions, "customer", "create")
    assert sorted(e.entity_id for e in creates) == sorted(ids)
    rows = {ids[e.entity_id]: e.changes["_note"] for e in creates}
    assert rows == {"杭州青禾食品有限公司": {"import_id": imp.id, "row": 2},
                    "宁波海岳贸易有限公司": {"import_id": imp.id, "row": 4},
                    "温州金达机械有限公司": {"import_id": imp.id, "row": 5}}
    qinghe = next(e for e in creates if ids[e.entity_id] == "杭州青禾食品有限公司")
    assert qinghe.changes["industry"] == [None, "食品"]  # the record as row 3 left it
    assert all(e.source == "imports" and e.actor_name == "root" for e in creates)

    events = await _events(sessions, "customer.created")
    assert Counter(e.customer_id for e in events) == Counter(list(ids))
    assert {(e.customer_id, e.ref_entity, e.ref_id, e.summary) for e in events} == {
        (i, "customer", i, name) for i, name in ids.items()}


async def test_with_skip_duplicates_change_nothing_but_still_name_their_record(
    sessions: Sessions, small: Settings, admin: Actor,
) -> None:
    await _custom_field(sessions, "region", "区域代码", "text")
    imp = await _run(sessions, small, admin, DUPLICATES, strategy=Strategy.skip)

    customers = await _customers(sessions)
    assert {name: (c.email, c.industry, c.city, c.source, c.tags, c.custom)
            for name, c in customers.items()} == {
        "杭州青禾食品有限公司": (None, None, "杭州", None, ["重点"], {}),
        "宁波海岳贸易有限公司": (None, None, "宁波", None, [], {}),
        "温州金达机械有限公司": (None, "机械", "温州", None, ["老客户"], {}),
    }
    qinghe, haiyue, jinda = (c.id for c in customers.values())
    assert _counts(imp) == (3, 0, 3, 1)
    assert await _ledger(sessions, imp.id) == {
        2: ("created", qinghe, None),
        3: ("skipped", qinghe, "name"),
        4: ("created", haiyue, None),
        5: ("created", jinda, None),
        6: ("skipped", haiyue, "phone"),
        7: ("skipped", qinghe, "phone"),
        8: ("invalid", None, None),
    }
    assert await _audit(sessions, "customer", "update") == []


# --- b. merging into customers already in the database ----------------------------------------

STORED = [
    ["客户名称", "手机号", "行业", "城市", "标签"],
    ["杭州青禾食品有限公司", "13800138000", None, "杭州", "重点"],
    ["宁波海岳贸易有限公司", "13900139000", "贸易", "宁波", None],
    ["温州金达机械有限公司", "13700137000", "机械", "温州", "老客户"],
]
AGAIN = [
    ["客户名称", "手机号", "行业", "城市", "标签"],
    ["杭州青禾食品有限公司", "13800138000", "食品", "上海", "华东"],
    ["宁波海岳贸易有限公司", "13900139000", "物流", None, "新客户"],
    ["温州金达机械有限公司", "13700137000", "机械", "温州", "老客户"],  # the same as stored
]


async def _stored_then_again(sessions: Sessions, settings: Settings, actor: Actor,
                             strategy: Strategy) -> tuple[dict[str, Customer], Import]:
    first = await _run(sessions, settings, actor, STORED)
    assert _counts(first) == (3, 0, 0, 0)
    second = await _run(sessions, settings, actor, AGAIN, strategy=strategy)
    return await _customers(sessions), second


def _fields(customers: dict[str, Customer]) -> dict[str, tuple[Any, ...]]:
    return {name: (c.industry, c.city, c.tags) for name, c in customers.items()}


async def test_fill_empty_fills_only_empty_fields_and_tags_only_where_there_are_none(
    sessions: Sessions, small: Settings, admin: Actor,
) -> None:
    customers, imp = await _stored_then_again(sessions, small, admin, Strategy.fill_empty)
    assert _fields(customers) == {
        "杭州青禾食品有限公司": ("食品", "杭州", ["重点"]),
        "宁波海岳贸易有限公司": ("贸易", "宁波", ["新客户"]),
        "温州金达机械有限公司": ("机械", "温州", ["老客户"]),
    }
    assert _counts(imp) == (0, 2, 1, 0)
    updates = await _audit(sessions, "customer", "update")
    assert {e.entity_id: e.changes for e in updates} == {
        customers["杭州青禾食品有限公司"].id: {
            "industry": [None, "食品"], "_note": {"import_id": imp.id, "row": 2}},
        customers["宁波海岳贸易有限公司"].id: {
            "tags": [[], ["新客户"]], "_note": {"import_id": imp.id, "row": 3}},
    }


async def test_overwrite_replaces_the_values_and_tags_a_row_gives(
    sessions: Sessions, small: Settings, admin: Actor,
) -> None:
    customers, imp = await _stored_then_again(sessions, small, admin, Strategy.overwrite)
    assert _fields(customers) == {
        "杭州青禾食品有限公司": ("食品", "上海", ["华东"]),
        "宁波海岳贸易有限公司": ("物流", "宁波", ["新客户"]),  # a blank cell clears nothing
        "温州金达机械有限公司": ("机械", "温州", ["老客户"]),
    }
    assert _counts(imp) == (0, 2, 1, 0)
    updates = await _audit(sessions, "customer", "update")
    assert {e.entity_id: e.changes for e in updates} == {
        customers["杭州青禾食品有限公司"].id: {
            "industry": [None, "食品"], "city": ["杭州", "上海"], "tags": [["重点"], ["华东"]],
            "_note": {"import_id": imp.id, "row": 2}},
        customers["宁波海岳贸易有限公司"].id: {
            "industry": ["贸易", "物流"], "tags": [[], ["新客户"]],
            "_note": {"import_id": imp.id, "row": 3}},
    }


async def test_skip_changes_nothing(sessions: Sessions, small: Settings, admin: Actor) -> None:
    customers, imp = await _stored_then_again(sessions, small, admin, Strategy.skip)
    assert _fields(customers) == {
        "杭州青禾食品有限公司": (None, "杭州", ["重点"]),
        "宁波海岳贸易有限公司": ("贸易", "宁波", []),
        "温州金达机械有限公司": ("机械", "温州", ["老客户"]),
    }
    assert _counts(imp) == (0, 0, 3, 0)
    assert await _audit(sessions, "customer", "update") == []
    ledger = await _ledger(sessions, imp.id)
    assert {row: outcome for row, (outcome, _, _) in ledger.items()} == {
        2: "skipped", 3: "skipped", 4: "skipped"}


@pytest.mark.parametrize("strategy", [Strategy.skip, Strategy.fill_empty])
async def test_a_company_row_matching_a_person_is_refused_whatever_the_strategy(
    sessions: Sessions, small: Settings, admin: Actor, strategy: Strategy,
) -> None:
    async with transaction(sessions) as session:
        person = await customer_service.create(session, actor=admin, data=CustomerCreate(
            kind=Kind.person, name="林晓", phone="13800138000"))
    imp = await _run(sessions, small, admin, [["客户名称", "客户类型", "手机号"],
                                              ["林晓贸易有限公司", "企业", "138 0013 8000"]],
                     strategy=strategy)
    assert await _ledger(sessions, imp.id) == {2: ("invalid", None, None)}
    async with sessions() as session:
        (problem,) = (await session.scalars(select(ImportProblem).where(
            ImportProblem.import_id == imp.id))).all()
    assert (problem.row, problem.column, problem.value) == (2, "客户类型", "company")
    assert problem.message == f"matches #{person.id} by phone, a person customer"
    assert list(await _customers(sessions)) == ["林晓"]


# --- c. the dry run's judged file, and a resumed write ----------------------------------------

VARIED = [
    ["客户名称", "客户类型", "手机号", "邮箱", "行业", "生日", "负责人", "标签", "评分", "备用"],
    ["杭州青禾食品科技发展有限公司", "企业", "13800138000", None, "食品", None, "sales1",
     "重点,华东", 88, "甲"],
    ["林晓", "个人", "13900139000", None, None, "1990年5月6日", None, None, None, "乙"],
    # a company whose name is nearly row 2's (one character left out)
    ["杭州青禾食品科技展有限公司", "企业", None, "Info@QingHe.cn", None, None, "李销售",
     "VIP", 90.5, None],
    ["宁波海岳贸易有限公司", "企业", "13700137000", None, "贸易", None, None, None, None, None],
    ["林晓", "个人", "139-0013-9000", "lin@xiao.cn", None, "1990-05-06", None, "老客户", 3,
     None],
    ["坏电话公司", "企业", "12345", None, None, None, None, None, None, None],
    ["温州金达机械有限公司", None, "+86 137 1111 2222", None, "机械", None, "sales1", None,
     None, None],
    ["宁波海岳贸易有限公司", "企业", None, "sales@haiyue.cn", "物流", None, None, "展会", 7,
     "丙"],
]
SKIPPED = {"id", "created_at", "updated_at"}


async def _snapshot(sessions: Sessions, import_id: int) -> dict[str, Any]:
    """Everything an import wrote, without ids and times, comparable between two imports."""
    async with sessions() as session:
        customers = (await session.scalars(select(Customer).order_by(Customer.id))).all()
        names = {c.id: c.name for c in customers}
        columns = [c.key for c in Customer.__table__.columns if c.key not in SKIPPED]
        ledger = (await session.scalars(select(ImportRow).where(
            ImportRow.import_id == import_id).order_by(ImportRow.row))).all()
        problems = (await session.scalars(select(ImportProblem).where(
            ImportProblem.import_id == import_id).order_by(ImportProblem.row,
                                                           ImportProblem.column))).all()
        imp = await session.get(Import, import_id)
        assert imp is not None
        return {
            "customers": [(tuple(getattr(c, k) for k in columns), c.tags) for c in customers],
            "ledger": [(r.row, r.outcome, r.matched_by, names.get(r.entity_id or 0))
                       for r in ledger],
            "problems": [(p.row, p.column, p.value, p.message) for p in problems],
            "counts": (*_counts(imp), imp.done_rows),
        }


async def _forget_customers(sessions: Sessions) -> None:
    """A fresh start for the next import (tags and timeline go with their customers)."""
    async with transaction(sessions) as session:
        await session.execute(delete(Customer))
    async with sessions() as session:
        assert (await session.scalars(select(CustomerTag))).all() == []


def _spy_on_judged_rows(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, per write, whether it read the dry run's judged rows back."""
    used: list[bool] = []
    rows_after: Callable[..., Any] = judged.rows_after

    def spy(*args: Any, **kwargs: Any) -> Any:
        kept = rows_after(*args, **kwargs)
        used.append(kept is not None)
        return kept

    monkeypatch.setattr(judged, "rows_after", spy)
    return used


async def _checked_import(sessions: Sessions, settings: Settings, actor: Actor) -> int:
    import_id = await _upload(sessions, settings, actor, xlsx(VARIED),
                              strategy=Strategy.fill_empty)
    summary = await service.check(sessions, settings, import_id=import_id, heartbeat=noop)
    assert (summary.new_rows, summary.matched_rows, summary.invalid_rows) == (4, 3, 1)
    imp = await _import_row(sessions, import_id)
    assert judged.path_of(service.file_path(settings, imp)).exists()
    return import_id


async def _judged_with(sessions: Sessions, settings: Settings, actor: Actor,
                       monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The customers of VARIED written from the dry run's judged file."""
    await _custom_field(sessions, "score", "评分", "number")
    used = _spy_on_judged_rows(monkeypatch)
    import_id = await _checked_import(sessions, settings, actor)
    await _write(sessions, settings, import_id)
    assert used == [True]
    imp = await _import_row(sessions, import_id)
    kept = judged.path_of(service.file_path(settings, imp))
    assert not kept.exists() and not judged.answers_of(kept).exists()  # gone once finished
    assert service.file_path(settings, imp).exists()  # the upload stays, for the error report
    return await _snapshot(sessions, import_id)


async def _spoil(sessions: Sessions, settings: Settings, import_id: int, how: str) -> None:
    imp = await _import_row(sessions, import_id)
    if how == "deleted":
        judged.path_of(service.file_path(settings, imp)).unlink()
    elif how == "garbled":  # e.g. the JSON lines an older version kept
        judged.path_of(service.file_path(settings, imp)).write_text('{"row": 2}\n')
    else:  # the unused column 备用 named as left out: the same rows, another fingerprint
        async with transaction(sessions) as session:
            row = await session.get(Import, import_id)
            assert row is not None and "备用" not in row.mapping
            row.mapping = {**row.mapping, "备用": ""}


@pytest.mark.parametrize("how", ["deleted", "garbled", "remapped"])
async def test_a_write_without_a_usable_judged_file_writes_the_same_customers(
    sessions: Sessions, small: Settings, admin: Actor, monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    expected = await _judged_with(sessions, small, admin, monkeypatch)
    assert expected["counts"] == (4, 3, 0, 1, 8)
    assert len(expected["customers"]) == 4
    await _forget_customers(sessions)

    used = _spy_on_judged_rows(monkeypatch)
    import_id = await _checked_import(sessions, small, admin)
    await _spoil(sessions, small, import_id, how)
    await _write(sessions, small, import_id)
    assert used == [False]  # judged again from the sheet
    assert await _snapshot(sessions, import_id) == expected


async def test_a_write_judges_again_when_the_users_changed_since_the_dry_run(
    sessions: Sessions, small: Settings, admin: Actor, make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dry run refused an owner nobody was called; by the write, that user exists."""
    import_id = await _upload(sessions, small, admin,
                              xlsx([["客户名称", "负责人"], ["杭州青禾食品有限公司", "王五"]]))
    summary = await service.check(sessions, small, import_id=import_id, heartbeat=noop)
    assert (summary.new_rows, summary.invalid_rows) == (0, 1)
    wang = await make_user("wangwu", display_name="王五")
    used = _spy_on_judged_rows(monkeypatch)
    imp = await _write(sessions, small, import_id)
    assert used == [False]  # judged again from the sheet
    assert _counts(imp) == (1, 0, 0, 0)
    assert (await _customers(sessions))["杭州青禾食品有限公司"].owner_id == wang.id


class Killed(Exception):
    """The worker dying right after a chunk committed."""


@pytest.mark.parametrize("judged_file", ["kept", "deleted"])
async def test_a_resumed_write_writes_no_row_twice(
    sessions: Sessions, small: Settings, admin: Actor, monkeypatch: pytest.MonkeyPatch,
    judged_file: str,
) -> None:
    expected = await _judged_with(sessions, small, admin, monkeypatch)
    await _forget_customers(sessions)

    import_id = await _checked_import(sessions, small, admin)
    if judged_file == "deleted":
        await _spoil(sessions, small, import_id, "deleted")

    def die(_done: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        await service.write(sessions, small, import_id=import_id, heartbeat=die)
    stopped = await _import_row(sessions, import_id)
    assert (stopped.done_rows, stopped.resume_after_row) == (2, 3)
    assert sorted(await _ledger(sessions, import_id)) == [2, 3]

    imp = await _write(sessions, small, import_id)  # the retried activity
    assert await _snapshot(sessions, import_id) == expected
    assert sorted(await _ledger(sessions, import_id)) == list(range(2, 10))
    customers = await _customers(sessions)
    creates = [e for e in await _audit(sessions, "customer", "create")
               if e.changes["_note"]["import_id"] == import_id]
    assert sorted(e.entity_id for e in creates) == sorted(c.id for c in customers.values())
    events = await _events(sessions, "customer.created")
    assert Counter(e.customer_id for e in events) == Counter(c.id for c in customers.values())
    assert sum(_counts(imp)) == imp.done_rows == 8


SIMILAR = [["客户名称", "手机号"], ["上海云杉智能讯息科技有限公司", "13800138000"],
           ["宁波海岳贸易有限公司", "139 0013 9000"]]
"""Row 2: a company the dry run finds nothing like (上海云杉智能信息科技有限公司 is 90% like
it); row 3: the phone of a stored customer."""


@pytest.mark.parametrize("changed", [False, True])
async def test_the_write_asks_the_database_again_only_when_customers_changed(
    sessions: Sessions, small: Settings, admin: Actor, monkeypatch: pytest.MonkeyPatch,
    changed: bool,
) -> None:
    async with transaction(sessions) as session:
        stored = await customer_service.create(session, actor=admin, data=CustomerCreate(
            kind=Kind.company, name="宁波海岳贸易有限公司", phone="13900139000"))
    import_id = await _upload(sessions, small, admin, xlsx(SIMILAR))
    summary = await service.check(sessions, small, import_id=import_id, heartbeat=noop)
    assert (summary.new_rows, summary.matched_rows) == (1, 1)
    if changed:  # someone adds the similar company between the dry run and the write
        async with transaction(sessions) as session:
            other = await customer_service.create(session, actor=admin, data=CustomerCreate(
                kind=Kind.company, name="上海云杉智能信息科技有限公司"))
    asked: list[str] = []
    similar, load = Index._similar, Index._load_customers

    async def similar_spy(self: Index, session: AsyncSession, name_key: str) -> Any:
        asked.append(f"similar {name_key}")
        return await similar(self, session, name_key)

    async def load_spy(self: Index, session: AsyncSession, wanted: dict[str, set[str]]
                       ) -> None:
        asked.extend(f"key {key}" for key in wanted)
        await load(self, session, wanted)

    monkeypatch.setattr(Index, "_similar", similar_spy)
    monkeypatch.setattr(Index, "_load_customers", load_spy)
    imp = await _write(sessions, small, import_id)

    ledger = await _ledger(sessions, import_id)
    assert ledger[3] == ("skipped", stored.id, "phone")  # from the database, or its answer
    if changed:
        assert "similar 上海云杉智能讯息科技" in asked and "key phone" in asked
        assert ledger[2] == ("skipped", other.id, "name ~90%")
        assert _counts(imp) == (0, 0, 2, 0)
    else:
        assert asked == []  # the dry run's answers stand
        assert _counts(imp) == (1, 0, 1, 0)
        assert set(await _customers(sessions)) == {"宁波海岳贸易有限公司",
                                                   "上海云杉智能讯息科技有限公司"}


async def test_a_row_like_an_earlier_new_row_of_its_chunk_matches_it_when_customers_unchanged(
    sessions: Sessions, small: Settings, admin: Actor,
) -> None:
    """The earlier row needs no similar-name lookup in the write, yet the later one must still
    find it among the names."""
    rows = [["客户名称"], ["上海云杉智能信息科技有限公司"], ["上海云杉智能讯息科技有限公司"]]
    import_id = await _upload(sessions, small, admin, xlsx(rows))
    summary = await service.check(sessions, small, import_id=import_id, heartbeat=noop)
    assert (summary.new_rows, summary.matched_rows) == (1, 1)
    imp = await _write(sessions, small, import_id)
    (created,) = (await _customers(sessions)).values()
    assert await _ledger(sessions, import_id) == {
        2: ("created", created.id, None), 3: ("skipped", created.id, "name ~90%")}
    assert _counts(imp) == (1, 0, 1, 0)


# --- d. contacts --------------------------------------------------------------------------------


async def test_two_contacts_sharing_a_mobile_in_one_chunk_make_one_contact(
    sessions: Sessions, small: Settings, admin: Actor,
) -> None:
    await _run(sessions, small, admin, [["客户名称", "手机号"],
                                       ["杭州青禾食品有限公司", "13800138000"]])
    (company,) = (await _customers(sessions)).values()
    contacts = [
        ["公司名称", "联系人", "手机", "职位", "部门"],
        ["杭州青禾食品有限公司", "王芳", "13900139000", "采购经理", None],
        ["杭州青禾食品有限公司", "王芳", "139-0013-9000", "采购总监", "采购部"],
    ]
    imp = await _run(sessions, small, admin, contacts, entity=Entity.contacts,
                     strategy=Strategy.overwrite)

    async with sessions() as session:
        (wang,) = (await session.scalars(select(Contact))).all()
    assert (wang.customer_id, wang.name, wang.mobile, wang.title, wang.department) == (
        company.id, "王芳", "+8613900139000", "采购总监", "采购部")
    assert _counts(imp) == (1, 0, 1, 0)
    assert await _ledger(sessions, imp.id) == {
        2: ("created", wang.id, None), 3: ("unchanged", wang.id, "mobile")}
    (added,) = await _events(sessions, "contact.added")
    assert (added.customer_id, added.ref_entity, added.ref_id, added.summary) == (
        company.id, "contact", wang.id, "王芳")
    (created,) = await _audit(sessions, "contact", "create")
    assert created.entity_id == wang.id
    assert created.changes["_note"] == {"import_id": imp.id, "row": 2}



async def test_a_contact_whose_company_is_imported_after_the_dry_run_is_written(
    sessions: Sessions, small: Settings, admin: Actor, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dry run names the missing company and says to import it first; done before the
    write, the write finds it: that problem belonged to the database, not to the row."""
    import_id = await _upload(sessions, small, admin, xlsx([
        ["公司名称", "联系人", "手机"], ["杭州青禾食品有限公司", "王芳", "13900139000"]]),
        entity=Entity.contacts)
    summary = await service.check(sessions, small, import_id=import_id, heartbeat=noop)
    assert (summary.new_rows, summary.invalid_rows) == (0, 1)
    async with transaction(sessions) as session:
        company = await customer_service.create(session, actor=admin, data=CustomerCreate(
            kind=Kind.company, name="杭州青禾食品有限公司"))
    used = _spy_on_judged_rows(monkeypatch)
    imp = await _write(sessions, small, import_id)
    assert used == [True]  # the rows as the dry run judged them
    assert _counts(imp) == (1, 0, 0, 0)
    async with sessions() as session:
        (wang,) = (await session.scalars(select(Contact))).all()
    assert (wang.customer_id, wang.name, wang.mobile) == (company.id, "王芳", "+8613900139000")


LEARNED = [
    ["客户名称", "手机号", "邮箱"],
    ["甲贸易有限公司", "13800138000", None],
    ["甲贸易有限公司", None, "jia@jia.cn"],  # merged into row 2's record: gives it the e-mail
    ["乙物流有限公司", "13900139000", None],
    ["丙科技有限公司", None, "jia@jia.cn"],  # the e-mail row 3 gave 甲
]


async def test_a_key_a_merge_gave_a_record_matches_later_rows(
    sessions: Sessions, small: Settings, admin: Actor,
) -> None:
    imp = await _run(sessions, small, admin, LEARNED, strategy=Strategy.fill_empty)
    customers = await _customers(sessions)
    jia = customers["甲贸易有限公司"]
    assert (jia.phone, jia.email) == ("+8613800138000", "jia@jia.cn")
    assert sorted(customers) == ["乙物流有限公司", "甲贸易有限公司"]
    assert (await _ledger(sessions, imp.id))[5] == ("unchanged", jia.id, "email")
