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
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import audit
from domain.access import Actor, Role, Source
from domain.db import insert_rows, refresh_statistics, transaction, utcnow
from domain.errors import Conflict, Invalid, NotFound
from domain.imports import bulk, columns, dedupe, heap, history, judged, leads, rows, template
from domain.imports.bulk import Tally
from domain.imports.columns import Entity
from domain.imports.dedupe import (
    Ambiguous,
    Index,
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
BULK = {Entity.customers: bulk.CUSTOMERS, Entity.contacts: bulk.CONTACTS}
"""Entities written a chunk at a time (domain.imports.bulk); a matching row merges."""
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


def _header(top: list[tuple[int, list[Cell]]], sheet: str, known: list[columns.Column]
            ) -> tuple[int, list[str]]:
    """The row among the first non-blank ones naming the most fields, and its cells."""
    best: tuple[int, int, list[str]] = (0, 0, [])
    for number, cells in top:
        headers = [(rows.cells.text(c) or "") for c in cells]
        hits = len(columns.suggest(headers, known))
        if hits > best[0]:
            best = (hits, number, headers)
    if not top:
        raise Invalid(f"sheet {sheet} is empty", field="sheet")
    if best[0] == 0:
        examples = ", ".join(f"{c.zh}/{c.en}" for c in known[:4])
        raise Invalid(
            f"sheet {sheet} has no recognisable header row: name the columns, e.g. {examples}",
            field="sheet",
        )
    return best[1], best[2]


async def known_columns(session: AsyncSession, entity: Entity) -> list[columns.Column]:
    """The columns an import of `entity` can map to: built-in ones and active custom fields."""
    return columns.columns_of(entity, await rows.definitions(session, entity))


def _layout(
    workbook: Workbook, sheet: str | None, known: list[columns.Column]
) -> tuple[str, int, list[str], int]:
    """The sheet's name, header row and headers, and how many non-blank rows lie under it:
    one pass over the sheet (the header is among its first non-blank rows)."""
    name = workbook.sheet(sheet)
    top: list[tuple[int, list[Cell]]] = []
    filled = 0
    for number, cells in workbook.rows(name):
        if any(not is_blank(c) for c in cells):
            filled += 1
            if len(top) < HEADER_SCAN:
                top.append((number, cells))
    header_row, headers = _header(top, name, known)
    total = filled - sum(1 for number, _ in top if number <= header_row)
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


async def _check_rows(session: AsyncSession, state: Pass,
                      chunk: list[tuple[int, dict[str, Cell]]]) -> list[Checked]:
    """Judge a chunk's rows by the rules a write applies (no lookups of other records)."""
    checker = CHECKERS[state.ctx.entity]
    return [await checker(session, state.ctx, number, raw) for number, raw in chunk]


async def _resolve(session: AsyncSession, state: Pass, checked: list[Checked]
                   ) -> list[tuple[Checked, int | None]]:
    """Find each judged row's customer (contacts, history) and fetch the keys the chunk's
    rows may match: [(row, customer id)]."""
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


async def _count_matches(session: AsyncSession, state: Pass, rows_checked: list[Checked],
                         counts: dict[str, int]) -> list[Problem]:
    """Match a chunk's judged rows as the write will, counting new, matched and invalid ones;
    the problems of the invalid ones."""
    problems: list[Problem] = []
    for checked, customer_id in await _resolve(session, state, rows_checked):
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
            checked.no_similar_name = True
            counts["new"] += 1
        else:
            counts["matched"] += 1
    return problems


async def check(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, import_id: int,
    heartbeat: Heartbeat, stop: Stop = never,
) -> CheckSummary:
    """The dry run: every row judged and matched as the write would, nothing but the report and
    the counts stored. Starts over when repeated."""
    async with transaction(sessions) as session:
        state = await _start_pass(session, settings, import_id)
        imp = state.imp
        customers = await dedupe.stamp(session, state.ctx.entity)
        await session.execute(delete(ImportProblem).where(ImportProblem.import_id == imp.id))
        imp.status = Status.checking.value
        imp.checked_rows = imp.new_rows = imp.matched_rows = imp.invalid_rows = 0
    workbook = open_file(settings, imp)
    recorder = judged.Recorder(file_path(settings, imp), imp, state.ctx, customers)
    counts = {"new": 0, "matched": 0, "invalid": 0, "checked": 0}
    try:
        with heap.settled_between_chunks() as settle:
            for chunk in _chunks(_raw_rows(workbook, imp, 0), settings.import_chunk_rows):
                async with transaction(sessions) as session:
                    rows_checked = await _check_rows(session, state, chunk)
                    keep = recorder.add(rows_checked)
                    problems = await _count_matches(session, state, rows_checked, counts)
                    keep()
                    if problems:
                        await session.execute(insert(ImportProblem),
                                              _problem_rows(imp.id, problems))
                    await _progress(session, imp.id, checked_rows=counts["checked"])
                settle()
                heartbeat(counts["checked"])
                if stop():
                    recorder.abandon()
                    return CheckSummary(total_rows=counts["checked"], new_rows=counts["new"],
                                        matched_rows=counts["matched"],
                                        invalid_rows=counts["invalid"],
                                        all_or_nothing=imp.all_or_nothing)
        recorder.complete(state.index.database_answers())
    except BaseException:
        recorder.abandon()
        raise
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


async def _write_chunk(
    session: AsyncSession, state: Pass, actor: Actor, rows: list[Checked]
) -> Tally:
    """Write one chunk of judged rows in the caller's transaction; returns what each row did."""
    imp, index = state.imp, state.index
    resolved = await _resolve(session, state, rows)
    target = BULK.get(state.ctx.entity)
    if target is not None:
        return await bulk.write_chunk(
            session, target=target, ctx=state.ctx, index=index, actor=actor, import_id=imp.id,
            strategy=Strategy(imp.strategy), rows=resolved,
        )
    writer = WRITERS[state.ctx.entity]
    tally = Tally(imp.id)
    for checked, customer_id in resolved:
        writable, found = await tally.match(session, index, checked, customer_id)
        if not writable:
            continue
        if found is not None:  # history and leads are never merged into
            tally.add(checked.row, Outcome.skipped, found.record_id, found.by)
            continue
        record_id = await writer(
            session, actor=actor, checked=checked, customer_id=customer_id,
            import_id=imp.id, fuzzy_threshold=index.threshold,
        )
        index.remember(checked, record_id, customer_id)
        tally.add(checked.row, Outcome.created, record_id)
    return tally


async def _judged_chunks(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, state: Pass, after_row: int
) -> AsyncIterator[list[Checked]]:
    """The rows after `after_row`, judged, a chunk at a time: as the dry run judged them, or
    judged now when the dry run's judgement is missing or was made under other options."""
    imp = state.imp
    size = settings.import_chunk_rows
    kept = judged.rows_after(file_path(settings, imp), imp, state.ctx, after_row)
    if kept is not None:
        async with sessions() as session:
            now = await dedupe.stamp(session, state.ctx.entity)
        if now is not None and now == kept.stamp:
            state.index.names_as_judged = True
            state.index.answered = kept.answered()
        for chunk in _chunks(kept.rows, size):
            yield chunk
        return
    workbook = open_file(settings, imp)
    try:
        for raw in _chunks(_raw_rows(workbook, imp, after_row), size):
            async with sessions() as session:
                rows_checked = await _check_rows(session, state, raw)
            yield rows_checked
    finally:
        workbook.close()


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
    with heap.settled_between_chunks() as settle:

        def written(done: int) -> None:
            settle()
            heartbeat(done)

        if imp.all_or_nothing:
            async with transaction(sessions) as session:
                return await _write_all(session, sessions, state, actor, settings, written)
        return await _write_chunks(sessions, state, actor, settings, written, stop)


async def _write_all(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession], state: Pass,
    actor: Actor, settings: Settings, heartbeat: Heartbeat,
) -> WriteProgress:
    imp = state.imp
    total = Tally(imp.id)
    done = last = 0
    async for chunk in _judged_chunks(sessions, settings, state, 0):
        tally = await _write_chunk(session, state, actor, chunk)
        if tally.problems:
            first = tally.problems[0]
            raise Invalid(
                f"row {first.row}: {first.message} — the import is all-or-nothing, so "
                "nothing was written",
                field="file",
            )
        await _save_tally(session, tally)
        total.created += tally.created
        total.updated += tally.updated
        total.skipped += tally.skipped
        done += len(chunk)
        last = chunk[-1].row
        heartbeat(done)
    await _progress(session, imp.id, done_rows=done, resume_after_row=last,
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
    grown, analyze_at = 0, settings.import_chunk_rows
    async for chunk in _judged_chunks(sessions, settings, state, imp.resume_after_row):
        async with transaction(sessions) as session:
            tally = await _write_chunk(session, state, actor, chunk)
            await _save_tally(session, tally)
            done += len(chunk)
            counts["created_count"] += tally.created
            counts["updated_count"] += tally.updated
            counts["skipped_count"] += tally.skipped
            counts["error_count"] += tally.errors
            await _progress(session, imp.id, done_rows=done, resume_after_row=chunk[-1].row,
                            **counts)
        heartbeat(done)
        grown += tally.created
        if grown >= analyze_at:  # as the table doubles, so its lookups keep their indexes
            await refresh_statistics(sessions, imp.entity)
            grown, analyze_at = 0, analyze_at * 2
        if stop() or time.monotonic() - started > WRITE_BUDGET_SECONDS:
            return WriteProgress(done=False, done_rows=done)
    return WriteProgress(done=True, done_rows=done)


async def _save_tally(session: AsyncSession, tally: Tally) -> None:
    await insert_rows(session, ImportRow.__table__, tally.outcomes)
    await insert_rows(session, ImportProblem.__table__,
                      _problem_rows(tally.import_id, tally.problems))


async def finish(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, import_id: int,
    status: Status, error: str | None,
) -> None:
    """The end state: done, failed (with why) or cancelled; audited. The dry run's judgement
    is no longer needed (the upload stays, for the error report)."""
    async with transaction(sessions) as session:
        imp = await session.get(Import, import_id)
        if imp is None or Status(imp.status) in FINISHED:
            return
        judged.forget(file_path(settings, imp))
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
