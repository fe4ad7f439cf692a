"""The ERP's way in: signed events (shipped, invoiced, paid) become signals to the order workflow.

Refusals are logged to `dossier.erp` and change nothing: a bad or missing signature or a stale
timestamp is a 401, a malformed body a 422 naming the field, an unknown order a 404 and an
event id seen before a 409. An accepted event is recorded and signalled before the commit; the
workflow applies it once per event id, so a commit that fails after the signal (and the ERP's
retry that follows) never applies it twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.erp import CustomerPush
from api.deps import SessionDep, SettingsDep, Unauthenticated
from domain import erp
from domain.errors import Conflict, Invalid, NotFound
from domain.order import service as orders
from domain.order.lifecycle import OrderStart
from domain.order.models import ErpEventRecord
from domain.settings import Settings
from workflows.erp import ErpCustomerSyncWorkflow
from workflows.order import OrderWorkflow

log = logging.getLogger("dossier.erp")
router = APIRouter(tags=["erp"])

CUSTOMER_FIELDS = frozenset({
    "name", "credit_code", "invoice_title", "billing_address", "billing_phone", "bank_name",
    "bank_account",
})
"""Customer fields the ERP keeps: a change to any of them is pushed."""


def _refuse(reason: str, **context: Any) -> None:
    log.warning("ERP event refused: %s %s", reason, context)


@router.post("/api/erp/events", status_code=202)
async def receive_event(
    request: Request, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """One signed ERP event; 202 once the order workflow has it."""
    body = await request.body()
    try:
        erp.verify(
            settings.erp_signing_secret(),
            timestamp=request.headers.get(erp.TIMESTAMP_HEADER),
            signature_header=request.headers.get(erp.SIGNATURE_HEADER),
            body=body,
            now=time.time(),
        )
    except erp.BadSignature as bad:
        _refuse(str(bad), client=request.client.host if request.client else None)
        raise Unauthenticated(str(bad), field=erp.SIGNATURE_HEADER) from None
    try:
        event = erp.parse(body)
    except Invalid as invalid:
        _refuse(f"malformed body: {invalid.field}: {invalid.message}")
        raise
    order = await orders.by_number(session, event.order_number)
    if order is None:
        _refuse("unknown order", event_id=event.event_id, order_number=event.order_number)
        raise NotFound("no such order", field="order_number")
    await _record(session, event)
    temporal: Client = await request.app.state.temporal.client()
    await temporal.start_workflow(
        OrderWorkflow.run,
        OrderStart(order_id=order.id),
        id=settings.workflow_id("order", order.id),
        task_queue=settings.temporal_task_queue,
        start_signal="erp_event",
        start_signal_args=[event],
    )
    log.info("ERP event %s (%s) for %s accepted", event.event_id, event.type, order.number)
    return {"event_id": event.event_id, "order_id": order.id, "accepted": True}


async def _record(session: AsyncSession, event: erp.ErpEvent) -> None:
    """The event by its id; a second delivery of the id is a replay (409)."""
    seen = await session.scalar(
        select(ErpEventRecord.id).where(ErpEventRecord.event_id == event.event_id)
    )
    if seen is None:
        session.add(ErpEventRecord(
            event_id=event.event_id,
            kind=event.type,
            order_number=event.order_number,
            body=event.model_dump(mode="json"),
        ))
        try:
            await session.flush()
            return
        except IntegrityError:
            pass  # the same event delivered twice at the same moment; the request rolls back
    _refuse("replayed event id", event_id=event.event_id)
    raise Conflict("this event id was received before", field="event_id")


async def push_customer(session: AsyncSession, request: Request, *, customer_id: int) -> None:
    """After a change to billing details or contacts: push the customer to the ERP, if the ERP
    knows it (it has an order). Started before the route commits, like every workflow start, so
    a change is saved only together with its push; without an ERP nothing needs Temporal."""
    settings: Settings = request.app.state.settings
    if not settings.erp_url or not await orders.has_orders(session, customer_id=customer_id):
        return
    await session.flush()
    payload = await orders.erp_customer(session, customer_id=customer_id)
    push = CustomerPush(customer_id=customer_id, expected=erp.fingerprint(payload))
    temporal: Client = await request.app.state.temporal.client()
    await temporal.start_workflow(
        ErpCustomerSyncWorkflow.run,
        push,
        id=settings.workflow_id("erp-customer", customer_id),
        task_queue=settings.temporal_task_queue,
        start_signal="changed",
        start_signal_args=[push],
    )
