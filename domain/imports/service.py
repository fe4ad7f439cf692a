"""Import service: take an upload, check every row (the dry run), write in resumable chunks.

The upload is refused whole (nothing stored) unless it is a readable spreadsheet with a sheet
that has a recognisable header and at most the configured rows. The check and the write each
pass over the stored file; the write commits chunk by chunk, each chunk's records, ledger rows
and the resume point in one transaction, so a worker killed mid-import resumes after the last
committed chunk and no row is ever written twice. Re-importing a file matches its rows to the
records the first import made (same keys as the duplicate guard), so it creates nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import audit, timeline
from domain.access import Actor, Role, Source
from domain.customer import Contact, Customer
from domain.customer.service import set_tags, snapshot
from domain.db import transaction, utcnow
from domain.errors import Conflict, Invalid, NotFound
from domain.imports import columns, history, leads, rows, template
from domain.imports.columns import Entity
from domain.imports.dedupe import (
    Ambiguous,
    Index,
    Match,
    resolve_any_customers,
    resolve_customers,
)
from domain.imports.models import (
    FINISHED,
    Import,
    ImportMapping,
    ImportProblem,
    ImportRow,
    Outcome,
    Status,
    Strategy,
)
from domain.imports.reading import Cell, Limits, Workbook, is_blank
from domain.imports.rows import Checked, Problem
from domain.imports.schemas import CheckSummary, ImportOptions, WriteProgress
from domain.lead.models import Lead, LeadStatus
from domain.settings import Settings
from domain.user import User

CHECKERS = {
    **rows.CHECKERS,
    Entity.leads: leads.check,
    Entity.follow_ups: history.check_follow_up,
    Entity.purchases: history.check_purchase,
}
WRITERS = {
    Entity.leads: leads.write,
    Entity.follow_ups: history.write_follow_up,
    Entity.purchases: history.write_purchase,
}
"""Entities written row by row through their own service; a matching row is never merged."""
REF_COLUMN = {"credit_code": "customer_credit_code", "phone": "customer_phone",
              "name": "customer"}
"""The column a history row named its customer in, by how it named it."""
HEADER_SCAN = 20
"""The header is looked for in this many rows at the top of the sheet (titles may come first)."""
WRITE_BUDGET_SECONDS = 120.0
"""One write activity returns after this long, so a huge import is several activities."""
Heartbeat = Callable[[int], None]
Stop = Callable[[], bool]
"""Asked after every committed chunk: whether to stop there (the import was cancelled)."""


def never() -> bool:
    return False


def limits(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.import_max_bytes,
        max_unpacked_bytes=settings.import_max_unpacked_bytes,
        max_rows=settings.import_max_rows,
    )


def file_path(settings: Settings, imp: Import) -> Path:
    return settings.var_dir / "imports" / f"{imp.id}.{imp.format}"


# --- upload and options ---------------------------------------------------------------------


def _header(workbook: Workbook, sheet: str, known: list[columns.Column]) -> tuple[int, list[str]]:
    """The row (among the first few non-blank ones) naming the most fields, and its cells."""
    best: tuple[int, int, list[str]] = (0, 0, [])
    seen = 0
    for number, cells in workbook.rows(sheet):
        if all(is_blank(c) for c in cells):
            continue
        headers = [(rows.cells.text(c) or "") for c in cells]
        hits = len(columns.suggest(headers, known))
        if hits > best[0]:
            best = (hits, number, headers)
        seen += 1
        if seen >= HEADER_SCAN:
            break
    if seen == 0:
        raise Invalid(f"sheet {sheet} is empty", field="sheet")
    if best[0] == 0:
        examples = ", ".join(f"{c.zh}/{c.en}" for c in known[:4])
        raise Invalid(
            f"sheet {sheet} has no recognisable header row: name the columns, e.g. {examples}",
            field="sheet",
        )
    return best[1], best[2]


def _count(workbook: Workbook, sheet: str, header_row: int) -> int:
    return sum(
        1
        for number, cells in workbook.rows(sheet)
        if number > header_row and not all(is_blank(c) for c in cells)
    )


async def known_columns(session: AsyncSession, entity: Entity) -> list[columns.Column]:
    """The columns an import of `entity` can map to: built-in ones and active custom fields."""
    return columns.columns_of(entity, await rows.definitions(session, entity))


def _layout(
    workbook: Workbook, sheet: str | None, known: list[columns.Column]
) -> tuple[str, int, list[str], int]:
    name = workbook.sheet(sheet)
    header_row, headers = _header(workbook, name, known)
    total = _count(workbook, name, header_row)
    if total == 0:
        raise Invalid(f"sheet {name} has a header but no rows under it", field="sheet")
    return name, header_row, headers, total


async def upload(
    session: AsyncSession,
    *,
    actor: Actor,
    settings: Settings,
    entity: Entity,
    filename: str,
    data: bytes,
    sheet: str | None = None,
    mapping_name: str | None = None,
) -> Import:
    """Store a readable upload and propose a column mapping; refuse anything else whole."""
    actor.require_role(Role.admin)
    known = await known_columns(session, entity)
    workbook = Workbook(data, limits(settings))
    try:
        name, header_row, headers, total = _layout(workbook, sheet, known)
    finally:
        workbook.close()
    mapping = columns.suggest(headers, known)
    if mapping_name:
        saved = await _mapping(session, entity=entity, name=mapping_name)
        mapping = {h: k for h, k in saved.mapping.items() if h in headers}
    imp = Import(
        entity=entity.value,
        filename=filename[:255] or "upload",
        format=workbook.format.value,
        size_bytes=len(data),
        sheets=workbook.sheet_names,
        sheet=name,
        header_row=header_row,
        headers=headers,
        mapping=mapping,
        total_rows=total,
        actor_id=actor.user_id,
        actor_name=actor.name,
        status=Status.uploaded.value,
    )
    session.add(imp)
    await session.flush()
    path = file_path(settings, imp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    audit.record(session, actor=actor, action="upload", entity="import", entity_id=imp.id,
                 after={"filename": imp.filename, "entity": imp.entity, "rows": total})
    return imp


async def get(session: AsyncSession, *, actor: Actor, import_id: int) -> Import:
    actor.require_role(Role.admin)
    imp = await session.get(Import, import_id)
    if imp is None:
        raise NotFound("no such import", field="import_id")
    return imp


async def configure(
    session: AsyncSession, *, actor: Actor, settings: Settings, import_id: int,
    options: ImportOptions,
) -> Import:
    """Choose sheet, mapping, merge strategy and mode before (another) check."""
    imp = await get(session, actor=actor, import_id=import_id)
    if imp.status not in (Status.uploaded.value, Status.checked.value):
        raise Conflict(f"the import is {imp.status}; its options can no longer change",
                       field="status")
    entity = Entity(imp.entity)
    known = await known_columns(session, entity)
    if options.sheet and options.sheet != imp.sheet:
        workbook = Workbook(file_path(settings, imp).read_bytes(), limits(settings))
        try:
            imp.sheet, imp.header_row, imp.headers, imp.total_rows = _layout(
                workbook, options.sheet, known
            )
        finally:
            workbook.close()
        imp.mapping = columns.suggest(imp.headers, known)
    if options.mapping is not None:
        imp.mapping = dict(options.mapping)
    columns.check_mapping(imp.mapping, imp.headers, known)
    imp.strategy = options.strategy.value
    imp.all_or_nothing = options.all_or_nothing
    if options.save_mapping_as:
        await save_mapping(session, actor=actor, entity=entity, name=options.save_mapping_as,
                           mapping=imp.mapping)
    imp.status = Status.checking.value
    imp.error = None
    return imp


async def template_file(
    session: AsyncSession, *, actor: Actor, entity: Entity, lang: template.Lang
) -> bytes:
    """The entity's template with its active custom fields, its example naming `actor`."""
    actor.require_role(Role.admin)
    definitions = await rows.definitions(session, entity)
    return template.build(entity, definitions, lang=lang,
                          user=(actor.user_id or 0, actor.name))


# --- saved mappings -------------------------------------------------------------------------


async def _mapping(session: AsyncSession, *, entity: Entity, name: str) -> ImportMapping:
    row = await session.scalar(
        select(ImportMapping).where(ImportMapping.entity == entity.value,
                                    ImportMapping.name == name)
    )
    if row is None:
        raise NotFound(f"no saved mapping named {name}", field="mapping")
    return row


async def save_mapping(
    session: AsyncSession, *, actor: Actor, entity: Entity, name: str, mapping: dict[str, str]
) -> ImportMapping:
    """Save (or replace) a named mapping; only known fields may be named in it."""
    actor.require_role(Role.admin)
    known = {c.key for c in await known_columns(session, entity)}
    for header, key in mapping.items():
        if key and key not in known:
            raise Invalid(f"{key!r} is not a field of this import", field=f"mapping.{header}")
    row = await session.scalar(
        select(ImportMapping).where(ImportMapping.entity == entity.value,
                                    ImportMapping.name == name)
    )
    before = dict(row.mapping) if row else {}
    if row is None:
        row = ImportMapping(entity=entity.value, name=name, created_by=actor.user_id)
        session.add(row)
    row.mapping = dict(mapping)
    row.updated_at = utcnow()
    await session.flush()
    audit.record(session, actor=actor, action="save", entity="import_mapping", entity_id=row.id,
                 before={"mapping": before}, after={"mapping": row.mapping})
    return row


async def delete_mapping(
    session: AsyncSession, *, actor: Actor, entity: Entity, name: str
) -> None:
    actor.require_role(Role.admin)
    row = await _mapping(session, entity=entity, name=name)
    audit.record(session, actor=actor, action="delete", entity="import_mapping",
                 entity_id=row.id, before={"name": row.name, "mapping": row.mapping})
    await session.delete(row)


async def list_mappings(
    session: AsyncSession, *, actor: Actor, entity: Entity
) -> list[ImportMapping]:
    actor.require_role(Role.admin)
    found = await session.scalars(
        select(ImportMapping).where(ImportMapping.entity == entity.value)
        .order_by(ImportMapping.name)
    )
    return list(found.all())


# --- passes over the file -------------------------------------------------------------------


def _raw_rows(
    workbook: Workbook, imp: Import, after_row: int
) -> Iterator[tuple[int, dict[str, Cell]]]:
    """(row number, {field: cell}) of every non-blank data row after `after_row`."""
    position = {}
    for index, header in enumerate(imp.headers):
        key = imp.mapping.get(header)
        if key and header not in position:
            position[header] = (index, key)
    start = max(after_row, imp.header_row)
    for number, cells in workbook.rows(imp.sheet):
        if number <= start or all(is_blank(c) for c in cells):
            continue
        yield number, {
            key: cells[index] if index < len(cells) else None
            for index, key in position.values()
        }


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _actor(imp: Import, user: User | None) -> Actor:
    """Who the records' audit entries name: the admin who started it, through the import."""
    return Actor(
        user_id=user.id if user else None,
        name=user.username if user else imp.actor_name,
        role=Role.admin,
        source=Source.imports,
    )


def _problem_rows(import_id: int, problems: list[Problem]) -> list[dict[str, Any]]:
    return [
        {"import_id": import_id, "row": p.row, "column": p.column, "value": p.value,
         "message": p.message[:500]}
        for p in problems
    ]


@dataclass
class Pass:
    """The state one pass over the file carries from chunk to chunk."""

    imp: Import
    ctx: rows.Context
    index: Index
    customers: dict[tuple[str, str], int | None] = field(default_factory=dict)
    """Contacts: the company each reference names."""


async def _judge(session: AsyncSession, state: Pass, chunk: list[tuple[int, dict[str, Cell]]]
                 ) -> list[tuple[Checked, int | None]]:
    """Check a chunk's rows and find each contact's company: [(row, customer id)]."""
    checker = CHECKERS[state.ctx.entity]
    checked = [await checker(session, state.ctx, number, raw) for number, raw in chunk]
    owners: dict[int, int] = {}
    if state.ctx.entity in columns.HISTORY:
        await resolve_any_customers(session, (c for c in checked if c.valid), state.customers)
        for c in checked:
            if c.valid and c.customer_ref:
                customer_id = state.customers.get(c.customer_ref)
                if customer_id is None:
                    c.problems.append(Problem(
                        c.row, state.ctx.header(REF_COLUMN[c.customer_ref[0]]),
                        c.customer_ref[1][:200],
                        "no single customer goes by this; give its credit code or phone, or "
                        "import the customer first",
                    ))
                else:
                    owners[c.row] = customer_id
    elif state.ctx.entity is Entity.contacts:
        await resolve_customers(session, (c for c in checked if c.valid), state.customers)
        for c in checked:
            if c.valid and c.customer_ref:
                customer_id = state.customers.get(c.customer_ref)
                if customer_id is None:
                    c.problems.append(Problem(
                        c.row, state.ctx.header("customer_credit_code"
                                                if c.customer_ref[0] == "credit_code"
                                                else "customer"),
                        c.customer_ref[1][:200],
                        "no single company customer goes by this; give its credit code or "
                        "create it first",
                    ))
                else:
                    owners[c.row] = customer_id
    await state.index.load(session, (c for c in checked if c.valid), owners)
    return [(c, owners.get(c.row)) for c in checked]


async def _start_pass(session: AsyncSession, settings: Settings, import_id: int) -> Pass:
    imp = await session.get(Import, import_id)
    if imp is None:
        raise NotFound("no such import", field="import_id")
    entity = Entity(imp.entity)
    ctx = await rows.context(session, entity=entity, mapping=imp.mapping,
                             zone=ZoneInfo(settings.timezone))
    return Pass(imp, ctx, Index(entity, settings.lead_fuzzy_threshold))


def open_file(settings: Settings, imp: Import) -> Workbook:
    path = file_path(settings, imp)
    if not path.exists():
        raise Invalid("the uploaded file is gone from the server; upload it again", field="file")
    return Workbook(path.read_bytes(), limits(settings))


async def check(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, import_id: int,
    heartbeat: Heartbeat, stop: Stop = never,
) -> CheckSummary:
    """The dry run: every row judged and matched as the write would, nothing but the report and
    the counts stored. Starts over when repeated."""
    async with transaction(sessions) as session:
        state = await _start_pass(session, settings, import_id)
        imp = state.imp
        await session.execute(delete(ImportProblem).where(ImportProblem.import_id == imp.id))
        imp.status = Status.checking.value
        imp.checked_rows = imp.new_rows = imp.matched_rows = imp.invalid_rows = 0
    workbook = open_file(settings, imp)
    counts = {"new": 0, "matched": 0, "invalid": 0, "checked": 0}
    try:
        for chunk in _chunks(_raw_rows(workbook, imp, 0), settings.import_chunk_rows):
            async with transaction(sessions) as session:
                problems: list[Problem] = []
                for checked, customer_id in await _judge(session, state, chunk):
                    counts["checked"] += 1
                    if not checked.valid:
                        counts["invalid"] += 1
                        problems.extend(checked.problems)
                        continue
                    try:
                        found = await state.index.match(session, checked, customer_id)
                    except Ambiguous as exc:
                        counts["invalid"] += 1
                        problems.append(Problem(checked.row, None, None, str(exc)))
                        continue
                    if found is None:
                        state.index.remember(checked, -checked.row, customer_id)
                        counts["new"] += 1
                    else:
                        counts["matched"] += 1
                if problems:
                    await session.execute(insert(ImportProblem), _problem_rows(imp.id, problems))
                await _progress(session, imp.id, checked_rows=counts["checked"])
            heartbeat(counts["checked"])
            if stop():
                return CheckSummary(total_rows=counts["checked"], new_rows=counts["new"],
                                    matched_rows=counts["matched"],
                                    invalid_rows=counts["invalid"],
                                    all_or_nothing=imp.all_or_nothing)
    finally:
        workbook.close()
    async with transaction(sessions) as session:
        row = await session.get(Import, imp.id)
        assert row is not None
        row.checked_rows, row.new_rows = counts["checked"], counts["new"]
        row.matched_rows, row.invalid_rows = counts["matched"], counts["invalid"]
        row.total_rows = counts["checked"]
        row.status = Status.checked.value
        return CheckSummary(
            total_rows=row.total_rows, new_rows=row.new_rows, matched_rows=row.matched_rows,
            invalid_rows=row.invalid_rows, all_or_nothing=row.all_or_nothing,
        )


async def mark_confirmed(session: AsyncSession, *, import_id: int) -> None:
    """Show a confirmed import as importing at once, unless its write has moved it on already."""
    await session.execute(
        update(Import)
        .where(Import.id == import_id, Import.status == Status.checked.value)
        .values(status=Status.importing.value)
    )


async def _progress(session: AsyncSession, import_id: int, **values: int) -> None:
    row = await session.get(Import, import_id)
    assert row is not None
    for key, value in values.items():
        setattr(row, key, value)


# --- writing --------------------------------------------------------------------------------


@dataclass
class Tally:
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0

    def add(self, import_id: int, row: int, outcome: Outcome, entity_id: int | None = None,
            by: str | None = None) -> None:
        self.outcomes.append({"import_id": import_id, "row": row, "outcome": outcome.value,
                              "entity_id": entity_id, "matched_by": by})
        if outcome is Outcome.created:
            self.created += 1
        elif outcome is Outcome.updated:
            self.updated += 1
        elif outcome in (Outcome.skipped, Outcome.unchanged):
            self.skipped += 1
        else:
            self.errors += 1


def _merged(current: Any, new: Any, strategy: Strategy) -> Any:
    empty = current is None or current == "" or current == [] or current == {}
    return new if strategy is Strategy.overwrite or empty else current


def _merge_into(record_obj: Any, fields: dict[str, Any], custom: dict[str, Any],
                strategy: Strategy) -> None:
    """Apply a matched row to its record: fill empty fields only, or overwrite what the row
    gives. A blank cell never clears a stored value."""
    for key, value in fields.items():
        if key in ("kind", "name_key", "stage") and strategy is Strategy.fill_empty:
            continue
        if key == "kind":
            continue
        setattr(record_obj, key, _merged(getattr(record_obj, key), value, strategy))
    if custom:
        existing = dict(record_obj.custom or {})
        if strategy is Strategy.overwrite:
            record_obj.custom = {**existing, **custom}
        else:
            record_obj.custom = {**custom, **existing}


async def _apply_customer(
    session: AsyncSession, state: Pass, actor: Actor, strategy: Strategy, checked: Checked,
    found: Match, tally: Tally, pending: dict[int, Customer],
) -> None:
    imp = state.imp
    assert checked.record is not None
    target = pending.get(found.record_id) or await session.get(Customer, found.record_id)
    if target is None:
        tally.add(imp.id, checked.row, Outcome.invalid)
        tally.problems.append(Problem(checked.row, None, None, "the matched record is gone"))
        return
    if target.kind != checked.record["kind"]:
        tally.add(imp.id, checked.row, Outcome.invalid)
        tally.problems.append(Problem(
            checked.row, state.ctx.header("kind"), checked.record["kind"],
            f"matches #{target.id or 'an earlier row'} by {found.by}, a {target.kind} customer",
        ))
        return
    if strategy is Strategy.skip:
        tally.add(imp.id, checked.row, Outcome.skipped, target.id, found.by)
        return
    if target.id is None:  # an earlier row of this chunk made it: merge in memory
        _merge_into(target, checked.record, checked.custom, strategy)
        tally.add(imp.id, checked.row, Outcome.unchanged, None, found.by)
        return
    before = snapshot(target)
    _merge_into(target, checked.record, checked.custom, strategy)
    if checked.tags and (strategy is Strategy.overwrite or not target.tags):
        set_tags(target, checked.tags)
    await session.flush()
    after = snapshot(target)
    if audit.diff(before, after):
        target.updated_at = utcnow()
        audit.record(session, actor=actor, action="update", entity="customer",
                     entity_id=target.id, before=before, after=after,
                     note={"import_id": imp.id, "row": checked.row})
        tally.add(imp.id, checked.row, Outcome.updated, target.id, found.by)
    else:
        tally.add(imp.id, checked.row, Outcome.unchanged, target.id, found.by)


async def _apply_contact(
    session: AsyncSession, state: Pass, actor: Actor, strategy: Strategy, checked: Checked,
    found: Match, tally: Tally, pending: dict[int, Contact],
) -> None:
    imp = state.imp
    assert checked.record is not None
    target = pending.get(found.record_id) or await session.get(Contact, found.record_id)
    if target is None or strategy is Strategy.skip:
        tally.add(imp.id, checked.row, Outcome.skipped, found.record_id, found.by)
        return
    if target.id is None:
        _merge_into(target, checked.record, checked.custom, strategy)
        tally.add(imp.id, checked.row, Outcome.unchanged, None, found.by)
        return
    before = {k: getattr(target, k) for k in (*checked.record, "custom")}
    _merge_into(target, checked.record, checked.custom, strategy)
    after = {k: getattr(target, k) for k in before}
    if audit.diff(before, after):
        target.updated_at = utcnow()
        audit.record(session, actor=actor, action="update", entity="contact",
                     entity_id=target.id, before=before, after=after,
                     note={"import_id": imp.id, "row": checked.row})
        tally.add(imp.id, checked.row, Outcome.updated, target.id, found.by)
    else:
        tally.add(imp.id, checked.row, Outcome.unchanged, target.id, found.by)


def _new_record(state: Pass, checked: Checked, customer_id: int | None) -> Any:
    assert checked.record is not None
    if state.ctx.entity is Entity.customers:
        made = Customer(**checked.record, custom=checked.custom)
        set_tags(made, checked.tags or [])
        return made
    return Contact(**checked.record, customer_id=customer_id, custom=checked.custom)


def _record_created(session: AsyncSession, state: Pass, actor: Actor, checked: Checked,
                    made: Any) -> None:
    note = {"import_id": state.imp.id, "row": checked.row}
    if isinstance(made, Customer):
        audit.record(session, actor=actor, action="create", entity="customer",
                     entity_id=made.id, after=checked.record, note=note)
        timeline.add(session, customer_id=made.id, kind="customer.created", actor=actor,
                     summary=made.name, ref=("customer", made.id),
                     detail={"import_id": state.imp.id})
    else:
        audit.record(session, actor=actor, action="create", entity="contact",
                     entity_id=made.id, after=checked.record, note=note)
        timeline.add(session, customer_id=made.customer_id, kind="contact.added", actor=actor,
                     summary=made.name, ref=("contact", made.id),
                     detail={"import_id": state.imp.id})


async def _load_matched(session: AsyncSession, state: Pass, record_ids: list[int]) -> None:
    """The records a chunk's rows match, in one query per 500 instead of one each: the
    session's identity map then answers each row's `session.get`."""
    model = Customer if state.ctx.entity is Entity.customers else Contact
    wanted = sorted({i for i in record_ids if i > 0})
    for start in range(0, len(wanted), 500):
        await session.execute(select(model).where(model.id.in_(wanted[start : start + 500])))


async def _write_chunk(
    session: AsyncSession, state: Pass, actor: Actor, chunk: list[tuple[int, dict[str, Cell]]],
) -> Tally:
    """Write one chunk in the caller's transaction; returns what each row did."""
    imp, index = state.imp, state.index
    strategy = Strategy(imp.strategy)
    tally = Tally()
    pending: dict[int, Any] = {}
    made: list[tuple[Checked, Any, int | None]] = []
    matched: list[tuple[Checked, Match]] = []
    apply = _apply_customer if state.ctx.entity is Entity.customers else _apply_contact
    writer = WRITERS.get(state.ctx.entity)
    for checked, customer_id in await _judge(session, state, chunk):
        if not checked.valid:
            tally.add(imp.id, checked.row, Outcome.invalid)
            tally.problems.extend(checked.problems)
            continue
        try:
            found = await index.match(session, checked, customer_id)
        except Ambiguous as exc:
            tally.add(imp.id, checked.row, Outcome.invalid)
            tally.problems.append(Problem(checked.row, None, None, str(exc)))
            continue
        if found is not None and writer is not None:  # history and leads are never merged into
            tally.add(imp.id, checked.row, Outcome.skipped, found.record_id, found.by)
            continue
        if found is not None:
            matched.append((checked, found))
            continue
        if writer is not None:  # written one by one through their own service
            record_id = await writer(
                session, actor=actor, checked=checked, customer_id=customer_id,
                import_id=imp.id, fuzzy_threshold=index.threshold,
            )
            index.remember(checked, record_id, customer_id)
            tally.add(imp.id, checked.row, Outcome.created, record_id)
            continue
        record = _new_record(state, checked, customer_id)
        session.add(record)
        pending[-checked.row] = record
        index.remember(checked, -checked.row, customer_id)
        made.append((checked, record, customer_id))
    await _load_matched(session, state, [found.record_id for _, found in matched])
    for checked, found in matched:  # in row order, after the new records they may name
        await apply(session, state, actor, strategy, checked, found, tally, pending)
    await session.flush()
    for checked, record, customer_id in made:
        index.rebind(checked, -checked.row, record.id, customer_id)
        _record_created(session, state, actor, checked, record)
        tally.add(imp.id, checked.row, Outcome.created, record.id)
    tally.outcomes.sort(key=lambda o: o["row"])
    return tally


async def write(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, import_id: int,
    heartbeat: Heartbeat, stop: Stop = never,
) -> WriteProgress:
    """Write the rows after the resume point, a chunk per transaction; an all-or-nothing import
    in one transaction, refused whole at its first invalid row."""
    async with transaction(sessions) as session:
        state = await _start_pass(session, settings, import_id)
        imp = state.imp
        if Status(imp.status) in FINISHED:
            return WriteProgress(done=True, done_rows=imp.done_rows)
        imp.status = Status.importing.value
        await session.execute(delete(ImportProblem).where(
            ImportProblem.import_id == imp.id, ImportProblem.row > imp.resume_after_row))
        user = await session.get(User, imp.actor_id) if imp.actor_id else None
        actor = _actor(imp, user)
    if imp.all_or_nothing:
        async with transaction(sessions) as session:
            return await _write_all(session, state, actor, settings, heartbeat)
    return await _write_chunks(sessions, state, actor, settings, heartbeat, stop)


async def _write_all(
    session: AsyncSession, state: Pass, actor: Actor, settings: Settings, heartbeat: Heartbeat
) -> WriteProgress:
    imp = state.imp
    total = Tally()
    done = 0
    workbook = open_file(settings, imp)
    try:
        for chunk in _chunks(_raw_rows(workbook, imp, 0), settings.import_chunk_rows):
            tally = await _write_chunk(session, state, actor, chunk)
            if tally.problems:
                first = tally.problems[0]
                raise Invalid(
                    f"row {first.row}: {first.message} — the import is all-or-nothing, so "
                    "nothing was written",
                    field="file",
                )
            await _save_tally(session, imp.id, tally)
            total.created += tally.created
            total.updated += tally.updated
            total.skipped += tally.skipped
            done += len(chunk)
            heartbeat(done)
            last = chunk[-1][0]
    finally:
        workbook.close()
    await _progress(session, imp.id, done_rows=done, resume_after_row=last if done else 0,
                    created_count=total.created, updated_count=total.updated,
                    skipped_count=total.skipped)
    return WriteProgress(done=True, done_rows=done)


async def _write_chunks(
    sessions: async_sessionmaker[AsyncSession], state: Pass, actor: Actor, settings: Settings,
    heartbeat: Heartbeat, stop: Stop,
) -> WriteProgress:
    imp = state.imp
    done = imp.done_rows
    counts = {"created_count": imp.created_count, "updated_count": imp.updated_count,
              "skipped_count": imp.skipped_count, "error_count": imp.error_count}
    started = time.monotonic()
    workbook = open_file(settings, imp)
    try:
        for chunk in _chunks(_raw_rows(workbook, imp, imp.resume_after_row),
                             settings.import_chunk_rows):
            async with transaction(sessions) as session:
                tally = await _write_chunk(session, state, actor, chunk)
                await _save_tally(session, imp.id, tally)
                done += len(chunk)
                counts["created_count"] += tally.created
                counts["updated_count"] += tally.updated
                counts["skipped_count"] += tally.skipped
                counts["error_count"] += tally.errors
                await _progress(session, imp.id, done_rows=done, resume_after_row=chunk[-1][0],
                                **counts)
            heartbeat(done)
            if stop() or time.monotonic() - started > WRITE_BUDGET_SECONDS:
                return WriteProgress(done=False, done_rows=done)
    finally:
        workbook.close()
    return WriteProgress(done=True, done_rows=done)


async def _save_tally(session: AsyncSession, import_id: int, tally: Tally) -> None:
    if tally.outcomes:
        await session.execute(insert(ImportRow), tally.outcomes)
    if tally.problems:
        await session.execute(insert(ImportProblem), _problem_rows(import_id, tally.problems))


async def finish(
    sessions: async_sessionmaker[AsyncSession], *, import_id: int, status: Status,
    error: str | None,
) -> None:
    """The end state: done, failed (with why) or cancelled; audited."""
    async with transaction(sessions) as session:
        imp = await session.get(Import, import_id)
        if imp is None or Status(imp.status) in FINISHED:
            return
        before = {"status": imp.status}
        imp.status = status.value
        imp.error = error
        imp.finished_at = utcnow()
        user = await session.get(User, imp.actor_id) if imp.actor_id else None
        audit.record(session, actor=_actor(imp, user), action=status.value, entity="import",
                     entity_id=imp.id, before=before,
                     after={"status": imp.status, "created": imp.created_count,
                            "updated": imp.updated_count, "skipped": imp.skipped_count,
                            "errors": imp.error_count})


# --- reading results ------------------------------------------------------------------------


async def recent(session: AsyncSession, *, actor: Actor, limit: int = 20) -> list[Import]:
    """The latest imports, newest first, for the imports page."""
    actor.require_role(Role.admin)
    found = await session.scalars(select(Import).order_by(Import.id.desc()).limit(limit))
    return list(found.all())


async def problems(
    session: AsyncSession, *, actor: Actor, import_id: int, after_id: int = 0, limit: int = 200
) -> list[ImportProblem]:
    await get(session, actor=actor, import_id=import_id)
    found = await session.scalars(
        select(ImportProblem)
        .where(ImportProblem.import_id == import_id, ImportProblem.id > after_id)
        .order_by(ImportProblem.row, ImportProblem.id)
        .limit(limit)
    )
    return list(found.all())


async def records(
    session: AsyncSession, *, actor: Actor, import_id: int, outcome: Outcome | None = None,
    after_row: int = 0, limit: int = 200,
) -> list[ImportRow]:
    """What each row did: which record it created or updated; what a cancelled import kept."""
    await get(session, actor=actor, import_id=import_id)
    query = select(ImportRow).where(ImportRow.import_id == import_id, ImportRow.row > after_row)
    if outcome is not None:
        query = query.where(ImportRow.outcome == outcome.value)
    return list((await session.scalars(query.order_by(ImportRow.row).limit(limit))).all())


async def leads_to_start(
    session: AsyncSession, *, import_id: int, after_row: int, limit: int
) -> list[tuple[int, int]]:
    """(row, lead id) of the new leads this import wrote whose workflow may not run yet."""
    found = await session.execute(
        select(ImportRow.row, ImportRow.entity_id)
        .join(Lead, Lead.id == ImportRow.entity_id)
        .where(ImportRow.import_id == import_id, ImportRow.outcome == Outcome.created.value,
               ImportRow.row > after_row, Lead.status == LeadStatus.new.value)
        .order_by(ImportRow.row)
        .limit(limit)
    )
    return [(row, lead_id) for row, lead_id in found.all()]


async def problem_count(session: AsyncSession, *, import_id: int) -> int:
    return await session.scalar(
        select(func.count()).select_from(ImportProblem)
        .where(ImportProblem.import_id == import_id)
    ) or 0
