"""Quote money: half-up rounding to the fen, discounts, tax, the overall discount, thresholds.

Expected values are computed by hand: they are the spec.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from domain.errors import Invalid
from domain.quote import pricing
from domain.quote.rules import QuotePolicy


@pytest.mark.parametrize(
    ("quantity", "unit_price", "discount", "gross", "total"),
    [
        ("3", "33.33", "0", "99.99", "99.99"),
        # 0.025 rounds half-up to 0.03 (banker's rounding would give 0.02)
        ("1", "0.05", "50", "0.05", "0.03"),
        # 0.4995 → 0.50
        ("0.333", "1.50", "0", "0.50", "0.50"),
        # gross 25.025 → 25.03; discounted 22.5225 → 22.52
        ("2.5", "10.01", "10", "25.03", "22.52"),
        ("7", "12.00", "100", "84.00", "0.00"),
        ("1.125", "0.00", "0", "0.00", "0.00"),
    ],
)
def test_line_amounts_round_half_up_to_the_fen(
    quantity: str, unit_price: str, discount: str, gross: str, total: str
) -> None:
    amounts = pricing.line_amounts(D(quantity), D(unit_price), D(discount))
    assert (amounts.gross, amounts.total) == (D(gross), D(total))
    assert str(amounts.total) == total


def test_totals_discount_tax_and_overall_discount() -> None:
    lines = [
        pricing.line_amounts(D("10"), D("100.00"), D("10")),  # 1000.00 → 900.00
        pricing.line_amounts(D("3"), D("33.33"), D("0")),  # 99.99 → 99.99
    ]
    totals = pricing.totals(lines, D("13"))
    assert totals.subtotal == D("1099.99")
    assert totals.net_total == D("999.99")
    assert totals.discount_total == D("100.00")
    assert totals.tax_amount == D("130.00")  # 129.9987
    assert totals.total == D("1129.99")
    assert totals.discount_pct == D("9.09")  # 100 / 1099.99 = 9.0910 %


def test_tax_rounds_half_up() -> None:
    totals = pricing.totals([pricing.line_amounts(D("1"), D("0.50"), D("0"))], D("13"))
    assert totals.tax_amount == D("0.07")  # 0.065
    assert totals.total == D("0.57")


def test_overall_discount_rounds_half_up() -> None:
    # discount 1.00 on 8.00 gross: 12.5 %; 1 on 3 gross: 33.333… → 33.33
    eighth = pricing.totals([pricing.line_amounts(D("1"), D("8.00"), D("12.5"))], D("0"))
    assert eighth.discount_pct == D("12.50")
    third = pricing.totals(
        [
            pricing.line_amounts(D("1"), D("1.00"), D("100")),
            pricing.line_amounts(D("1"), D("2.00"), D("0")),
        ],
        D("0"),
    )
    assert third.discount_pct == D("33.33")


def test_an_empty_or_free_quote_has_no_discount_and_no_tax() -> None:
    assert pricing.totals([], D("13")) == pricing.Totals(
        subtotal=D("0.00"),
        discount_total=D("0.00"),
        net_total=D("0.00"),
        tax_amount=D("0.00"),
        total=D("0.00"),
        discount_pct=D("0.00"),
    )


def test_amounts_too_large_to_store_are_refused_by_field() -> None:
    with pytest.raises(Invalid) as line:
        pricing.line_amounts(D("999999999.999"), D("99999999999999.99"), D("0"), field="lines.2")
    assert line.value.field == "lines.2"
    big = pricing.line_amounts(D("1"), D("9999999999999999.99"), D("0"))
    with pytest.raises(Invalid) as total:
        pricing.totals([big, big], D("0"))
    assert total.value.field == "lines"


@pytest.mark.parametrize(
    ("overall", "lines", "needs"),
    [
        ("10", ["10"], False),  # at the threshold is fine: only above needs approval
        ("10.01", ["10.01"], True),
        ("4", ["15", "0"], True),  # one deep line discount is enough
        ("0", [], False),
    ],
)
def test_discount_threshold(overall: str, lines: list[str], needs: bool) -> None:
    rules = QuotePolicy()
    assert rules.discount_approval_threshold_pct == D("10")
    assert rules.needs_approval(overall_pct=D(overall), line_pcts=[D(p) for p in lines]) is needs
