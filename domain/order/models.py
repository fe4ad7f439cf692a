"""Order tables: the order booked in the ERP, its payment plan, payments and ERP events."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped, utcnow


class OrderStatus(StrEnum):
    pending = "pending"
    """Not yet accepted by the ERP (it may be down: the workflow keeps trying)."""
    booked = "booked"
    shipped = "shipped"
    completed = "completed"
    """Shipped and paid in full."""
    cancelled = "cancelled"


class Order(Base, Timestamped):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer", "customer_id", "ordered_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"), unique=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.pending.value)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    ordered_on: Mapped[date]
    erp_order_id: Mapped[str | None] = mapped_column(String(60))
    booked_at: Mapped[datetime | None]
    invoice_requested_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    carrier: Mapped[str | None] = mapped_column(String(60))
    tracking_no: Mapped[str | None] = mapped_column(String(60))
    invoice_no: Mapped[str | None] = mapped_column(String(60))
    invoiced_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    invoiced_at: Mapped[datetime | None]
    paid_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    last_paid_on: Mapped[date | None]


class InstalmentStatus(StrEnum):
    open = "open"
    paid = "paid"
    overdue = "overdue"


class Instalment(Base):
    """One due date of the payment plan (回款计划)."""

    __tablename__ = "instalments"
    __table_args__ = (
        UniqueConstraint("order_id", "seq", name="uq_instalments_order_seq"),
        Index("ix_instalments_status_due", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    seq: Mapped[int]
    due_on: Mapped[date]
    amount: Mapped[Decimal]
    paid_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(10), default=InstalmentStatus.open.value)
    paid_on: Mapped[date | None]


class Payment(Base):
    """Money received, as the ERP reported it; partial payments add up across instalments."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_order", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    amount: Mapped[Decimal]
    paid_on: Mapped[date]
    reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ErpEventRecord(Base):
    """Every signed ERP event accepted, by its id: a replayed event is refused."""

    __tablename__ = "erp_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    order_number: Mapped[str] = mapped_column(String(40))
    body: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
