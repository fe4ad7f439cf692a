"""Lead tables: the enquiry itself, who claimed it from the pool, and round-robin cursors."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped, utcnow


class LeadStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    contacted = "contacted"
    qualified = "qualified"
    converted = "converted"
    disqualified = "disqualified"
    pooled = "pooled"


OPEN_STATUSES = frozenset(
    {
        LeadStatus.new,
        LeadStatus.assigned,
        LeadStatus.contacted,
        LeadStatus.qualified,
        LeadStatus.pooled,
    }
)
"""A lead in one of these may still become a customer; the others are closed for good."""


class SlaAction(StrEnum):
    notify_owner = "notify_owner"
    notify_manager = "notify_manager"
    reassign = "reassign"
    return_to_pool = "return_to_pool"


class Lead(Base, Timestamped):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_owner_status", "owner_id", "status", "sla_due_at"),
        Index("ix_leads_status_due", "status", "sla_due_at"),
        Index("ix_leads_phone", "phone"),
        Index("ix_leads_email", "email"),
        Index("ix_leads_name_key", "name_key"),
        Index("ix_leads_visitor", "visitor_id"),
        Index("ix_leads_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.new.value)

    contact_name: Mapped[str | None] = mapped_column(String(100))
    company: Mapped[str | None] = mapped_column(String(200))
    name_key: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    wechat_id: Mapped[str | None] = mapped_column(String(40))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    province: Mapped[str | None] = mapped_column(String(40))
    city: Mapped[str | None] = mapped_column(String(40))
    industry: Mapped[str | None] = mapped_column(String(100))
    product_interest: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(60))
    campaign: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    message: Mapped[str | None] = mapped_column(Text)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    visitor_id: Mapped[str | None] = mapped_column(String(100))
    form_id: Mapped[int | None] = mapped_column(ForeignKey("lead_forms.id", ondelete="SET NULL"))

    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    match: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What intake matched and why: {"kind": "customer", "id": 3, "field": "phone", ...}."""

    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_rule: Mapped[str | None] = mapped_column(String(100))
    assigned_at: Mapped[datetime | None]
    assignment_key: Mapped[str | None] = mapped_column(String(200))
    """Idempotency key of the last assignment, so a retried activity does not assign twice."""

    score: Mapped[int] = mapped_column(default=0)
    sla_due_at: Mapped[datetime | None]
    sla_next_action: Mapped[str | None] = mapped_column(String(30))
    sla_breaches: Mapped[list[str]] = mapped_column(default=list)
    first_contacted_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]

    pooled_at: Mapped[datetime | None]
    pooled_from_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disqualify_reason: Mapped[str | None] = mapped_column(String(100))
    converted_at: Mapped[datetime | None]
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    policy_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LeadClaim(Base):
    """One claim from the pool, for the daily claim limit and the previous owner's cool-down."""

    __tablename__ = "lead_claims"
    __table_args__ = (Index("ix_lead_claims_user_at", "user_id", "claimed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    key: Mapped[str] = mapped_column(String(200), unique=True)


class AssignmentCursor(Base):
    """Where round robin stands for one rule: the user who got the last lead."""

    __tablename__ = "assignment_cursors"

    rule: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_user_id: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
