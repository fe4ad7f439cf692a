"""Merge duplicate customers into one survivor, and undo a merge within the undo window.

A merge is one transaction: the survivor takes the chosen field values and the union of the
tags, every row pointing at an absorbed customer (contacts, leads, deals, quotes, contracts,
orders, tickets, follow-ups, tasks, timeline, calls, behaviour, purchases …) is re-pointed at
the survivor, and the absorbed customers are archived with `merged_into_id` so old links find
the survivor. The merges row records exactly what moved and the survivor's fields before and
after, which is what an undo needs to put everything back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Table, UniqueConstraint, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, custom_field, timeline
from domain import tables as _tables
from domain.access import Actor, Role
from domain.customer import Customer, Kind, get_for_update, survivor_of, visible
from domain.customer.schemas import COMPANY_ONLY, PERSON_ONLY
from domain.customer.service import set_tags, snapshot
from domain.db import utcnow
from domain.errors import Conflict, Invalid, NotFound
from domain.merge.models import Merge, MergeRead, MergeRequest, UndoResult

ENTITY = "customer"
FIELDS = (
    "name", "credit_code", "industry", "size", "registered_address", "website", "parent_id",
    "gender", "birthday", "wechat_id", "member_level", "phone", "email", "province", "city",
    "source", "referrer_id", "owner_id", "service_team_id", "stage", "notes", "invoice_title",
    "billing_address", "billing_phone", "bank_name", "bank_account",
)
"""Fields a merge chooses a value for; `name` carries its folded `name_key` along."""
SUMMARY = ("first_purchase_on", "last_purchase_on", "purchase_count", "total_amount", "currency")
"""The transaction summary: recomputed from all merged customers, never chosen."""
SELF_LINKS = ("parent_id", "referrer_id")
"""Other customers pointing at an absorbed one (a subsidiary, a referral) follow it."""
CHUNK = 500


@dataclass(frozen=True)
class Link:
    """A column outside `customers` holding a customer id, and its table's key column."""

    table: Table
    column: Column[Any]
    key: Column[Any]
    unique_with: tuple[tuple[Column[Any], ...], ...]
    """The other columns of each unique constraint the link column is part of."""

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def links() -> list[Link]:
    """Every column pointing at a customer, read from the schema so that a table added later
    (purchases) moves too. Tags are united instead of moved: their key is the customer."""
    found = []
    for table in _tables.metadata.sorted_tables:
        if table.name in ("customers", "customer_tags", Merge.__tablename__):
            continue
        keys = list(table.primary_key.columns)
        uniques = [
            list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)
        ] + [list(i.columns) for i in table.indexes if i.unique]
        for fk in table.foreign_keys:
            if fk.column.table.name == "customers" and len(keys) == 1:
                unique_with = tuple(
                    tuple(c for c in cols if c is not fk.parent)
                    for cols in uniques
                    if fk.parent in cols
                )
                found.append(Link(table, fk.parent, keys[0], unique_with))
    return sorted(found, key=lambda link: link.name)


async def _check_unique(session: AsyncSession, merged: set[int]) -> None:
    """Rows unique per customer (a purchase's reference) that two merged customers both have
    cannot move onto one: refuse, naming the table, rather than fail halfway."""
    for link in links():
        for others in link.unique_with:
            clash = (
                await session.execute(
                    select(*others)
                    .where(link.column.in_(merged))
                    .group_by(*others)
                    .having(func.count(func.distinct(link.column)) > 1)
                    .limit(1)
                )
            ).first()
            if clash is not None:
                shown = ", ".join(f"{c.name} {v}" for c, v in zip(others, clash, strict=True))
                raise Conflict(
                    f"two of these customers both have {link.table.name} with {shown}; "
                    "remove one first",
                    field=link.table.name,
                )


def _plain(value: Any) -> Any:
    """JSON-safe, as the merges row and the audit log keep values."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _stored(field: str, value: Any) -> Any:
    """A value as the column takes it back from its JSON-safe form."""
    if value is None:
        return None
    kind = Customer.__table__.c[field].type.python_type
    if kind is date:
        return date.fromisoformat(value)
    if kind is Decimal:
        return Decimal(value)
    return value


def _state(row: Customer) -> dict[str, Any]:
    """What a merge may change on the survivor, JSON-safe, for the before/after record."""
    out = {f: _plain(getattr(row, f)) for f in (*FIELDS, "name_key", *SUMMARY)}
    out["tags"] = list(row.tags)
    out["custom"] = dict(row.custom or {})
    return out


def _empty(value: Any) -> bool:
    return value is None or value == ""


async def _load(
    session: AsyncSession, *, actor: Actor, request: MergeRequest
) -> tuple[Customer, list[Customer]]:
    """The survivor and the absorbed customers, locked, each one the actor may change."""
    actor.require_role(Role.sales_manager)
    absorbed_ids = list(dict.fromkeys(request.absorbed_ids))
    if request.survivor_id in absorbed_ids:
        raise Invalid("the survivor cannot also be absorbed", field="absorbed_ids")
    ids = [request.survivor_id, *absorbed_ids]
    await session.execute(
        select(Customer.id).where(Customer.id.in_(ids)).order_by(Customer.id).with_for_update()
    )
    try:
        survivor = await get_for_update(session, actor=actor, customer_id=request.survivor_id)
    except NotFound:
        raise NotFound("no such customer", field="survivor_id") from None
    absorbed = []
    for position, customer_id in enumerate(absorbed_ids):
        try:
            absorbed.append(await get_for_update(session, actor=actor, customer_id=customer_id))
        except NotFound:
            raise NotFound("no such customer", field=f"absorbed_ids.{position}") from None
        if absorbed[-1].kind != survivor.kind:
            raise Invalid(
                f"#{customer_id} is a {absorbed[-1].kind}, the survivor a {survivor.kind}",
                field=f"absorbed_ids.{position}",
            )
    return survivor, absorbed


async def _choose(
    session: AsyncSession, survivor: Customer, absorbed: list[Customer], wanted: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """The survivor's new field values and custom values, and where each came from."""
    sources = {c.id: c for c in (survivor, *absorbed)}
    other_kind = PERSON_ONLY if survivor.kind == Kind.company.value else COMPANY_ONLY
    custom_keys = {
        d.key for d in await custom_field.list_fields(session, entity=ENTITY, include_retired=True)
    }
    for field, source in wanted.items():
        name = field.removeprefix("custom.")
        known = name in custom_keys if field.startswith("custom.") else field in FIELDS
        if not known or field in other_kind:
            raise Invalid(f"not a field a merge can choose: {field}", field=f"fields.{field}")
        if source not in sources:
            raise Invalid(
                "choose the survivor or one of the absorbed customers", field=f"fields.{field}"
            )
    values: dict[str, Any] = {}
    choices: dict[str, int] = {}
    for field in FIELDS:
        source = wanted.get(field)
        if source is None:
            source = next(
                (c.id for c in sources.values() if not _empty(getattr(c, field))), survivor.id
            )
        values[field] = getattr(sources[source], field)
        choices[field] = source
    values["name_key"] = sources[choices["name"]].name_key
    custom: dict[str, Any] = {}
    for key in sorted({k for c in sources.values() for k in (c.custom or {})}):
        holders = [c.id for c in sources.values() if not _empty((c.custom or {}).get(key))]
        source = wanted.get(f"custom.{key}", holders[0] if holders else survivor.id)
        if source in holders:
            custom[key] = sources[source].custom[key]
            choices[f"custom.{key}"] = source
    return values, custom, choices


def _summary(customers: Sequence[Customer]) -> dict[str, Any]:
    """The transaction summary of all merged customers as one: counts and totals add up."""
    bought = [c for c in customers if c.purchase_count or c.total_amount]
    currencies = {c.currency for c in bought}
    if len(currencies) > 1:
        raise Conflict(
            "these customers bought in different currencies: " + ", ".join(sorted(currencies)),
            field="currency",
        )
    firsts = [c.first_purchase_on for c in customers if c.first_purchase_on]
    lasts = [c.last_purchase_on for c in customers if c.last_purchase_on]
    return {
        "first_purchase_on": min(firsts, default=None),
        "last_purchase_on": max(lasts, default=None),
        "purchase_count": sum(c.purchase_count for c in customers),
        "total_amount": sum((c.total_amount or Decimal("0") for c in customers), Decimal("0")),
        "currency": currencies.pop() if currencies else customers[0].currency,
    }


async def _check_tree(session: AsyncSession, survivor: Customer, merged: set[int]) -> None:
    """The survivor may not end up its own referrer or parent, nor below itself in the group
    tree; every merged customer (the survivor included) becomes the survivor."""
    if survivor.referrer_id in merged:
        raise Invalid("the survivor would refer itself: choose another", field="referrer_id")
    seen: set[int] = set()
    current = survivor.parent_id
    while current is not None:
        if current in merged or current in seen:
            raise Invalid("this merge would make the group tree a loop", field="parent_id")
        seen.add(current)
        current = await session.scalar(select(Customer.parent_id).where(Customer.id == current))


async def _move(
    session: AsyncSession, *, column: Column[Any], key: Column[Any], table: Table,
    frm: int, to: int, ids: list[int] | None = None,
) -> list[int]:
    """Re-point rows at `to`: all of `frm`'s, or just `ids` among them. The ids that moved."""
    statement = update(table).where(column == frm).returning(key)
    if ids is None:
        return sorted(await session.scalars(statement.values({column.name: to})))
    moved: list[int] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        moved += await session.scalars(
            statement.where(key.in_(bindparam("ids", chunk, expanding=True)))
            .values({column.name: to})
        )
    return sorted(moved)


async def merge(session: AsyncSession, *, actor: Actor, request: MergeRequest) -> Merge:
    """Merge the absorbed customers into the survivor, all or nothing, and record how."""
    survivor, absorbed = await _load(session, actor=actor, request=request)
    merged_ids = {c.id for c in absorbed}
    values, custom, choices = await _choose(session, survivor, absorbed, request.fields)
    summary = _summary([survivor, *absorbed])
    audit_before = snapshot(survivor)
    before = _state(survivor)
    for field, value in {**values, **summary}.items():
        setattr(survivor, field, value)
    survivor.custom = custom
    tags = sorted({t for c in (survivor, *absorbed) for t in c.tags})
    if tags != survivor.tags:
        set_tags(survivor, tags)
    await _check_tree(session, survivor, merged_ids | {survivor.id})
    await _check_unique(session, merged_ids | {survivor.id})

    moved: dict[str, dict[str, list[int]]] = {}
    now = utcnow()
    for row in absorbed:
        moved_here: dict[str, list[int]] = {}
        for link in links():
            ids = await _move(
                session, column=link.column, key=link.key, table=link.table,
                frm=row.id, to=survivor.id,
            )
            if ids:
                moved_here[link.name] = ids
        for field in SELF_LINKS:
            column = Customer.__table__.c[field]
            ids = await _move(
                session, column=column, key=Customer.__table__.c.id, table=Customer.__table__,
                frm=row.id, to=survivor.id,
            )
            if ids:
                moved_here[f"customers.{field}"] = ids
        moved[str(row.id)] = moved_here
        audit_row = snapshot(row)
        row.deleted_at = now
        row.merged_into_id = survivor.id
        audit.record(
            session, actor=actor, action="merge", entity=ENTITY, entity_id=row.id,
            before=audit_row, after=snapshot(row) | {"merged_into_id": survivor.id},
            note={"into": survivor.id, "moved": {k: len(v) for k, v in moved_here.items()}},
        )
    survivor.updated_at = now
    await session.flush()
    await session.refresh(survivor)  # the values as stored, which an undo compares with
    after = _state(survivor)
    changed = sorted(f for f in after if after[f] != before[f])
    record = Merge(
        entity=ENTITY,
        survivor_id=survivor.id,
        absorbed_ids=[c.id for c in absorbed],
        choices=choices,
        before={f: before[f] for f in changed},
        after={f: after[f] for f in changed},
        moved=moved,
        actor_id=actor.user_id,
        actor_name=actor.name,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    audit.record(
        session, actor=actor, action="merge", entity=ENTITY, entity_id=survivor.id,
        before=audit_before, after=snapshot(survivor),
        note={"merge_id": record.id, "absorbed": record.absorbed_ids, "moved": moved},
    )
    timeline.add(
        session, customer_id=survivor.id, kind="customer.merged", actor=actor,
        summary=", ".join(f"#{c.id} {c.name}" for c in absorbed),
        detail={"merge_id": record.id, "absorbed": record.absorbed_ids},
        ref=("merge", record.id),
    )
    return record


async def name_of(session: AsyncSession, *, customer_id: int) -> str:
    """A customer's name, archived or not, for the workflows told of a merge."""
    return await session.scalar(select(Customer.name).where(Customer.id == customer_id)) or ""


def read(record: Merge, *, undo_days: int) -> MergeRead:
    return MergeRead.model_validate(
        {
            **{c: getattr(record, c) for c in MergeRead.model_fields if c != "undo_until"},
            "undo_until": record.created_at + timedelta(days=undo_days),
        }
    )


async def get(session: AsyncSession, *, actor: Actor, merge_id: int) -> Merge:
    """A merge, for managers who may see its survivor (or whom that was merged into since)."""
    actor.require_role(Role.sales_manager)
    record = await session.get(Merge, merge_id)
    if record is None:
        raise NotFound("no such merge", field="merge_id")
    shown = await survivor_of(session, customer_id=record.survivor_id) or record.survivor_id
    seen = select(Customer.id).where(Customer.id == shown, visible(actor))
    if await session.scalar(seen) is None:
        raise NotFound("no such merge", field="merge_id")
    return record


async def undo(
    session: AsyncSession, *, actor: Actor, merge_id: int, undo_days: int
) -> UndoResult:
    """Put a merge back exactly: the absorbed customers live again with the rows that moved
    from them, and the survivor gets its fields back. Refused (409, naming the field) when the
    window is over, it was undone already, or the survivor has been changed since."""
    await session.execute(select(Merge.id).where(Merge.id == merge_id).with_for_update())
    record = await get(session, actor=actor, merge_id=merge_id)
    if record.undone_at is not None:
        raise Conflict("this merge has been undone already", field="merge_id")
    if utcnow() > record.created_at + timedelta(days=undo_days):
        raise Conflict(
            f"a merge can be undone within {undo_days} days; this one is older",
            field="merge_id",
        )
    survivor = await session.get(Customer, record.survivor_id, with_for_update=True)
    assert survivor is not None  # the merges row goes with its survivor (ON DELETE CASCADE)
    if survivor.merged_into_id is not None:
        raise Conflict(
            f"the survivor was merged into #{survivor.merged_into_id} since; undo that first",
            field="survivor_id",
        )
    now_state = _state(survivor)
    for field, value in sorted(record.after.items()):
        if now_state[field] != value:
            raise Conflict(
                f"the survivor's {field} has changed since the merge; change it back or edit "
                "the customers by hand",
                field=field,
            )
    absorbed = list(
        await session.scalars(
            select(Customer).where(Customer.id.in_(record.absorbed_ids)).with_for_update()
        )
    )
    for row in absorbed:
        if row.merged_into_id != survivor.id or row.deleted_at is None:
            raise Conflict(
                f"#{row.id} is no longer archived as merged into #{survivor.id}",
                field="absorbed_ids",
            )
    audit_before = snapshot(survivor)
    for field, value in record.before.items():
        if field == "tags":
            set_tags(survivor, value)
        elif field == "custom":
            survivor.custom = dict(value)
        else:
            setattr(survivor, field, _stored(field, value))
    by_name = {link.name: link for link in links()}
    moved_back: dict[str, int] = {}
    for row in absorbed:
        for name, ids in record.moved.get(str(row.id), {}).items():
            link = by_name.get(name)
            if link is None:
                table = Customer.__table__
                column, key = table.c[name.split(".", 1)[1]], table.c.id
            else:
                table, column, key = link.table, link.column, link.key
            back = await _move(
                session, column=column, key=key, table=table, frm=survivor.id, to=row.id, ids=ids
            )
            moved_back[name] = moved_back.get(name, 0) + len(back)
        before_row = snapshot(row)
        row.deleted_at = None
        row.merged_into_id = None
        row.updated_at = utcnow()
        audit.record(
            session, actor=actor, action="merge_undo", entity=ENTITY, entity_id=row.id,
            before=before_row | {"merged_into_id": survivor.id}, after=snapshot(row),
            note={"merge_id": record.id},
        )
    survivor.updated_at = utcnow()
    record.undone_at = utcnow()
    record.undone_by_id = actor.user_id
    await session.flush()
    audit.record(
        session, actor=actor, action="merge_undo", entity=ENTITY, entity_id=survivor.id,
        before=audit_before, after=snapshot(survivor),
        note={"merge_id": record.id, "moved_back": moved_back},
    )
    timeline.add(
        session, customer_id=survivor.id, kind="customer.merge_undone", actor=actor,
        summary=", ".join(f"#{c.id} {c.name}" for c in absorbed),
        detail={"merge_id": record.id, "restored": record.absorbed_ids},
        ref=("merge", record.id),
    )
    return UndoResult(merge=read(record, undo_days=undo_days), moved_back=moved_back)
