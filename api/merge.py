"""Merge routes: the review list of likely duplicate customers, the merge and its undo.

Orders carry their customer in their workflow's plan (for the link and name in every notice),
so the order workflows of moved orders are told with the signal `customer_merged` once the
merge or undo has committed. Leads, deals, tickets, approvals and follow-up reminders read the
customer from the database in their activities and need no telling.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from temporalio.service import RPCError, RPCStatusCode

from api import erp
from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep
from api.errors import TemporalUnavailable
from api.temporal import TemporalGateway
from domain.merge import DuplicatePage, MergeRead, MergeRequest, UndoResult, duplicates, service
from domain.order.lifecycle import CustomerMerged
from domain.settings import Settings
from workflows.order import OrderWorkflow

log = logging.getLogger("dossier.merge")
router = APIRouter(tags=["merges"])
ORDERS = "orders.customer_id"


async def _tell_orders(
    gateway: TemporalGateway, settings: Settings, moves: list[tuple[list[int], CustomerMerged]]
) -> None:
    """After the commit: each moved order's workflow learns its customer. An order whose
    workflow has finished needs nothing; one that missed the signal reloads its customer when
    it continues as new."""
    try:
        client = await gateway.client()
    except TemporalUnavailable as down:
        log.warning("order workflows not told of a customer merge: %s", down)
        return
    for order_ids, merged in moves:
        for order_id in order_ids:
            handle = client.get_workflow_handle(settings.workflow_id("order", order_id))
            try:
                await handle.signal(OrderWorkflow.customer_merged, merged)
            except RPCError as failed:
                if failed.status is not RPCStatusCode.NOT_FOUND:
                    log.warning("order %s not told of its new customer: %s", order_id, failed)


@router.get("/api/customers/duplicates")
async def list_duplicates(
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DuplicatePage:
    """Groups of likely duplicates among the customers you may see, each with why it matched:
    the same credit code, phone or email, or company names at least the lead intake's fuzzy
    threshold alike (`score`, 100 for the same folded name)."""
    return await duplicates.find(
        session, actor=actor, threshold=settings.lead_fuzzy_threshold, page=page, size=size
    )


@router.post("/api/customers/merge", status_code=201)
async def merge_customers(
    data: MergeRequest,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
) -> MergeRead:
    """Admins and sales managers: merge `absorbed_ids` into `survivor_id` in one transaction;
    undo with POST /api/merges/{id}/undo within `merge_undo_days`."""
    record = await service.merge(session, actor=actor, request=data)
    if set(record.after) & erp.CUSTOMER_FIELDS:
        await erp.push_customer(session, request, customer_id=record.survivor_id)
    moved = [i for rows in record.moved.values() for i in rows.get(ORDERS, [])]
    if moved:
        merged = CustomerMerged(
            customer_id=record.survivor_id,
            customer_name=await service.name_of(session, customer_id=record.survivor_id),
        )
        background.add_task(
            _tell_orders, request.app.state.temporal, settings, [(moved, merged)]
        )
    return service.read(record, undo_days=settings.merge_undo_days)


@router.get("/api/merges/{merge_id}")
async def get_merge(
    merge_id: RecordId, actor: CurrentActor, session: SessionDep, settings: SettingsDep
) -> MergeRead:
    record = await service.get(session, actor=actor, merge_id=merge_id)
    return service.read(record, undo_days=settings.merge_undo_days)


@router.post("/api/merges/{merge_id}/undo")
async def undo_merge(
    merge_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
) -> UndoResult:
    """Restore the absorbed customers, move back exactly the rows that moved and give the
    survivor its fields back; 409 naming the field when that is no longer possible."""
    result = await service.undo(
        session, actor=actor, merge_id=merge_id, undo_days=settings.merge_undo_days
    )
    if set(result.merge.before) & erp.CUSTOMER_FIELDS:
        await erp.push_customer(session, request, customer_id=result.merge.survivor_id)
    moves = [
        (
            rows[ORDERS],
            CustomerMerged(
                customer_id=int(absorbed),
                customer_name=await service.name_of(session, customer_id=int(absorbed)),
            ),
        )
        for absorbed, rows in result.merge.moved.items()
        if rows.get(ORDERS)
    ]
    if moves:
        background.add_task(_tell_orders, request.app.state.temporal, settings, moves)
    return result
