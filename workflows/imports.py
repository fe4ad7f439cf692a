"""One import (`import-<id>`): check every row, wait for the user's go-ahead, write in chunks.

The check is the dry run; the user reads its report and confirms, or changes the options and
asks for another check. The write is a series of heartbeating activities that each resume from
the committed resume point. Cancelling the workflow stops the write between chunks; what was
written stays, listed in the import's ledger.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.imports import ImportActivities
    from domain.imports.models import Status
    from domain.imports.schemas import (
        CheckSummary,
        Decision,
        ImportEnd,
        ImportStart,
        ImportStep,
    )

PASS = {
    "start_to_close_timeout": timedelta(hours=2),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
    ),
    "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}
FINISH = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30)),
}
DECISION_TIMEOUT = timedelta(days=7)
"""A checked import nobody confirms is closed after this, and its file can be cleaned up."""


@workflow.defn(name="Import")
class ImportWorkflow:
    def __init__(self) -> None:
        self.import_id = 0
        self.phase = Status.checking
        self.summary: CheckSummary | None = None
        self.decision: Decision | None = None

    @workflow.run
    async def run(self, start: ImportStart) -> str:
        self.import_id = start.import_id
        step = ImportStep(import_id=start.import_id)
        try:
            if not await self._checked(step, confirm=start.confirm):
                return self.phase.value
            self.phase = Status.importing
            while not (
                await workflow.execute_activity_method(ImportActivities.write, step, **PASS)
            ).done:
                pass
            await self._start_leads(start, step)
            await self._finish(Status.done)
        except asyncio.CancelledError:
            await self._cancelled(start, step)
            raise
        except ActivityError as failed:
            cause = failed.cause
            if isinstance(cause, CancelledError):  # the pass stopped for the cancellation
                await self._cancelled(start, step)
                raise asyncio.CancelledError from None
            reason = cause.message if isinstance(cause, ApplicationError) else str(failed)
            await self._finish(Status.failed, reason)
        return self.phase.value

    async def _checked(self, step: ImportStep, *, confirm: bool) -> bool:
        """Check until the user confirms; False when the import ends without writing."""
        while True:
            self.phase, self.decision = Status.checking, None
            self.summary = await workflow.execute_activity_method(
                ImportActivities.check, step, **PASS
            )
            self.phase = Status.checked
            if not confirm:
                try:
                    await workflow.wait_condition(
                        lambda: self.decision is not None, timeout=DECISION_TIMEOUT
                    )
                except TimeoutError:
                    await self._finish(Status.cancelled, "not confirmed within 7 days")
                    return False
                assert self.decision is not None
                if self.decision.recheck:
                    continue
            if self.summary.all_or_nothing and self.summary.invalid_rows:
                await self._finish(
                    Status.failed,
                    f"{self.summary.invalid_rows} rows are invalid and the import is "
                    "all-or-nothing: nothing was written",
                )
                return False
            return True

    async def _cancelled(self, start: ImportStart, step: ImportStep) -> None:
        await self._start_leads(start, step)
        await self._finish(Status.cancelled, "cancelled; the rows written before stay")

    async def _start_leads(self, start: ImportStart, step: ImportStep) -> None:
        """Imported new leads get their lifecycle, including those a cancelled import kept."""
        if start.leads and self.phase is Status.importing:
            await workflow.execute_activity_method(ImportActivities.start_leads, step, **PASS)

    async def _finish(self, status: Status, error: str | None = None) -> None:
        self.phase = status
        await workflow.execute_activity_method(
            ImportActivities.finish,
            ImportEnd(import_id=self.import_id, status=status, error=error),
            **FINISH,
        )

    @workflow.update
    async def decide(self, decision: Decision) -> str:
        self.decision = decision
        return "recheck" if decision.recheck else "confirmed"

    @decide.validator
    def _check_decision(self, decision: Decision) -> None:
        if self.phase is not Status.checked:
            raise ApplicationError(
                f"the import is {self.phase.value}, not waiting for a decision",
                {"field": "status"}, type="Conflict",
            )
        if decision.confirm and self.summary and self.summary.all_or_nothing and (
            self.summary.invalid_rows
        ):
            raise ApplicationError(
                f"{self.summary.invalid_rows} rows are invalid and the import is "
                "all-or-nothing: fix the file, or allow importing the valid rows only",
                {"field": "all_or_nothing"}, type="Invalid",
            )
        if decision.confirm == decision.recheck:
            raise ApplicationError("confirm or recheck, one of them", {"field": "confirm"},
                                   type="Invalid")
