"""Contract tables: the contract drafted from an accepted quote, and every approval decision."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped
from domain.product import Rate


class ContractStatus(StrEnum):
    draft = "draft"
    in_approval = "in_approval"
    changes_requested = "changes_requested"
    signed = "signed"
    """Every step approved: the order goes to the ERP."""
    rejected = "rejected"
    cancelled = "cancelled"


class Contract(Base, Timestamped):
    __tablename__ = "contracts"
    __table_args__ = (
        Index("ix_contracts_customer", "customer_id"),
        Index("ix_contracts_status_end", "status", "end_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    contract_type: Mapped[str] = mapped_column(String(40), default="sales")
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quotes.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default=ContractStatus.draft.value)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    discount_pct: Mapped[Decimal] = mapped_column(Rate, default=Decimal("0"))
    start_on: Mapped[date | None]
    end_on: Mapped[date | None]
    terms: Mapped[str | None] = mapped_column(Text)
    payment_terms: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """The payment plan (回款计划) agreed: [{"due_on": ISO date, "amount": "…"}]; empty = one
    instalment of the whole amount, due on signing."""
    round: Mapped[int] = mapped_column(default=0)
    """Approval rounds so far: request-changes and resubmission start the next."""
    approval_version: Mapped[int] = mapped_column(default=0)
    """The approval policy version the chain was chosen from."""
    approval_chain: Mapped[str | None] = mapped_column(String(60))
    signed_at: Mapped[datetime | None]
    renewal_deal_id: Mapped[int | None]
