"""What the order workflow and its activities exchange: ids, the pinned plan, progress. No rows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

from domain.erp import ErpEvent


class OrderOpen(BaseModel):
    """Make the order of a signed contract (activity `order_open`)."""

    contract_id: int


class OrderOpened(BaseModel):
    order_id: int
    number: str


class OrderStart(BaseModel):
    """The single argument of the `Order` workflow (`order-<id>`)."""

    order_id: int
    policy_version: int | None = None
    """The order policy version to keep to; None on the first run: the one in force."""


class InstalmentStep(BaseModel):
    """One instalment and the two instants of its clock, computed once in the plan's time zone."""

    seq: int
    due_on: date
    amount: Decimal
    remind_at: datetime
    overdue_at: datetime
    paid: bool = False
    overdue: bool = False


class OrderPlan(BaseModel):
    """The order as its workflow needs it, read when it starts (and after continue-as-new)."""

    order_id: int
    number: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    manager_id: int | None
    """The owner's team manager: who hears of an overdue instalment."""
    booked: bool
    invoice_requested: bool
    completed: bool
    policy_version: int
    instalments: list[InstalmentStep]


class CustomerMerged(BaseModel):
    """The signal `customer_merged`: a merge (or its undo) moved the order to this customer."""

    customer_id: int
    customer_name: str


class OrderBooked(BaseModel):
    """How the booking went: booked, refused by the ERP for good, or no ERP configured."""

    booked: bool
    erp_order_id: str | None = None
    refused: str | None = None


class OrderEvent(BaseModel):
    order_id: int
    event: ErpEvent


class OrderProgress(BaseModel):
    """The order after an event: which instalments are now paid, and whether it is done."""

    applied: bool
    """False when this event id had been applied before (a repeat changes nothing)."""
    status: str
    paid_seqs: list[int]
    completed: bool


class InstalmentOverdue(BaseModel):
    order_id: int
    seq: int
