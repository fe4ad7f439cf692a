"""Quote tables: a priced offer for a deal, in versions, with line items in Decimal money."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.db import Base, Timestamped
from domain.product import Rate


class QuoteStatus(StrEnum):
    draft = "draft"
    pending_approval = "pending_approval"
    """Its discount is above the threshold: an approval chain runs (`quote-<id>`)."""
    approved = "approved"
    sent = "sent"
    accepted = "accepted"
    rejected = "rejected"
    """Refused by an approver or by the customer."""
    superseded = "superseded"
    """A newer version of the deal's quote replaced it."""


class Quote(Base, Timestamped):
    __tablename__ = "quotes"
    __table_args__ = (
        UniqueConstraint("deal_id", "version", name="uq_quotes_deal_version"),
        Index("ix_quotes_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(20), default=QuoteStatus.draft.value)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    price_list_id: Mapped[int | None] = mapped_column(
        ForeignKey("price_lists.id", ondelete="SET NULL")
    )
    tax_rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal("13.00"))
    valid_until: Mapped[date | None]
    subtotal: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    """Sum of quantity × unit price before discounts."""
    discount_total: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    net_total: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    tax_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    discount_pct: Mapped[Decimal] = mapped_column(Rate, default=Decimal("0"))
    """Overall discount: discount_total / subtotal, what approval thresholds look at."""
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]

    lines: Mapped[list[QuoteLine]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="QuoteLine.position"
    )


class QuoteLine(Base):
    __tablename__ = "quote_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 3))
    unit: Mapped[str] = mapped_column(String(20), default="件")
    unit_price: Mapped[Decimal]
    discount_pct: Mapped[Decimal] = mapped_column(Rate, default=Decimal("0"))
    line_total: Mapped[Decimal]
    """quantity × unit price × (1 − discount), rounded half-up to the fen."""
