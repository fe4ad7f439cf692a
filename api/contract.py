"""Contract routes: read with the decision trail, edit drafts, (re)submit for approval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.approval import start_approval
from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep, committed
from domain.approval import Subject
from domain.contract import service as contracts
from domain.contract.models import Contract
from domain.contract.schemas import (
    ApprovalRead,
    ContractDetail,
    ContractPage,
    ContractQuery,
    ContractRead,
    ContractUpdate,
)

router = APIRouter(tags=["contracts"])


@router.get("/api/contracts")
async def list_contracts(
    query: Annotated[ContractQuery, Query()], actor: CurrentActor, session: SessionDep
) -> ContractPage:
    return await contracts.search(session, actor=actor, query=query)


@router.get("/api/contracts/{contract_id}")
async def get_contract(
    contract_id: RecordId, actor: CurrentActor, session: SessionDep
) -> ContractDetail:
    """The contract and its full decision trail: who was asked, who answered what and when."""
    row = await contracts.get(session, actor=actor, contract_id=contract_id)
    trail = await contracts.trail(session, contract_id=row.id)
    return ContractDetail.model_validate(
        {
            **ContractRead.model_validate(row).model_dump(),
            "approvals": [ApprovalRead.model_validate(a) for a in trail],
        }
    )


@router.patch("/api/contracts/{contract_id}")
async def update_contract(
    contract_id: RecordId, data: ContractUpdate, actor: CurrentActor, session: SessionDep
) -> ContractRead:
    """Only a draft or a contract sent back for changes; 409 names the status otherwise."""
    return ContractRead.model_validate(
        await contracts.update(session, actor=actor, contract_id=contract_id, data=data)
    )


@router.post("/api/contracts/{contract_id}/submit")
async def submit_contract(
    request: Request,
    contract_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ContractRead:
    """Into approval: the first time, or again after changes were requested (a new round)."""
    row = await contracts.check_submit(session, actor=actor, contract_id=contract_id)
    await start_approval(
        temporal, settings, subject=Subject.contract, subject_id=row.id, by_user_id=actor.user_id
    )
    return await committed(request, Contract, contract_id, ContractRead)
