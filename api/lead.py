"""Lead routes: capture, lists with SLA state, and every transition through the lead workflow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep, committed
from api.deps import transition as workflow_transition
from domain import follow_up, lead, policy
from domain.access import Actor, Role
from domain.db import transaction
from domain.errors import Conflict
from domain.lead.lifecycle import LeadStart, TransitionResult
from domain.lead.models import LeadStatus
from domain.lead.rules import LeadPolicy
from domain.lead.schemas import (
    Caller,
    ContactLogged,
    Convert,
    Disqualify,
    IntakeResult,
    LeadCreate,
    LeadPage,
    LeadQuery,
    LeadRead,
    Reassign,
    Transition,
)
from domain.lead.transitions import TERMINAL
from domain.policy import PolicyKind
from domain.settings import Settings
from workflows.lead import LeadWorkflow

router = APIRouter(tags=["leads"])


async def capture(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    *,
    actor: Actor,
    data: LeadCreate,
    form_id: int | None = None,
) -> IntakeResult:
    """Intake plus the lead's workflow, started before the commit: all of it or nothing.

    Starting is idempotent (one workflow id per lead), so a resubmission never starts a second.
    """
    _version, rules = await policy.current(session, kind=PolicyKind.lead)
    assert isinstance(rules, LeadPolicy)
    row, created, matches = await lead.service.intake(
        session,
        actor=actor,
        data=data,
        policy=rules,
        fuzzy_threshold=settings.lead_fuzzy_threshold,
        form_id=form_id,
    )
    if created:
        await temporal.start_workflow(
            LeadWorkflow.run,
            LeadStart(lead_id=row.id),
            id=settings.workflow_id("lead", row.id),
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    return IntakeResult(lead=LeadRead.model_validate(row), created=created, matches=matches)


@router.post("/api/leads", status_code=201)
async def create_lead(
    data: LeadCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> IntakeResult:
    """201 with `created: true` for a new lead; `created: false` names the lead it joined."""
    return await capture(session, temporal, settings, actor=actor, data=data)


@router.get("/api/leads")
async def list_leads(
    query: Annotated[LeadQuery, Query()], actor: CurrentActor, session: SessionDep
) -> LeadPage:
    return await lead.service.search(session, actor=actor, query=query)


@router.get("/api/pool")
async def list_pool(
    actor: CurrentActor,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> LeadPage:
    """Pooled leads, oldest first, for the sales team to claim."""
    actor.require_role(Role.sales, Role.sales_manager)
    query = LeadQuery(status=lead.LeadStatus.pooled, sort="created_at", page=page, size=size)
    return await lead.service.search(session, actor=actor, query=query)


@router.get("/api/leads/{lead_id}")
async def get_lead(lead_id: RecordId, actor: CurrentActor, session: SessionDep) -> LeadRead:
    return LeadRead.model_validate(await lead.service.get(session, actor=actor, lead_id=lead_id))


def _closed(action: str, status: str) -> Conflict:
    return Conflict(f"cannot {action} a lead that is {status}", field="status",
                    current_status=status)


async def _handle(
    session: AsyncSession, temporal: Client, settings: Settings, actor: Actor, lead_id: int,
    action: str,
) -> WorkflowHandle:
    """The lead's workflow, after checking the caller may see the lead at all (else 404).

    A converted or disqualified lead's workflow has ended with it: asking it to `action` is
    answered here with the 409 its validator would give.
    """
    row = await lead.service.get(session, actor=actor, lead_id=lead_id)
    if LeadStatus(row.status) in TERMINAL:
        raise _closed(action, row.status)
    return temporal.get_workflow_handle(settings.workflow_id("lead", lead_id))


async def transition(
    request: Request,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    actor: Actor,
    lead_id: int,
    update: Any,
    **payload: Any,
) -> LeadRead:
    """Ask the lead's workflow for one transition; refusals surface as its 4xx (api/errors),
    and a lead closed while the request was on its way as the 409 of a closed lead."""
    action = update.__name__
    handle = await _handle(session, temporal, settings, actor, lead_id, action)
    await workflow_transition(handle, update, Transition(caller=Caller.of(actor), **payload),
                              _ended(request, lead_id, action))
    return await committed(request, lead.Lead, lead_id, LeadRead)


def _ended(request: Request, lead_id: int, action: str) -> Callable[[], Awaitable[Conflict]]:
    """The refusal for a lead that closed while the request was on its way."""
    async def ended() -> Conflict:
        async with request.app.state.sessions() as fresh:
            row = await fresh.get(lead.Lead, lead_id)
        return _closed(action, row.status if row else "gone")

    return ended


@router.post("/api/leads/{lead_id}/contact")
async def contact(
    request: Request,
    lead_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    data: ContactLogged | None = None,
) -> LeadRead:
    """Log a contact: the first one stops the first-contact SLA chain."""
    return await transition(
        request, session, temporal, settings, actor, lead_id, LeadWorkflow.contact, contact=data
    )


@router.post("/api/leads/{lead_id}/qualify")
async def qualify(
    request: Request,
    lead_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> LeadRead:
    return await transition(
        request, session, temporal, settings, actor, lead_id, LeadWorkflow.qualify
    )


@router.post("/api/leads/{lead_id}/disqualify")
async def disqualify(
    request: Request,
    lead_id: RecordId,
    data: Disqualify,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> LeadRead:
    return await transition(
        request,
        session,
        temporal,
        settings,
        actor,
        lead_id,
        LeadWorkflow.disqualify,
        disqualify=data,
    )


@router.post("/api/leads/{lead_id}/convert")
async def convert(
    request: Request,
    lead_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    data: Convert | None = None,
) -> LeadRead:
    """Creates or links the customer and contact, opens a deal, and ends the lead's workflow."""
    return await transition(
        request,
        session,
        temporal,
        settings,
        actor,
        lead_id,
        LeadWorkflow.convert,
        convert=data or Convert(),
    )


@router.post("/api/leads/{lead_id}/reassign")
async def reassign(
    request: Request,
    lead_id: RecordId,
    data: Reassign,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> LeadRead:
    return await transition(
        request, session, temporal, settings, actor, lead_id, LeadWorkflow.reassign, reassign=data
    )


@router.post("/api/pool/{lead_id}/claim")
async def claim(
    request: Request,
    lead_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> LeadRead:
    return await transition(
        request, session, temporal, settings, actor, lead_id, LeadWorkflow.claim
    )


@router.post("/api/leads/{lead_id}/follow-ups", status_code=201)
async def log_follow_up(
    request: Request,
    lead_id: RecordId,
    data: follow_up.FollowUpCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> follow_up.FollowUpRead:
    """A follow-up on a lead is a contact: the first one ends the first-contact SLA chain.

    The workflow accepts the contact first (it may refuse), then the note is written in a
    transaction of its own: writing first would hold SQLite's write lock while the workflow's
    activity waits for it, and the request's read snapshot is older than that activity's write.
    """
    fields = follow_up.check_for_lead(data)
    action = "log a follow-up on"
    handle = await _handle(session, temporal, settings, actor, lead_id, action)
    note = ContactLogged(note=fields["summary"][:2000])
    result: TransitionResult = await workflow_transition(
        handle, LeadWorkflow.contact, Transition(caller=Caller.of(actor), contact=note),
        _ended(request, lead_id, action),
    )
    async with transaction(request.app.state.sessions) as fresh:  # see _after: new snapshot
        row = await follow_up.log_for_lead(
            fresh, actor=actor, lead_id=lead_id, customer_id=result.customer_id, fields=fields
        )
    return follow_up.FollowUpRead.model_validate(row)
