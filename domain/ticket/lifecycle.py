"""What the ticket workflow and its activities exchange: ids, decisions and pinned policy."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from domain.calendar import BusinessCalendar
from domain.lead.schemas import Caller
from domain.ticket.models import TicketStatus
from domain.ticket.rules import BreachAction, SlaTarget, SlaTerms
from domain.ticket.sla import SlaClock


class TicketStart(BaseModel):
    ticket_id: int
    carried: TicketCarry | None = None
    """Set when the workflow continues as new: its state so far, instead of starting over."""


class TicketPlan(BaseModel):
    """The policy a ticket's workflow runs under, read once when it starts (principle 6)."""

    terms: SlaTerms
    warn_at: float
    on_breach: dict[SlaTarget, list[BreachAction]]
    reopen_within_seconds: float
    survey_reminder_after_seconds: float
    complaint: bool
    customer_owner_id: int | None
    subject: str
    versions: dict[str, int]


class DispatchRequest(BaseModel):
    ticket_id: int
    exclude: list[int] = []
    reason: str = "new"


class Ownership(BaseModel):
    """Who works the ticket, who supervises them, and the team calendar its clock counts."""

    assignee_id: int | None
    team_id: int | None = None
    supervisor_id: int | None = None
    rule: str | None = None
    calendar: BusinessCalendar = BusinessCalendar()


class SlaMark(BaseModel):
    """The clock as the workflow sees it now, for lists and reports; an event that fired."""

    ticket_id: int
    clock: SlaClock
    due_at: datetime | None
    target: SlaTarget | None
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    remaining_seconds: float | None
    breached: str | None = None
    warned: str | None = None


class Action(StrEnum):
    start = "start"
    reply = "reply"
    wait = "wait"
    customer_reply = "customer_reply"
    resolve = "resolve"
    reopen = "reopen"
    close = "close"
    reassign = "reassign"
    raise_priority = "raise_priority"


class TransitionRequest(BaseModel):
    ticket_id: int
    action: Action
    caller: Caller
    body: str | None = None
    wait_for_customer: bool = False
    note: str | None = None
    assignee_id: int | None = None
    comment_id: int | None = None
    resolution_seconds: float | None = None
    first_response_seconds: float | None = None


class TransitionResult(BaseModel):
    ticket_id: int
    status: str
    priority: str
    ownership: Ownership
    comment_id: int | None = None
    first_response: bool = False
    """This reply was the ticket's first public one."""


class MailRequest(BaseModel):
    """Mail one public reply (or the survey) to the requester."""

    ticket_id: int
    comment_id: int | None = None
    round: int = 0


class TicketCarry(BaseModel):
    """What a long-lived ticket workflow carries into its next run: everything its clocks,
    rules and closing loop depend on, so nothing is dispatched, mailed or pinned twice."""

    status: TicketStatus
    ownership: Ownership
    plan: TicketPlan
    calendar: BusinessCalendar
    clock: SlaClock
    starts: dict[SlaTarget, int]
    version: int
    opened_at: datetime
    resolved_at: datetime | None
    rounds: int
    surveyed: int
    reminded: int
