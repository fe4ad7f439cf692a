"""Approval chains: who must approve a contract or a quote, in which order, within what time.

The chain is policy data (kind `approval`): the first chain whose conditions match the subject
(amount, discount, contract type, customer tier) is used. A step is a set of seats answered in
parallel; every seat must approve before the next step opens. One rejection rejects the whole;
"request changes" sends the subject back to its owner, and a resubmission starts a new round
from the first step. Each step has a reminder and an escalation deadline in business time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

import jwt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.access import ApproverGroup, Role
from domain.calendar import BusinessCalendar
from domain.db import Base, utcnow
from domain.lead.schemas import Caller

Duration = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=365))]


class Subject(StrEnum):
    """What is approved; its workflow is `<subject>-<id>`."""

    contract = "contract"
    quote = "quote"


class ApprovalStart(BaseModel):
    subject: Subject
    subject_id: int


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssigneeKind(StrEnum):
    user = "user"
    role = "role"
    """Anyone active with the role; the first answer fills the seat."""
    group = "group"
    """Anyone in an approver group (legal, finance, director)."""
    requester_manager = "requester_manager"
    """The manager of the subject owner's team."""


class Assignee(_Rule):
    kind: AssigneeKind
    user_id: int | None = None
    role: Role | None = None
    group: ApproverGroup | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        needed = {
            AssigneeKind.user: "user_id",
            AssigneeKind.role: "role",
            AssigneeKind.group: "group",
        }.get(self.kind)
        if needed and getattr(self, needed) is None:
            raise ValueError(f"an assignee of kind {self.kind.value} needs {needed}")
        return self


class EscalateTo(StrEnum):
    manager = "manager"
    """The approver's team manager."""
    delegate = "delegate"
    """The approver's configured delegate (else their manager)."""


class ApprovalStep(_Rule):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    seats: Annotated[tuple[Assignee, ...], Field(min_length=1, max_length=10)]
    remind_after: Duration = timedelta(hours=4)
    escalate_after: Duration = timedelta(hours=8)
    """Business time since the step opened; must come after the reminder."""
    escalate_to: EscalateTo = EscalateTo.manager

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.escalate_after <= self.remind_after:
            raise ValueError("escalate_after must come after remind_after")
        return self


class ApprovalChain(_Rule):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    subjects: tuple[Subject, ...] = (Subject.contract,)
    min_amount: Decimal | None = None
    """Applies from this amount (inclusive)."""
    min_discount_pct: Decimal | None = None
    """Applies when the overall discount exceeds this percentage."""
    contract_types: tuple[str, ...] = ()
    customer_tiers: tuple[str, ...] = ()
    steps: Annotated[tuple[ApprovalStep, ...], Field(min_length=1, max_length=10)]

    def matches(self, facts: SubjectFacts) -> bool:
        return (
            facts.subject in self.subjects
            and (self.min_amount is None or facts.amount >= self.min_amount)
            and (self.min_discount_pct is None or facts.discount_pct > self.min_discount_pct)
            and (not self.contract_types or facts.contract_type in self.contract_types)
            and (not self.customer_tiers or facts.customer_tier in self.customer_tiers)
        )


def _seat(kind: AssigneeKind, **what: object) -> Assignee:
    return Assignee(kind=kind, **what)


LEGAL_AND_FINANCE = ApprovalStep(
    name="legal_finance",
    seats=(
        _seat(AssigneeKind.group, group=ApproverGroup.legal),
        _seat(AssigneeKind.group, group=ApproverGroup.finance),
    ),
)
DEFAULT_CHAINS = (
    ApprovalChain(
        name="large_contract",
        min_amount=Decimal("1000000"),
        steps=(
            LEGAL_AND_FINANCE,
            ApprovalStep(
                name="director", seats=(_seat(AssigneeKind.group, group=ApproverGroup.director),)
            ),
        ),
    ),
    ApprovalChain(name="contract", steps=(LEGAL_AND_FINANCE,)),
    ApprovalChain(
        name="quote_discount",
        subjects=(Subject.quote,),
        steps=(ApprovalStep(name="sales_manager", seats=(_seat(AssigneeKind.requester_manager),)),),
    ),
)


class ApprovalPolicy(_Rule):
    """Chains in order, first match wins; a subject no chain matches needs no approval."""

    chains: tuple[ApprovalChain, ...] = DEFAULT_CHAINS
    business_hours: bool = True
    """Count step deadlines in the default business calendar; False counts every hour."""
    link_ttl: Duration = timedelta(days=7)
    """How long the one-click links in approval mails stay valid."""

    def chain_for(self, facts: SubjectFacts) -> ApprovalChain | None:
        return next((c for c in self.chains if c.matches(facts)), None)


class SubjectFacts(BaseModel):
    """What chain conditions look at, read from the contract or quote."""

    subject: Subject
    amount: Decimal
    discount_pct: Decimal = Decimal("0")
    contract_type: str | None = None
    customer_tier: str | None = None


class ApprovalDecision(StrEnum):
    approve = "approve"
    reject = "reject"
    request_changes = "request_changes"


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    changes_requested = "changes_requested"
    withdrawn = "withdrawn"
    """The step was decided by another branch (a parallel rejection) or a new round began."""


class Approval(Base):
    """One approver's part in one step of one round: the decision trail, row by row."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_subject", "subject", "subject_id", "round", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))
    """"contract" or "quote": what is approved (its workflow is `<subject>-<id>`)."""
    subject_id: Mapped[int]
    round: Mapped[int]
    step: Mapped[int]
    step_name: Mapped[str] = mapped_column(String(60))
    seat: Mapped[int] = mapped_column(default=0)
    """Which approver slot of the step this row serves: parallel approvers are seats, and a
    seat may be offered to several people (a role, a group, an escalation); one answer fills it."""
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """Who may answer now: the approver, their delegate, or who it was escalated to."""
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """Who the chain named before any delegation or escalation."""
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default=ApprovalStatus.pending.value)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str | None] = mapped_column(String(10))
    """How the answer came: "inbox" or "link"."""
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- what the approval workflow and its activities exchange ---------------------------------


class ApprovalPlan(BaseModel):
    """The chain chosen for this round, pinned with the policy version (principle 6)."""

    subject: Subject
    subject_id: int
    owner_id: int | None
    manager_id: int | None
    title: str
    chain: str | None
    """None: no chain matches, nothing to approve."""
    steps: list[ApprovalStep]
    version: int
    calendar: BusinessCalendar
    round: int
    link_ttl_seconds: float


class PlanRequest(BaseModel):
    subject: Subject
    subject_id: int
    round: int
    """Counted by the workflow, so a retried plan activity stores the same round."""


class OpenStep(BaseModel):
    subject: Subject
    subject_id: int
    round: int
    step: int
    chain_step: ApprovalStep
    escalate_at: datetime
    """Shown as the due time of the approvers' tasks."""


class Asked(BaseModel):
    """One person asked to fill one seat: their approval row and inbox task."""

    approval_id: int
    seat: int
    assignee_id: int
    task_id: int


class StepOpened(BaseModel):
    asked: list[Asked]


class Escalate(BaseModel):
    subject: Subject
    subject_id: int
    round: int
    step: int
    step_name: str
    seats: list[int]
    escalate_to: EscalateTo


class Decide(BaseModel):
    """An approver's answer: the Update `decide` on `<subject>-<id>`."""

    approval_id: int
    decision: ApprovalDecision
    comment: Annotated[str, Field(max_length=2000)] | None = None
    caller: Caller
    via: str = "inbox"


class Decided(BaseModel):
    approval_id: int
    decision: ApprovalDecision
    outcome: str
    """What the subject is now: in_approval, approved, rejected or changes_requested."""


class Record(BaseModel):
    """The decision written to the approval row, task, audit log and timeline."""

    subject: Subject
    subject_id: int
    approval_id: int
    decision: ApprovalDecision
    comment: str | None
    decided_by: int | None
    decided_by_name: str
    via: str
    withdraw: list[int] = []
    """Other pending rows this answer settles (the seat's other candidates, or every row when
    the subject is rejected or sent back)."""


class Resubmitted(BaseModel):
    """Signal: the owner sent the edited subject back into approval; a new round starts."""

    by_user_id: int | None = None


class Outcome(StrEnum):
    approved = "approved"
    rejected = "rejected"
    changes_requested = "changes_requested"


class Conclude(BaseModel):
    subject: Subject
    subject_id: int
    outcome: Outcome
    round: int


class Concluded(BaseModel):
    """What follows a concluded round: for a signed contract, its deal and renewal date."""

    deal_id: int | None = None
    renewal_at: datetime | None = None


# --- one-click links ------------------------------------------------------------------------

LINK_PURPOSE = "approval-link"


def link_token(
    key: str, *, approval_id: int, user_id: int, decision: ApprovalDecision, expires_at: datetime
) -> str:
    """A signed, expiring answer for one approver and one approval row, for a mail's link.

    Single use comes from the row itself: once answered, the workflow refuses the same token.
    """
    claims = {
        "purpose": LINK_PURPOSE,
        "approval_id": approval_id,
        "user_id": user_id,
        "decision": decision.value,
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, key, algorithm="HS256")


class LinkClaims(BaseModel):
    approval_id: int
    user_id: int
    decision: ApprovalDecision


class BadLink(Exception):
    """The link is forged, damaged or expired; the message says which, for the page."""


def read_link(key: str, token: str) -> LinkClaims:
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise BadLink("this link has expired; answer from your inbox instead") from None
    except jwt.PyJWTError:
        raise BadLink("this link is not valid") from None
    if claims.get("purpose") != LINK_PURPOSE:
        raise BadLink("this link is not valid")
    try:
        return LinkClaims.model_validate(claims)
    except ValueError:
        raise BadLink("this link is not valid") from None


def link_user_id(key: str, token: str) -> int | None:
    """Whom a genuinely signed link names, even once expired: its page speaks their language.

    None for a forged or damaged link; nothing here grants anything (see `read_link`).
    """
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError:
        return None
    user_id = claims.get("user_id") if claims.get("purpose") == LINK_PURPOSE else None
    return user_id if isinstance(user_id, int) else None
