"""A small reference ERP: what docs/erp.md describes, runnable, with switches to misbehave.

It books orders once per idempotency key, takes invoice requests and customer pushes, and sends
Dossier correctly signed events (shipped, invoiced, paid) when told to through `/_sim/…`. Its
switches make it slow, fail the next N requests, lose the answer to the next N bookings (booked,
but the caller sees a 500), or go down (503 to everything). `dossier run` starts one when no ERP
is configured; tests run it on a loopback port (tests/erp.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain import erp

PORT = 8100
"""Where `dossier run` and `dossier erp-simulator` serve it."""


class Switches(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    fail_next: Annotated[int, Field(ge=0)] = 0
    """The next N requests to /api/… are answered `fail_status` and change nothing."""
    fail_status: Annotated[int, Field(ge=500, le=599)] = 503
    lose_response_next: Annotated[int, Field(ge=0)] = 0
    """The next N bookings are made, but answered 500: the caller must retry with its key."""
    down: bool = False
    """Answer 503 to every /api/… request."""


class SwitchChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_ms: Annotated[int, Field(ge=0, le=600_000)] | None = None
    fail_next: Annotated[int, Field(ge=0)] | None = None
    fail_status: Annotated[int, Field(ge=500, le=599)] | None = None
    lose_response_next: Annotated[int, Field(ge=0)] | None = None
    down: bool | None = None


class EventRequest(BaseModel):
    """What a `/_sim/orders/{number}/…` call may set; the rest is filled in."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = None
    carrier: str = "顺丰速运"
    tracking_no: str | None = None
    invoice_no: str | None = None
    amount: Decimal | None = None
    paid_on: date | None = None
    issued_on: date | None = None
    reference: str | None = None
    timestamp: int | None = None
    """Sign as of this unix time instead of now (to show a stale event being refused)."""


@dataclass
class Booking:
    erp_order_id: str
    key: str
    order: dict[str, Any]


@dataclass
class Simulator:
    dossier_url: str | None
    secret: str
    switches: Switches = field(default_factory=Switches)
    bookings: dict[str, Booking] = field(default_factory=dict)
    """By idempotency key."""
    invoice_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    """Requests that reached the books, per idempotency key (retries included)."""

    def booking_for(self, number: str) -> Booking | None:
        return next((b for b in self.bookings.values() if b.order["number"] == number), None)


def _answer(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


def create_simulator(*, dossier_url: str | None, secret: str) -> FastAPI:
    """The simulator app; `dossier_url` is where events go (None: only returned, not sent)."""
    app = FastAPI(title="Dossier reference ERP simulator")
    sim = Simulator(dossier_url=dossier_url, secret=secret)
    app.state.sim = sim

    @app.middleware("http")
    async def misbehave(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith("/api/"):
            return await call_next(request)
        switches = sim.switches
        if switches.delay_ms:
            await asyncio.sleep(switches.delay_ms / 1000)
        if switches.down:
            return _answer(503, "the ERP is down for maintenance")
        if switches.fail_next:
            switches.fail_next -= 1
            return _answer(switches.fail_status, "simulated failure")
        body = await request.body()
        try:
            erp.verify(
                sim.secret,
                timestamp=request.headers.get(erp.TIMESTAMP_HEADER),
                signature_header=request.headers.get(erp.SIGNATURE_HEADER),
                body=body,
                now=time.time(),
            )
        except erp.BadSignature as bad:
            return _answer(401, str(bad))
        if not request.headers.get(erp.IDEMPOTENCY_HEADER):
            return _answer(400, f"the {erp.IDEMPOTENCY_HEADER} header is required")
        return await call_next(request)

    def _count(request: Request) -> str:
        key = request.headers[erp.IDEMPOTENCY_HEADER]
        sim.requests[key] = sim.requests.get(key, 0) + 1
        return key

    @app.post("/api/orders")
    async def book(request: Request) -> Response:
        key = _count(request)
        try:
            order = erp.ErpOrder.model_validate_json(await request.body())
        except ValidationError as exc:
            return _answer(422, str(exc.errors(include_url=False)[0]["msg"]))
        if key in sim.bookings:
            return JSONResponse({"erp_order_id": sim.bookings[key].erp_order_id})
        if sim.booking_for(order.number) is not None:
            return _answer(409, f"order {order.number} is booked under another key")
        booking = Booking(
            erp_order_id=f"ERP-{len(sim.bookings) + 1:05d}",
            key=key,
            order=order.model_dump(mode="json"),
        )
        sim.bookings[key] = booking
        if sim.switches.lose_response_next:
            sim.switches.lose_response_next -= 1
            return _answer(500, "booked, but the answer was lost")
        return JSONResponse({"erp_order_id": booking.erp_order_id}, status_code=201)

    @app.post("/api/invoice-requests")
    async def invoice_request(request: Request) -> Response:
        key = _count(request)
        try:
            wanted = erp.ErpInvoiceRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _answer(422, str(exc.errors(include_url=False)[0]["msg"]))
        if sim.booking_for(wanted.order_number) is None:
            return _answer(404, f"order {wanted.order_number} is not booked")
        sim.invoice_requests.setdefault(key, wanted.model_dump(mode="json"))
        return JSONResponse({"request_id": f"INV-REQ-{len(sim.invoice_requests):05d}"})

    @app.put("/api/customers/{code}")
    async def put_customer(code: str, request: Request) -> Response:
        _count(request)
        try:
            customer = erp.ErpCustomer.model_validate_json(await request.body())
        except ValidationError as exc:
            return _answer(422, str(exc.errors(include_url=False)[0]["msg"]))
        if customer.code != code:
            return _answer(422, f"the body is customer {customer.code}, the address {code}")
        sim.customers[code] = customer.model_dump(mode="json")
        return JSONResponse({"code": code})

    @app.post("/_sim/switches")
    async def set_switches(change: SwitchChange) -> Switches:
        sim.switches = sim.switches.model_copy(update=change.model_dump(exclude_none=True))
        return sim.switches

    @app.get("/_sim/state")
    async def state() -> dict[str, Any]:
        return {
            "switches": sim.switches.model_dump(),
            "bookings": [
                {"key": b.key, "erp_order_id": b.erp_order_id, "number": b.order["number"],
                 "requests": sim.requests.get(b.key, 0), "order": b.order}
                for b in sim.bookings.values()
            ],
            "invoice_requests": list(sim.invoice_requests.values()),
            "customers": sim.customers,
            "requests": sim.requests,
        }

    @app.post("/_sim/orders/{number}/{what}")
    async def send_event(number: str, what: str, wanted: EventRequest | None = None) -> Response:
        booking = sim.booking_for(number)
        if booking is None:
            return _answer(404, f"order {number} is not booked")
        try:
            event = _event(what, booking, wanted or EventRequest())
        except ValueError as exc:
            return _answer(422, str(exc))
        return JSONResponse(await _deliver(sim, event, wanted))

    return app


def _event(what: str, booking: Booking, wanted: EventRequest) -> dict[str, Any]:
    now = datetime.now(UTC)
    base = {
        "event_id": wanted.event_id or f"evt-{uuid.uuid4().hex[:16]}",
        "order_number": booking.order["number"],
        "occurred_at": now.isoformat(),
    }
    if what == "ship":
        return {**base, "type": "order.shipped", "carrier": wanted.carrier,
                "tracking_no": wanted.tracking_no or f"SF{uuid.uuid4().int % 10**12:012d}",
                "shipped_at": now.isoformat()}
    if what == "invoice":
        amount = wanted.amount or Decimal(booking.order["amount"])
        return {**base, "type": "order.invoiced",
                "invoice_no": wanted.invoice_no or f"{uuid.uuid4().int % 10**8:08d}",
                "amount": str(amount), "issued_on": (wanted.issued_on or now.date()).isoformat()}
    if what == "pay":
        if wanted.amount is None:
            raise ValueError("say how much was paid: amount")
        return {**base, "type": "payment.received", "amount": str(wanted.amount),
                "paid_on": (wanted.paid_on or now.date()).isoformat(),
                "reference": wanted.reference}
    raise ValueError("the event is one of: ship, invoice, pay")


async def _deliver(sim: Simulator, event: dict[str, Any], wanted: EventRequest | None) -> dict:
    """Sign and send the event; the exact body and headers are returned so a test can replay."""
    body = erp.events.validate_python(event).model_dump_json().encode()
    stamp = wanted.timestamp if wanted and wanted.timestamp is not None else time.time()
    headers = {"Content-Type": "application/json",
               **erp.signed_headers(sim.secret, body, now=stamp)}
    sent: dict[str, Any] = {"body": body.decode(), "headers": headers, "status": None,
                            "response": None}
    if sim.dossier_url:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(
                sim.dossier_url.rstrip("/") + "/api/erp/events", content=body, headers=headers
            )
        sent["status"] = answer.status_code
        try:
            sent["response"] = answer.json()
        except ValueError:
            sent["response"] = answer.text
    return sent
