"""Follow-up routes: log an interaction; a next-contact date starts its reminder workflow."""

from __future__ import annotations

from fastapi import APIRouter
from temporalio.common import WorkflowIDConflictPolicy

from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep
from domain import follow_up
from workflows.follow_up import FollowUpReminderWorkflow

router = APIRouter(prefix="/api/customers/{customer_id}/follow-ups", tags=["follow-ups"])


@router.get("")
async def list_follow_ups(
    customer_id: RecordId, actor: CurrentActor, session: SessionDep
) -> list[follow_up.FollowUpRead]:
    rows = await follow_up.list_for_customer(session, actor=actor, customer_id=customer_id)
    return [follow_up.FollowUpRead.model_validate(r) for r in rows]


@router.post("", status_code=201)
async def log_follow_up(
    customer_id: RecordId,
    data: follow_up.FollowUpCreate,
    actor: CurrentActor,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> follow_up.FollowUpRead:
    """The reminder starts before the commit: if Temporal is down, nothing is written."""
    row = await follow_up.log(session, actor=actor, customer_id=customer_id, data=data)
    if row.next_contact_at is not None:
        await temporal.start_workflow(
            FollowUpReminderWorkflow.run,
            follow_up.ReminderRequest(follow_up_id=row.id, due_at=row.next_contact_at),
            id=settings.workflow_id("follow-up", row.id),
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    return follow_up.FollowUpRead.model_validate(row)
