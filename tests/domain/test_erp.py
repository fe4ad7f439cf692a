"""The ERP contract's pure parts: signatures, event parsing, the payment-plan clock, allocation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain import erp
from domain.errors import Invalid
from domain.order.models import Instalment
from domain.order.rules import OrderPolicy, overdue_at, reminder_at
from domain.order.service import allocate

SECRET = "erp-secret"
BODY = b'{"event_id":"evt-1","type":"payment.received"}'
STAMP = 1767225600  # 2026-01-01T00:00:00Z
# printf '%s' '1767225600.<body>' | openssl dgst -sha256 -hmac 'erp-secret'  (docs/erp.md)
KNOWN = "sha256=37d4bcc2845a208ce571646a4342ea5f65dd6785c966efa2a6ea22d488941ec7"


def test_signature_matches_the_known_vector() -> None:
    assert erp.signature(SECRET, STAMP, BODY) == KNOWN
    assert erp.signed_headers(SECRET, BODY, now=STAMP + 0.9) == {
        "X-Dossier-Timestamp": str(STAMP),
        "X-Dossier-Signature": KNOWN,
    }


def test_a_signature_within_five_minutes_verifies() -> None:
    for now in (STAMP, STAMP + 300, STAMP - 300):
        erp.verify(SECRET, timestamp=str(STAMP), signature_header=KNOWN, body=BODY, now=now)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "reason"),
    [
        (str(STAMP), KNOWN, BODY, STAMP + 301, "more than 5 minutes off"),
        (str(STAMP), KNOWN, BODY, STAMP - 301, "more than 5 minutes off"),
        (str(STAMP), KNOWN, BODY + b" ", STAMP, "does not match"),
        (str(STAMP + 1), KNOWN, BODY, STAMP, "does not match"),
        (str(STAMP), KNOWN.replace("sha256=3", "sha256=4"), BODY, STAMP, "does not match"),
        (None, KNOWN, BODY, STAMP, "missing X-Dossier-Timestamp"),
        (str(STAMP), None, BODY, STAMP, "missing X-Dossier-Signature"),
        ("2026-01-01", KNOWN, BODY, STAMP, "unix seconds"),
        ("-1", KNOWN, BODY, STAMP, "unix seconds"),
    ],
)
def test_bad_signatures_are_refused_with_the_reason(
    timestamp: str | None, signature: str | None, body: bytes, now: float, reason: str
) -> None:
    with pytest.raises(erp.BadSignature, match=reason):
        erp.verify(SECRET, timestamp=timestamp, signature_header=signature, body=body, now=now)


def test_events_parse_by_type() -> None:
    paid = erp.events.validate_json(
        '{"type":"payment.received","event_id":"e1","order_number":"SO-2026-000001",'
        '"occurred_at":"2026-03-01T10:00:00+08:00","amount":"1500.50","paid_on":"2026-03-01"}'
    )
    assert isinstance(paid, erp.PaymentReceived) and paid.amount == Decimal("1500.50")
    shipped = erp.events.validate_python({
        "type": "order.shipped", "event_id": "e2", "order_number": "SO-1",
        "occurred_at": "2026-03-01T10:00:00Z", "carrier": "顺丰", "tracking_no": "SF1",
        "shipped_at": "2026-03-01T09:00:00Z",
    })
    assert isinstance(shipped, erp.OrderShipped)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": 12.5, "occurred_at": "2026-03-01T10:00:00"}, "occurred_at"),
        ({"type": "order.cancelled"}, "type"),
        ({"event_id": ""}, "event_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_events_name_the_field(change: dict, field: str) -> None:
    event = {"type": "payment.received", "event_id": "e1", "order_number": "SO-1",
             "occurred_at": "2026-03-01T10:00:00Z", "amount": "10", "paid_on": "2026-03-01",
             **change}
    with pytest.raises(Invalid) as caught:
        erp.parse(json.dumps(event).encode())
    assert caught.value.field == field


def test_the_payment_plan_clock_runs_in_the_local_time_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    policy = OrderPolicy()
    assert reminder_at(date(2026, 3, 10), policy, shanghai) == datetime(
        2026, 3, 7, 9, 0, tzinfo=shanghai
    )
    assert overdue_at(date(2026, 3, 10), policy, shanghai) == datetime(
        2026, 3, 10, 16, 0, tzinfo=UTC
    )
    later = OrderPolicy.model_validate({"remind_before": "P1D", "overdue_after": "PT12H"})
    assert overdue_at(date(2026, 3, 10), later, shanghai) == datetime(
        2026, 3, 11, 12, 0, tzinfo=shanghai
    )
    with pytest.raises(ValidationError):
        OrderPolicy.model_validate({"remind_before": "-P1D"})


def test_partial_payments_add_up_earliest_instalment_first() -> None:
    plan = [
        Instalment(seq=1, due_on=date(2026, 3, 1), amount=Decimal("300"), paid_amount=Decimal(0)),
        Instalment(seq=2, due_on=date(2026, 4, 1), amount=Decimal("700"), paid_amount=Decimal(0)),
    ]
    assert allocate(plan, Decimal("200"), date(2026, 2, 20)) == []
    assert allocate(plan, Decimal("150"), date(2026, 2, 25)) == [1]
    assert (plan[0].paid_amount, plan[0].paid_on, plan[1].paid_amount) == (
        Decimal("300"), date(2026, 2, 25), Decimal("50"),
    )
    assert allocate(plan, Decimal("700"), date(2026, 4, 2)) == [2]
    assert plan[1].paid_amount == Decimal("700") and plan[1].status == "paid"
