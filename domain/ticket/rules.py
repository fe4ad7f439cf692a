"""Ticket policies as data: types and the survey loop, dispatch rules, SLA targets.

Pure pydantic models, published as versioned policies (domain.policy) and pinned by each
ticket's workflow when it starts.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.schema import DbId
from domain.ticket.models import Priority

Duration = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=365))]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Values = Annotated[tuple[Name, ...], Field(max_length=200)]


def fold(value: str | None) -> str | None:
    """Compare names as people mean them: case and surrounding spaces do not count."""
    return value.strip().casefold() if value else None


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketPolicy(_Rule):
    """What a ticket may be, and how the loop closes after it is resolved."""

    types: Annotated[tuple[Name, ...], Field(min_length=1, max_length=50)] = (
        "consultation",
        "complaint",
        "repair",
        "installation",
        "return",
    )
    complaint_types: tuple[Name, ...] = ("complaint",)
    """Tickets of these types are told to the customer's owner (负责人)."""
    reopen_within: Duration = timedelta(days=7)
    """A resolved ticket may be reopened for this long; then it closes by itself."""
    survey_reminder_after: Duration = timedelta(days=3)
    survey_valid_for: Duration = timedelta(days=14)
    low_score: Annotated[int, Field(ge=1, le=5)] = 2
    """A score at or below this opens a follow-up visit (回访) for the supervisor."""


class DispatchStrategy(StrEnum):
    round_robin = "round_robin"
    least_open = "least_open"
    skills = "skills"
    """The agents with the most of the wanted skill tags, then the fewest open tickets."""


class DispatchConditions(_Rule):
    """All given lists must hold (case-insensitive); an empty list places no condition."""

    types: Values = ()
    priorities: tuple[Priority, ...] = ()
    products: Values = ()
    channels: Values = ()
    customer_tiers: Values = ()

    def matches(self, facts: TicketFacts) -> bool:
        for allowed, value in (
            (self.types, facts.type),
            (tuple(p.value for p in self.priorities), facts.priority),
            (self.products, facts.product),
            (self.channels, facts.channel),
            (self.customer_tiers, facts.customer_tier),
        ):
            if allowed and fold(value) not in {fold(a) for a in allowed}:
                return False
        return True


class TicketFacts(_Rule):
    type: str
    priority: str
    channel: str
    product: str | None = None
    customer_tier: str | None = None


class DispatchRule(_Rule):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=90)]
    """Keys the rule's round-robin cursor (with a "ticket:" prefix, 100 characters in all)."""
    conditions: DispatchConditions = DispatchConditions()
    team_id: DbId
    strategy: DispatchStrategy = DispatchStrategy.round_robin
    skills: Values = ()
    """Wanted tags for the skills strategy; empty means the ticket's product and type."""


class DispatchPolicy(_Rule):
    """Rules in order (first match with someone available wins), then the customer's service
    team, then the default rule."""

    rules: Annotated[tuple[DispatchRule, ...], Field(max_length=200)] = ()
    default: DispatchRule | None = None

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [r.name for r in self.rules] + ([self.default.name] if self.default else [])
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique")
        return self


class SlaTarget(StrEnum):
    first_response = "first_response"
    next_response = "next_response"
    resolution = "resolution"


class BreachAction(StrEnum):
    notify_supervisor = "notify_supervisor"
    raise_priority = "raise_priority"
    reassign = "reassign"


class SlaTerms(_Rule):
    first_response: Duration
    next_response: Duration | None = None
    """After a customer's reply, the next public answer is owed within this."""
    resolution: Duration
    business_hours: bool = True
    """Count the team's calendar (the same calendars as leads); False counts every hour."""


class SlaRule(_Rule):
    name: Name
    priorities: tuple[Priority, ...] = ()
    customer_tiers: Values = ()
    terms: SlaTerms

    def matches(self, *, priority: str, tier: str | None) -> bool:
        return (not self.priorities or priority in {p.value for p in self.priorities}) and (
            not self.customer_tiers or fold(tier) in {fold(t) for t in self.customer_tiers}
        )


DEFAULT_TERMS: dict[Priority, SlaTerms] = {
    Priority.P1: SlaTerms(
        first_response=timedelta(minutes=15),
        next_response=timedelta(hours=1),
        resolution=timedelta(hours=4),
        business_hours=False,
    ),
    Priority.P2: SlaTerms(
        first_response=timedelta(hours=1),
        next_response=timedelta(hours=4),
        resolution=timedelta(hours=16),
    ),
    Priority.P3: SlaTerms(
        first_response=timedelta(hours=4),
        next_response=timedelta(hours=8),
        resolution=timedelta(hours=27),
    ),
    Priority.P4: SlaTerms(
        first_response=timedelta(hours=8),
        next_response=timedelta(hours=16),
        resolution=timedelta(hours=45),
    ),
}


class TicketSlaPolicy(_Rule):
    """Terms per priority, overridden by the first rule matching priority and customer tier."""

    rules: Annotated[tuple[SlaRule, ...], Field(max_length=200)] = ()
    by_priority: dict[Priority, SlaTerms] = Field(default_factory=lambda: dict(DEFAULT_TERMS))
    warn_at: Annotated[float, Field(gt=0, lt=1)] = 0.75
    """Share of a target after which the assignee is warned."""
    on_breach: dict[SlaTarget, tuple[BreachAction, ...]] = Field(
        default_factory=lambda: {
            SlaTarget.first_response: (BreachAction.notify_supervisor,),
            SlaTarget.next_response: (BreachAction.notify_supervisor,),
            SlaTarget.resolution: (BreachAction.notify_supervisor, BreachAction.raise_priority),
        }
    )

    @model_validator(mode="after")
    def _every_priority(self) -> Self:
        missing = [p.value for p in Priority if p not in self.by_priority]
        if missing:
            raise ValueError(f"by_priority needs terms for {', '.join(missing)}")
        return self

    def terms_for(self, *, priority: str, tier: str | None) -> SlaTerms:
        rule = next((r for r in self.rules if r.matches(priority=priority, tier=tier)), None)
        return rule.terms if rule else self.by_priority[Priority(priority)]
