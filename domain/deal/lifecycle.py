"""What the deal workflow, its activities and the API exchange: ids, choices, pinned policy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from domain.calendar import ALWAYS_OPEN, BusinessCalendar
from domain.deal.rules import PipelinePolicy
from domain.lead.schemas import Caller


class DealStart(BaseModel):
    deal_id: int


class DealPlan(BaseModel):
    """The pipeline a deal's workflow runs under, pinned when it starts (principle 6)."""

    deal_id: int
    name: str
    pipeline: str
    version: int
    policy: PipelinePolicy
    stage: str
    status: str
    stage_entered_at: datetime


class People(BaseModel):
    """Who hears of a stagnant deal now, and which calendar counts its stage limit."""

    owner_id: int | None
    manager_id: int | None
    team_id: int | None = None
    calendar: BusinessCalendar = ALWAYS_OPEN


class Move(BaseModel):
    """The Update `move`: a person moves the deal to another stage."""

    stage: Annotated[str, Field(min_length=1, max_length=40)]
    lost_reason: Annotated[str, Field(max_length=100)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None
    caller: Caller


class MoveRequest(BaseModel):
    """The stage write: checked against exit criteria in the same transaction as the change."""

    deal_id: int
    stage: str
    lost_reason: str | None = None
    note: str | None = None
    caller: Caller
    pipeline: str
    version: int
    at: datetime
    """When the move happens in workflow time: the stage clock and the stored entry agree."""


class Moved(BaseModel):
    deal_id: int
    stage: str
    status: str
    stage_entered_at: datetime
    contract_id: int | None = None
    """The contract drafted on entering a contract stage."""
    tell: list[int] = []
    """Who must hear that the contract is drafted (legal and finance)."""


class ContractSigned(BaseModel):
    """Signal from the contract's approval: the deal is won."""

    contract_id: int


class Stagnant(BaseModel):
    deal_id: int
    stage: str
    generation: int
