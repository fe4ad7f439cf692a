"""Side effects of an import: the check (dry run), the chunked write, the end state.

Both passes heartbeat after every chunk. The write resumes from the resume point committed with
its last chunk, so a retry after a killed worker writes no row twice; a cancellation reaches the
activity at its next heartbeat and the chunk in flight is rolled back whole.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.errors import DomainError
from domain.imports import service
from domain.imports.schemas import CheckSummary, ImportEnd, ImportStep, WriteProgress
from domain.settings import Settings


def _refusal(refused: DomainError) -> ApplicationError:
    """A bad file or an all-or-nothing import with a bad row: retrying cannot help."""
    return ApplicationError(
        refused.message, {"field": refused.field}, type=type(refused).__name__,
        non_retryable=True,
    )


class ImportActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    @activity.defn(name="imports_check")
    async def check(self, step: ImportStep) -> CheckSummary:
        try:
            return await service.check(
                self.sessions, self.settings, import_id=step.import_id,
                heartbeat=activity.heartbeat,
            )
        except DomainError as refused:
            raise _refusal(refused) from None

    @activity.defn(name="imports_write")
    async def write(self, step: ImportStep) -> WriteProgress:
        try:
            return await service.write(
                self.sessions, self.settings, import_id=step.import_id,
                heartbeat=activity.heartbeat,
            )
        except DomainError as refused:
            raise _refusal(refused) from None

    @activity.defn(name="imports_finish")
    async def finish(self, end: ImportEnd) -> None:
        await service.finish(self.sessions, import_id=end.import_id, status=end.status,
                             error=end.error)
