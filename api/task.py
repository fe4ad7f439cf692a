"""The inbox: tasks assigned to me (or, for managers, to someone on their team)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, RecordId, SessionDep
from domain import task
from domain.errors import Invalid

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


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
    task_id: RecordId, data: task.TaskComplete, actor: CurrentActor, session: SessionDep
) -> task.TaskRead:
    return task.TaskRead.model_validate(
        await task.complete(session, actor=actor, task_id=task_id, data=data)
    )
