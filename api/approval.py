"""Approval routes: answers from the inbox or a signed one-click link; starting a chain.

An answer is the Update `decide` on the subject's workflow, whose validator refuses a wrong
approver or a closed step. What the task row already knows (answered, withdrawn) is refused
here first, so a late answer to a finished chain reads the same clear reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from api.deps import SessionDep, SettingsDep, TemporalDep
from domain import task, user
from domain.access import Actor, Source
from domain.approval import (
    Approval,
    ApprovalDecision,
    ApprovalStart,
    ApprovalStatus,
    BadLink,
    Decide,
    Decided,
    LinkClaims,
    Resubmitted,
    Subject,
    read_link,
)
from domain.errors import Conflict, DomainError, Forbidden, NotFound
from domain.lead.schemas import Caller
from domain.schema import Input
from domain.settings import Settings

router = APIRouter(tags=["approvals"])


class LinkExpired(DomainError):
    status = 410


class LinkAnswer(Input):
    comment: Annotated[str, Field(max_length=2000)] | None = None


async def start_approval(
    temporal: Client,
    settings: Settings,
    *,
    subject: Subject,
    subject_id: int,
    by_user_id: int | None = None,
) -> None:
    """Start the chain of a contract or quote (`<subject>-<id>`), or, when it waits for
    changes, tell it the edited subject is back: signal-with-start does both."""
    await temporal.start_workflow(
        "Approval",
        ApprovalStart(subject=subject, subject_id=subject_id),
        id=settings.workflow_id(subject.value, subject_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="resubmit",
        start_signal_args=[Resubmitted(by_user_id=by_user_id)],
    )


def _settled(row: Approval) -> Conflict:
    if row.status == ApprovalStatus.withdrawn.value:
        return Conflict(
            "this approval was withdrawn: the step was settled by another answer",
            field="status",
        )
    return Conflict(f"this approval has already been answered ({row.status})", field="status")


async def answer(
    session: AsyncSession,
    temporal: Client,
    *,
    actor: Actor,
    approval_id: int,
    decision: ApprovalDecision,
    comment: str | None,
    via: str,
) -> Decided:
    """Send one approver's answer to the chain's workflow; its refusal becomes the 4xx."""
    row = await session.get(Approval, approval_id)
    if row is None:
        raise NotFound("no such approval", field="approval_id")
    if row.status != ApprovalStatus.pending.value:
        raise _settled(row)
    todo = await session.get(task.Task, row.task_id) if row.task_id else None
    if todo is None or todo.workflow_id is None:
        raise NotFound("no such approval", field="approval_id")
    handle = temporal.get_workflow_handle(todo.workflow_id)
    return await handle.execute_update(
        "decide",
        Decide(
            approval_id=approval_id,
            decision=decision,
            comment=comment,
            caller=Caller.of(actor),
            via=via,
        ),
        result_type=Decided,
    )


async def link_actor(
    session: AsyncSession, settings: Settings, token: str
) -> tuple[LinkClaims, Actor]:
    """The link's claims and its approver: 403 when forged or the person left, 410 expired."""
    try:
        claims = read_link(settings.signing_key(), token)
    except BadLink as bad:
        if "expired" in str(bad):
            raise LinkExpired(str(bad), field="token") from None
        raise Forbidden(str(bad), field="token") from None
    person = await session.get(user.User, claims.user_id)
    if person is None or not person.active:
        raise Forbidden("this link is not valid", field="token")
    return claims, await user.actor_for(session, user=person, source=Source.page)


async def answer_link(
    session: AsyncSession, temporal: Client, settings: Settings, *, token: str, comment: str | None
) -> Decided:
    """A one-click answer: the signed link names the approver, the row and the decision."""
    claims, actor = await link_actor(session, settings, token)
    row = await session.get(Approval, claims.approval_id)
    if row is not None and row.status != ApprovalStatus.pending.value:
        raise Conflict("this link has already been used or its step is settled", field="token")
    return await answer(
        session,
        temporal,
        actor=actor,
        approval_id=claims.approval_id,
        decision=claims.decision,
        comment=comment,
        via="link",
    )


Token = Annotated[str, Path(min_length=20, max_length=1000)]


@router.post("/api/approval-links/{token}")
async def answer_by_link(
    token: Token,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    data: LinkAnswer | None = None,
) -> Decided:
    """No sign-in needed: the signed token is the approver's authority, once, until it expires."""
    return await answer_link(
        session, temporal, settings, token=token, comment=data.comment if data else None
    )
