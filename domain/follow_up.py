"""Follow-ups: logged interactions with a customer, and the next contact they promise."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit, customer, normalize, timeline
from domain.access import Actor
from domain.db import Base, utcnow
from domain.errors import Invalid
from domain.schema import DbId, Input


class FollowUpKind(StrEnum):
    call = "call"
    visit = "visit"
    meeting = "meeting"
    email = "email"
    wechat = "wechat"
    note = "note"


class ReminderState(StrEnum):
    none = "none"
    scheduled = "scheduled"
    sent = "sent"
    superseded = "superseded"


class FollowUp(Base):
    __tablename__ = "follow_ups"
    __table_args__ = (Index("ix_follow_ups_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(Text)
    next_step: Mapped[str | None] = mapped_column(String(500))
    next_contact_at: Mapped[datetime | None]
    reminder: Mapped[str] = mapped_column(String(20), default=ReminderState.none.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowUpCreate(Input):
    kind: FollowUpKind
    summary: Annotated[str, Field(min_length=1, max_length=10_000)]
    at: datetime | None = None
    """When it happened; now if not given. Must carry a time zone."""
    contact_id: DbId | None = None
    next_step: Annotated[str, Field(max_length=500)] | None = None
    next_contact_at: datetime | None = None


class FollowUpRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    lead_id: int | None
    contact_id: int | None
    kind: FollowUpKind
    at: datetime
    author_id: int | None
    summary: str
    next_step: str | None
    next_contact_at: datetime | None
    reminder: ReminderState


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid("give a time zone, e.g. 2026-11-23T10:00:00+08:00", field=field)
    return value


def checked_fields(data: FollowUpCreate) -> dict[str, Any]:
    """The follow-up's own rules: it happened already, the next contact is ahead, text given.
    Imports check every row of a follow-up history with them too."""
    now = utcnow()
    at = _aware(data.at, "at") or now
    if at > now:
        raise Invalid("a follow-up is logged after it happened", field="at")
    next_contact_at = _aware(data.next_contact_at, "next_contact_at")
    if next_contact_at is not None and next_contact_at <= now:
        raise Invalid("the next contact must be in the future", field="next_contact_at")
    summary = normalize.text(data.summary)
    if not summary:
        raise Invalid("must not be blank", field="summary")
    return {
        "kind": data.kind.value,
        "at": at,
        "summary": summary,
        "next_step": normalize.text(data.next_step),
        "next_contact_at": next_contact_at,
        "reminder": (ReminderState.scheduled if next_contact_at else ReminderState.none).value,
    }


def _record(
    session: AsyncSession, *, actor: Actor, row: FollowUp, note: dict[str, Any] | None = None
) -> None:
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="follow_up",
        entity_id=row.id,
        after=FollowUpRead.model_validate(row).model_dump(exclude={"id"}),
        note=note,
    )
    if row.customer_id is not None:
        timeline.add(
            session,
            customer_id=row.customer_id,
            kind=f"follow_up.{row.kind}",
            actor=actor,
            at=row.at,
            summary=row.summary[:200],
            ref=("follow_up", row.id),
            detail={
                "next_step": row.next_step,
                "lead_id": row.lead_id,
                "next_contact_at": row.next_contact_at.isoformat() if row.next_contact_at else None,
            },
        )


async def log(
    session: AsyncSession, *, actor: Actor, customer_id: int, data: FollowUpCreate
) -> FollowUp:
    """Record an interaction; a next-contact date asks for a reminder (the caller starts it)."""
    owner = await customer.get(session, actor=actor, customer_id=customer_id)
    fields = checked_fields(data)
    if data.contact_id is not None:
        await customer.get_contact(
            session, actor=actor, customer_id=customer_id, contact_id=data.contact_id
        )
    row = FollowUp(
        **fields, customer_id=owner.id, contact_id=data.contact_id, author_id=actor.user_id
    )
    session.add(row)
    await session.flush()
    _record(session, actor=actor, row=row)
    return row


async def log_imported(
    session: AsyncSession,
    *,
    actor: Actor,
    customer_id: int,
    author_id: int | None,
    fields: dict[str, Any],
    note: dict[str, Any],
) -> FollowUp:
    """Record a past interaction an import brings in, under whoever had it (None: unknown)."""
    row = FollowUp(**fields, customer_id=customer_id, author_id=author_id)
    session.add(row)
    await session.flush()
    _record(session, actor=actor, row=row, note=note)
    return row


def check_for_lead(data: FollowUpCreate) -> dict[str, Any]:
    """Validate before the lead's workflow hears of the contact, so nothing fails after it."""
    if data.next_contact_at is not None:
        raise Invalid(
            "a lead's follow-up cadence is set by policy; plan next contacts on the "
            "customer once converted",
            field="next_contact_at",
        )
    if data.contact_id is not None:
        raise Invalid("a lead has no contacts yet", field="contact_id")
    return checked_fields(data)


async def log_for_lead(
    session: AsyncSession,
    *,
    actor: Actor,
    lead_id: int,
    customer_id: int | None,
    fields: dict[str, Any],
) -> FollowUp:
    """Record a contact with a lead (already accepted by its workflow)."""
    row = FollowUp(**fields, lead_id=lead_id, customer_id=customer_id, author_id=actor.user_id)
    session.add(row)
    await session.flush()
    _record(session, actor=actor, row=row)
    return row


async def list_for_customer(
    session: AsyncSession, *, actor: Actor, customer_id: int
) -> list[FollowUp]:
    await customer.get(session, actor=actor, customer_id=customer_id)
    rows = await session.scalars(
        select(FollowUp)
        .where(FollowUp.customer_id == customer_id)
        .order_by(FollowUp.at.desc(), FollowUp.id.desc())
    )
    return list(rows.all())


async def contacted_since(session: AsyncSession, *, follow_up: FollowUp) -> bool:
    """Whether the customer was contacted again after this follow-up was logged."""
    later = await session.scalar(
        select(FollowUp.id)
        .where(
            FollowUp.customer_id == follow_up.customer_id,
            FollowUp.id != follow_up.id,
            FollowUp.at > follow_up.at,
        )
        .limit(1)
    )
    return later is not None


class ReminderRequest(BaseModel):
    """The argument of the next-contact reminder workflow: ids and the due time, nothing more."""

    follow_up_id: int
    due_at: datetime


class ReminderOutcome(BaseModel):
    state: ReminderState
    task_id: DbId | None = None
