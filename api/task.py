"""The inbox: tasks assigned to me (or, for managers, to someone on their team)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api import approval
from api.deps import CurrentActor, RecordId, SessionDep, TemporalDep, committed
from domain import task
from domain.approval import ApprovalDecision
from domain.errors import Invalid

router = APIRouter(prefix="/api/tasks", tags=["tasks"])
APPROVAL = "approval"


@router.get("")
async def inbox(
    actor: CurrentActor,
    session: SessionDep,
    assignee: Annotated[str, Query(max_length=12, description="`me` or a user id")] = "me",
    status: task.TaskStatus | None = task.TaskStatus.open,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> task.TaskPage:
    if assignee == "me":
        assignee_id = actor.user_id
    elif assignee.isdigit():
        assignee_id = int(assignee)
    else:
        raise Invalid("`me` or a user id", field="assignee")
    return await task.inbox(
        session, actor=actor, assignee_id=assignee_id, status=status, limit=limit, offset=offset
    )


@router.post("/{task_id}/complete")
async def complete(
    request: Request,
    task_id: RecordId,
    data: task.TaskComplete,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
) -> task.TaskRead:
    """Done, for a plain to-do; for an approval, the decision (approve, reject or
    request_changes, with a comment for the last two) goes to the approval's workflow."""
    todo = await task.get_own(session, actor=actor, task_id=task_id)
    if todo.kind != APPROVAL:
        return task.TaskRead.model_validate(
            await task.complete(session, actor=actor, task_id=task_id, data=data)
        )
    if data.decision is None:
        raise Invalid(
            "an approval needs a decision: approve, reject or request_changes", field="decision"
        )
    await approval.answer(
        session,
        temporal,
        actor=actor,
        approval_id=int(todo.detail["approval_id"]),
        decision=ApprovalDecision(data.decision),
        comment=data.comment,
        via="inbox",
    )
    return await committed(request, task.Task, task_id, task.TaskRead)
