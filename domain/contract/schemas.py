"""What callers send and read about contracts and their approval trail."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from domain.contract.models import Contract, ContractStatus
from domain.errors import Invalid
from domain.schema import DbId, Input, Money, Patch


class PaymentTerm(Input):
    """One instalment of the payment plan (回款计划)."""

    due_on: date
    amount: Annotated[Money, Field(gt=0)]

    def as_json(self) -> dict[str, str]:
        return {"due_on": self.due_on.isoformat(), "amount": str(self.amount)}


class ContractUpdate(Patch):
    not_null = frozenset({"title", "contract_type", "amount", "payment_terms"})

    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    contract_type: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    amount: Money | None = None
    start_on: date | None = None
    end_on: date | None = None
    terms: Annotated[str, Field(max_length=20_000)] | None = None
    payment_terms: Annotated[list[PaymentTerm], Field(max_length=60)] | None = None

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}

    @staticmethod
    def check_against(
        *, amount: Decimal, start_on: date | None, end_on: date | None, terms: list[PaymentTerm]
    ) -> None:
        """The stored result must hold together: dates in order, the plan adds up to the amount."""
        if start_on and end_on and end_on < start_on:
            raise Invalid("must not come before start_on", field="end_on")
        if terms and sum(t.amount for t in terms) != amount:
            raise Invalid(
                f"the instalments add up to {sum(t.amount for t in terms)}, not {amount}",
                field="payment_terms",
            )


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    title: str
    contract_type: str
    deal_id: int | None
    quote_id: int | None
    customer_id: int
    owner_id: int | None
    status: ContractStatus
    amount: Decimal
    currency: str
    discount_pct: Decimal
    start_on: date | None
    end_on: date | None
    terms: str | None
    payment_terms: list[dict[str, str]]
    round: int
    approval_chain: str | None
    signed_at: datetime | None
    renewal_deal_id: int | None
    created_at: datetime


class ApprovalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    round: int
    step: int
    step_name: str
    seat: int
    assignee_id: int | None
    approver_id: int | None
    task_id: int | None
    status: str
    decided_by: int | None
    decided_at: datetime | None
    comment: str | None
    via: str | None
    escalated_at: datetime | None
    created_at: datetime


class ContractDetail(ContractRead):
    approvals: list[ApprovalRead] = []
    """The decision trail: who was asked, who answered what, when, with which comment."""


class ContractQuery(BaseModel):
    status: ContractStatus | None = None
    customer_id: DbId | None = None
    deal_id: DbId | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 20


class ContractPage(BaseModel):
    items: list[ContractRead]

    @classmethod
    def of(cls, rows: list[Contract]) -> ContractPage:
        return cls(items=[ContractRead.model_validate(r) for r in rows])
