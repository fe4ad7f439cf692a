"""Deal routes: create, list, read and edit deals; stage moves through the deal's workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep, committed
from domain.deal import service as deals
from domain.deal.lifecycle import DealStart, Move, Moved
from domain.deal.models import Deal, DealStatus
from domain.deal.schemas import (
    DealCreate,
    DealDetail,
    DealPage,
    DealQuery,
    DealRead,
    DealUpdate,
    StageChangeRead,
    StageMove,
)
from domain.errors import Conflict
from domain.lead.schemas import Caller
from domain.settings import Settings
from workflows.deal import DealWorkflow

router = APIRouter(tags=["deals"])


async def start_lifecycle(temporal: Client, settings: Settings, deal_id: int) -> None:
    """The deal's workflow, started before the request commits (idempotent per deal)."""
    await temporal.start_workflow(
        DealWorkflow.run,
        DealStart(deal_id=deal_id),
        id=settings.workflow_id("deal", deal_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


@router.post("/api/deals", status_code=201)
async def create_deal(
    data: DealCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> DealRead:
    row = await deals.create(session, actor=actor, data=data)
    await start_lifecycle(temporal, settings, row.id)
    return DealRead.model_validate(row)


@router.get("/api/deals")
async def list_deals(
    query: Annotated[DealQuery, Query()], actor: CurrentActor, session: SessionDep
) -> DealPage:
    return await deals.search(session, actor=actor, query=query)


@router.get("/api/deals/{deal_id}")
async def get_deal(deal_id: RecordId, actor: CurrentActor, session: SessionDep) -> DealDetail:
    row = await deals.get(session, actor=actor, deal_id=deal_id)
    history = await deals.history(session, deal_id=row.id)
    return DealDetail.model_validate(
        {
            **DealRead.model_validate(row).model_dump(),
            "history": [StageChangeRead.model_validate(h) for h in history],
        }
    )


@router.patch("/api/deals/{deal_id}")
async def update_deal(
    deal_id: RecordId, data: DealUpdate, actor: CurrentActor, session: SessionDep
) -> DealRead:
    return DealRead.model_validate(
        await deals.update(session, actor=actor, deal_id=deal_id, data=data)
    )


@router.post("/api/deals/{deal_id}/stage")
async def move_deal(
    request: Request,
    deal_id: RecordId,
    data: StageMove,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> DealRead:
    """Move to another stage; 409 names the exit criteria still missing or the current stage."""
    row = await deals.get(session, actor=actor, deal_id=deal_id)
    if row.status != DealStatus.open.value:  # its workflow has ended: nothing left to move
        raise Conflict(f"the deal is already {row.status}", field="status", status=row.status)
    handle = temporal.get_workflow_handle(settings.workflow_id("deal", deal_id))
    await handle.execute_update(
        DealWorkflow.move,
        Move(caller=Caller.of(actor), **data.model_dump()),
        result_type=Moved,
    )
    return await committed(request, Deal, deal_id, DealRead)
