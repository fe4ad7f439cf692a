"""What the lead workflow and its activities exchange: ids, decisions and pinned policy, no rows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from domain.calendar import BusinessCalendar
from domain.lead.rules import SlaChain
from domain.lead.schemas import Caller, Convert, Disqualify, Reassign


class LeadStart(BaseModel):
    lead_id: int


class LeadPlan(BaseModel):
    """The policy a lead's workflow runs under, read once when it starts (principle 6)."""

    chain: SlaChain
    cadence_seconds: float
    cadence_business_hours: bool
    disqualify_reasons: list[str]
    versions: dict[str, int]
    company: str | None = None
    contact: str | None = None
    """Shown in notifications, so a mail names the lead without another lookup."""


class AssignRequest(BaseModel):
    lead_id: int
    exclude: list[int] = []
    reason: str = "new"


class Ownership(BaseModel):
    """Who owns the lead now, and what their SLA clock counts (their team's calendar)."""

    owner_id: int | None
    team_id: int | None = None
    manager_id: int | None = None
    rule: str | None = None
    calendar: BusinessCalendar = BusinessCalendar()


class SlaMark(BaseModel):
    """The next deadline for lists ("due in 12 min"), and a step that has just fired."""

    lead_id: int
    due_at: datetime | None
    next_action: str | None
    breached: str | None = None


class Action(StrEnum):
    contact = "contact"
    qualify = "qualify"
    disqualify = "disqualify"
    convert = "convert"
    reassign = "reassign"
    claim = "claim"
    pool = "pool"


class TransitionRequest(BaseModel):
    lead_id: int
    action: Action
    caller: Caller
    disqualify: Disqualify | None = None
    reassign: Reassign | None = None
    convert: Convert | None = None
    note: str | None = None


class TransitionResult(BaseModel):
    """The lead as stored after the transition, and the ownership it now has."""

    status: str
    ownership: Ownership
    lead_id: int
    deal_id: int | None = None
    customer_id: int | None = None
