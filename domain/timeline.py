"""The 360° timeline: every interaction and lifecycle event of a customer, in time order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, Index, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain.access import Actor
from domain.db import Base, insert_rows, utcnow


class TimelineEvent(Base):
    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_customer_at", "customer_id", "at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    """Dotted: `follow_up.call`, `customer.created`, `lead.assigned`, `ticket.resolved` …"""
    summary: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ref_entity: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[int | None]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(100))


class TimelineEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    summary: str
    detail: dict[str, Any]
    ref_entity: str | None
    ref_id: int | None
    actor_id: int | None
    actor_name: str


class TimelinePage(BaseModel):
    items: list[TimelineEventRead]
    total: int
    page: int
    size: int


def event(
    *,
    customer_id: int,
    kind: str,
    summary: str,
    actor: Actor,
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
    ref: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The columns of one event."""
    return {
        "customer_id": customer_id,
        "at": at or utcnow(),
        "kind": kind,
        "summary": summary[:500],
        "detail": detail or {},
        "ref_entity": ref[0] if ref else None,
        "ref_id": ref[1] if ref else None,
        "actor_id": actor.user_id,
        "actor_name": actor.name,
    }


def add(
    session: AsyncSession,
    *,
    customer_id: int,
    kind: str,
    summary: str,
    actor: Actor,
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
    ref: tuple[str, int] | None = None,
) -> TimelineEvent:
    """Add an event in the caller's transaction, so it exists exactly when the change does."""
    added = TimelineEvent(**event(customer_id=customer_id, kind=kind, summary=summary,
                                  actor=actor, at=at, detail=detail, ref=ref))
    session.add(added)
    return added


async def add_many(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Insert `event` rows in one statement, in the caller's transaction (bulk writes)."""
    if events:
        await insert_rows(session, TimelineEvent.__table__, events)


async def page(
    session: AsyncSession,
    *,
    customer_id: int,
    page: int = 1,
    size: int = 50,
    kind_prefix: str | None = None,
) -> TimelinePage:
    """Newest first."""
    where = [TimelineEvent.customer_id == customer_id]
    if kind_prefix:
        where.append(TimelineEvent.kind.startswith(kind_prefix, autoescape=True))
    total = await session.scalar(select(func.count()).select_from(TimelineEvent).where(*where))
    rows = await session.scalars(
        select(TimelineEvent)
        .where(*where)
        .order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())
        .offset((page - 1) * size)
        .limit(size)
    )
    return TimelinePage(
        items=[TimelineEventRead.model_validate(r) for r in rows],
        total=total or 0,
        page=page,
        size=size,
    )
