"""Pipelines as data: ordered stages with win probability, exit criteria, entry tasks and limits.

A pipeline is a policy of kind `pipeline` named after the product line or business unit that
uses it ("default" otherwise). Moving a deal forward out of a stage needs that stage's exit
criteria filled (for every stage it passes); moving back needs nothing. A deal that stays in a
stage longer than its limit alerts the owner, then, `escalate_after` later, the manager.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Duration = Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=730))]
StageKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Criterion(StrEnum):
    """Facts a deal must have before it may leave a stage forwards."""

    amount = "amount"
    budget = "budget"
    decision_maker = "decision_maker"
    contact = "contact"
    expected_close_on = "expected_close_on"
    next_step = "next_step"
    description = "description"
    accepted_quote = "accepted_quote"
    """A quote the customer accepted: the contract is drafted from it."""


class Outcome(StrEnum):
    won = "won"
    lost = "lost"


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: StageKey
    name: Annotated[str, Field(min_length=1, max_length=40)]
    name_en: Annotated[str, Field(min_length=1, max_length=40)]
    probability: Annotated[int, Field(ge=0, le=100)]
    exit_criteria: tuple[Criterion, ...] = ()
    entry_tasks: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=200)], ...], Field(max_length=10)
    ] = ()
    """Titles of tasks the owner gets on entering the stage (e.g. "book a demo")."""
    max_duration: Duration | None = None
    """Longer in this stage is stagnation."""
    outcome: Outcome | None = None
    drafts_contract: bool = False
    """Entering this stage drafts the contract from the accepted quote and starts its approval."""


def _stage(key: str, name: str, name_en: str, probability: int, **more: object) -> Stage:
    return Stage(key=key, name=name, name_en=name_en, probability=probability, **more)


DEFAULT_STAGES = (
    _stage("initial_contact", "初步接触", "Initial contact", 10, max_duration=timedelta(days=14)),
    _stage(
        "needs_confirmed",
        "需求确认",
        "Needs confirmed",
        30,
        exit_criteria=(Criterion.budget, Criterion.decision_maker),
        entry_tasks=("预约产品演示 Book a demo",),
        max_duration=timedelta(days=14),
    ),
    _stage(
        "proposal",
        "方案提供",
        "Proposal",
        50,
        exit_criteria=(Criterion.accepted_quote,),
        max_duration=timedelta(days=21),
    ),
    _stage(
        "negotiation",
        "商务谈判",
        "Negotiation",
        75,
        drafts_contract=True,
        max_duration=timedelta(days=30),
    ),
    _stage("won", "签约", "Won", 100, outcome=Outcome.won),
    _stage("lost", "输单", "Lost", 0, outcome=Outcome.lost),
)


class PipelinePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: Annotated[tuple[Stage, ...], Field(min_length=2, max_length=20)] = DEFAULT_STAGES
    escalate_after: Duration = timedelta(days=3)
    """After the owner's stagnation alert, how long until the manager hears of it."""
    business_hours: bool = False
    """Count stage limits in the owner's team calendar; False counts every hour."""
    lost_reasons: Annotated[tuple[str, ...], Field(min_length=1)] = (
        "价格",
        "竞争对手",
        "需求取消",
        "预算不足",
        "联系不上",
        "其他",
    )

    @model_validator(mode="after")
    def _shape(self) -> Self:
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique")
        outcomes = [s.outcome for s in self.stages if s.outcome]
        if sorted(outcomes) != [Outcome.lost, Outcome.won]:
            raise ValueError("a pipeline needs exactly one won and one lost stage")
        if self.stages[0].outcome is not None:
            raise ValueError("the first stage must be an open one")
        return self

    def stage(self, key: str) -> Stage | None:
        return next((s for s in self.stages if s.key == key), None)

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def open_order(self, key: str) -> int:
        """Position among the open stages; won counts as after all of them."""
        order = [s.key for s in self.stages if s.outcome is None]
        if key in order:
            return order.index(key)
        return len(order)

    def criteria_between(self, current: str, target: str) -> list[Criterion]:
        """Exit criteria of every open stage a move from `current` to `target` leaves forwards.

        Lost needs none (a reason instead); moving back needs none.
        """
        stage = self.stage(target)
        if stage is None or stage.outcome is Outcome.lost:
            return []
        start, end = self.open_order(current), self.open_order(target)
        open_stages = [s for s in self.stages if s.outcome is None]
        needed: list[Criterion] = []
        for passed in open_stages[start:end]:
            needed.extend(c for c in passed.exit_criteria if c not in needed)
        return needed
