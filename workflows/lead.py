"""Lead lifecycle: assign, hold the first-contact SLA in business time, pool, claim, convert.

One workflow per lead (`lead-<id>`). People act through Updates whose validators run the pure
transition rules on workflow state; the handlers write through activities, one at a time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows.steps import DB_STEP, notify, refusal, sibling_id, wait_until

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from domain.calendar import ALWAYS_OPEN, BusinessCalendar, add_business_time
    from domain.deal.lifecycle import DealStart
    from domain.lead.lifecycle import (
        Action,
        AssignRequest,
        LeadPlan,
        LeadStart,
        Ownership,
        SlaMark,
        TransitionRequest,
        TransitionResult,
    )
    from domain.lead.models import LeadStatus, SlaAction
    from domain.lead.rules import SlaStep
    from domain.lead.schemas import WORKFLOW_CALLER, Transition
    from domain.lead.transitions import TERMINAL, Refused, check
    from domain.notification import Notice


NOTICE_FOR: dict[SlaAction, str] = {
    SlaAction.notify_owner: "lead.remind_owner",
    SlaAction.notify_manager: "lead.escalate_manager",
}


@workflow.defn(name="Lead")
class LeadWorkflow:
    def __init__(self) -> None:
        self.lead_id = 0
        self.status = LeadStatus.new
        self.ownership = Ownership(owner_id=None)
        self.generation = 0
        """Bumped whenever the owner changes: the SLA chain of the old owner stops."""
        self.clock_start: datetime | None = None
        self.sla_reassignments = 0
        """Reassignments the chain made by itself since a person last chose the owner."""
        self.touched = 0
        """Bumped by every logged contact: the follow-up cadence starts over."""
        self.plan: LeadPlan | None = None
        self.lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: LeadStart) -> str:
        self.lead_id = start.lead_id
        self.plan = await workflow.execute_activity_method(
            LeadActivities.load_plan, start, **DB_STEP
        )
        async with self.lock:
            owned = await workflow.execute_activity_method(
                LeadActivities.assign, AssignRequest(lead_id=self.lead_id), **DB_STEP
            )
            await self._take(owned, notice="lead.assigned")
        while self.status not in TERMINAL:
            if self.status is LeadStatus.assigned:
                await self._first_contact_sla()
            elif self.status in (LeadStatus.contacted, LeadStatus.qualified):
                await self._cadence()
            else:
                await workflow.wait_condition(lambda: self.status is not LeadStatus.pooled)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status.value

    # --- the clocks -----------------------------------------------------------------------

    def _calendar(self, business_hours: bool) -> BusinessCalendar:
        return self.ownership.calendar if business_hours else ALWAYS_OPEN

    async def _first_contact_sla(self) -> None:
        """Run the chain's steps at their business-time deadlines until someone makes contact."""
        assert self.plan is not None and self.clock_start is not None
        generation = self.generation
        calendar = self._calendar(self.plan.chain.business_hours)

        def moved() -> bool:
            return self.generation != generation or self.status is not LeadStatus.assigned

        for index, step in enumerate(self.plan.chain.steps):
            if (
                step.action is SlaAction.reassign
                and self.sla_reassignments >= self.plan.chain.max_reassignments
            ):
                continue
            due = add_business_time(calendar, self.clock_start, step.after)
            await self._mark(
                SlaMark(lead_id=self.lead_id, due_at=due, next_action=step.action.value)
            )
            if not await wait_until(due, moved):
                return
            async with self.lock:
                if moved():
                    return
                await self._fire(step, index, generation, due)
            if moved():
                return
        await workflow.wait_condition(moved)

    async def _fire(self, step: SlaStep, index: int, generation: int, due: datetime) -> None:
        breach = f"{generation}.{index}.{step.action.value}"
        await self._mark(
            SlaMark(lead_id=self.lead_id, due_at=None, next_action=None, breached=breach)
        )
        if step.action in NOTICE_FOR:
            recipient = (
                self.ownership.owner_id
                if step.action is SlaAction.notify_owner
                else self.ownership.manager_id
            )
            await self._notify(NOTICE_FOR[step.action], recipient, step=breach, due=due)
        elif step.action is SlaAction.reassign:
            taken_at = workflow.now()
            previous = self.ownership.owner_id
            owned = await workflow.execute_activity_method(
                LeadActivities.assign,
                AssignRequest(
                    lead_id=self.lead_id, exclude=[previous] if previous else [], reason="sla"
                ),
                **DB_STEP,
            )
            self.sla_reassignments += 1
            await self._notify("lead.reassigned_away", previous, step=breach)
            await self._take(owned, notice="lead.assigned", started=taken_at)
        else:
            await self._pool(breach)

    async def _cadence(self) -> None:
        """A contacted lead nobody works on for the cadence goes back to the pool."""
        assert self.plan is not None
        touched, generation = self.touched, self.generation
        calendar = self._calendar(self.plan.cadence_business_hours)
        due = add_business_time(
            calendar, workflow.now(), timedelta(seconds=self.plan.cadence_seconds)
        )

        def moved() -> bool:
            return (
                self.touched != touched
                or self.generation != generation
                or self.status not in (LeadStatus.contacted, LeadStatus.qualified)
            )

        await self._mark(
            SlaMark(lead_id=self.lead_id, due_at=due, next_action=SlaAction.return_to_pool.value)
        )
        if await wait_until(due, moved):
            async with self.lock:
                if not moved():
                    await self._pool(f"{generation}.cadence.{touched}")

    # --- steps ----------------------------------------------------------------------------

    async def _take(
        self, owned: Ownership, *, notice: str, started: datetime | None = None
    ) -> None:
        """A new owner (or the pool): their SLA clock starts at `started` (default: now)."""
        self.generation += 1
        self.ownership = owned
        self.clock_start = started or workflow.now()
        if owned.owner_id is None:
            self.status = LeadStatus.pooled
            await self._mark(SlaMark(lead_id=self.lead_id, due_at=None, next_action=None))
            return
        self.status = LeadStatus.assigned
        await self._notify(notice, owned.owner_id, step=f"{self.generation}.assigned")

    async def _pool(self, step: str) -> None:
        previous = self.ownership.owner_id
        await self._transition(
            TransitionRequest(
                lead_id=self.lead_id,
                action=Action.pool,
                caller=WORKFLOW_CALLER,
                note=step,
            )
        )
        await self._notify("lead.returned_to_pool", previous, step=step)

    async def _mark(self, mark: SlaMark) -> None:
        await workflow.execute_activity_method(LeadActivities.mark_sla, mark, **DB_STEP)

    async def _notify(
        self, template: str, recipient: int | None, *, step: str, due: datetime | None = None
    ) -> None:
        """Tell someone; a channel that refuses for good is logged, the lifecycle goes on."""
        if recipient is None:
            return
        assert self.plan is not None
        notice = Notice(
            key=f"{workflow.info().workflow_id}/{step}/{template}",
            template=template,
            recipient_id=recipient,
            params={
                "lead_id": self.lead_id,
                "path": f"/leads/{self.lead_id}",
                "company": self.plan.company,
                "contact": self.plan.contact,
            },
            due_at=due,
            ref_entity="lead",
            ref_id=self.lead_id,
            task_kind=template,
        )
        await notify(notice)

    async def _transition(self, request: TransitionRequest) -> TransitionResult:
        result = await workflow.execute_activity_method(
            LeadActivities.transition, request, **DB_STEP
        )
        new_status = LeadStatus(result.status)
        if result.ownership.owner_id != self.ownership.owner_id or (
            new_status is LeadStatus.assigned and self.status is LeadStatus.pooled
        ):
            self.generation += 1
            self.clock_start = workflow.now()
        self.ownership = result.ownership
        self.status = new_status
        return result

    # --- what people do -------------------------------------------------------------------

    def _check(self, action: Action, update: Transition) -> None:
        try:
            check(action, self.status, update.caller, self.ownership)
        except Refused as refused:
            raise ApplicationError(
                str(refused),
                {"status": self.status.value},
                type="Conflict" if refused.conflict else "Forbidden",
                non_retryable=True,
            ) from None

    async def _act(self, action: Action, update: Transition, **payload: Any) -> TransitionResult:
        async with self.lock:
            self._check(action, update)  # again: the state may have moved while we queued
            previous = self.ownership.owner_id
            try:
                result = await self._transition(
                    TransitionRequest(
                        lead_id=self.lead_id, action=action, caller=update.caller, **payload
                    )
                )
            except ActivityError as failed:
                raise refusal(failed) from None
            if action is Action.contact:
                self.touched += 1
            if action in (Action.reassign, Action.claim):
                self.sla_reassignments = 0
            if action is Action.reassign and result.ownership.owner_id != previous:
                await self._notify(
                    "lead.assigned", result.ownership.owner_id, step=f"{self.generation}.assigned"
                )
                await self._notify(
                    "lead.reassigned_away", previous, step=f"{self.generation}.reassigned"
                )
        return result

    @workflow.update
    async def contact(self, update: Transition) -> TransitionResult:
        """A logged contact: the first ends the SLA chain, later ones restart the cadence."""
        return await self._act(
            Action.contact, update, note=update.contact.note if update.contact else None
        )

    @contact.validator
    def _validate_contact(self, update: Transition) -> None:
        self._check(Action.contact, update)

    @workflow.update
    async def qualify(self, update: Transition) -> TransitionResult:
        return await self._act(Action.qualify, update)

    @qualify.validator
    def _validate_qualify(self, update: Transition) -> None:
        self._check(Action.qualify, update)

    @workflow.update
    async def disqualify(self, update: Transition) -> TransitionResult:
        note = update.disqualify.note if update.disqualify else None
        return await self._act(Action.disqualify, update, disqualify=update.disqualify, note=note)

    @disqualify.validator
    def _validate_disqualify(self, update: Transition) -> None:
        assert self.plan is not None
        self._check(Action.disqualify, update)
        if (
            update.disqualify is None
            or update.disqualify.reason not in self.plan.disqualify_reasons
        ):
            raise ApplicationError(
                "choose a reason from: " + ", ".join(self.plan.disqualify_reasons),
                type="Invalid",
                non_retryable=True,
            )

    @workflow.update
    async def convert(self, update: Transition) -> TransitionResult:
        """The lead becomes a customer and a deal; the deal's own lifecycle starts here."""
        result = await self._act(Action.convert, update, convert=update.convert)
        if result.deal_id is not None and workflow.patched("deal-lifecycle"):
            try:
                await workflow.start_child_workflow(
                    "Deal",
                    DealStart(deal_id=result.deal_id),
                    id=sibling_id(f"lead-{self.lead_id}", "deal", result.deal_id),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                workflow.logger.info("deal %s already runs", result.deal_id)
        return result

    @convert.validator
    def _validate_convert(self, update: Transition) -> None:
        self._check(Action.convert, update)

    @workflow.update
    async def reassign(self, update: Transition) -> TransitionResult:
        """A manager's hand: the new owner gets a fresh SLA clock."""
        note = update.reassign.note if update.reassign else None
        return await self._act(Action.reassign, update, reassign=update.reassign, note=note)

    @reassign.validator
    def _validate_reassign(self, update: Transition) -> None:
        self._check(Action.reassign, update)
        if update.reassign is None:
            raise ApplicationError("say who gets the lead", type="Invalid", non_retryable=True)

    @workflow.update
    async def claim(self, update: Transition) -> TransitionResult:
        """A rep takes the lead from the pool (the activity enforces limits and cool-down)."""
        return await self._act(Action.claim, update)

    @claim.validator
    def _validate_claim(self, update: Transition) -> None:
        self._check(Action.claim, update)

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "owner_id": self.ownership.owner_id,
            "generation": self.generation,
        }
