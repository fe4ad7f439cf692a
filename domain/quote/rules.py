"""The quote policy as data (kind `quote`): when a discount needs approval, validity, tax."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]


class QuotePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    discount_approval_threshold_pct: Percent = Decimal("10")
    """A quote whose overall discount, or any line's discount, is above this needs approval."""
    validity_days: Annotated[int, Field(ge=1, le=365)] = 30
    """A new quote is valid until today (in the company's time zone) plus this many days."""
    default_tax_rate: Percent = Decimal("13")
    """VAT rate of a new quote unless it names its own (13 % is China's standard rate)."""

    def needs_approval(self, *, overall_pct: Decimal, line_pcts: list[Decimal]) -> bool:
        threshold = self.discount_approval_threshold_pct
        return overall_pct > threshold or any(pct > threshold for pct in line_pcts)
