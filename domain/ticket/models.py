"""Ticket tables: the service request, its comments and attachments, call records and surveys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped, utcnow


class TicketStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    in_progress = "in_progress"
    waiting_on_customer = "waiting_on_customer"
    resolved = "resolved"
    closed = "closed"


OPEN_STATUSES = frozenset(
    {
        TicketStatus.new,
        TicketStatus.assigned,
        TicketStatus.in_progress,
        TicketStatus.waiting_on_customer,
    }
)
"""Work still owed to the customer: what `least_open` dispatch counts and SLA clocks run in."""


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class Channel(StrEnum):
    api = "api"
    form = "form"
    email = "email"
    phone = "phone"


class Ticket(Base, Timestamped):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_assignee_status", "assignee_id", "status", "sla_due_at"),
        Index("ix_tickets_team_status", "team_id", "status", "sla_due_at"),
        Index("ix_tickets_customer", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.new.value)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    requester_name: Mapped[str | None] = mapped_column(String(100))
    requester_email: Mapped[str | None] = mapped_column(String(254))
    """Where public replies and the survey go: the contact's address, or the mail's sender."""
    requester_phone: Mapped[str | None] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(2), default=Priority.P3.value)
    channel: Mapped[str] = mapped_column(String(10), default=Channel.api.value)
    product: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    """What the ticket came from (an inbound Message-ID, a call id): the same one is one ticket."""
    thread_id: Mapped[str | None] = mapped_column(String(300))
    """Message-ID that mail about this ticket refers to (In-Reply-To / References)."""

    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    dispatch_rule: Mapped[str | None] = mapped_column(String(100))
    assignment_key: Mapped[str | None] = mapped_column(String(200))
    """Idempotency key of the last dispatch, so a retried activity does not dispatch twice."""

    sla: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The whole SLA clock (domain.ticket.sla.SlaClock as JSON), as the workflow last saw it."""
    sla_due_at: Mapped[datetime | None]
    """The next promise that falls due; None while the clock is paused or nothing is owed."""
    sla_target: Mapped[str | None] = mapped_column(String(20))
    first_response_due_at: Mapped[datetime | None]
    next_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_paused_seconds: Mapped[float] = mapped_column(default=0.0)
    """Business time the resolution clock has stood still in, waiting on the customer."""
    sla_remaining_seconds: Mapped[float | None]
    """Business time left on the resolution promise when the clock last changed."""
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_breaches: Mapped[list[str]] = mapped_column(default=list)
    sla_warnings: Mapped[list[str]] = mapped_column(default=list)

    first_response_at: Mapped[datetime | None]
    first_response_seconds: Mapped[float | None]
    """Business time from opening to the first public reply (the report's FRT)."""
    public_replies: Mapped[int] = mapped_column(default=0)
    resolved_at: Mapped[datetime | None]
    resolution_seconds: Mapped[float | None]
    """Business time from opening to the last resolution, pauses excluded."""
    resolution_note: Mapped[str | None] = mapped_column(Text)
    reopened: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None]
    first_contact_resolution: Mapped[bool | None]
    csat: Mapped[int | None]
    csat_comment: Mapped[str | None] = mapped_column(Text)
    policy_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TicketComment(Base):
    """A public reply (mailed to the requester, or from them) or an internal note."""

    __tablename__ = "ticket_comments"
    __table_args__ = (Index("ix_ticket_comments_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    from_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(254))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    """The mail's Message-ID, out or in: a redelivered mail is the same comment."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketAttachment(Base):
    __tablename__ = "ticket_attachments"
    __table_args__ = (Index("ix_ticket_attachments_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_comments.id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    """Sniffed from the bytes, never the client's word."""
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(300))
    """Below settings.var_dir / "attachments"."""
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallRecord(Base):
    """A call-centre record, matched to a customer by phone and attached to a ticket if any."""

    __tablename__ = "call_records"
    __table_args__ = (Index("ix_call_records_customer", "customer_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(100), unique=True)
    """The call centre's own id: a record posted twice is kept once."""
    caller: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    duration_seconds: Mapped[int]
    recording_url: Mapped[str | None] = mapped_column(String(500))
    intent: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketSurvey(Base):
    """One satisfaction survey per resolution; single use: answered_at is set exactly once."""

    __tablename__ = "ticket_surveys"
    __table_args__ = (Index("ix_ticket_surveys_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    """Workflow id + resolution round: a retried activity finds its survey."""
    sent_to: Mapped[str | None] = mapped_column(String(254))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
