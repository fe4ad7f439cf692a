"""Next-contact reminder: a durable timer until the promised date, then a task for the owner."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.follow_up import FollowUpActivities
    from domain.follow_up import ReminderOutcome, ReminderRequest


@workflow.defn(name="FollowUpReminder")
class FollowUpReminderWorkflow:
    @workflow.run
    async def run(self, request: ReminderRequest) -> ReminderOutcome:
        wait = request.due_at - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)
        return await workflow.execute_activity_method(
            FollowUpActivities.remind_next_contact,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
