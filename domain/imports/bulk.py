"""Write a chunk of judged customer or contact rows in a handful of statements.

An import writes tens of thousands of records. An ORM object per record, tag, audit entry and
timeline event costs more than judging the row, so a chunk is written here as one INSERT …
RETURNING for its new records, one INSERT each for their tags, audit entries and timeline
events, and one UPDATE per shape of change for the records its rows matched — the same rows and
entries the one-by-one writes of the API make.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, timeline
from domain.access import Actor
from domain.customer import Contact, Customer
from domain.customer.models import CustomerTag
from domain.customer.service import clean_tags
from domain.db import insert_many, insert_rows, utcnow
from domain.imports.dedupe import Ambiguous, Index, Match
from domain.imports.models import Outcome, Strategy
from domain.imports.rows import Checked, Context, Problem

TAGS: Table = CustomerTag.__table__  # type: ignore[assignment]
SLICE = 500
"""Ids per IN (…) when loading matched records."""


@dataclass(frozen=True)
class Target:
    """What an import entity writes: its table, and how its audit and timeline name it."""

    table: Table
    entity: str
    event: str
    tags: bool

    def customer_of(self, values: dict[str, Any]) -> int:
        return values["id"] if self.tags else values["customer_id"]


CUSTOMERS = Target(Customer.__table__, "customer", "customer.created", tags=True)  # type: ignore[arg-type]
CONTACTS = Target(Contact.__table__, "contact", "contact.added", tags=False)  # type: ignore[arg-type]


@dataclass
class Tally:
    """What each row of a chunk did: the ledger rows and the problems, with counts."""

    import_id: int
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0

    def add(self, row: int, outcome: Outcome, entity_id: int | None = None,
            by: str | None = None) -> None:
        self.outcomes.append({"import_id": self.import_id, "row": row,
                              "outcome": outcome.value, "entity_id": entity_id,
                              "matched_by": by})
        if outcome is Outcome.created:
            self.created += 1
        elif outcome is Outcome.updated:
            self.updated += 1
        elif outcome in (Outcome.skipped, Outcome.unchanged):
            self.skipped += 1
        else:
            self.errors += 1

    def refuse(self, row: int, problem: Problem) -> None:
        self.add(row, Outcome.invalid)
        self.problems.append(problem)

    async def match(self, session: AsyncSession, index: Index, checked: Checked,
                    customer_id: int | None) -> tuple[bool, Match | None]:
        """Whether the row may be written, and the record it matches (None: a new one); an
        invalid or ambiguous row is tallied here."""
        if not checked.valid:
            self.add(checked.row, Outcome.invalid)
            self.problems.extend(checked.problems)
            return False, None
        try:
            return True, await index.match(session, checked, customer_id)
        except Ambiguous as exc:
            self.refuse(checked.row, Problem(checked.row, None, None, str(exc)))
            return False, None


def _defaults(table: Table) -> dict[str, Any]:
    """A new row's value of every column but the id: its default, or NULL."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key and column.name == "id":
            continue
        default = column.default
        if default is None:
            values[column.key] = None
        elif default.is_callable:
            values[column.key] = default.arg(None)  # type: ignore[union-attr]
        else:
            values[column.key] = default.arg  # type: ignore[union-attr]
    return values


def _merged(current: Any, new: Any, strategy: Strategy) -> Any:
    empty = current is None or current == "" or current == [] or current == {}
    return new if strategy is Strategy.overwrite or empty else current


BOOKKEEPING = frozenset({"created_at", "updated_at", "customer_id"})
"""Columns a created record's audit entry leaves out (what the row gave is what it shows)."""
KEEP_ON_FILL = frozenset({"name_key", "stage"})
"""Fields a fill-empty merge leaves alone even when the row differs (they always have a value:
the stored name's key and stage stay the stored record's)."""


def merge(stored: dict[str, Any], checked: Checked, strategy: Strategy) -> dict[str, Any]:
    """The fields of `stored` a matched row changes: fill empty fields only, or overwrite what
    the row gives. A blank cell never clears a stored value; a record's kind never changes."""
    assert checked.record is not None
    changed: dict[str, Any] = {}
    for key, value in checked.record.items():
        if key == "kind" or (key in KEEP_ON_FILL and strategy is Strategy.fill_empty):
            continue
        merged = _merged(stored.get(key), value, strategy)
        if merged != stored.get(key):
            changed[key] = merged
    if checked.custom:
        existing = dict(stored.get("custom") or {})
        custom = ({**existing, **checked.custom} if strategy is Strategy.overwrite
                  else {**checked.custom, **existing})
        if custom != existing:
            changed["custom"] = custom
    if "tags" in stored and checked.tags and (
        strategy is Strategy.overwrite or not stored["tags"]
    ):
        tags = clean_tags(checked.tags)
        if tags != stored["tags"]:
            changed["tags"] = tags
    return changed


@dataclass
class Chunk:
    """One chunk's writes, gathered before any statement runs."""

    target: Target
    template: dict[str, Any]
    """A new record's values before its row's: column defaults, else NULL."""
    new: list[tuple[Checked, dict[str, Any]]] = field(default_factory=list)
    matched: list[tuple[Checked, Match, int | None]] = field(default_factory=list)
    """Rows matching a record, with the company a contact row names."""
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Temporary id (minus the row) → values of a record this chunk creates."""
    joined: list[tuple[Checked, int | None, int]] = field(default_factory=list)
    """Rows merged into a record this chunk creates: (row, its company, temporary id)."""


async def _stored(session: AsyncSession, target: Target, ids: Sequence[int], *, whole: bool
                  ) -> dict[int, dict[str, Any]]:
    """The live records these ids name, as column dicts (with their tags, for customers); only
    their id and kind unless `whole` (rows that skip a record need no more)."""
    table = target.table
    found: dict[int, dict[str, Any]] = {}
    wanted = sorted({i for i in ids if i > 0})
    columns = list(table.c) if whole else [c for c in table.c if c.key in ("id", "kind")]
    for start in range(0, len(wanted), SLICE):
        part = wanted[start:start + SLICE]
        query = select(*columns).where(table.c.id.in_(part))
        if "deleted_at" in table.c:
            query = query.where(table.c.deleted_at.is_(None))
        for row in (await session.execute(query)).mappings():
            found[row["id"]] = dict(row)
        if target.tags and whole:
            for record_id in part:
                if record_id in found:
                    found[record_id]["tags"] = []
            tags = select(TAGS.c.customer_id, TAGS.c.tag).where(TAGS.c.customer_id.in_(part))
            for record_id, tag in (await session.execute(tags.order_by(TAGS.c.tag))).all():
                if record_id in found:
                    found[record_id]["tags"].append(tag)
    return found


async def write_chunk(
    session: AsyncSession, *, target: Target, ctx: Context, index: Index, actor: Actor,
    import_id: int, strategy: Strategy, rows: list[tuple[Checked, int | None]],
) -> Tally:
    """Write one chunk of judged rows in the caller's transaction; what each row did."""
    tally = Tally(import_id)
    chunk = Chunk(target, _defaults(target.table))
    for checked, customer_id in rows:
        writable, found = await tally.match(session, index, checked, customer_id)
        if not writable:
            continue
        if found is not None:
            chunk.matched.append((checked, found, customer_id))
            continue
        assert checked.record is not None
        values = {**chunk.template, **checked.record, "custom": checked.custom}
        if target.tags:
            values["tags"] = clean_tags(checked.tags or [])
        else:
            values["customer_id"] = customer_id
        chunk.pending[-checked.row] = values
        chunk.new.append((checked, values))
        index.remember(checked, -checked.row, customer_id)
    await _update_matched(session, chunk, ctx, index, actor, import_id, strategy, tally)
    await _insert_new(session, chunk, index, actor, import_id, tally, rows)
    tally.outcomes.sort(key=lambda o: o["row"])
    return tally


async def _update_matched(
    session: AsyncSession, chunk: Chunk, ctx: Context, index: Index, actor: Actor,
    import_id: int, strategy: Strategy, tally: Tally,
) -> None:
    """Merge matched rows, in row order, into the stored records (or those this chunk
    creates), one UPDATE per shape of change; an audit entry for each row that changed one.
    Keys a merge gives a record (an e-mail filled in) are its own for the rows after."""
    target = chunk.target
    stored = await _stored(session, target, [found.record_id for _, found, _ in chunk.matched],
                           whole=strategy is not Strategy.skip)
    changes: dict[int, dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    now = utcnow()
    for checked, found, customer_id in chunk.matched:
        assert checked.record is not None
        record = chunk.pending.get(found.record_id) or stored.get(found.record_id)
        if record is None:
            tally.refuse(checked.row, Problem(checked.row, None, None,
                                              "the matched record is gone"))
            continue
        if target.tags and record["kind"] != checked.record["kind"]:
            where = f"#{found.record_id}" if found.record_id > 0 else "an earlier row"
            tally.refuse(checked.row, Problem(
                checked.row, ctx.header("kind"), checked.record["kind"],
                f"matches {where} by {found.by}, a {record['kind']} customer",
            ))
            continue
        if strategy is Strategy.skip:
            tally.add(checked.row, Outcome.skipped, found.record_id if found.record_id > 0
                      else None, found.by)
            if found.record_id < 0:
                chunk.joined.append((checked, customer_id, found.record_id))
            continue
        changed = merge(record, checked, strategy)
        before = {key: record.get(key) for key in changed}
        record.update(changed)
        index.learn(checked, found.record_id, customer_id, record)
        if found.record_id < 0:  # a record this chunk creates: merged before it is written
            tally.add(checked.row, Outcome.unchanged, None, found.by)
            chunk.joined.append((checked, customer_id, found.record_id))
            continue
        if not changed:
            tally.add(checked.row, Outcome.unchanged, found.record_id, found.by)
            continue
        changes.setdefault(found.record_id, {}).update(changed)
        entries.append(audit.entry(
            actor=actor, action="update", entity=target.entity, entity_id=found.record_id,
            before=before, after=changed, note={"import_id": import_id, "row": checked.row},
        ))
        tally.add(checked.row, Outcome.updated, found.record_id, found.by)
    await _apply(session, target, changes, now)
    await audit.record_many(session, entries)


async def _apply(session: AsyncSession, target: Target, changes: dict[int, dict[str, Any]],
                 now: Any) -> None:
    table = target.table
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    retagged: dict[int, list[str]] = {}
    for record_id, changed in changes.items():
        values = dict(changed)
        if "tags" in values:
            retagged[record_id] = values.pop("tags")
        values["updated_at"] = now
        shapes[tuple(sorted(values))].append({"_id": record_id, **values})
    for keys, params in shapes.items():
        statement = (update(table).where(table.c.id == bindparam("_id"))
                     .values({key: bindparam(key) for key in keys}))
        await session.execute(statement, params)
    if retagged:
        await session.execute(delete(TAGS).where(TAGS.c.customer_id.in_(sorted(retagged))))
        await insert_rows(session, TAGS, [
            {"customer_id": record_id, "tag": tag}
            for record_id, tags in retagged.items() for tag in tags
        ])


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    """A new record's values as its table's columns (a customer's tags have their own)."""
    if "tags" not in values:
        return values
    columns = dict(values)
    del columns["tags"]
    return columns


async def _insert_new(
    session: AsyncSession, chunk: Chunk, index: Index, actor: Actor, import_id: int,
    tally: Tally, rows: list[tuple[Checked, int | None]],
) -> None:
    """Insert the chunk's new records in one statement, then their tags, audit entries and
    timeline events; later rows and chunks then know them by their real ids."""
    if not chunk.new:
        return
    target, table, template = chunk.target, chunk.target.table, chunk.template
    customers = {checked.row: customer_id for checked, customer_id in rows}
    ids = await insert_many(session, table, [_columns(values) for _, values in chunk.new])
    tags: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    real: dict[int, int] = {}
    for (checked, values), record_id in zip(chunk.new, ids, strict=True):
        real[-checked.row] = record_id
        index.rebind(checked, -checked.row, record_id, customers.get(checked.row))
        if target.tags:
            tags.extend({"customer_id": record_id, "tag": tag} for tag in values["tags"])
        after = {key: value for key, value in values.items()
                 if key not in BOOKKEEPING and value != template.get(key) and value != []}
        entries.append(audit.entry(
            actor=actor, action="create", entity=target.entity, entity_id=record_id,
            after=after, note={"import_id": import_id, "row": checked.row},
        ))
        values["id"] = record_id
        events.append(timeline.event(
            customer_id=target.customer_of(values), kind=target.event, actor=actor,
            summary=values["name"], ref=(target.entity, record_id),
            detail={"import_id": import_id},
        ))
        tally.add(checked.row, Outcome.created, record_id)
    await insert_rows(session, TAGS, tags)
    await audit.record_many(session, entries)
    await timeline.add_many(session, events)
    by_row = {o["row"]: o for o in tally.outcomes}
    for checked, customer_id, temporary in chunk.joined:
        by_row[checked.row]["entity_id"] = real[temporary]
        index.rebind(checked, temporary, real[temporary], customer_id)
