"""Deals: opportunities in a pipeline. The lifecycle comes later; converted leads create one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped


class DealStatus(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class Deal(Base, Timestamped):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_owner_status", "owner_id", "status"),
        Index("ix_deals_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    pipeline: Mapped[str] = mapped_column(String(60), default="default")
    stage: Mapped[str] = mapped_column(String(40), default="initial_contact")
    status: Mapped[str] = mapped_column(String(10), default=DealStatus.open.value)
    amount: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    expected_close_on: Mapped[datetime | None]


class DealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    customer_id: int
    contact_id: int | None
    lead_id: int | None
    owner_id: int | None
    pipeline: str
    stage: str
    status: DealStatus
    amount: Decimal | None
    currency: str
