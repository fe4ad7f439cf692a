"""The ERP contract: what Dossier sends the ERP, what the ERP reports back, and how both are signed.

Pure: no I/O. docs/erp.md is the prose version of this module; keep them in step.

Every request either way carries `X-Dossier-Timestamp` (unix seconds) and `X-Dossier-Signature`
(`sha256=` + the hex HMAC-SHA256 of `"<timestamp>.<raw body>"` under the shared secret). A
receiver refuses a signature that does not match and a timestamp more than five minutes off its
own clock, so a captured request cannot be replayed later; within those five minutes, event ids
(inbound) and idempotency keys (outbound) make a repeat harmless.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.errors import Invalid

TIMESTAMP_HEADER = "X-Dossier-Timestamp"
SIGNATURE_HEADER = "X-Dossier-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_SKEW_SECONDS = 5 * 60
SCHEME = "sha256="

# --- signatures ---------------------------------------------------------------------------


class BadSignature(Exception):
    """The request cannot be trusted; the message says why (it is safe to tell the sender)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` over `"<timestamp>.<body>"`: the timestamp is signed with the body, so
    neither can be swapped."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float) -> dict[str, str]:
    """The two headers a signed request carries, stamped with `now` (unix seconds)."""
    timestamp = int(now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: str, *, timestamp: str | None, signature_header: str | None, body: bytes, now: float
) -> None:
    """Raise BadSignature unless the request was signed with `secret` within five minutes of
    `now`. The comparison takes constant time, so the signature cannot be guessed byte by byte."""
    if not timestamp:
        raise BadSignature(f"missing {TIMESTAMP_HEADER} header")
    if not signature_header:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise BadSignature(f"{TIMESTAMP_HEADER} must be unix seconds")
    stamped = int(timestamp)
    if abs(now - stamped) > MAX_SKEW_SECONDS:
        raise BadSignature(
            f"{TIMESTAMP_HEADER} is more than {MAX_SKEW_SECONDS // 60} minutes off: "
            "check the sender's clock, or this is a replay"
        )
    expected = signature(secret, stamped, body)
    if not hmac.compare_digest(expected.encode(), signature_header.strip().encode()):
        raise BadSignature("signature does not match the body and timestamp")


# --- what Dossier sends -------------------------------------------------------------------

Money = Annotated[Decimal, Field(max_digits=16, decimal_places=2)]
"""Amounts travel as JSON strings ("12000.00"), never floats."""


class ErpContact(BaseModel):
    name: str
    title: str | None = None
    mobile: str | None = None
    phone: str | None = None
    email: str | None = None


class ErpCustomer(BaseModel):
    """The customer as the ERP keeps it: billing details (开票信息) and contacts."""

    code: str
    """Dossier's customer id, e.g. "C000042": the key the ERP files it under."""
    name: str
    kind: str
    tax_id: str | None = None
    """统一社会信用代码."""
    invoice_title: str | None = None
    billing_address: str | None = None
    billing_phone: str | None = None
    bank_name: str | None = None
    bank_account: str | None = None
    contacts: list[ErpContact] = []


class ErpLine(BaseModel):
    description: str
    quantity: Decimal
    unit: str
    unit_price: Money
    line_total: Money


class ErpInstalment(BaseModel):
    seq: int
    due_on: date
    amount: Money


class ErpOrder(BaseModel):
    """`POST /api/orders`: book a signed contract's order, once per idempotency key."""

    number: str
    contract_number: str | None = None
    customer: ErpCustomer
    lines: list[ErpLine] = []
    """From the contract's quote; empty when the contract was not made from one."""
    amount: Money
    currency: str
    ordered_on: date
    payment_plan: list[ErpInstalment]


class ErpBooking(BaseModel):
    """The ERP's answer to a booking: its own id for the order."""

    erp_order_id: str


class ErpInvoiceRequest(BaseModel):
    """`POST /api/invoice-requests`: ask finance to issue the invoice (开票申请)."""

    order_number: str
    amount: Money
    currency: str
    customer: ErpCustomer


class ErpInvoiceAccepted(BaseModel):
    request_id: str


def customer_code(customer_id: int) -> str:
    return f"C{customer_id:06d}"


def fingerprint(payload: BaseModel) -> str:
    """A short digest of what would be sent, to tell whether the stored state has caught up."""
    return hashlib.sha256(payload.model_dump_json().encode()).hexdigest()[:32]


# --- what the ERP reports -----------------------------------------------------------------

EventId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
OrderNumber = Annotated[str, Field(min_length=1, max_length=40)]
Label = Annotated[str, Field(min_length=1, max_length=60)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: EventId
    """Unique per event: a second delivery of the same id is refused (409)."""
    order_number: OrderNumber
    occurred_at: AwareDatetime


class OrderShipped(_Event):
    type: Literal["order.shipped"]
    carrier: Label
    tracking_no: Label
    shipped_at: AwareDatetime


class OrderInvoiced(_Event):
    type: Literal["order.invoiced"]
    invoice_no: Label
    amount: Positive
    issued_on: date


class PaymentReceived(_Event):
    type: Literal["payment.received"]
    amount: Positive
    paid_on: date
    reference: Annotated[str, Field(max_length=100)] | None = None


ErpEvent = Annotated[OrderShipped | OrderInvoiced | PaymentReceived, Field(discriminator="type")]
events = TypeAdapter[OrderShipped | OrderInvoiced | PaymentReceived](ErpEvent)
"""`events.validate_json(body)`: one inbound event, whichever its `type`."""
EVENT_TYPES = ("order.shipped", "order.invoiced", "payment.received")


def parse(body: bytes) -> OrderShipped | OrderInvoiced | PaymentReceived:
    """One inbound event, or Invalid naming the first bad field (e.g. `amount`)."""
    try:
        return events.validate_json(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # the member of the union, not a field
        if error["type"].startswith("union_tag"):
            loc = ["type"]
        message = error["msg"].removeprefix("Value error, ")
        raise Invalid(message, field=".".join(loc) or "body") from None
