"""Side effects of follow-ups: turning a due next contact into a task in the owner's inbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain import follow_up, task, timeline
from domain.access import WORKFLOW
from domain.customer import Customer
from domain.db import transaction


class FollowUpActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @activity.defn
    async def remind_next_contact(
        self, request: follow_up.ReminderRequest
    ) -> follow_up.ReminderOutcome:
        """Open a reminder task for the owner, unless the customer was contacted meanwhile.

        Safe to retry: the task is keyed by the workflow, and a reminder already handled is
        reported as it stands.
        """
        key = f"{activity.info().workflow_id}/remind"
        async with transaction(self.sessions) as session:
            row = await session.get(follow_up.FollowUp, request.follow_up_id)
            if row is None:
                raise ApplicationError("no such follow-up", non_retryable=True)
            if row.reminder != follow_up.ReminderState.scheduled.value:
                existing = await session.scalar(task.select_by_key(key))
                return follow_up.ReminderOutcome(
                    state=follow_up.ReminderState(row.reminder),
                    task_id=existing.id if existing else None,
                )
            owner = await session.get(Customer, row.customer_id)
            if (
                owner is None
                or owner.deleted_at is not None
                or await follow_up.contacted_since(session, follow_up=row)
            ):
                row.reminder = follow_up.ReminderState.superseded.value
                return follow_up.ReminderOutcome(state=follow_up.ReminderState.superseded)
            todo = await task.open_task(
                session,
                new=task.NewTask(
                    key=key,
                    kind="follow_up.next_contact",
                    title=f"联系 {owner.name}：{row.next_step or row.summary[:80]}",
                    assignee_id=owner.owner_id or row.author_id,
                    customer_id=owner.id,
                    ref_entity="follow_up",
                    ref_id=row.id,
                    workflow_id=activity.info().workflow_id,
                    due_at=request.due_at,
                ),
            )
            row.reminder = follow_up.ReminderState.sent.value
            timeline.add(
                session,
                customer_id=owner.id,
                kind="follow_up.reminder",
                actor=WORKFLOW,
                summary=todo.title,
                ref=("task", todo.id),
            )
            return follow_up.ReminderOutcome(state=follow_up.ReminderState.sent, task_id=todo.id)
