"""Ticket routes: open, list, comment, every transition through the ticket workflow,
attachments, and call-centre records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep, committed
from api.deps import transition as workflow_transition
from domain import policy
from domain.access import Actor, Role, Scope
from domain.errors import Conflict, Invalid, NotFound
from domain.lead.schemas import Caller
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.ticket import Ticket, TicketAttachment, attachment, service
from domain.ticket.lifecycle import TicketStart
from domain.ticket.models import Channel, TicketStatus
from domain.ticket.rules import TicketPolicy
from domain.ticket.schemas import (
    AttachmentRead,
    CallCreate,
    CallRead,
    CommentCreate,
    CommentRead,
    Reassign,
    Reopen,
    Resolve,
    TicketCreate,
    TicketPage,
    TicketQuery,
    TicketRead,
    TicketUpdate,
)
from workflows.ticket import TicketWorkflow

router = APIRouter(tags=["tickets"])
STAFF = (Role.service, Role.service_manager, Role.sales, Role.sales_manager)


async def open_ticket(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    *,
    actor: Actor,
    data: TicketCreate,
    source_key: str | None = None,
    thread_id: str | None = None,
) -> tuple[Ticket, bool]:
    """The ticket plus its workflow, started before the commit: all of it or nothing.

    Starting is idempotent (one workflow id per ticket), so a redelivery never starts a second.
    """
    _version, rules = await policy.current(session, kind=PolicyKind.ticket)
    assert isinstance(rules, TicketPolicy)
    row, created = await service.open_ticket(
        session, actor=actor, data=data, policy=rules, source_key=source_key, thread_id=thread_id
    )
    if created:
        await start_workflow(temporal, settings, row.id)
    return row, created


async def start_workflow(temporal: Client, settings: Settings, ticket_id: int) -> None:
    await temporal.start_workflow(
        TicketWorkflow.run,
        TicketStart(ticket_id=ticket_id),
        id=settings.workflow_id("ticket", ticket_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


@router.post("/api/tickets", status_code=201)
async def create_ticket(
    data: TicketCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> TicketRead:
    actor.require_role(*STAFF)
    row, _created = await open_ticket(session, temporal, settings, actor=actor, data=data)
    return TicketRead.model_validate(row)


@router.get("/api/tickets")
async def list_tickets(
    query: Annotated[TicketQuery, Query()], actor: CurrentActor, session: SessionDep
) -> TicketPage:
    return await service.search(session, actor=actor, query=query)


@router.get("/api/tickets/{ticket_id}")
async def get_ticket(ticket_id: RecordId, actor: CurrentActor, session: SessionDep) -> TicketRead:
    return TicketRead.model_validate(await service.get(session, actor=actor, ticket_id=ticket_id))


async def transition(
    request: Request,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    actor: Actor,
    ticket_id: int,
    update: Any,
    **payload: Any,
) -> TicketRead:
    """Ask the ticket's workflow for one transition; refusals surface as its 4xx.

    A closed ticket's workflow has ended, so nothing can answer there: the same 409 its
    validator would give is answered here (also when it closes while the request is on its way).
    """
    row = await service.get(session, actor=actor, ticket_id=ticket_id)
    refused = Conflict(
        f"cannot {update.__name__} a ticket that is {TicketStatus.closed.value}",
        field="status",
        current_status=TicketStatus.closed.value,
    )
    if row.status == TicketStatus.closed.value:
        raise refused

    async def ended() -> Conflict:
        return refused

    handle = temporal.get_workflow_handle(settings.workflow_id("ticket", ticket_id))
    await workflow_transition(
        handle, update, TicketUpdate(caller=Caller.of(actor), **payload), ended
    )
    return await committed(request, Ticket, ticket_id, TicketRead)


@router.get("/api/tickets/{ticket_id}/comments")
async def list_comments(
    ticket_id: RecordId, actor: CurrentActor, session: SessionDep
) -> list[CommentRead]:
    rows = await service.comments(session, actor=actor, ticket_id=ticket_id)
    return [CommentRead.model_validate(r) for r in rows]


@router.post("/api/tickets/{ticket_id}/comments", status_code=201)
async def comment(
    request: Request,
    ticket_id: RecordId,
    data: CommentCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> TicketRead:
    """A public reply goes through the workflow (first response, SLA, mail to the requester);
    an internal note is a plain record."""
    if not data.public:
        if data.wait_for_customer:
            raise Invalid("an internal note cannot wait on the customer", field="wait_for_customer")
        await service.add_note(session, actor=actor, ticket_id=ticket_id, body=data.body)
        return TicketRead.model_validate(
            await service.get(session, actor=actor, ticket_id=ticket_id)
        )
    return await transition(
        request,
        session,
        temporal,
        settings,
        actor,
        ticket_id,
        TicketWorkflow.reply,
        comment=data,
    )


@router.post("/api/tickets/{ticket_id}/start")
async def start(
    request: Request,
    ticket_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> TicketRead:
    return await transition(
        request, session, temporal, settings, actor, ticket_id, TicketWorkflow.start
    )


@router.post("/api/tickets/{ticket_id}/wait")
async def wait(
    request: Request,
    ticket_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> TicketRead:
    """Waiting on the customer: the SLA clock pauses until they reply."""
    return await transition(
        request, session, temporal, settings, actor, ticket_id, TicketWorkflow.wait
    )


@router.post("/api/tickets/{ticket_id}/resolve")
async def resolve(
    request: Request,
    ticket_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    data: Resolve | None = None,
) -> TicketRead:
    return await transition(
        request,
        session,
        temporal,
        settings,
        actor,
        ticket_id,
        TicketWorkflow.resolve,
        resolve=data or Resolve(),
    )


@router.post("/api/tickets/{ticket_id}/reopen")
async def reopen(
    request: Request,
    ticket_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    data: Reopen | None = None,
) -> TicketRead:
    return await transition(
        request,
        session,
        temporal,
        settings,
        actor,
        ticket_id,
        TicketWorkflow.reopen,
        reopen=data or Reopen(),
    )


@router.post("/api/tickets/{ticket_id}/close")
async def close(
    request: Request,
    ticket_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> TicketRead:
    return await transition(
        request, session, temporal, settings, actor, ticket_id, TicketWorkflow.close
    )


@router.post("/api/tickets/{ticket_id}/reassign")
async def reassign(
    request: Request,
    ticket_id: RecordId,
    data: Reassign,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> TicketRead:
    return await transition(
        request,
        session,
        temporal,
        settings,
        actor,
        ticket_id,
        TicketWorkflow.reassign,
        reassign=data,
    )


# --- attachments ---------------------------------------------------------------------------


@router.post("/api/tickets/{ticket_id}/attachments", status_code=201)
async def upload(
    ticket_id: RecordId,
    file: UploadFile,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
) -> AttachmentRead:
    """Multipart `file`; its type is sniffed from the bytes and must be an allowed one."""
    actor.require_role(*STAFF)
    ticket = await service.get(session, actor=actor, ticket_id=ticket_id)
    data = await file.read(settings.attachment_max_bytes + 1)
    row = await attachment.store(
        session,
        actor=actor,
        ticket=ticket,
        root=settings.var_dir / "attachments",
        filename=file.filename,
        data=data,
        max_bytes=settings.attachment_max_bytes,
        allowed=settings.attachment_types,
    )
    return AttachmentRead.model_validate(row)


@router.get("/api/tickets/{ticket_id}/attachments")
async def list_attachments(
    ticket_id: RecordId, actor: CurrentActor, session: SessionDep
) -> list[AttachmentRead]:
    await service.get(session, actor=actor, ticket_id=ticket_id)
    rows = await session.scalars(
        select(TicketAttachment)
        .where(TicketAttachment.ticket_id == ticket_id)
        .order_by(TicketAttachment.id)
    )
    return [AttachmentRead.model_validate(r) for r in rows]


@router.get("/api/tickets/{ticket_id}/attachments/{attachment_id}")
async def download(
    ticket_id: RecordId,
    attachment_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
) -> FileResponse:
    """Only for those who may see the ticket; served as a download, never rendered inline."""
    await service.get(session, actor=actor, ticket_id=ticket_id)
    row = await session.get(TicketAttachment, attachment_id)
    if row is None or row.ticket_id != ticket_id:
        raise NotFound("no such attachment", field="attachment_id")
    return FileResponse(
        settings.var_dir / "attachments" / row.path,
        media_type=row.content_type,
        filename=row.filename,
        headers={"x-content-type-options": "nosniff"},
    )


# --- call centre ---------------------------------------------------------------------------


@router.post("/api/calls", status_code=201)
async def post_call(
    data: CallCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> CallRead:
    """A call record (API key with `calls:write`, or service staff): kept once per call_id,
    matched to a customer by phone; with a ticket type as intent and no ticket, it opens one."""
    if actor.scopes is not None:
        actor.require_scope(Scope.calls_write)
    else:
        actor.require_role(Role.service, Role.service_manager)
    call, created = await service.record_call(session, actor=actor, data=data)
    _version, rules = await policy.current(session, kind=PolicyKind.ticket)
    assert isinstance(rules, TicketPolicy)
    is_type = call.intent and call.intent.casefold() in {t.casefold() for t in rules.types}
    if created and call.ticket_id is None and is_type and data.direction == "inbound":
        assert call.intent is not None
        ticket, _new = await open_ticket(
            session,
            temporal,
            settings,
            actor=actor,
            source_key=f"call:{call.call_id}",
            data=TicketCreate(
                type=call.intent,
                channel=Channel.phone,
                customer_id=call.customer_id,
                contact_id=call.contact_id,
                requester_phone=call.caller,
                subject=f"来电 {call.caller} · {call.intent}",
            ),
        )
        call.ticket_id = ticket.id
    return CallRead.model_validate(call)
