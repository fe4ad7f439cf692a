"""Notifications: what a workflow asks to tell someone, and the delivery log that keeps it once.

One `Delivery` row per (key, channel) is claimed before anything leaves the building, so a
retried activity or a restarted worker finds the row and never sends the same notice twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, utcnow


class Channel(StrEnum):
    in_app = "in_app"
    email = "email"
    chat = "chat"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    skipped = "skipped"
    failed = "failed"


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("key", "channel", name="uq_deliveries_key_channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.pending.value)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


ALL_CHANNELS = [Channel.in_app, Channel.email, Channel.chat]


class Notice(BaseModel):
    """The single argument of the notify activity: ids and parameters, never a rendered mail.

    `key` is the idempotency key ("<workflow id>/<step>"): every channel is sent at most once
    per key, and the in-app task is opened under the same key.
    """

    key: Annotated[str, Field(min_length=1, max_length=200)]
    template: Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z_]+$")]
    """e.g. "lead.assigned"; one template per name and locale under activities/templates/."""
    recipient_id: int | None = None
    team_id: int | None = None
    """The team whose chat robot hears of it; None means the recipient's team."""
    params: dict[str, str | int | None] = {}
    """Rendered into the templates: names, "due" (ISO time), "path" (link below base_url) …"""
    channels: list[Channel] = Field(default_factory=lambda: list(ALL_CHANNELS))
    task_kind: str | None = None
    """Kind of the in-app task; None means the template name."""
    due_at: datetime | None = None
    """Due time of the in-app task; also fills params["due"] when that is missing."""
    customer_id: int | None = None
    ref_entity: str | None = None
    ref_id: int | None = None


class DeliveryOutcome(StrEnum):
    sent = "sent"
    skipped = "skipped"
    """Nothing to send through: no address, no robot, SMTP not configured."""
    already = "already"
    """An earlier attempt under the same key sent (or skipped) it; nothing was sent now."""
    failed = "failed"
    """The channel refused the message for good (a 4xx robot, a refused recipient)."""


class ChannelResult(BaseModel):
    outcome: DeliveryOutcome
    reason: str | None = None


class NoticeOutcome(BaseModel):
    channels: dict[Channel, ChannelResult] = {}
    task_id: int | None = None
    """The in-app task opened under the notice's key, if there is one."""


class Rejected(Exception):
    """A channel refused this message for good: retrying cannot help, so the caller stops."""


async def claim(
    session: AsyncSession,
    *,
    key: str,
    channel: Channel,
    recipient_id: int | None,
    team_id: int | None,
) -> Delivery:
    """The delivery row for (key, channel), inserted as pending unless an earlier attempt did.

    INSERT … ON CONFLICT DO NOTHING, so two attempts racing on one key both end up with the
    same row instead of one of them failing on the unique constraint.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(Delivery)
        .values(
            key=key,
            channel=channel.value,
            recipient_id=recipient_id,
            team_id=team_id,
            status=DeliveryStatus.pending.value,
            detail={},
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["key", "channel"])
    )
    row = await session.scalar(
        select(Delivery)
        .where(Delivery.key == key, Delivery.channel == channel.value)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def is_done(row: Delivery) -> bool:
    """Sent or skipped: a repeat must not send. Pending and failed rows may be tried again."""
    return row.status in (DeliveryStatus.sent.value, DeliveryStatus.skipped.value)


async def finish(
    session: AsyncSession, *, delivery_id: int, status: DeliveryStatus, detail: dict[str, Any]
) -> None:
    """Record how a delivery ended."""
    row = await session.get(Delivery, delivery_id)
    assert row is not None
    row.status = status.value
    row.detail = detail
    if status is DeliveryStatus.sent:
        row.sent_at = utcnow()
