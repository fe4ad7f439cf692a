"""Ticket schemas: what the API and the support form accept, what lists show, update arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.lead.schemas import Caller
from domain.schema import DbId, Input
from domain.ticket.models import Channel, Priority, TicketStatus

Body = Annotated[str, Field(min_length=1, max_length=20_000)]
Note = Annotated[str, Field(max_length=2000)]


class TicketCreate(Input):
    customer_id: DbId | None = None
    contact_id: DbId | None = None
    requester_name: Annotated[str, Field(max_length=100)] | None = None
    requester_email: Annotated[str, Field(max_length=254)] | None = None
    requester_phone: Annotated[str, Field(max_length=40)] | None = None
    type: Annotated[str, Field(min_length=1, max_length=40)]
    priority: Priority = Priority.P3
    channel: Channel = Channel.api
    product: Annotated[str, Field(max_length=100)] | None = None
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=20_000)] | None = None
    custom: dict[str, Any] | None = None


class TicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: TicketStatus
    customer_id: int | None
    contact_id: int | None
    requester_name: str | None
    requester_email: str | None
    requester_phone: str | None
    type: str
    priority: Priority
    channel: Channel
    product: str | None
    subject: str
    description: str | None
    custom: dict[str, Any]
    team_id: int | None
    assignee_id: int | None
    dispatch_rule: str | None
    sla_due_at: datetime | None
    sla_target: str | None
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    sla_paused: bool
    sla_paused_seconds: float
    sla_remaining_seconds: float | None
    sla_breached: bool
    sla_breaches: list[str]
    sla_warnings: list[str]
    first_response_at: datetime | None
    first_response_seconds: float | None
    public_replies: int
    resolved_at: datetime | None
    resolution_seconds: float | None
    resolution_note: str | None
    reopened: int
    closed_at: datetime | None
    first_contact_resolution: bool | None
    csat: int | None
    csat_comment: str | None
    created_at: datetime
    updated_at: datetime


class TicketQuery(BaseModel):
    status: TicketStatus | None = None
    priority: Priority | None = None
    type: Annotated[str, Field(max_length=40)] | None = None
    assignee_id: DbId | None = None
    team_id: DbId | None = None
    customer_id: DbId | None = None
    mine: bool = False
    breached: bool | None = None
    overdue: bool = False
    """Only tickets whose next promise is already past due (a paused clock is never overdue)."""
    q: Annotated[str, Field(max_length=200)] | None = None
    sort: Literal["sla_due_at", "-created_at", "created_at"] = "sla_due_at"
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 20


class TicketPage(BaseModel):
    items: list[TicketRead]
    total: int
    page: int
    size: int


class CommentCreate(Input):
    body: Body
    public: bool = True
    """A public reply is mailed to the requester; an internal note is seen by staff only."""
    wait_for_customer: bool = False
    """With a public reply: the ticket waits on the customer and its SLA clock pauses."""


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    public: bool
    from_customer: bool
    author_id: int | None
    author_name: str
    body: str
    created_at: datetime


class AttachmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class Reassign(Input):
    assignee_id: DbId
    note: Note | None = None


class Resolve(Input):
    note: Note | None = None


class Reopen(Input):
    reason: Note | None = None


class SurveyAnswer(Input):
    score: Annotated[int, Field(ge=1, le=5)]
    comment: Note | None = None


class CallCreate(Input):
    call_id: Annotated[str, Field(min_length=1, max_length=100)]
    caller: Annotated[str, Field(min_length=1, max_length=40)]
    direction: Literal["inbound", "outbound"]
    duration_seconds: Annotated[int, Field(ge=0, le=86_400)]
    recording_url: Annotated[str, Field(max_length=500)] | None = None
    intent: Annotated[str, Field(max_length=100)] | None = None
    """A ticket type here (and no ticket_id) opens a ticket for the caller."""
    started_at: AwareDatetime
    ticket_id: DbId | None = None


class CallRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    call_id: str
    caller: str
    direction: str
    duration_seconds: int
    recording_url: str | None
    intent: str | None
    started_at: datetime
    customer_id: int | None
    contact_id: int | None
    ticket_id: int | None


class TicketUpdate(BaseModel):
    """One update to the ticket workflow: who asks, and what."""

    caller: Caller
    comment: CommentCreate | None = None
    reassign: Reassign | None = None
    resolve: Resolve | None = None
    reopen: Reopen | None = None


class CustomerReplied(BaseModel):
    """Signal: the requester wrote (mail, form); the comment is already stored."""

    comment_id: int
