"""Side effects of an import: the check (dry run), the chunked write, the end state.

Both passes heartbeat after every chunk. The write resumes from the resume point committed with
its last chunk, so a retry after a killed worker writes no row twice; a cancellation reaches the
activity at its next heartbeat and the chunk in flight is rolled back whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from domain.errors import DomainError
from domain.imports import service
from domain.imports.schemas import CheckSummary, ImportEnd, ImportStep, WriteProgress
from domain.imports.service import Stop
from domain.lead.lifecycle import LeadStart
from domain.settings import Settings

T = TypeVar("T")
LEAD_BATCH = 200
LEAD_WORKFLOW = "Lead"
"""workflows.lead.LeadWorkflow by name: workflow modules import the activities, not back."""


def _refusal(refused: DomainError) -> ApplicationError:
    """A bad file or an all-or-nothing import with a bad row: retrying cannot help."""
    return ApplicationError(
        refused.message, {"field": refused.field}, type=type(refused).__name__,
        non_retryable=True,
    )


async def _between_chunks(pass_: Callable[[Stop], Awaitable[T]]) -> T:
    """Run a pass so that a cancellation stops it after the chunk in flight has committed,
    never inside a chunk's transaction (an interrupted SQLite transaction can leave the
    database locked); the activity then ends as cancelled."""
    work = asyncio.ensure_future(pass_(activity.is_cancelled))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await work
        raise


class ImportActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    @activity.defn(name="imports_check")
    async def check(self, step: ImportStep) -> CheckSummary:
        try:
            return await _between_chunks(lambda stop: service.check(
                self.sessions, self.settings, import_id=step.import_id,
                heartbeat=activity.heartbeat, stop=stop,
            ))
        except DomainError as refused:
            raise _refusal(refused) from None

    @activity.defn(name="imports_write")
    async def write(self, step: ImportStep) -> WriteProgress:
        try:
            return await _between_chunks(lambda stop: service.write(
                self.sessions, self.settings, import_id=step.import_id,
                heartbeat=activity.heartbeat, stop=stop,
            ))
        except DomainError as refused:
            raise _refusal(refused) from None

    @activity.defn(name="imports_start_leads")
    async def start_leads(self, step: ImportStep) -> int:
        """Start the workflow of every new lead the import wrote, as a capture does: once per
        lead (its workflow id), resuming after the last row heartbeated."""
        client = activity.client()
        details = activity.info().heartbeat_details
        after = int(details[0]) if details else 0
        started = 0
        while True:
            async with self.sessions() as session:
                batch = await service.leads_to_start(
                    session, import_id=step.import_id, after_row=after, limit=LEAD_BATCH
                )
            if not batch:
                return started
            for row, lead_id in batch:
                try:
                    await client.start_workflow(
                        LEAD_WORKFLOW,
                        LeadStart(lead_id=lead_id),
                        id=self.settings.workflow_id("lead", lead_id),
                        task_queue=self.settings.temporal_task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    )
                    started += 1
                except WorkflowAlreadyStartedError:
                    pass  # started by an earlier attempt, and already over
                after = row
            activity.heartbeat(after)

    @activity.defn(name="imports_finish")
    async def finish(self, end: ImportEnd) -> None:
        await service.finish(self.sessions, self.settings, import_id=end.import_id,
                             status=end.status, error=end.error)
