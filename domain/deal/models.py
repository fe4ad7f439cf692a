"""Deal tables: opportunities moving through a pipeline's stages, and their stage history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped, utcnow


class DealStatus(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class DealKind(StrEnum):
    new = "new"
    renewal = "renewal"


class Deal(Base, Timestamped):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_owner_status", "owner_id", "status"),
        Index("ix_deals_customer", "customer_id"),
        Index("ix_deals_pipeline_stage", "pipeline", "stage", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default=DealKind.new.value, server_default="new")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    decision_maker_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    lead_id: Mapped[int | None]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    pipeline: Mapped[str] = mapped_column(String(60), default="default")
    pipeline_version: Mapped[int] = mapped_column(default=0, server_default="0")
    """The pipeline policy version the deal's workflow pinned when it started."""
    stage: Mapped[str] = mapped_column(String(40), default="initial_contact")
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    probability: Mapped[int] = mapped_column(default=10, server_default="10")
    """Win probability in percent, from the stage (the forecast weights amounts by it)."""
    status: Mapped[str] = mapped_column(String(10), default=DealStatus.open.value)
    amount: Mapped[Decimal | None]
    budget: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    expected_close_on: Mapped[date | None]
    next_step: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lost_reason: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    renewal_of_contract_id: Mapped[int | None]
    """For a renewal deal: the contract it renews."""


class DealStageChange(Base):
    """One row per stage a deal entered: the funnel report's raw material."""

    __tablename__ = "deal_stage_changes"
    __table_args__ = (Index("ix_deal_stage_changes_deal", "deal_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(40))
    to_stage: Mapped[str] = mapped_column(String(40))
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """The activity's idempotency key: a retried stage write never records the change twice."""
