"""Deal lifecycle: stages by Update, stagnation alerts, the contract drafted at negotiation.

One workflow per deal (`deal-<id>`), pinned to the pipeline version it started on. A stage
change is the Update `move`: its validator refuses unknown stages and a loss without a reason
from workflow state; the activity checks the exit criteria and the caller's rights against the
database in the same transaction as the write. A signed contract (signal) wins the deal.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows.steps import DB_STEP, notify, refusal, sibling_id, wait_until

with workflow.unsafe.imports_passed_through():
    from activities.deal import DealActivities
    from domain.approval import ApprovalStart, Subject
    from domain.calendar import add_business_time
    from domain.deal.lifecycle import (
        ContractSigned,
        DealPlan,
        DealStart,
        Move,
        Moved,
        MoveRequest,
    )
    from domain.deal.models import DealStatus
    from domain.deal.rules import Outcome
    from domain.lead.schemas import WORKFLOW_CALLER, Caller
    from domain.notification import Notice



@workflow.defn(name="Deal")
class DealWorkflow:
    def __init__(self) -> None:
        self.plan: DealPlan | None = None
        self.stage = ""
        self.status = DealStatus.open
        self.entered_at: datetime | None = None
        self.generation = 0
        """Bumped by every stage change: the stagnation clock of the old stage stops."""
        self.signed: int | None = None
        self.lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: DealStart) -> str:
        self.plan = await workflow.execute_activity_method(DealActivities.plan, start, **DB_STEP)
        self.stage, self.status = self.plan.stage, DealStatus(self.plan.status)
        # The workflow starts with the deal, so its stage clock starts now (workflow time).
        self.entered_at = workflow.now()
        while self.status is DealStatus.open:
            if self.signed is not None:
                await self._win()
            else:
                await self._watch_stage()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status.value

    # --- stagnation -----------------------------------------------------------------------

    async def _watch_stage(self) -> None:
        """Alert the owner when the stage's limit passes, then the manager; or stop on a move."""
        assert self.plan is not None and self.entered_at is not None
        generation = self.generation

        def moved() -> bool:
            return (
                self.generation != generation
                or self.status is not DealStatus.open
                or self.signed is not None
            )

        stage = self.plan.policy.stage(self.stage)
        if stage is not None and stage.max_duration is not None:
            people = await workflow.execute_activity_method(
                DealActivities.people, self.plan.deal_id, **DB_STEP
            )
            calendar = people.calendar
            due = add_business_time(calendar, self.entered_at, stage.max_duration)
            if await wait_until(due, moved):
                await self._notify("deal.stagnant", people.owner_id, generation, due)
                later = add_business_time(calendar, due, self.plan.policy.escalate_after)
                if await wait_until(later, moved):
                    await self._notify("deal.stagnant_manager", people.manager_id, generation, due)
        await workflow.wait_condition(moved)

    async def _notify(
        self, template: str, recipient: int | None, generation: int, due: datetime
    ) -> None:
        assert self.plan is not None
        if recipient is None:
            return
        notice = Notice(
            key=f"{workflow.info().workflow_id}/{generation}.{self.stage}/{template}",
            template=template,
            recipient_id=recipient,
            params={
                "deal_id": self.plan.deal_id,
                "deal": self.plan.name,
                "stage": self.stage,
                "since": self.entered_at.isoformat() if self.entered_at else None,
                "path": f"/deals/{self.plan.deal_id}",
            },
            due_at=due,
            ref_entity="deal",
            ref_id=self.plan.deal_id,
            task_kind=template,
        )
        await notify(notice)

    # --- moves ----------------------------------------------------------------------------

    async def _apply(self, request: MoveRequest) -> Moved:
        moved = await workflow.execute_activity_method(DealActivities.move, request, **DB_STEP)
        if moved.stage != self.stage:
            self.generation += 1
        self.stage, self.status = moved.stage, DealStatus(moved.status)
        self.entered_at = request.at
        if moved.contract_id is not None:
            await self._start_approval(moved.contract_id)
            for person in moved.tell:
                await self._tell_drafted(person, moved.contract_id)
        return moved

    async def _win(self) -> None:
        """The contract is signed: the deal moves to the won stage, whatever it was in."""
        assert self.plan is not None
        won = next(s for s in self.plan.policy.stages if s.outcome is Outcome.won)
        async with self.lock:
            if self.status is DealStatus.open:
                await self._apply(self._request(won.key, WORKFLOW_CALLER, note="contract signed"))
            self.signed = None

    def _request(
        self, stage: str, caller: Caller, *, lost_reason: str | None = None, note: str | None = None
    ) -> MoveRequest:
        assert self.plan is not None
        return MoveRequest(
            deal_id=self.plan.deal_id,
            stage=stage,
            lost_reason=lost_reason,
            note=note,
            caller=caller,
            pipeline=self.plan.pipeline,
            version=self.plan.version,
            at=workflow.now(),
        )

    def _sibling_id(self, concept: str, entity_id: int) -> str:
        assert self.plan is not None
        return sibling_id(f"deal-{self.plan.deal_id}", concept, entity_id)

    async def _start_approval(self, contract_id: int) -> None:
        """The contract's approval lives on after the deal's workflow ends."""
        try:
            await workflow.start_child_workflow(
                "Approval",
                ApprovalStart(subject=Subject.contract, subject_id=contract_id),
                id=self._sibling_id("contract", contract_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("contract %s is already in approval", contract_id)

    async def _tell_drafted(self, person: int, contract_id: int) -> None:
        assert self.plan is not None
        notice = Notice(
            key=f"{workflow.info().workflow_id}/contract-{contract_id}.{person}/contract.drafted",
            template="contract.drafted",
            recipient_id=person,
            params={
                "deal": self.plan.name,
                "contract_id": contract_id,
                "path": f"/contracts/{contract_id}",
            },
            channels=["email", "chat"],
            ref_entity="contract",
            ref_id=contract_id,
        )
        await notify(notice)

    def _check(self, update: Move) -> None:
        assert self.plan is not None
        if self.status is not DealStatus.open:
            raise ApplicationError(
                f"the deal is already {self.status.value}",
                {"status": self.status.value},
                type="Conflict",
                non_retryable=True,
            )
        target = self.plan.policy.stage(update.stage)
        if target is None:
            keys = ", ".join(s.key for s in self.plan.policy.stages)
            raise ApplicationError(
                f"no stage {update.stage!r} in this pipeline; choose from: {keys}",
                {"field": "stage"},
                type="Invalid",
                non_retryable=True,
            )
        if target.key == self.stage:
            raise ApplicationError(
                f"the deal is already in {self.stage}",
                {"field": "stage", "status": self.stage},
                type="Conflict",
                non_retryable=True,
            )
        reasons = self.plan.policy.lost_reasons
        if target.outcome is Outcome.lost and update.lost_reason not in reasons:
            raise ApplicationError(
                "a lost deal needs a reason from: " + ", ".join(reasons),
                {"field": "lost_reason"},
                type="Invalid",
                non_retryable=True,
            )

    @workflow.update
    async def move(self, update: Move) -> Moved:
        await workflow.wait_condition(lambda: self.plan is not None)  # a move right at creation
        async with self.lock:
            self._check(update)  # again: the stage may have moved while we queued
            try:
                return await self._apply(
                    self._request(
                        update.stage,
                        update.caller,
                        lost_reason=update.lost_reason,
                        note=update.note,
                    )
                )
            except ActivityError as failed:
                raise refusal(failed) from None

    @move.validator
    def _validate_move(self, update: Move) -> None:
        if self.plan is not None:  # before the plan is read, the handler checks once it is
            self._check(update)

    @workflow.signal
    def contract_signed(self, signal: ContractSigned) -> None:
        self.signed = signal.contract_id

    @workflow.query
    def state(self) -> dict[str, object]:
        return {"stage": self.stage, "status": self.status.value, "generation": self.generation}
