"""What callers read about orders: the order, its payment plan and the payments received."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.order.models import OrderStatus
from domain.schema import DbId


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    contract_id: int | None
    customer_id: int
    owner_id: int | None
    status: OrderStatus
    amount: Decimal
    currency: str
    ordered_on: date
    erp_order_id: str | None
    booked_at: datetime | None
    invoice_requested_at: datetime | None
    shipped_at: datetime | None
    carrier: str | None
    tracking_no: str | None
    invoice_no: str | None
    invoiced_amount: Decimal
    invoiced_at: datetime | None
    paid_amount: Decimal
    last_paid_on: date | None
    created_at: datetime
    updated_at: datetime


class InstalmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    due_on: date
    amount: Decimal
    paid_amount: Decimal
    status: str
    paid_on: date | None


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    amount: Decimal
    paid_on: date
    reference: str | None
    created_at: datetime


class OrderDetail(OrderRead):
    instalments: list[InstalmentRead]
    payments: list[PaymentRead]


class OrderQuery(BaseModel):
    customer_id: DbId | None = None
    status: OrderStatus | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 20


class OrderPage(BaseModel):
    items: list[OrderRead]
    total: int
    page: int
    size: int
