"""Append-only audit log: who changed what, before and after, in the change's own transaction."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain.access import Actor
from domain.db import Base, insert_rows, utcnow


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id", "id"),
        Index("ix_audit_actor", "actor_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(100))
    api_key_id: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(30))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None]
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    source: str
    action: str
    entity: str
    entity_id: int | None
    changes: dict[str, Any]


PLAIN = (str, int, float, type(None))
"""Values that are their own JSON form (most fields: checked first, for bulk writes)."""


def _plain(value: Any) -> Any:
    """JSON-safe form of a field value, so the log is readable without the model."""
    if type(value) in PLAIN:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Only the fields that changed, each as [before, after]."""
    if not before:  # a creation (imports make many): every field given is a change
        created = ((key, _plain(value)) for key, value in sorted(after.items()))
        return {key: [None, value] for key, value in created if value is not None}
    changed = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = _plain(before.get(key)), _plain(after.get(key))
        if old != new:
            changed[key] = [old, new]
    return changed


def entry(
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one entry: the fields that changed, and the note that says why."""
    changes: dict[str, Any] = diff(before or {}, after or {})
    if note:
        changes["_note"] = _plain(note)
    return {
        "at": utcnow(),
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "api_key_id": actor.api_key_id,
        "source": actor.source.value,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "changes": changes,
    }


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an entry to the caller's session; it commits or rolls back with the change itself."""
    log = AuditLog(**entry(actor=actor, action=action, entity=entity, entity_id=entity_id,
                           before=before, after=after, note=note))
    session.add(log)
    return log


async def record_many(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Insert `entry` rows in one statement, in the caller's transaction (bulk writes)."""
    if entries:
        await insert_rows(session, AuditLog.__table__, entries)


async def history(
    session: AsyncSession,
    *,
    entity: str | None = None,
    entity_id: int | None = None,
    actor_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditLog]:
    """Newest first; page with `before_id` = the last id seen."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditLog.entity == entity)
    if entity_id is not None:
        query = query.where(AuditLog.entity_id == entity_id)
    if actor_id is not None:
        query = query.where(AuditLog.actor_id == actor_id)
    if before_id is not None:
        query = query.where(AuditLog.id < before_id)
    return list((await session.scalars(query)).all())
