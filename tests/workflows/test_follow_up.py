"""Next-contact reminder on the time-skipping server: the timer fires at the promised instant."""

from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain import customer, follow_up
from domain.access import SYSTEM
from domain.db import transaction, utcnow
from domain.task import Task
from workflows.follow_up import FollowUpReminderWorkflow


async def _customer_with_follow_up(
    sessions: async_sessionmaker[AsyncSession], *, due_in: timedelta
) -> follow_up.FollowUp:
    async with transaction(sessions) as session:
        row = await customer.create(session, actor=SYSTEM, data=customer.CustomerCreate(
            kind=customer.Kind.person, name="林晓", phone="13800138000"))
        return await follow_up.log(session, actor=SYSTEM, customer_id=row.id,
                                   data=follow_up.FollowUpCreate(
            kind=follow_up.FollowUpKind.call, summary="电话沟通需求", next_step="发送报价",
            next_contact_at=utcnow() + due_in,
        ))


async def _start(client: Client, task_queue: str, row: follow_up.FollowUp, due_at):
    return await client.start_workflow(
        FollowUpReminderWorkflow.run,
        follow_up.ReminderRequest(follow_up_id=row.id, due_at=due_at),
        id=f"{task_queue}-follow-up-{row.id}", task_queue=task_queue,
    )


async def test_reminder_task_appears_exactly_when_the_next_contact_is_due(
    temporal_env: WorkflowEnvironment, worker: Worker, task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    row = await _customer_with_follow_up(sessions, due_in=timedelta(days=3))
    due_at = await temporal_env.get_current_time() + timedelta(days=3)
    handle = await _start(temporal_env.client, task_queue, row, due_at)

    outcome = await handle.result()

    assert outcome.state is follow_up.ReminderState.sent
    history = await handle.fetch_history()
    fired = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    started = next(e for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)
    fired_at = fired[0].event_time.ToDatetime(tzinfo=UTC)
    timer_set_at = started.event_time.ToDatetime(tzinfo=UTC)
    assert len(fired) == 1
    # Never early; late only by the moments the workflow task itself took to run.
    assert due_at <= fired_at < due_at + timedelta(seconds=10), (fired_at, due_at)
    assert timer_set_at < due_at - timedelta(days=3) + timedelta(seconds=5)
    async with sessions() as session:
        todo = await session.get(Task, outcome.task_id)
        stored = await session.get(follow_up.FollowUp, row.id)
    assert todo is not None and todo.kind == "follow_up.next_contact"
    assert todo.due_at == due_at
    assert "发送报价" in todo.title
    assert stored.reminder == follow_up.ReminderState.sent.value


async def test_no_reminder_when_the_customer_was_contacted_meanwhile(
    temporal_env: WorkflowEnvironment, worker: Worker, task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    row = await _customer_with_follow_up(sessions, due_in=timedelta(days=2))
    async with transaction(sessions) as session:
        await follow_up.log(session, actor=SYSTEM, customer_id=row.customer_id,
                            data=follow_up.FollowUpCreate(kind=follow_up.FollowUpKind.visit,
                                                          summary="拜访"))
    due_at = await temporal_env.get_current_time() + timedelta(days=2)

    outcome = await (await _start(temporal_env.client, task_queue, row, due_at)).result()

    assert outcome.state is follow_up.ReminderState.superseded
    async with sessions() as session:
        assert await session.scalar(select(func.count(Task.id))) == 0


async def test_reminding_twice_makes_one_task(
    temporal_env: WorkflowEnvironment, worker: Worker, task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A retried activity (or a second run under the same id) never opens a second task."""
    row = await _customer_with_follow_up(sessions, due_in=timedelta(hours=1))
    due_at = await temporal_env.get_current_time() + timedelta(hours=1)
    first = await (await _start(temporal_env.client, task_queue, row, due_at)).result()
    again = await (await _start(temporal_env.client, task_queue, row, due_at)).result()

    assert first.state is again.state is follow_up.ReminderState.sent
    assert first.task_id == again.task_id
    async with sessions() as session:
        assert await session.scalar(select(func.count(Task.id))) == 1
