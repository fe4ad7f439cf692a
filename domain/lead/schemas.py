"""Lead schemas: what capture accepts, what lists show, and the workflow's update arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.access import Actor, Role, Source
from domain.lead.models import LeadStatus
from domain.schema import DbId, Input

Text100 = Annotated[str, Field(max_length=100)]


class LeadCreate(Input):
    contact_name: Text100 | None = None
    company: Annotated[str, Field(max_length=200)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    wechat_id: Annotated[str, Field(max_length=40)] | None = None
    credit_code: Annotated[str, Field(max_length=40)] | None = None
    province: Annotated[str, Field(max_length=40)] | None = None
    city: Annotated[str, Field(max_length=40)] | None = None
    industry: Text100 | None = None
    product_interest: Text100 | None = None
    source: Annotated[str, Field(max_length=60)] | None = None
    campaign: Text100 | None = None
    priority: Literal["high", "normal", "low"] = "normal"
    message: Annotated[str, Field(max_length=10_000)] | None = None
    consent: bool = False
    custom: dict[str, Any] | None = None
    visitor_id: Annotated[str, Field(max_length=100)] | None = None


class LeadMatch(BaseModel):
    """What intake recognised: an existing customer, contact or open lead, and by which key."""

    kind: Literal["customer", "contact", "lead"]
    id: int
    field: str
    score: float | None = None
    detail: str


class LeadRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: LeadStatus
    contact_name: str | None
    company: str | None
    phone: str | None
    email: str | None
    wechat_id: str | None
    credit_code: str | None
    province: str | None
    city: str | None
    industry: str | None
    product_interest: str | None
    source: str | None
    campaign: str | None
    priority: str
    message: str | None
    consent: bool
    custom: dict[str, Any]
    customer_id: int | None
    contact_id: int | None
    match: dict[str, Any]
    owner_id: int | None
    assigned_rule: str | None
    assigned_at: datetime | None
    score: int
    sla_due_at: datetime | None
    sla_next_action: str | None
    sla_breaches: list[str]
    first_contacted_at: datetime | None
    last_activity_at: datetime | None
    pooled_at: datetime | None
    disqualify_reason: str | None
    converted_at: datetime | None
    deal_id: int | None
    created_at: datetime
    updated_at: datetime


class IntakeResult(BaseModel):
    """The answer to a capture: the lead, whether it is new, and what it was matched to."""

    lead: LeadRead
    created: bool
    matches: list[LeadMatch]


class LeadQuery(BaseModel):
    status: LeadStatus | None = None
    owner_id: DbId | None = None
    mine: bool = False
    overdue: bool = False
    source: Annotated[str, Field(max_length=60)] | None = None
    q: Annotated[str, Field(max_length=200)] | None = None
    sort: Literal["sla_due_at", "-created_at", "created_at", "-score"] = "sla_due_at"
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 20


class LeadPage(BaseModel):
    items: list[LeadRead]
    total: int
    page: int
    size: int


# Arguments of the lead workflow's updates, sent by the API on behalf of a signed-in person.


class Caller(BaseModel):
    """Who asks for a transition, as the workflow's validators need it (no DB at hand there)."""

    user_id: int | None
    name: str
    role: str
    managed_team_ids: list[int] = []
    source: str = "api"

    @classmethod
    def of(cls, actor: Actor) -> Caller:
        """The signed-in person as workflow validators see them."""
        return cls(
            user_id=actor.user_id,
            name=actor.name,
            role=actor.role.value,
            managed_team_ids=sorted(actor.managed_team_ids),
            source=actor.source.value,
        )

    def as_actor(self) -> Actor:
        """The caller as the audit log and the service functions know them."""
        return Actor(
            user_id=self.user_id,
            name=self.name,
            role=Role(self.role),
            source=Source(self.source),
            managed_team_ids=frozenset(self.managed_team_ids),
        )


WORKFLOW_CALLER = Caller(user_id=None, name="workflow", role="admin", source="workflow")
"""A lifecycle acting on its own (a deadline passed, a contract was signed)."""


class ContactLogged(Input):
    note: Annotated[str, Field(max_length=2000)] | None = None


class Disqualify(Input):
    reason: Annotated[str, Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=2000)] | None = None


class Reassign(Input):
    owner_id: DbId
    note: Annotated[str, Field(max_length=2000)] | None = None


class Convert(Input):
    deal_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    amount: Annotated[str, Field(max_length=30)] | None = None
    customer_id: DbId | None = None
    """Link to this existing customer instead of the matched one or a new one."""


class Transition(BaseModel):
    """One update to the lead workflow: who asks, and what."""

    caller: Caller
    contact: ContactLogged | None = None
    disqualify: Disqualify | None = None
    reassign: Reassign | None = None
    convert: Convert | None = None
