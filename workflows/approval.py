"""Approval of a contract or a quote: `<subject>-<id>`, a chain of steps answered by people.

Each step opens a task per person asked; they answer with the Update `decide`, whose validator
refuses a wrong approver, an answered task or a closed step from workflow state alone. A step
that waits too long reminds its approvers, then escalates. A rejection ends the chain; a request
for changes hands the subject back to its owner until the `resubmit` signal starts a new round.
A signed contract then opens its order in the ERP, tells its deal, and waits for its renewal.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

from workflows.steps import DB_STEP, notify, sibling_id, wait_until

with workflow.unsafe.imports_passed_through():
    from activities.approval import ApprovalActivities
    from domain.approval import (
        ApprovalDecision,
        ApprovalPlan,
        ApprovalStart,
        Asked,
        Conclude,
        Concluded,
        Decide,
        Decided,
        Escalate,
        OpenStep,
        Outcome,
        PlanRequest,
        Record,
        Resubmitted,
        Subject,
    )
    from domain.calendar import add_business_time
    from domain.deal.lifecycle import ContractSigned, DealStart
    from domain.notification import Notice
    from domain.order.lifecycle import OrderOpen, OrderOpened, OrderStart


def _refused(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="Approval")
class ApprovalWorkflow:
    def __init__(self) -> None:
        self.start: ApprovalStart | None = None
        self.plan: ApprovalPlan | None = None
        self.status = "in_approval"
        self.step = -1
        self.pending: dict[int, Asked] = {}
        """Open rows of the current step, by approval id: who may answer what."""
        self.filled: set[int] = set()
        """Seats of the current step already approved."""
        self.seats = 0
        self.last_step = False
        self.answered: set[int] = set()
        self.outcome: Outcome | None = None
        self.resubmitted = False
        self.lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: ApprovalStart) -> str:
        self.start = start
        round_no = 0
        while True:
            round_no += 1
            self.status, self.outcome, self.step = "in_approval", None, -1
            self.plan = await workflow.execute_activity_method(
                ApprovalActivities.plan,
                PlanRequest(subject=start.subject, subject_id=start.subject_id, round=round_no),
                **DB_STEP,
            )
            outcome = await self._run_chain(self.plan)
            self.status = outcome.value
            concluded = await workflow.execute_activity_method(
                ApprovalActivities.conclude,
                Conclude(
                    subject=start.subject,
                    subject_id=start.subject_id,
                    outcome=outcome,
                    round=self.plan.round,
                ),
                **DB_STEP,
            )
            await self._tell_owner(f"approval.{outcome.value}", round_no)
            if outcome is not Outcome.changes_requested:
                break
            await workflow.wait_condition(lambda: self.resubmitted)
            self.resubmitted = False
        if start.subject is Subject.contract and outcome is Outcome.approved:
            await self._after_signing(concluded)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome.value

    # --- the chain ------------------------------------------------------------------------

    async def _run_chain(self, plan: ApprovalPlan) -> Outcome:
        for index, step in enumerate(plan.steps):
            opened_at = workflow.now()
            remind_at = add_business_time(plan.calendar, opened_at, step.remind_after)
            escalate_at = add_business_time(plan.calendar, opened_at, step.escalate_after)
            async with self.lock:
                self.step, self.filled, self.pending = index, set(), {}
                self.seats, self.last_step = len(step.seats), index == len(plan.steps) - 1
                opened = await workflow.execute_activity_method(
                    ApprovalActivities.open_step,
                    OpenStep(
                        subject=plan.subject,
                        subject_id=plan.subject_id,
                        round=plan.round,
                        step=index,
                        chain_step=step,
                        escalate_at=escalate_at,
                    ),
                    **DB_STEP,
                )
                self.pending = {asked.approval_id: asked for asked in opened.asked}
            for asked in opened.asked:
                await self._ask(asked, "approval.requested", index)

            def settled(seats: int = len(step.seats)) -> bool:
                return self.outcome is not None or len(self.filled) >= seats

            if await wait_until(remind_at, settled):
                for asked in self._open_rows():
                    await self._ask(asked, "approval.reminder", index)
            if await wait_until(escalate_at, settled):
                await self._escalate(plan, index, step.name, step.escalate_to.value)
            await workflow.wait_condition(settled)
            if self.outcome is not None:
                return self.outcome
        return Outcome.approved

    def _open_rows(self) -> list[Asked]:
        return [a for a in self.pending.values() if a.seat not in self.filled]

    async def _escalate(self, plan: ApprovalPlan, step: int, name: str, to: str) -> None:
        async with self.lock:
            waiting = sorted({a.seat for a in self._open_rows()})
            if not waiting or self.outcome is not None:
                return
            added = await workflow.execute_activity_method(
                ApprovalActivities.escalate,
                Escalate(
                    subject=plan.subject,
                    subject_id=plan.subject_id,
                    round=plan.round,
                    step=step,
                    step_name=name,
                    seats=waiting,
                    escalate_to=to,
                ),
                **DB_STEP,
            )
            for asked in added.asked:
                self.pending[asked.approval_id] = asked
        for asked in added.asked:
            await self._ask(asked, "approval.escalated", step)

    # --- after a signed contract ----------------------------------------------------------

    def _sibling_id(self, concept: str, entity_id: int) -> str:
        """`<prefix>order-7` beside our own `<prefix>contract-3`: the install's id prefix kept."""
        assert self.start is not None
        own = f"{self.start.subject.value}-{self.start.subject_id}"
        return sibling_id(own, concept, entity_id)

    async def _after_signing(self, concluded: Concluded) -> None:
        assert self.start is not None
        opened: OrderOpened = await workflow.execute_activity(
            "order_open",
            OrderOpen(contract_id=self.start.subject_id),
            result_type=OrderOpened,
            **DB_STEP,
        )
        await self._start_child(
            "Order",
            OrderStart(order_id=opened.order_id),
            self._sibling_id("order", opened.order_id),
        )
        if concluded.deal_id is not None:
            deal = workflow.get_external_workflow_handle(
                self._sibling_id("deal", concluded.deal_id)
            )
            try:
                await deal.signal(
                    "contract_signed", ContractSigned(contract_id=self.start.subject_id)
                )
            except FailureError:
                workflow.logger.info("deal %s is no longer open", concluded.deal_id)
        if concluded.renewal_at is not None:
            wait = concluded.renewal_at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            renewal = await workflow.execute_activity_method(
                ApprovalActivities.renew, self.start.subject_id, **DB_STEP
            )
            await self._start_child(
                "Deal", DealStart(deal_id=renewal), self._sibling_id("deal", renewal)
            )

    async def _start_child(self, workflow_type: str, arg: object, workflow_id: str) -> None:
        """Start a lifecycle that outlives this one; already started (a replay) is fine."""
        try:
            await workflow.start_child_workflow(
                workflow_type, arg, id=workflow_id, parent_close_policy=ParentClosePolicy.ABANDON
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("%s already runs", workflow_id)

    # --- notices --------------------------------------------------------------------------

    async def _ask(self, asked: Asked, template: str, step: int) -> None:
        await self._notify(
            template,
            asked.assignee_id,
            key=f"{self.plan.round if self.plan else 0}.{step}.{asked.approval_id}",
            # The mail signs its one-click links itself: no token enters this history.
            extra={
                "approval_id": asked.approval_id,
                "assignee_id": asked.assignee_id,
                "link_ttl_seconds": int(self.plan.link_ttl_seconds if self.plan else 0),
            },
            task_id=asked.task_id,
        )

    async def _tell_owner(self, template: str, round_no: int) -> None:
        assert self.plan is not None
        await self._notify(template, self.plan.owner_id, key=f"{round_no}.end", extra={})

    async def _notify(
        self,
        template: str,
        recipient: int | None,
        *,
        key: str,
        extra: dict[str, str | int],
        task_id: int | None = None,
    ) -> None:
        """In-app (unless the step's own task is the inbox entry), mail and chat; a channel
        that fails for good is logged and the chain goes on."""
        assert self.plan is not None and self.start is not None
        if recipient is None:
            return
        subject, subject_id = self.start.subject.value, self.start.subject_id
        notice = Notice(
            key=f"{workflow.info().workflow_id}/{key}/{template}",
            template=template,
            recipient_id=recipient,
            params={
                "subject": subject,
                "subject_id": subject_id,
                "title": self.plan.title,
                "path": f"/{subject}s/{subject_id}",
                **extra,
            },
            channels=["email", "chat"] if task_id else ["in_app", "email", "chat"],
            ref_entity=subject,
            ref_id=subject_id,
            task_kind=template,
        )
        await notify(notice)

    # --- what people do -------------------------------------------------------------------

    def _check(self, update: Decide) -> Asked:
        if self.status != "in_approval" or self.outcome is not None:
            state = self.outcome.value if self.outcome else self.status
            raise _refused(f"this approval is no longer open ({state})", "Conflict")
        asked = self.pending.get(update.approval_id)
        if asked is None:
            if update.approval_id in self.answered:
                raise _refused("this approval has already been answered", "Conflict")
            raise _refused("this approval step is not open", "Conflict")
        if asked.seat in self.filled:
            raise _refused("someone else has already approved this step", "Conflict")
        if update.caller.user_id != asked.assignee_id:
            raise _refused("only the person asked may answer this approval", "Forbidden")
        if update.decision is not ApprovalDecision.approve and not (update.comment or "").strip():
            raise _refused("say why in a comment", "Invalid")
        return asked

    @workflow.update
    async def decide(self, update: Decide) -> Decided:
        async with self.lock:
            asked = self._check(update)  # again: another answer may have come while we queued
            if update.decision is ApprovalDecision.approve:
                settles = [a.approval_id for a in self.pending.values() if a.seat == asked.seat]
            else:
                settles = list(self.pending)
            withdraw = [approval_id for approval_id in settles if approval_id != asked.approval_id]
            assert self.start is not None
            await workflow.execute_activity_method(
                ApprovalActivities.record,
                Record(
                    subject=self.start.subject,
                    subject_id=self.start.subject_id,
                    approval_id=asked.approval_id,
                    decision=update.decision,
                    comment=update.comment,
                    decided_by=update.caller.user_id,
                    decided_by_name=update.caller.name,
                    via=update.via,
                    withdraw=withdraw,
                ),
                **DB_STEP,
            )
            for approval_id in settles:
                self.pending.pop(approval_id, None)
                self.answered.add(approval_id)
            if update.decision is ApprovalDecision.approve:
                self.filled.add(asked.seat)
            elif update.decision is ApprovalDecision.reject:
                self.outcome = Outcome.rejected
            else:
                self.outcome = Outcome.changes_requested
            return Decided(
                approval_id=asked.approval_id,
                decision=update.decision,
                outcome=self._outcome_now(),
            )

    def _outcome_now(self) -> str:
        """What the answer leaves the subject as, for the approver's confirmation."""
        if self.outcome is not None:
            return self.outcome.value
        if len(self.filled) >= self.seats and self.last_step:
            return Outcome.approved.value
        return "in_approval"

    @decide.validator
    def _validate_decide(self, update: Decide) -> None:
        if self.lock.locked():
            return  # a step's rows may be on their way in; the handler checks under the lock
        self._check(update)

    @workflow.signal
    def resubmit(self, _signal: Resubmitted) -> None:
        """The owner edited the subject; only a chain waiting for changes starts over."""
        if self.status == Outcome.changes_requested.value:
            self.resubmitted = True

    @workflow.query
    def state(self) -> dict[str, object]:
        return {
            "status": self.status,
            "step": self.step,
            "pending": sorted(self.pending),
            "filled": sorted(self.filled),
        }
