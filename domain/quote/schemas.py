"""Quote schemas: the lines and terms callers send, and the priced quote they read back."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.product import Percent, Price, Unit
from domain.quote.models import QuoteStatus
from domain.schema import DbId, Input, Patch

Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
"""Positive, to the thousandth (3.125 tonnes), below a billion."""
Note = Annotated[str, Field(max_length=10_000)]
MAX_LINES = 500


class QuoteLineIn(Input):
    """A catalogue line names `product_id` and may leave the rest to the product and price list;
    a free-text line needs `description` and `unit_price`."""

    product_id: DbId | None = None
    description: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    quantity: Quantity
    unit: Unit | None = None
    unit_price: Price | None = None
    discount_pct: Percent = Decimal("0")


Lines = Annotated[list[QuoteLineIn], Field(max_length=MAX_LINES)]


class QuoteCreate(Input):
    lines: Lines = Field(default_factory=list)
    price_list_id: DbId | None = None
    tax_rate: Percent | None = None
    """Defaults to the quote policy's `default_tax_rate`."""
    valid_until: date | None = None
    """Defaults to today plus the quote policy's `validity_days`."""
    note: Note | None = None


class QuoteUpdate(Patch):
    """Only while draft. Sent `lines` replace all lines and are priced again."""

    not_null = frozenset({"lines", "tax_rate", "valid_until"})

    lines: Lines | None = None
    price_list_id: DbId | None = None
    tax_rate: Percent | None = None
    valid_until: date | None = None
    note: Note | None = None


class QuoteLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    product_id: int | None
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    discount_pct: Decimal
    line_total: Decimal


class QuoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    deal_id: int
    customer_id: int
    version: int
    status: QuoteStatus
    currency: str
    price_list_id: int | None
    tax_rate: Decimal
    valid_until: date | None
    subtotal: Decimal
    discount_total: Decimal
    net_total: Decimal
    tax_amount: Decimal
    total: Decimal
    discount_pct: Decimal
    note: str | None
    created_by: int | None
    approved_at: datetime | None
    sent_at: datetime | None
    accepted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    lines: list[QuoteLineRead]
