"""Ticket lifecycle: dispatch, hold the SLA promises in business time (paused while waiting on
the customer), then the survey, its reminder and the auto-close after resolution.

One workflow per ticket (`ticket-<id>`). People act through Updates whose validators run the
pure transition rules on workflow state; the requester's mail arrives as a signal. Handlers
write through activities, one at a time, and bump `version` so the SLA wait starts over.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.steps import DB_STEP, NOTIFY, notify, refusal, wait_until

with workflow.unsafe.imports_passed_through():
    from activities.ticket import TicketActivities
    from domain.calendar import ALWAYS_OPEN, business_time_between
    from domain.lead.schemas import WORKFLOW_CALLER
    from domain.notification import Notice
    from domain.ticket import sla
    from domain.ticket.lifecycle import (
        Action,
        DispatchRequest,
        MailRequest,
        Ownership,
        SlaMark,
        TicketCarry,
        TicketPlan,
        TicketStart,
        TransitionRequest,
        TransitionResult,
    )
    from domain.ticket.models import TicketStatus
    from domain.ticket.rules import BreachAction, SlaTarget
    from domain.ticket.schemas import CustomerReplied, TicketUpdate
    from domain.ticket.transitions import Refused, check



@workflow.defn(name="Ticket")
class TicketWorkflow:
    def __init__(self) -> None:
        self.ticket_id = 0
        self.status = TicketStatus.new
        self.ownership = Ownership(assignee_id=None)
        self.plan: TicketPlan | None = None
        self.calendar = ALWAYS_OPEN
        self.clock = sla.SlaClock()
        self.starts: dict[SlaTarget, int] = {}
        """How often each promise was started: names its warnings and breaches."""
        self.version = 0
        """Bumped by every change: the SLA wait and the closing wait start over."""
        self.opened_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.rounds = 0
        """Resolutions so far; each has its own survey."""
        self.surveyed = 0
        self.reminded = 0
        self.lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: TicketStart) -> str:
        self.ticket_id = start.ticket_id
        if start.carried is None:
            await self._open(start)
        else:
            self._resume(start.carried)
        while self.status is not TicketStatus.closed:
            if self._long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    TicketStart(ticket_id=self.ticket_id, carried=self._carry())
                )
            if self.status is TicketStatus.resolved:
                await self._closing()
            else:
                await self._watch()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status.value

    async def _open(self, start: TicketStart) -> None:
        """Pin the policy, dispatch, start the clocks and tell the people concerned."""
        self.plan = await workflow.execute_activity_method(
            TicketActivities.load_plan, start, **DB_STEP
        )
        async with self.lock:
            self.opened_at = workflow.now()
            owned = await workflow.execute_activity_method(
                TicketActivities.dispatch, DispatchRequest(ticket_id=self.ticket_id), **DB_STEP
            )
            self.calendar = owned.calendar if self.plan.terms.business_hours else ALWAYS_OPEN
            self.ownership = owned
            self.status = TicketStatus.assigned if owned.assignee_id else TicketStatus.new
            self._start(SlaTarget.first_response, self.plan.terms.first_response)
            self._start(SlaTarget.resolution, self.plan.terms.resolution)
            await self._mark()
            await self._notify("ticket.assigned", owned.assignee_id, step="1.assigned")
            if self.plan.complaint:
                await self._notify(
                    "ticket.complaint", self.plan.customer_owner_id, step="complaint"
                )

    def _carry(self) -> TicketCarry:
        assert self.plan is not None and self.opened_at is not None
        return TicketCarry(
            status=self.status,
            ownership=self.ownership,
            plan=self.plan,
            calendar=self.calendar,
            clock=self.clock,
            starts=self.starts,
            version=self.version,
            opened_at=self.opened_at,
            resolved_at=self.resolved_at,
            rounds=self.rounds,
            surveyed=self.surveyed,
            reminded=self.reminded,
        )

    def _resume(self, carried: TicketCarry) -> None:
        """Go on where the previous run stopped: same plan, clocks, rounds and mails sent."""
        self.status, self.ownership, self.plan = carried.status, carried.ownership, carried.plan
        self.calendar, self.clock, self.starts = carried.calendar, carried.clock, carried.starts
        self.version, self.opened_at = carried.version, carried.opened_at
        self.resolved_at, self.rounds = carried.resolved_at, carried.rounds
        self.surveyed, self.reminded = carried.surveyed, carried.reminded

    @staticmethod
    def _long() -> bool:
        """The history has grown long: the waits give way so the run can continue as new."""
        return workflow.info().is_continue_as_new_suggested()

    # --- the clocks -----------------------------------------------------------------------

    def _start(self, target: SlaTarget, duration: timedelta) -> None:
        self.clock = sla.start(self.clock, target, workflow.now(), duration)
        self.starts[target] = self.starts.get(target, 0) + 1

    async def _watch(self) -> None:
        """Wait for the next warning or breach of a running promise, or any change."""
        assert self.plan is not None
        version = self.version

        def moved() -> bool:
            return self.version != version or self._long()

        event = sla.next_event(self.clock, self.calendar, self.plan.warn_at)
        if event is None:
            await workflow.wait_condition(moved)
            return
        if await wait_until(event.at, moved):
            async with self.lock:
                if not moved():
                    await self._fire(event)

    async def _fire(self, event: sla.SlaEvent) -> None:
        assert self.plan is not None
        self.clock = sla.mark(self.clock, event)
        self.version += 1
        label = f"{event.target.value}.{self.starts[event.target]}"
        if event.kind == "warn":
            await self._mark(warned=label)
            await self._notify(
                "ticket.sla_warning",
                self.ownership.assignee_id,
                step=f"{label}.warn",
                due=sla.due(self.clock, self.calendar, event.target),
                target=event.target,
            )
            return
        await self._mark(breached=label)
        for action in self.plan.on_breach.get(event.target, []):
            if action is BreachAction.notify_supervisor:
                await self._notify(
                    "ticket.sla_breached",
                    self.ownership.supervisor_id,
                    step=f"{label}.breach",
                    target=event.target,
                )
            elif action is BreachAction.raise_priority:
                await self._transition(
                    TransitionRequest(
                        ticket_id=self.ticket_id,
                        action=Action.raise_priority,
                        caller=WORKFLOW_CALLER,
                        note=label,
                    )
                )
            elif self.ownership.assignee_id is not None:
                previous = self.ownership.assignee_id
                self.ownership = await workflow.execute_activity_method(
                    TicketActivities.dispatch,
                    DispatchRequest(ticket_id=self.ticket_id, exclude=[previous], reason="sla"),
                    **DB_STEP,
                )
                await self._notify(
                    "ticket.assigned", self.ownership.assignee_id, step=f"{label}.reassigned"
                )

    async def _closing(self) -> None:
        """Survey now, one reminder, and the close once the reopen window has passed."""
        assert self.plan is not None and self.resolved_at is not None
        round_ = self.rounds

        def moved() -> bool:
            return self.status is not TicketStatus.resolved or self.rounds != round_ or self._long()

        if self.surveyed < round_:
            self.surveyed = round_
            await self._send(TicketActivities.send_survey, round_)
        close_at = self.resolved_at + timedelta(seconds=self.plan.reopen_within_seconds)
        remind_at = self.resolved_at + timedelta(seconds=self.plan.survey_reminder_after_seconds)
        if self.reminded < round_ and remind_at < close_at:
            if not await wait_until(remind_at, moved):
                return
            self.reminded = round_
            await self._send(TicketActivities.remind_survey, round_)
        if await wait_until(close_at, moved):
            async with self.lock:
                if not moved():
                    await self._transition(
                        TransitionRequest(
                            ticket_id=self.ticket_id,
                            action=Action.close,
                            caller=WORKFLOW_CALLER,
                            note="auto-close",
                        )
                    )

    # --- steps ----------------------------------------------------------------------------

    async def _mark(self, *, breached: str | None = None, warned: str | None = None) -> None:
        dues = {t: sla.due(self.clock, self.calendar, t) for t in SlaTarget}
        running = [(d, t) for t, d in dues.items() if d is not None]
        due_at, target = min(running) if running else (None, None)
        left = sla.remaining(self.clock, self.calendar, SlaTarget.resolution, workflow.now())
        await workflow.execute_activity_method(
            TicketActivities.mark_sla,
            SlaMark(
                ticket_id=self.ticket_id,
                clock=self.clock,
                due_at=due_at,
                target=target,
                first_response_due_at=dues[SlaTarget.first_response],
                next_response_due_at=dues[SlaTarget.next_response],
                resolution_due_at=dues[SlaTarget.resolution],
                remaining_seconds=left.total_seconds() if left is not None else None,
                breached=breached,
                warned=warned,
            ),
            **DB_STEP,
        )

    async def _send(self, method: Any, round_: int) -> None:
        """Mail the requester; a mail that cannot go out is logged, the lifecycle goes on."""
        try:
            await workflow.execute_activity_method(
                method, MailRequest(ticket_id=self.ticket_id, round=round_), **NOTIFY
            )
        except ActivityError as failed:
            workflow.logger.warning("survey mail not sent: %s", failed.cause)

    async def _notify(
        self,
        template: str,
        recipient: int | None,
        *,
        step: str,
        due: datetime | None = None,
        target: SlaTarget | None = None,
    ) -> None:
        """Tell a person (inbox, mail, chat); a channel that refuses for good is logged."""
        if recipient is None:
            return
        assert self.plan is not None
        notice = Notice(
            key=f"{workflow.info().workflow_id}/{step}/{template}",
            template=template,
            recipient_id=recipient,
            params={
                "ticket_id": self.ticket_id,
                "subject": self.plan.subject,
                "path": f"/tickets/{self.ticket_id}",
                "target": target.value if target else None,
            },
            due_at=due,
            ref_entity="ticket",
            ref_id=self.ticket_id,
            task_kind=template,
        )
        await notify(notice)

    def _elapsed(self) -> float:
        """Business time since opening, without the time spent waiting on the customer."""
        assert self.opened_at is not None
        now = workflow.now()
        waited = self.clock.paused_seconds
        if self.clock.paused_at is not None:
            waited += business_time_between(
                self.calendar, self.clock.paused_at, now
            ).total_seconds()
        return business_time_between(self.calendar, self.opened_at, now).total_seconds() - waited

    async def _transition(self, request: TransitionRequest) -> TransitionResult:
        result = await workflow.execute_activity_method(
            TicketActivities.transition, request, **DB_STEP
        )
        self._apply(request.action, TicketStatus(result.status), result)
        await self._mark()
        return result

    def _apply(self, action: Action, new: TicketStatus, result: TransitionResult) -> None:
        """Move the clock as the stored transition says: pause, resume, meet, restart."""
        assert self.plan is not None
        old, now = self.status, workflow.now()
        if new is TicketStatus.waiting_on_customer and old is not new:
            self.clock = sla.pause(self.clock, now)
        if old is TicketStatus.waiting_on_customer and new is not old:
            self.clock = sla.resume(self.clock, self.calendar, now)
        if action is Action.reply:
            if result.first_response:
                self.clock = sla.meet(self.clock, SlaTarget.first_response, now)
            self.clock = sla.meet(self.clock, SlaTarget.next_response, now)
        if (
            action is Action.customer_reply
            and new is not TicketStatus.closed
            and self.plan.terms.next_response is not None
            and self._responded()
        ):
            self._start(SlaTarget.next_response, self.plan.terms.next_response)
        if new is TicketStatus.resolved and old is not new:
            for target in SlaTarget:
                self.clock = sla.meet(self.clock, target, now)
            self.rounds += 1
            self.resolved_at = now
        if old is TicketStatus.resolved and new not in (TicketStatus.resolved, TicketStatus.closed):
            self._start(SlaTarget.resolution, self.plan.terms.resolution)
        self.ownership = result.ownership
        self.status = new
        self.version += 1

    # --- what people do -------------------------------------------------------------------

    def _check(self, action: Action, update: TicketUpdate) -> None:
        try:
            check(action, self.status, update.caller, self.ownership)
        except Refused as refused:
            raise ApplicationError(
                str(refused),
                {"status": self.status.value},
                type="Conflict" if refused.conflict else "Forbidden",
                non_retryable=True,
            ) from None

    async def _act(self, action: Action, update: TicketUpdate, **payload: Any) -> TransitionResult:
        async with self.lock:
            self._check(action, update)  # again: the state may have moved while we queued
            try:
                return await self._transition(
                    TransitionRequest(
                        ticket_id=self.ticket_id, action=action, caller=update.caller, **payload
                    )
                )
            except ActivityError as failed:
                raise refusal(failed) from None

    @workflow.update
    async def start(self, update: TicketUpdate) -> TransitionResult:
        return await self._act(Action.start, update)

    @start.validator
    def _validate_start(self, update: TicketUpdate) -> None:
        self._check(Action.start, update)

    @workflow.update
    async def reply(self, update: TicketUpdate) -> TransitionResult:
        """A public reply: the first is the first response; it is mailed to the requester."""
        assert update.comment is not None
        waited = None if self._responded() else self._elapsed_to_first()
        result = await self._act(
            Action.reply,
            update,
            body=update.comment.body,
            wait_for_customer=update.comment.wait_for_customer,
            first_response_seconds=waited,
        )
        if result.comment_id is not None:
            try:
                await workflow.execute_activity_method(
                    TicketActivities.mail_reply,
                    MailRequest(ticket_id=self.ticket_id, comment_id=result.comment_id),
                    **NOTIFY,
                )
            except ActivityError as failed:
                workflow.logger.warning("reply not mailed: %s", failed.cause)
        return result

    def _responded(self) -> bool:
        promise = self.clock.promises.get(SlaTarget.first_response)
        return promise is not None and promise.met_at is not None

    def _elapsed_to_first(self) -> float:
        assert self.opened_at is not None
        return business_time_between(self.calendar, self.opened_at, workflow.now()).total_seconds()

    @reply.validator
    def _validate_reply(self, update: TicketUpdate) -> None:
        self._check(Action.reply, update)
        if update.comment is None or not update.comment.public:
            raise ApplicationError(
                "a reply needs a public comment",
                {"field": "body"},
                type="Invalid",
                non_retryable=True,
            )

    @workflow.update
    async def wait(self, update: TicketUpdate) -> TransitionResult:
        """The ticket waits on the customer: its SLA clock pauses until they reply."""
        return await self._act(Action.wait, update)

    @wait.validator
    def _validate_wait(self, update: TicketUpdate) -> None:
        self._check(Action.wait, update)

    @workflow.update
    async def resolve(self, update: TicketUpdate) -> TransitionResult:
        note = update.resolve.note if update.resolve else None
        return await self._act(
            Action.resolve, update, note=note, resolution_seconds=self._elapsed()
        )

    @resolve.validator
    def _validate_resolve(self, update: TicketUpdate) -> None:
        self._check(Action.resolve, update)

    @workflow.update
    async def reopen(self, update: TicketUpdate) -> TransitionResult:
        """Back to work within the reopen window; the resolution promise starts over."""
        return await self._act(
            Action.reopen, update, note=update.reopen.reason if update.reopen else None
        )

    @reopen.validator
    def _validate_reopen(self, update: TicketUpdate) -> None:
        self._check(Action.reopen, update)

    @workflow.update
    async def close(self, update: TicketUpdate) -> TransitionResult:
        return await self._act(Action.close, update)

    @close.validator
    def _validate_close(self, update: TicketUpdate) -> None:
        self._check(Action.close, update)

    @workflow.update
    async def reassign(self, update: TicketUpdate) -> TransitionResult:
        """A supervisor's hand; the new agent is told."""
        assert update.reassign is not None
        result = await self._act(
            Action.reassign,
            update,
            assignee_id=update.reassign.assignee_id,
            note=update.reassign.note,
        )
        await self._notify(
            "ticket.assigned", result.ownership.assignee_id, step=f"{self.version}.reassigned"
        )
        return result

    @reassign.validator
    def _validate_reassign(self, update: TicketUpdate) -> None:
        self._check(Action.reassign, update)
        if update.reassign is None:
            raise ApplicationError(
                "say who gets the ticket",
                {"field": "assignee_id"},
                type="Invalid",
                non_retryable=True,
            )

    @workflow.signal
    async def customer_replied(self, reply: CustomerReplied) -> None:
        """The requester wrote: a paused clock resumes, a resolved ticket reopens, and the next
        response is owed."""
        async with self.lock:
            if self.status is TicketStatus.closed:
                return
            await self._transition(
                TransitionRequest(
                    ticket_id=self.ticket_id,
                    action=Action.customer_reply,
                    caller=WORKFLOW_CALLER,
                    comment_id=reply.comment_id,
                )
            )

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "assignee_id": self.ownership.assignee_id,
            "paused": self.clock.paused_at is not None,
            "version": self.version,
        }
