"""Order lifecycle: book in the ERP, request the invoice, fold in ERP events, run the payment plan.

One workflow per order (`order-<id>`), started by the contract workflow once the contract is
signed. The ERP may be down for hours: booking retries with capped exponential backoff under one
idempotency key, so it books exactly once. ERP events arrive as `erp_event` signals (the API has
checked their signatures) and are applied one at a time, once per event id. Each unpaid
instalment gets a reminder to the owner before it is due and exactly one overdue escalation to
the owner's manager (the owner is told too) once its due day is over.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.steps import DB_STEP, notify, wait_until

with workflow.unsafe.imports_passed_through():
    from activities.erp import REFUSED
    from activities.order import OrderActivities
    from domain.erp import ErpEvent
    from domain.notification import Channel, Notice
    from domain.order.lifecycle import (
        CustomerMerged,
        InstalmentOverdue,
        InstalmentStep,
        OrderEvent,
        OrderPlan,
        OrderStart,
    )

ERP_STEP: dict[str, Any] = {
    # No overall limit: an ERP down for a weekend is booked when it is back. Retries are spaced
    # 1 s, 2 s, 4 s … up to 2 min, so it is booked within two minutes of coming back.
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2,
        maximum_interval=timedelta(minutes=2),
        non_retryable_error_types=[REFUSED],
    ),
}
NO_TASK = [Channel.email, Channel.chat]
"""For news that needs no action: mail and chat, but nothing in the inbox."""


@workflow.defn(name="Order")
class OrderWorkflow:
    def __init__(self) -> None:
        self.plan: OrderPlan | None = None
        self.completed = False
        self.changes = 0
        """Bumped by every applied event: the payment-plan clock looks again."""
        self.reminded: set[int] = set()
        self.escalated: set[int] = set()
        self.applied: set[str] = set()
        self.lock = asyncio.Lock()

    @workflow.run
    async def run(self, start: OrderStart) -> str:
        plan = await workflow.execute_activity_method(OrderActivities.load_plan, start, **DB_STEP)
        self.plan = plan
        self.completed = plan.completed
        self.escalated = {i.seq for i in plan.instalments if i.overdue}
        # The ERP may take hours to come back; the payment plan's clock runs meanwhile.
        erp = asyncio.create_task(self._erp(start, plan))
        again = await self._payment_plan()
        await erp
        if again:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(
                OrderStart(order_id=plan.order_id, policy_version=plan.policy_version)
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return "completed"

    # --- the ERP --------------------------------------------------------------------------

    async def _erp(self, start: OrderStart, plan: OrderPlan) -> None:
        if not plan.booked:
            await self._book(start)
        elif not plan.invoice_requested:
            await self._request_invoice(start)

    async def _book(self, start: OrderStart) -> None:
        booked = await workflow.execute_activity_method(OrderActivities.book, start, **ERP_STEP)
        if booked.refused is not None:
            await self._notify(
                "order.erp_refused", self._owner(), step="book", reason=booked.refused
            )
        elif booked.booked:
            await self._notify(
                "order.booked",
                self._owner(),
                step="book",
                channels=NO_TASK,
                erp_order_id=booked.erp_order_id,
            )
            await self._request_invoice(start)

    async def _request_invoice(self, start: OrderStart) -> None:
        refused = await workflow.execute_activity_method(
            OrderActivities.request_invoice, start, **ERP_STEP
        )
        if refused is not None:
            await self._notify("order.erp_refused", self._owner(), step="invoice", reason=refused)

    @workflow.signal(name="erp_event")
    async def erp_event(self, event: ErpEvent) -> None:
        """A verified ERP event (shipped, invoiced, paid); a repeated event id changes nothing."""
        await workflow.wait_condition(lambda: self.plan is not None)
        assert self.plan is not None
        async with self.lock:
            if event.event_id in self.applied:
                return
            try:
                progress = await workflow.execute_activity_method(
                    OrderActivities.apply_event,
                    OrderEvent(order_id=self.plan.order_id, event=event),
                    **DB_STEP,
                )
            except ActivityError as failed:
                workflow.logger.error("ERP event %s not applied: %s", event.event_id, failed.cause)
                return
            self.applied.add(event.event_id)
            for step in self.plan.instalments:
                step.paid = step.seq in progress.paid_seqs
            self.completed = progress.completed
            self.changes += 1

    @workflow.signal(name="customer_merged")
    async def customer_merged(self, merged: CustomerMerged) -> None:
        """The plan keeps the customer for its notices (their link and customer): after a merge
        or its undo they name the customer the order belongs to now."""
        await workflow.wait_condition(lambda: self.plan is not None)
        assert self.plan is not None
        self.plan.customer_id = merged.customer_id
        self.plan.customer_name = merged.customer_name

    # --- the payment plan -----------------------------------------------------------------

    def _next_step(self) -> tuple[datetime, InstalmentStep, str] | None:
        """The earliest reminder or escalation still to come for an unpaid instalment."""
        assert self.plan is not None
        steps = []
        for step in self.plan.instalments:
            if step.paid or step.seq in self.escalated:
                continue
            if step.seq not in self.reminded and step.remind_at < step.overdue_at:
                steps.append((step.remind_at, step, "remind"))
            else:
                steps.append((step.overdue_at, step, "overdue"))
        return min(steps, key=lambda s: (s[0], s[1].seq), default=None)

    async def _payment_plan(self) -> bool:
        """Until the order is shipped and paid; True when it should continue as new."""
        while not self.completed:
            if workflow.info().is_continue_as_new_suggested():
                return True
            changes = self.changes

            def moved(seen: int = changes) -> bool:
                return self.changes != seen or self.completed

            upcoming = self._next_step()
            if upcoming is None:
                await workflow.wait_condition(
                    lambda: moved() or workflow.info().is_continue_as_new_suggested()
                )
                continue
            due, step, kind = upcoming
            if not await wait_until(due, moved):
                continue
            async with self.lock:
                if step.paid:
                    continue
                if kind == "remind":
                    self.reminded.add(step.seq)
                    if workflow.now() < step.overdue_at:
                        await self._notify(
                            "order.payment_due", self._owner(), step=step, due=step.overdue_at
                        )
                else:
                    self.escalated.add(step.seq)
                    await self._overdue(step)
        return False

    async def _overdue(self, step: InstalmentStep) -> None:
        assert self.plan is not None
        await workflow.execute_activity_method(
            OrderActivities.mark_overdue,
            InstalmentOverdue(order_id=self.plan.order_id, seq=step.seq),
            **DB_STEP,
        )
        await self._notify("order.payment_overdue", self._owner(), step=step, due=step.overdue_at)
        if self.plan.manager_id is not None:
            await self._notify(
                "order.payment_escalated", self.plan.manager_id, step=step, due=step.overdue_at
            )

    # --- telling people -------------------------------------------------------------------

    def _owner(self) -> int | None:
        assert self.plan is not None
        return self.plan.owner_id

    async def _notify(
        self,
        template: str,
        recipient: int | None,
        *,
        step: InstalmentStep | str,
        due: datetime | None = None,
        channels: list[Channel] | None = None,
        **params: str | int | None,
    ) -> None:
        """Tell someone once per (order, step, template); a channel that refuses is logged."""
        assert self.plan is not None
        if recipient is None:
            return
        label = step if isinstance(step, str) else f"{step.seq}"
        if not isinstance(step, str):
            params.update(seq=step.seq, instalment=str(step.amount), due_on=step.due_on.isoformat())
        notice = Notice(
            key=f"{workflow.info().workflow_id}/{label}/{template}",
            template=template,
            recipient_id=recipient,
            params={
                "number": self.plan.number,
                "customer": self.plan.customer_name,
                "path": f"/customers/{self.plan.customer_id}",
                **params,
            },
            due_at=due,
            customer_id=self.plan.customer_id,
            ref_entity="order",
            ref_id=self.plan.order_id,
            **({"channels": channels} if channels else {}),
        )
        await notify(notice)

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "reminded": sorted(self.reminded),
            "escalated": sorted(self.escalated),
            "paid": [s.seq for s in self.plan.instalments if s.paid] if self.plan else [],
        }
