"""Quote money: pure Decimal arithmetic, rounded half-up to the fen as Chinese invoices are.

Each line is rounded on its own, and the totals are sums of rounded lines, so the figures a
customer adds up on paper are exactly the figures stored: subtotal − discount_total = net_total
and net_total + tax_amount = total, to the fen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from domain.errors import Invalid

FEN = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_MONEY = Decimal("9999999999999999.99")
"""The largest amount a money column (Numeric(18, 2)) holds."""


def money(value: Decimal) -> Decimal:
    """Rounded half-up to 0.01: 0.005 → 0.01, never banker's rounding."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineAmounts:
    gross: Decimal
    """quantity × unit price, before the discount."""
    total: Decimal
    """quantity × unit price × (1 − discount/100)."""


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount_total: Decimal
    net_total: Decimal
    tax_amount: Decimal
    total: Decimal
    discount_pct: Decimal
    """discount_total / subtotal in percent: what approval thresholds compare."""


def line_amounts(
    quantity: Decimal, unit_price: Decimal, discount_pct: Decimal, *, field: str = "lines"
) -> LineAmounts:
    """One line's gross and discounted totals; Invalid naming `field` if they cannot be stored."""
    gross = money(quantity * unit_price)
    total = money(quantity * unit_price * (HUNDRED - discount_pct) / HUNDRED)
    if gross > MAX_MONEY:
        raise Invalid("this line's amount is too large to store", field=field)
    return LineAmounts(gross=gross, total=total)


def totals(lines: Iterable[LineAmounts], tax_rate: Decimal) -> Totals:
    """The quote's totals from its lines' amounts; tax applies to the discounted net."""
    rows = list(lines)
    subtotal = sum((line.gross for line in rows), Decimal("0.00"))
    net_total = sum((line.total for line in rows), Decimal("0.00"))
    discount_total = subtotal - net_total
    tax_amount = money(net_total * tax_rate / HUNDRED)
    total = net_total + tax_amount
    if subtotal > MAX_MONEY or total > MAX_MONEY:
        raise Invalid("the quote's total is too large to store", field="lines")
    discount_pct = money(discount_total / subtotal * HUNDRED) if subtotal else Decimal("0.00")
    return Totals(
        subtotal=subtotal,
        discount_total=discount_total,
        net_total=net_total,
        tax_amount=tax_amount,
        total=total,
        discount_pct=discount_pct,
    )
