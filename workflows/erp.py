"""Customer push to the ERP: one workflow per customer (`erp-customer-<id>`) runs its pushes in
order, so the ERP ends up with the newest billing details and contacts.

The API signal-with-starts it on every change. A change arriving while a push runs marks the
workflow dirty, and it pushes again once the running push is done; each push reads the customer
as stored at that moment, so the last one always carries the newest state.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.erp import REFUSED, CustomerPush, ErpActivities

PUSH = {
    "start_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2,
        maximum_interval=timedelta(minutes=2),
        non_retryable_error_types=[REFUSED],
    ),
}


@workflow.defn(name="ErpCustomerSync")
class ErpCustomerSyncWorkflow:
    def __init__(self) -> None:
        self.latest: CustomerPush | None = None
        self.dirty = False

    @workflow.run
    async def run(self, push: CustomerPush) -> int:
        """Push until no change is left over; the number of pushes made."""
        pushes = 0
        current = self.latest or push
        while True:
            self.dirty = False
            await workflow.execute_activity_method(ErpActivities.push_customer, current, **PUSH)
            pushes += 1
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self.dirty:
                return pushes
            assert self.latest is not None
            current = self.latest

    @workflow.signal(name="changed")
    def changed(self, push: CustomerPush) -> None:
        self.latest = push
        self.dirty = True
