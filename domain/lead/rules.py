"""Lead policies as data: the first-contact SLA chain, the follow-up cadence, the pool, intake.

Pure pydantic models, published as versioned policies (domain.policy) and pinned by each lead's
workflow when it starts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.lead.models import SlaAction

Duration = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=365))]
"""ISO-8601 (`PT30M`, `P1D`) or seconds; down to the second, so chains can be tested live."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlaStep(_Rule):
    after: Duration
    """Business time since the clock started (assignment or claim), not since the last step."""
    action: SlaAction


class SlaChain(_Rule):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    sources: tuple[str, ...] = ()
    """Applies to leads from these sources; empty matches any."""
    priorities: tuple[str, ...] = ()
    steps: Annotated[tuple[SlaStep, ...], Field(min_length=1, max_length=10)]
    business_hours: bool = True
    """Count the owner's team calendar; False counts every hour (24×7)."""
    max_reassignments: Annotated[int, Field(ge=0, le=10)] = 1
    """How often the chain may pass a lead on by itself. The new owner runs the chain from the
    start; once the budget is spent its reassign steps are skipped, so a later return-to-pool
    step is reached instead of passing the lead round the team for ever."""

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: tuple[SlaStep, ...]) -> tuple[SlaStep, ...]:
        afters = [s.after for s in steps]
        if afters != sorted(afters) or len(set(afters)) != len(afters):
            raise ValueError("steps must come at strictly increasing times")
        return steps

    def matches(self, *, source: str | None, priority: str) -> bool:
        return (not self.sources or source in self.sources) and (
            not self.priorities or priority in self.priorities
        )


DEFAULT_CHAIN = SlaChain(
    name="default",
    steps=(
        SlaStep(after=timedelta(minutes=30), action=SlaAction.notify_owner),
        SlaStep(after=timedelta(hours=2), action=SlaAction.notify_manager),
        SlaStep(after=timedelta(hours=4), action=SlaAction.reassign),
        SlaStep(after=timedelta(hours=24), action=SlaAction.return_to_pool),
    ),
)


class LeadSlaPolicy(_Rule):
    """First-contact SLA chains (first match wins) and the follow-up cadence after contact."""

    chains: tuple[SlaChain, ...] = ()
    default_chain: SlaChain = DEFAULT_CHAIN
    cadence: Duration = timedelta(days=7)
    """A contacted lead with no activity for this long goes back to the pool."""
    cadence_business_hours: bool = False

    def chain_for(self, *, source: str | None, priority: str) -> SlaChain:
        return next(
            (c for c in self.chains if c.matches(source=source, priority=priority)),
            self.default_chain,
        )


class PoolPolicy(_Rule):
    daily_claim_limit: Annotated[int, Field(ge=1, le=10_000)] = 10
    open_lead_cap: Annotated[int, Field(ge=1, le=100_000)] = 50
    """A rep with this many open leads can neither claim nor be assigned more."""
    cooldown: Annotated[timedelta, Field(ge=timedelta(0), le=timedelta(days=365))] = timedelta(
        days=7
    )
    """The owner a lead was taken from may not claim it back for this long."""


class LeadPolicy(_Rule):
    disqualify_reasons: Annotated[tuple[str, ...], Field(min_length=1)] = (
        "无需求",
        "无预算",
        "联系不上",
        "竞争对手",
        "重复线索",
        "其他",
    )
    resubmission_window: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(hours=24)
    """The same person through the same form within this window is one lead."""
