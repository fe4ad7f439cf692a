"""What callers send and read about deals."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.deal.models import DealKind, DealStatus
from domain.schema import DbId, Input, Money, Patch

Name = Annotated[str, Field(min_length=1, max_length=200)]


class DealCreate(Input):
    name: Name
    customer_id: DbId
    contact_id: DbId | None = None
    decision_maker_id: DbId | None = None
    owner_id: DbId | None = None
    """Default: the caller."""
    pipeline: Annotated[str, Field(min_length=1, max_length=60)] = "default"
    amount: Money | None = None
    budget: Money | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    expected_close_on: date | None = None
    next_step: Annotated[str, Field(max_length=300)] | None = None
    description: Annotated[str, Field(max_length=20_000)] | None = None


class DealUpdate(Patch):
    """Plain fields; the stage moves through `POST /api/deals/{id}/stage`."""

    not_null = frozenset({"name", "currency"})

    name: Name | None = None
    contact_id: DbId | None = None
    decision_maker_id: DbId | None = None
    owner_id: DbId | None = None
    amount: Money | None = None
    budget: Money | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    expected_close_on: date | None = None
    next_step: Annotated[str, Field(max_length=300)] | None = None
    description: Annotated[str, Field(max_length=20_000)] | None = None


class StageMove(Input):
    stage: Annotated[str, Field(min_length=1, max_length=40)]
    lost_reason: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class DealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: DealKind
    customer_id: int
    contact_id: int | None
    decision_maker_id: int | None
    lead_id: int | None
    owner_id: int | None
    pipeline: str
    pipeline_version: int
    stage: str
    stage_entered_at: datetime
    probability: int
    status: DealStatus
    amount: Decimal | None
    budget: Decimal | None
    currency: str
    expected_close_on: date | None
    next_step: str | None
    description: str | None
    custom: dict[str, Any]
    lost_reason: str | None
    closed_at: datetime | None
    renewal_of_contract_id: int | None
    created_at: datetime


class StageChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_stage: str | None
    to_stage: str
    by_user_id: int | None
    at: datetime


class DealDetail(DealRead):
    history: list[StageChangeRead] = []


class DealQuery(BaseModel):
    status: DealStatus | None = None
    pipeline: Annotated[str, Field(max_length=60)] | None = None
    stage: Annotated[str, Field(max_length=40)] | None = None
    owner_id: DbId | None = None
    customer_id: DbId | None = None
    mine: bool = False
    sort: Literal["-created_at", "expected_close_on", "-amount", "stage_entered_at"] = "-created_at"
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 20


class StageTotal(BaseModel):
    """One column of the pipeline board: deals, their amount and its probability-weighted part."""

    count: int
    amount: Decimal
    weighted: Decimal


class DealPage(BaseModel):
    items: list[DealRead]
    total: int
    page: int
    size: int
